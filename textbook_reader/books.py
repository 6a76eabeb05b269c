"""Reading the user's textbooks (`.pdf`, `.epub`, `.txt`, `.md`) into `Book`s of prose.

PDF lines come with their place and font from PDFium and go through the layout rules of
`cleaning.paragraphs`, as plain text does (a line's number is its height); EPUB (its
spine, parsed with lxml) and Markdown (markdown-it-py) say by element what is prose.
`read_folder` reports a bad file as a `Problem` and goes on, so that one bad file does
not stop a library of good ones.
"""

from __future__ import annotations

import bisect
import ctypes
import functools
import logging
import posixpath
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import lxml.etree
import lxml.html

from textbook_reader.cleaning import (
    HYPHEN,
    Line,
    drop,
    finish,
    normalize_unicode,
    paragraphs,
    text_paragraphs,
    trim_cut_sentences,
)

logger = logging.getLogger(__name__)
PAGES_PER_CHUNK = 20  # PDF pages per chapter when the PDF has no outline
# Larger text files are refused rather than read: a textbook is a few MB of text, and
# reading and cleaning holds several copies in memory.
MAX_TEXT_BYTES = 256 * 1024 * 1024
BLANK_PAGE_CHARS = 20  # a PDF page with fewer characters of text has no text layer
BLANK_SHARE_WARNING = 0.25  # warn when this share of a PDF's pages has no text


class ReaderError(ValueError):
    """A file or folder that cannot be read as textbooks; the message names it and says
    what to do."""


@dataclass(frozen=True)
class Book:
    """One textbook: chapters of paragraphs separated by a blank line, pages (PDF; else
    0), blocks dropped per `cleaning.FILTERS` name with a few `examples`, warnings."""

    path: Path
    chapters: tuple[str, ...]
    pages: int
    dropped: dict[str, int]
    warnings: tuple[str, ...]
    examples: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Problem:
    """A file skipped (`kind` "skipped") or read with much text lost ("degraded")."""

    path: Path
    message: str
    kind: str = "skipped"


def _unreadable(path: Path, kind: str, why) -> ReaderError:
    """The error for a file that is no readable `kind` ("a PDF", "an EPUB")."""
    calibre = " (e.g. with Calibre)" if kind == "an EPUB" else ""
    return ReaderError(
        f"{path.name} could not be read as {kind} ({why}); re-export it{calibre} or give a "
        "text file"
    )


# ----------------------------------------------------------------------------- PDF

# Font names say the weight and the pitch: "CMBX12", "Helvetica-Bold"; "CMTT10", "Courier".
_BOLD_FONT = re.compile(rb"bold|black|heavy|demi|BX", re.IGNORECASE)
_MONO_FONT = re.compile(rb"mono|courier|consol|typewriter|TT\d", re.IGNORECASE)
_UP_TO_HYPHEN = re.compile(f"[^{HYPHEN}]*{HYPHEN}?")


@functools.lru_cache(maxsize=256)  # a book has few fonts; every line asks three times
def _font_style(name: bytes) -> str:
    return "mono" if _MONO_FONT.search(name) else "bold" if _BOLD_FONT.search(name) else ""


def _pdf_lines(textpage, page: int, width: float) -> list[Line]:
    """The lines of a page, with the font size and style of most of three characters
    (first, middle, last); rotated text (a watermark) left out. PDFium runs a word
    hyphenated at a line end into the next line: the line is cut at its mark again."""
    import pypdfium2.raw as pdfium_c

    handle = textpage.raw
    text = textpage.get_text_range().replace("\x02", HYPHEN)
    x, y = ctypes.c_double(), ctypes.c_double()
    name, flags = ctypes.create_string_buffer(128), ctypes.c_int()
    spans, start = [], 0
    for raw in text.split("\r\n"):  # each line, cut after each hyphen mark
        spans += [(start + m.start(), start + m.end()) for m in _UP_TO_HYPHEN.finditer(raw)]
        start += len(raw) + 2
    lines: list[Line] = []
    for first, end in spans:
        raw = text[first:end]
        first += len(raw) - len(raw.lstrip())
        last = first + len(raw.strip()) - 1
        middle = (first + last) // 2
        if last < first or pdfium_c.FPDFText_GetCharAngle(handle, middle) > 0.01:
            continue
        fonts = []
        middle += text[middle] == " "  # spaces and PDFium's hyphen marks have no font
        for index in (first, middle, last - (text[last] == HYPHEN)):
            pdfium_c.FPDFText_GetFontInfo(handle, index, name, 128, flags)
            size = round(pdfium_c.FPDFText_GetFontSize(handle, index), 1)
            fonts.append((size, _font_style(name.value)))
        size, style = fonts[0] if fonts[0] == fonts[2] else fonts[1]  # majority, else the middle
        pdfium_c.FPDFText_GetCharOrigin(handle, first, x, y)
        x0, x1 = textpage.get_charbox(first)[0], textpage.get_charbox(last)[2]
        content = normalize_unicode(raw.strip())
        lines.append(Line(content, page, 0, x0, x1, y.value, size or 10.0, style))
    # Two columns: many lines end left of the middle and many start right of it; the
    # left column is read first.
    middle = width / 2
    n_left = sum(1 for line in lines if line.x1 < middle)
    n_right = sum(1 for line in lines if line.x0 > middle)
    if n_left >= 5 and n_right >= 5 and n_left + n_right >= 0.6 * len(lines):
        lines = sorted(
            (line._replace(column=int(line.x0 > middle)) for line in lines),
            key=lambda line: line.column,
        )
    return lines


def _read_pdf(path: Path, stats: Counter, examples: dict):
    """A PDF's chapters: its outline's, else runs of `PAGES_PER_CHUNK` pages."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ReaderError(
                f"{path.name} is a password-protected PDF; save an unprotected copy "
                "or give a text file"
            ) from exc
        raise _unreadable(path, "a PDF", exc) from exc
    lines: list[Line] = []
    blank = failed = 0
    with document:
        n_pages = len(document)
        for index in range(n_pages):
            try:
                page = document[index]
                found = _pdf_lines(page.get_textpage(), index, page.get_width())
            except Exception:  # one damaged page: keep the others, and say so below
                failed += 1
                continue
            blank += sum(len(line.text) for line in found) < BLANK_PAGE_CHARS
            lines += found
        try:  # the first pages of the top-level outline entries
            tops = [bookmark.get_dest() for bookmark in document.get_toc() if bookmark.level == 0]
            # None: an entry that points to no page
            starts = sorted({top.get_index() for top in tops if top is not None} - {None})
        except Exception:  # a broken outline is no reason to lose the text
            starts = []
    if not n_pages:
        raise ReaderError(f"{path.name} is a PDF without pages; re-export it or give a text file")
    if failed == n_pages:
        raise _unreadable(path, "a PDF", "no page could be decoded")
    stats["blank_pages"] += blank
    if blank + failed == n_pages:
        raise ReaderError(
            f"no PDF text could be extracted from {path.name} (scanned image?); "
            "run OCR first (e.g. `ocrmypdf`) or give a text file"
        )
    warnings_: list[str] = []
    if failed:
        warnings_.append(
            f"{path.name}: {failed} of {n_pages} pages could not be decoded, so their text is "
            "missing; re-export the file (e.g. print it to a new PDF)"
        )
    if blank >= BLANK_SHARE_WARNING * n_pages:
        warnings_.append(
            f"{path.name}: {blank} of {n_pages} pages have no text layer (scanned or "
            "image-only pages), so their text is missing; run OCR on the "
            "file (e.g. `ocrmypdf`) or give a text file"
        )
    if len(starts) < 2:
        starts = list(range(0, n_pages, PAGES_PER_CHUNK))
    bounds = sorted({0, *starts[1:]})
    chapters: list[list[str]] = [[] for _ in bounds]
    for page, paragraph in paragraphs(lines, n_pages, stats, examples):
        chapters[bisect.bisect_right(bounds, page) - 1].append(paragraph)
    return chapters, n_pages, warnings_


# ---------------------------------------------------------------------------- EPUB

# Elements that are not prose, and the filter that counts them.
_NOT_PROSE = {
    **dict.fromkeys("h1 h2 h3 h4 h5 h6".split(), "headings"),
    **dict.fromkeys("ul ol dl".split(), "lists"),
    **dict.fromkeys("table".split(), "tables"),
    **dict.fromkeys("pre math svg".split(), "code"),
    **dict.fromkeys("figure figcaption caption aside".split(), "small_print"),
    "nav": "contents_index",
}
_POWER_BASE = re.compile(r"(?:\d|\b[kcmnµμ]?(?:m|g|[lL]|s|mol)|\bmin|\bh)$")
_CITATION_MARK = re.compile(r"^\s*[\[(]?\d+(?:\s*[,\-–]\s*\d+)*[\])]?\s*$")


def html_paragraphs(html: bytes, stats: Counter, examples: dict) -> list[str]:
    """The prose paragraphs (`p`, and `div`s of text only) of an (X)HTML document; other
    elements, citation links and note marks ("<a href='#ref12'>12</a>") are counted."""
    try:
        root = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return []
    lxml.etree.strip_elements(root, "script", "style", "head", with_tail=False)
    for element in list(root.iter(*_NOT_PROSE)):
        if next(element.iterancestors(*_NOT_PROSE), None) is None:  # counted once, outermost
            drop(stats, examples, _NOT_PROSE[element.tag], element.text_content())
            element.drop_tree()
    for element in list(root.iter("a", "sup")):
        if next(element.iterancestors("sup"), None) is not None:
            continue  # the number of a note inside <sup> goes with its <sup>
        before = element.getprevious()
        before = (before.tail if before is not None else element.getparent().text) or ""
        # after a number or a unit, a raised number is a power ("g/m<sup>2</sup>"), kept
        # as "m^2"; elsewhere, or as a link, it is the mark of a note or citation
        power = element.tag == "sup" and _POWER_BASE.search(before)
        if power:
            element.text = "^" + (element.text or "")
        elif _CITATION_MARK.match(element.text_content()):
            stats["footnote_marks"] += 1
            element.drop_tree()
    found = []
    for element in root.iter("p", "div"):
        if element.tag == "div" and (len(element) or not (element.text or "").strip()):
            continue
        text = normalize_unicode(" ".join(element.text_content().split()))
        if text and (text := trim_cut_sentences(text, stats, examples)):
            found.append(text)
    return found


def _read_epub(path: Path, stats: Counter, examples: dict):
    """The spine's documents in reading order as chapters."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _unreadable(path, "an EPUB", f"not a zip archive: {exc}") from exc
    with archive:
        names = set(archive.namelist())
        try:
            container = lxml.etree.fromstring(archive.read("META-INF/container.xml"))
            rootfile = next(e.get("full-path", "") for e in container.iterfind(".//{*}rootfile"))
            package = lxml.etree.fromstring(archive.read(rootfile))
        except (KeyError, StopIteration, lxml.etree.XMLSyntaxError, zipfile.BadZipFile) as exc:
            raise _unreadable(path, "an EPUB", f"no readable package document: {exc}") from exc
        base = posixpath.dirname(rootfile)
        manifest = {item.get("id", ""): item for item in package.iterfind(".//{*}item")}
        chapters: list[list[str]] = []
        seen: set[str] = set()
        missing: list[str] = []
        for idref in (ref.get("idref", "") for ref in package.iterfind(".//{*}itemref")):
            if idref not in manifest:
                missing.append(idref)
                continue
            item = manifest[idref]
            # A link may carry a #fragment, a place inside its file: the file is read once.
            href = unquote(item.get("href", "").split("#", 1)[0])
            file = posixpath.normpath(posixpath.join(base, href))
            if (
                file in seen
                or "nav" in item.get("properties", "").split()
                or "html" not in item.get("media-type", "")
            ):
                continue  # a second link into the same file, the table of contents, an image
            seen.add(file)
            if file not in names:
                missing.append(file)
                continue
            chapters.append(html_paragraphs(archive.read(file), stats, examples))
    warnings_ = []
    if missing:
        warnings_.append(
            f"{path.name}: {len(missing)} document(s) of its reading order are missing "
            f"from the file ({', '.join(missing[:3])}): "
            "re-export the book"
        )
    if not chapters:
        raise _unreadable(path, "an EPUB", "its spine lists no XHTML document")
    return chapters, 0, warnings_


# ------------------------------------------------------------------- text, Markdown

# A chapter starts at a "Chapter 3" or "CHAPTER IV" line.
_CHAPTER_LINE = re.compile(r"^(?=(?:chapter|CHAPTER|Chapter)\s+(?:\d+|[IVXLC]+)\b)", re.MULTILINE)


def _decode_text(path: Path) -> str:
    """UTF-8 text of a file, or a ReaderError saying why it is not usable text."""
    name, size = path.name, path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise ReaderError(
            f"{name} is {size / 2**20:.0f} MiB, more than the {MAX_TEXT_BYTES / 2**20:.0f} MiB "
            "a text file may have; split it into several files"
        )
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")  # a byte-order mark says UTF-16 (Windows editors)
        except UnicodeDecodeError as exc:
            raise ReaderError(
                f"{name} starts like UTF-16 text but is not valid UTF-16 (byte offset "
                f"{exc.start}); re-save it as UTF-8"
            ) from exc
    if data.startswith(b"%PDF-"):
        raise ReaderError(f"{name} is a PDF file, not text; rename it to .pdf")
    if b"\x00" in data:
        raise ReaderError(
            f"{name} contains NUL bytes: it is a binary file (a renamed Word or image "
            "file?), not plain text; export it as UTF-8 text"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # No silent fallback to Latin-1 / cp1252: a wrong guess garbles exactly the
        # symbols clinical text needs (µ, °, ≥, β) without anyone noticing.
        bad = data[exc.start : exc.start + 1].hex()
        raise ReaderError(
            f"{name} is not UTF-8 text (byte 0x{bad} at byte offset {exc.start}); "
            f"convert it, e.g. `iconv -f cp1252 -t utf-8 '{name}' > converted.txt` "
            "(use the encoding it was saved in: cp1252, latin1, ...), or re-save it "
            "as UTF-8"
        ) from exc
    sample = text[:65536]
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\n\r\t\f")
    if controls > 0.05 * len(sample):
        raise ReaderError(
            f"{name} is mostly control characters: a binary file, not plain text; "
            "export it as UTF-8 text"
        )
    return text


# Front matter is not CommonMark; markdown-it-py reads it only through a plugin package.
_FRONT_MATTER = re.compile(r"\A---\n.*?\n(?:---|\.\.\.)\n", re.DOTALL)


def _read_markdown(path: Path, stats: Counter, examples: dict):
    """Markdown rendered to HTML (markdown-it-py) and read by element as an EPUB's documents
    are, in chapters at top-level headings (else second-level)."""
    from markdown_it import MarkdownIt

    text = _FRONT_MATTER.sub("", _decode_text(path))
    html = MarkdownIt("commonmark").enable("table").render(text)
    tag = next((h for h in ("<h1>", "<h2>") if html.count(h) > 1), "")  # repeated level
    parts = re.split(f"(?={tag})", html) if tag else [html]
    return [html_paragraphs(part.encode(), stats, examples) for part in parts], 0, []


def _read_text(path: Path, stats: Counter, examples: dict):
    chapters = _CHAPTER_LINE.split(_decode_text(path))
    return [text_paragraphs(chapter, stats, examples) for chapter in chapters], 0, []


# Each reader gives the chapters (lists of paragraphs), the pages and warnings.
_READERS = {".pdf": _read_pdf, ".epub": _read_epub, ".txt": _read_text, ".md": _read_markdown}
SUPPORTED_EXTENSIONS = tuple(_READERS)


# ------------------------------------------------------------------------- public


def read_book(path: str | Path) -> Book:
    """One textbook (.pdf, .epub, .txt or .md) as a `Book`. PDF chapters follow its
    outline, else runs of `PAGES_PER_CHUNK` pages; text files split at "Chapter N" lines."""
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path} is not a file; check the path")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise ReaderError(
            f"{path.name} has an unsupported extension {suffix or '(none)'!r}; give one of "
            f"{', '.join(SUPPORTED_EXTENSIONS)}"
        )
    if path.stat().st_size == 0:
        raise ReaderError(f"{path.name} is empty; remove it or give the book's text")
    stats: Counter = Counter()
    examples: dict[str, list[str]] = {}
    raw, n_pages, warnings_ = _READERS[suffix](path, stats, examples)
    chapters = ["\n\n".join(finish(chapter, stats, examples)) for chapter in raw]
    chapters = [chapter for chapter in chapters if chapter.strip()]
    if not chapters:
        raise ReaderError(
            f"no text was left in {path.name} after cleaning; check that it holds the "
            "book's prose (not only images, tables, code or references)"
        )
    return Book(
        path=path,
        chapters=tuple(chapters),
        pages=n_pages,
        dropped={k: int(v) for k, v in sorted(stats.items()) if v},
        warnings=tuple(warnings_),
        examples={k: tuple(v) for k, v in sorted(examples.items())},
    )


def read_folder(folder: str | Path, *, strict: bool = False) -> tuple[list[Book], list[Problem]]:
    """The books under `folder` (subfolders included, hidden ones skipped) and the
    problems met, each logged with what to do; with `strict=True` any problem is a
    ReaderError, as is a folder without a usable book."""
    folder = Path(folder)
    if not folder.exists():
        raise ReaderError(f"textbook folder {folder} does not exist; check the path")
    if not folder.is_dir():
        raise ReaderError(f"{folder} is not a folder; give the folder that holds the books")
    files = [
        path
        for path in sorted(folder.rglob("*"))
        if path.is_file()  # hidden files and folders (.DS_Store, .git) are skipped
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]
    usable = [p for p in files if p.suffix.lower() in SUPPORTED_EXTENSIONS]
    problems: list[Problem] = []
    for p in files:
        if p.suffix.lower() not in SUPPORTED_EXTENSIONS:
            why = (
                f"{p.name}: skipped, extension {p.suffix or '(none)'!r} is not one of "
                f"{', '.join(SUPPORTED_EXTENSIONS)}; convert it to one of them or move it out "
                "of the folder"
            )
            problems.append(Problem(p, why))
            logger.warning("skipped: %s", why)
    if not usable:
        raise ReaderError(
            f"no textbook found in {folder}: it holds no {', '.join(SUPPORTED_EXTENSIONS)} file "
            f"({len(files)} other file(s)); put the books there"
        )
    books: list[Book] = []
    for number, path in enumerate(usable, start=1):
        logger.info("reading textbook %d of %d: %s", number, len(usable), path.relative_to(folder))
        try:
            book = read_book(path)
        except Exception as exc:  # one unexpected failure must not lose the others
            why = str(exc)
            if not isinstance(exc, ReaderError):
                why = (
                    f"{path.name}: unexpected {type(exc).__name__}: {exc}; re-export the "
                    "file or give a text file"
                )
            problems.append(Problem(path, why))
            logger.warning("skipped: %s", why)
            continue
        books.append(book)
        for warning in book.warnings:
            problems.append(Problem(path, warning, kind="degraded"))
            logger.warning("read with text lost: %s", warning)
    listing = "\n".join(f"  - {p.kind}: {p.message}" for p in problems)
    if not books:
        raise ReaderError(f"no usable textbook in {folder}:\n{listing}")
    if strict and problems:
        raise ReaderError(
            f"strict mode: {len(problems)} file(s) of {folder} were skipped or read with "
            f"text lost:\n{listing}\nfix or remove them, or set strict=False to go on "
            "without them"
        )
    return books, problems
