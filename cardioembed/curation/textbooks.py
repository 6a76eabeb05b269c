"""Reading the user's own textbooks: a folder of `.pdf`, `.epub`, `.txt` and `.md` files.

Each file becomes a `Book` whose chapters are cleaned text (see `cleaning`), with counts
of what cleaning dropped. PDF text comes from PDFium (package `pypdfium2`), EPUB
documents are read in the order of the book's spine (zipfile and the OPF package
document) and turned into text with BeautifulSoup, Markdown is parsed with
`markdown-it-py`.

A file that cannot be used raises `InputError` from `read_book`, with a message that
names the file and says what to do; a file that can be used but lost much of its text
(image-only pages, another language) is read and carries a warning. `read_folder`
logs both for every file, returns them as `Problem`s and goes on, so that one bad file
does not stop a library of good ones; with `strict=True` any of them is an error.
"""

from __future__ import annotations

import functools
import logging
import posixpath
import re
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from cardioembed.curation.cleaning import clean_book_text, remove_running_lines
from cardioembed.errors import InputError, ParameterError, check_int

logger = logging.getLogger(__name__)
SUPPORTED_EXTENSIONS = (".pdf", ".epub", ".txt", ".md")
PAGES_PER_CHUNK = 20  # PDF pages per chapter when the PDF has no outline
# Larger text files are refused rather than read: a textbook is a few MB of text, and
# reading and cleaning holds several copies in memory.
MAX_TEXT_BYTES = 256 * 1024 * 1024
BLANK_PAGE_CHARS = 20  # a PDF page with fewer characters of text has no text layer
BLANK_SHARE_WARNING = 0.25  # warn when this share of a PDF's pages has no text
OTHER_LANGUAGE_WARNING = 0.3  # warn when this share of paragraphs is in another language


@dataclass(frozen=True)
class Book:
    """One textbook: its file, a title, its chapters as cleaned text, its page count (PDF;
    else 0), what cleaning dropped (`cleaning.FILTERS` names), and warnings about text
    that was lost."""

    path: Path
    title: str
    chapters: tuple[str, ...]
    pages: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """A file of the folder that was skipped (`kind` "skipped") or read with much of its
    text lost (`kind` "degraded"), and why, with what to do."""

    path: Path
    message: str
    kind: str = "skipped"


# ----------------------------------------------------------------------------- PDF


def _pdf_chapter_starts(document) -> list[int]:
    """First pages (0-based) of the top-level outline entries, or [] without one."""
    starts: set[int] = set()
    try:
        for bookmark in document.get_toc():
            if bookmark.level != 0:  # nested entries: sections of the chapter above
                continue
            destination = bookmark.get_dest()
            page = destination.get_index() if destination is not None else None
            if page is not None and page >= 0:
                starts.add(page)
    except Exception:  # a broken outline is no reason to lose the text
        return []
    return sorted(starts)


def _read_pdf(
    path: Path, pages_per_chunk: int, stats: Counter
) -> tuple[str, list[str], int, list[str]]:
    """Title, chapters (pages joined by form feeds), page count and warnings of a PDF."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise InputError(
                f"{path.name} is a password-protected PDF; save an unprotected copy "
                "or give a text file"
            ) from exc
        raise InputError(
            f"{path.name} could not be read as a PDF ({exc}); re-export it or give a text file"
        ) from exc
    try:
        n_pages = len(document)
        pages: list[str] = []
        failed = 0
        for index in range(n_pages):
            try:
                page = document[index]
                textpage = page.get_textpage()
                pages.append(textpage.get_text_range())
                textpage.close()
                page.close()
            except Exception:  # one damaged page: keep the others
                pages.append("")
                failed += 1
        starts = _pdf_chapter_starts(document)
        try:
            title = document.get_metadata_dict().get("Title", "")
        except Exception:
            title = ""
    finally:
        document.close()
    if n_pages and failed == n_pages:
        raise InputError(
            f"{path.name} could not be read as a PDF (no page could be decoded); "
            "re-export it or give a text file"
        )
    blank = sum(1 for page in pages if len("".join(page.split())) < BLANK_PAGE_CHARS)
    stats["blank_pages"] += blank
    if blank == n_pages:
        raise InputError(
            f"no PDF text could be extracted from {path.name} (scanned image?); "
            "run OCR first (e.g. `ocrmypdf`) or give a text file"
        )
    warnings_: list[str] = []
    if blank >= BLANK_SHARE_WARNING * n_pages:
        warnings_.append(
            f"{path.name}: {blank} of {n_pages} pages have no text layer (scanned or "
            "image-only pages), so their text is missing from the corpus; run OCR on the "
            "file (e.g. `ocrmypdf`) or give a text file"
        )
    # Running heads repeat through the whole book: remove them with all pages in view.
    pages = remove_running_lines(pages)
    if len(starts) < 2:
        starts = list(range(0, len(pages), pages_per_chunk))
    bounds = sorted({0, *starts[1:]}) + [len(pages)]
    chapters = ["\f".join(pages[a:b]) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    return str(title or ""), chapters, n_pages, warnings_


# ---------------------------------------------------------------------------- EPUB

_BLOCK_TAGS = (
    "p div h1 h2 h3 h4 h5 h6 li ul ol dl blockquote section article header footer "
    "figure dt dd aside tr".split()
)
# Not prose: scripts and styles, navigation, formulas, code blocks, tables.
_SKIP_TAGS = "script style head title nav svg math pre table".split()
_CAPTION_TAGS = ["figcaption", "caption"]
_CITATION_MARK = re.compile(r"^\s*[\[(]?\d+(?:\s*[,\-–]\s*\d+)*[\])]?\s*$")
_PARAGRAPH_MARK, _LINE_MARK = "\x1e", "\x1d"


@functools.lru_cache(maxsize=1)
def _html_parser() -> str:
    """bs4's lxml tree builder when lxml is installed (it parsed the Debian Developer's
    Reference EPUB 1.7x faster than html.parser, with the same text), else html.parser."""
    from bs4 import BeautifulSoup, FeatureNotFound

    try:
        BeautifulSoup("<p></p>", "lxml")
    except FeatureNotFound:
        return "html.parser"
    return "lxml"


def html_to_text(html: str | bytes, stats: Counter | None = None) -> str:
    """Plain text of an (X)HTML document, block elements separated by blank lines.
    Code blocks and captions are dropped (counted in `stats` as "code_lines" and
    "caption_lines"), tables and formulas too; citation links and footnote marks
    ("<a href='#ref12'>12</a>") are dropped: they would glue digits onto words."""
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    stats = stats if stats is not None else Counter()
    with warnings.catch_warnings():
        # EPUB documents are XHTML; an HTML parser reads them as well as it reads HTML.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(html, _html_parser())
    for tag in soup.find_all(_SKIP_TAGS):
        if tag.name == "pre":
            stats["code_lines"] += max(1, tag.get_text().count("\n"))
        tag.decompose()
    for tag in soup.find_all(_CAPTION_TAGS):
        stats["caption_lines"] += 1
        tag.decompose()
    for tag in soup.find_all(["a", "sup"]):
        if _CITATION_MARK.match(tag.get_text()):
            tag.decompose()
    for tag in soup.find_all("br"):
        tag.replace_with(_LINE_MARK)
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before(_PARAGRAPH_MARK)
        tag.append(_PARAGRAPH_MARK)
    text = soup.get_text().replace("\n", " ")  # a line break in HTML source is a space
    return text.replace(_LINE_MARK, "\n").replace(_PARAGRAPH_MARK, "\n\n")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _epub_error(path: Path, why: str) -> InputError:
    return InputError(
        f"{path.name} could not be read as an EPUB ({why}); re-export it (e.g. with "
        "Calibre) or give a text file"
    )


def _read_epub(path: Path, stats: Counter) -> tuple[str, list[str], list[str]]:
    """Title, chapters (the spine's documents in reading order) and warnings of an EPUB.
    Manifest links may carry a #fragment: it names a place inside the file, so the file
    is read once."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _epub_error(path, f"not a zip archive: {exc}") from exc
    with archive:
        names = set(archive.namelist())
        try:
            container = ET.fromstring(archive.read("META-INF/container.xml"))
            rootfile = next(
                e.get("full-path", "") for e in container.iter() if _local(e.tag) == "rootfile"
            )
            package = ET.fromstring(archive.read(rootfile))
        except (KeyError, StopIteration, ET.ParseError, zipfile.BadZipFile) as exc:
            raise _epub_error(path, f"no readable package document: {exc}") from exc
        base = posixpath.dirname(rootfile)
        manifest: dict[str, tuple[str, str, str]] = {}
        spine: list[str] = []
        title = ""
        for element in package.iter():
            name = _local(element.tag)
            if name == "item":
                href = unquote(element.get("href", "").split("#", 1)[0])
                manifest[element.get("id", "")] = (
                    posixpath.normpath(posixpath.join(base, href)),
                    element.get("media-type", ""),
                    element.get("properties", ""),
                )
            elif name == "itemref":
                spine.append(element.get("idref", ""))
            elif name == "title" and not title:
                title = (element.text or "").strip()
        chapters: list[str] = []
        seen: set[str] = set()
        missing: list[str] = []
        for idref in spine:
            if idref not in manifest:
                missing.append(idref)
                continue
            file, media_type, properties = manifest[idref]
            if file in seen or "nav" in properties.split() or "html" not in media_type:
                continue  # a second link into the same file, the table of contents, an image
            seen.add(file)
            if file not in names:
                missing.append(file)
                continue
            chapters.append(html_to_text(archive.read(file), stats))
    warnings_ = []
    if missing:
        warnings_.append(
            f"{path.name}: {len(missing)} document(s) of its reading order are missing "
            f"from the file ({', '.join(missing[:3])}); their text is not in the corpus: "
            "re-export the book"
        )
    if not chapters:
        raise _epub_error(path, "its spine lists no XHTML document")
    return title, chapters, warnings_


# ------------------------------------------------------------------- text, Markdown

_CHAPTER_LINE = re.compile(r"^(?:chapter|CHAPTER|Chapter)\s+(?:\d+|[IVXLC]+)\b.*$", re.MULTILINE)


def _decode_text(path: Path, data: bytes) -> str:
    """UTF-8 text of a file, or an InputError saying why it is not usable text."""
    name = path.name
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")  # a byte-order mark says UTF-16 (Windows editors)
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{name} starts like UTF-16 text but is not valid UTF-16 (byte offset "
                f"{exc.start}); re-save it as UTF-8"
            ) from exc
    if data.startswith(b"%PDF-"):
        raise InputError(f"{name} is a PDF file, not text; rename it to .pdf")
    if b"\x00" in data:
        raise InputError(
            f"{name} contains NUL bytes: it is a binary file (a renamed Word or image "
            "file?), not plain text; export it as UTF-8 text"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # No silent fallback to Latin-1 / cp1252: a wrong guess garbles exactly the
        # symbols clinical text needs (µ, °, ≥, β) without anyone noticing.
        bad = data[exc.start : exc.start + 1].hex()
        raise InputError(
            f"{name} is not UTF-8 text (byte 0x{bad} at byte offset {exc.start}); "
            f"convert it, e.g. `iconv -f cp1252 -t utf-8 '{name}' > converted.txt` "
            "(use the encoding it was saved in: cp1252, latin1, ...), or re-save it "
            "as UTF-8"
        ) from exc
    sample = text[:65536]
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\n\r\t\f")
    if controls > 0.05 * len(sample):
        raise InputError(
            f"{name} is mostly control characters: a binary file, not plain text; "
            "export it as UTF-8 text"
        )
    return text


# Front matter is not CommonMark; markdown-it-py reads it only through a plugin package.
_FRONT_MATTER = re.compile(r"\A---\n.*?\n(?:---|\.\.\.)\n", re.DOTALL)


def _inline_text(children) -> str:
    parts = []
    for token in children or ():
        if token.type in ("text", "code_inline"):
            parts.append(token.content)
        elif token.type == "softbreak":
            parts.append(" ")
        elif token.type == "hardbreak":
            parts.append("\n")
        # images, inline HTML and link markers carry no prose of their own
    return "".join(parts)


def _markdown_blocks(text: str, stats: Counter | None = None) -> list[tuple[int, str]]:
    """The text blocks of a Markdown document as (heading level or 0, text): code,
    HTML blocks and tables are left out (code counted in `stats` as "code_lines")."""
    from markdown_it import MarkdownIt

    stats = stats if stats is not None else Counter()
    parser = MarkdownIt("commonmark").enable("table")
    blocks: list[tuple[int, str]] = []
    level = 0
    in_table = 0
    for token in parser.parse(_FRONT_MATTER.sub("", text)):
        if token.type == "table_open":
            in_table += 1
        elif token.type == "table_close":
            in_table -= 1
        elif token.type in ("fence", "code_block"):
            stats["code_lines"] += token.content.count("\n")
        elif token.type == "heading_open":
            level = int(token.tag[1:])
        elif token.type == "heading_close":
            level = 0
        elif token.type == "inline" and not in_table:
            blocks.append((level, _inline_text(token.children)))
    return blocks


def strip_markdown(text: str) -> str:
    """Markdown to plain text: code blocks, HTML, images and tables go; headings,
    paragraphs, list items and quotes are kept as paragraphs of their text."""
    return "\n\n".join(block for _, block in _markdown_blocks(text) if block.strip())


def _markdown_chapters(text: str, stats: Counter) -> list[str]:
    """Chapters start at top-level headings, else at second-level ones."""
    blocks = _markdown_blocks(text, stats)
    for level in (1, 2):
        if sum(1 for lvl, _ in blocks if lvl == level) > 1:
            break
    else:
        return ["\n\n".join(b for _, b in blocks)]
    chapters: list[list[str]] = [[]]
    for lvl, block in blocks:
        if lvl == level and chapters[-1]:
            chapters.append([])
        chapters[-1].append(block)
    return ["\n\n".join(chapter) for chapter in chapters]


def _split_on(text: str, pattern: re.Pattern[str]) -> list[str]:
    starts = [m.start() for m in pattern.finditer(text)]
    if not starts:
        return [text]
    bounds = [0, *starts, len(text)] if starts[0] > 0 else [*starts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _read_text(path: Path, stats: Counter) -> tuple[str, list[str]]:
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise InputError(
            f"{path.name} is {size / 2**20:.0f} MiB, more than the "
            f"{MAX_TEXT_BYTES / 2**20:.0f} MiB a text file may have; split it into "
            "several files"
        )
    text = _decode_text(path, path.read_bytes())
    if path.suffix.lower() == ".md":
        return "", _markdown_chapters(text, stats)
    return "", _split_on(text, _CHAPTER_LINE)


# ------------------------------------------------------------------------- public


def read_book(
    path: str | Path,
    pages_per_chunk: int = PAGES_PER_CHUNK,
    language: str | None = None,
) -> Book:
    """Read one textbook (.pdf, .epub, .txt or .md) into a `Book` of cleaned chapters.

    PDF chapters follow the PDF's top-level outline when it has one, else they are runs
    of `pages_per_chunk` pages; EPUB chapters are its spine's documents in reading order;
    text and Markdown files are split at "Chapter N" lines or top-level headings. With a
    `language` (e.g. "english"), paragraphs in other languages are dropped. Raises
    InputError, naming the file, when it cannot be read or holds no text."""
    path = Path(path)
    check_int("pages_per_chunk", pages_per_chunk, 1, "give a whole number >= 1")
    if not path.is_file():
        raise InputError(f"{path} is not a file; check the path")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise InputError(
            f"{path.name} has an unsupported extension {suffix or '(none)'!r}; give one of "
            f"{', '.join(SUPPORTED_EXTENSIONS)}"
        )
    if path.stat().st_size == 0:
        raise InputError(f"{path.name} is empty; remove it or give the book's text")
    stats: Counter = Counter()
    warnings_: list[str] = []
    n_pages = 0
    if suffix == ".pdf":
        title, raw, n_pages, warnings_ = _read_pdf(path, pages_per_chunk, stats)
    elif suffix == ".epub":
        title, raw, warnings_ = _read_epub(path, stats)
    else:
        title, raw = _read_text(path, stats)
    chapters = [clean_book_text(chapter, stats, language=language) for chapter in raw]
    chapters = [chapter for chapter in chapters if chapter.strip()]
    if not chapters:
        raise InputError(
            f"no text was left in {path.name} after cleaning; check that it holds the "
            "book's prose (not only images, tables, code or references)"
            + (f" in {language} (parameter `language`)" if language else "")
        )
    other = stats.get("other_language_paragraphs", 0)
    kept = sum(chapter.count("\n\n") + 1 for chapter in chapters)
    if language and other >= OTHER_LANGUAGE_WARNING * (kept + other):
        warnings_.append(
            f"{path.name}: {other} of {kept + other} paragraphs are not in {language} and "
            "were dropped; if the book is written in another language, set the parameter "
            "`language` (e.g. -p language=german), else check the file"
        )
    title = " ".join(title.split()) or path.stem.replace("_", " ")
    return Book(
        path=path,
        title=title,
        chapters=tuple(chapters),
        pages=n_pages,
        dropped={k: int(v) for k, v in sorted(stats.items()) if v},
        warnings=tuple(warnings_),
    )


def _list_files(folder: Path) -> Iterable[Path]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue  # hidden files and folders (.DS_Store, .git)
        if path.is_file():
            yield path


def read_folder(
    folder: str | Path,
    extensions: Sequence[str] = SUPPORTED_EXTENSIONS,
    *,
    language: str | None = None,
    strict: bool = False,
) -> tuple[list[Book], list[Problem]]:
    """Read every textbook under `folder` (subfolders included, hidden ones skipped).

    Returns the books read and the problems met: a file with another extension, or one
    that `read_book` refused, is skipped ("skipped"); a book read with much of its text
    lost is kept ("degraded"). Every problem is logged as a warning with what to do, each
    file read at info level. Raises
    InputError when the folder is missing, holds no file with a supported extension, or
    holds no usable book at all (the message lists the problems), and, with
    `strict=True`, when any file was skipped or degraded."""
    folder = Path(folder)
    wanted = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
    unknown = [e for e in wanted if e not in SUPPORTED_EXTENSIONS]
    if not wanted or unknown:
        raise ParameterError(
            "extensions", tuple(extensions), f"choose among {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    if not folder.exists():
        raise InputError(f"textbook folder {folder} does not exist; check the path")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give the folder that holds the books")
    files = list(_list_files(folder))
    usable = [p for p in files if p.suffix.lower() in wanted]
    problems = [
        Problem(
            p,
            f"{p.name}: skipped, extension {p.suffix or '(none)'!r} is not one of "
            f"{', '.join(wanted)}; convert it to one of them or move it out of the folder",
        )
        for p in files
        if p.suffix.lower() not in wanted
    ]
    for problem in problems:
        logger.warning("skipped: %s", problem.message)
    if not usable:
        raise InputError(
            f"no textbook found in {folder}: it holds no {', '.join(wanted)} file "
            f"({len(files)} other file(s)); put the books there"
        )
    books: list[Book] = []
    for number, path in enumerate(usable, start=1):
        logger.info("reading textbook %d of %d: %s", number, len(usable), path.relative_to(folder))
        try:
            book = read_book(path, language=language)
        except InputError as exc:
            problem = Problem(path, str(exc))
        except Exception as exc:  # one unexpected failure must not lose the others
            problem = Problem(
                path,
                f"{path.name}: unexpected {type(exc).__name__}: {exc}; re-export the file "
                "or give a text file",
            )
        else:
            books.append(book)
            for warning in book.warnings:
                problems.append(Problem(path, warning, kind="degraded"))
                logger.warning("read with text lost: %s", warning)
            continue
        problems.append(problem)
        logger.warning("skipped: %s", problem.message)
    if not books:
        listing = "\n".join(f"  - {p.message}" for p in problems)
        raise InputError(f"no usable textbook in {folder}:\n{listing}")
    if strict and problems:
        listing = "\n".join(f"  - {p.kind}: {p.message}" for p in problems)
        raise InputError(
            f"strict mode: {len(problems)} file(s) of {folder} were skipped or read with "
            f"text lost:\n{listing}\nfix or remove them, or set strict=False to go on "
            "without them"
        )
    return books, problems
