"""Reading the user's own textbooks: a folder of `.pdf`, `.epub`, `.txt` and `.md` files.

Each file becomes a `Book` whose chapters are cleaned text (see `cleaning`). A file that
cannot be used raises `InputError` from `read_book`, with a message that names the file
and says what to do; `read_folder` collects those as `Problem`s and goes on, so that one
bad file does not stop a library of good ones.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from tqdm import tqdm

from .cleaning import clean_book_text, remove_running_lines
from .errors import InputError, ParameterError

__all__ = ["SUPPORTED_EXTENSIONS", "Book", "Problem", "read_book", "read_folder"]

SUPPORTED_EXTENSIONS = (".pdf", ".epub", ".txt", ".md")
PAGES_PER_CHUNK = 20  # PDF pages per chapter when the PDF has no outline
# Larger text files are refused rather than read: a textbook is a few MB of text, and
# reading and cleaning holds several copies in memory.
MAX_TEXT_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Book:
    """One textbook: its file, a title, and its chapters as cleaned text."""

    path: Path
    title: str
    chapters: tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    """A file of the folder that was skipped, and why."""

    path: Path
    message: str


# ----------------------------------------------------------------------------- PDF


def _pdf_chapter_starts(reader) -> list[int]:
    """First pages (0-based) of the top-level outline entries, or [] without one."""
    starts: set[int] = set()
    try:
        for item in reader.outline:
            if isinstance(item, list):  # nested entries: sections of the chapter above
                continue
            page = reader.get_destination_page_number(item)
            if page is not None and page >= 0:
                starts.add(page)
    except Exception:  # a broken outline is no reason to lose the text
        return []
    return sorted(starts)


def _read_pdf(path: Path, pages_per_chunk: int) -> tuple[str, list[str]]:
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # repairs are reported as noise
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputError(
                f"{path.name} is a password-protected PDF; save an unprotected copy "
                "or give a text file"
            )
        n_pages = len(reader.pages)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"{path.name} could not be read as a PDF ({type(exc).__name__}: {exc}); "
            "re-export it or give a text file"
        ) from exc
    pages: list[str] = []
    failed = 0
    for page in reader.pages:
        try:
            pages.append(page.extract_text() or "")
        except Exception:  # one damaged page: keep the others
            pages.append("")
            failed += 1
    if failed == n_pages and n_pages:
        raise InputError(
            f"{path.name} could not be read as a PDF (no page could be decoded); "
            "re-export it or give a text file"
        )
    if not any(page.strip() for page in pages):
        raise InputError(
            f"no PDF text could be extracted from {path.name} (scanned image?); "
            "run OCR first (e.g. `ocrmypdf`) or give a text file"
        )
    # Running heads repeat through the whole book: remove them with all pages in view.
    pages = remove_running_lines(pages)
    starts = _pdf_chapter_starts(reader)
    if len(starts) < 2:
        starts = list(range(0, len(pages), pages_per_chunk))
    bounds = sorted({0, *starts[1:]}) + [len(pages)]
    chapters = ["\f".join(pages[a:b]) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    title = ""
    try:
        title = (reader.metadata.title or "") if reader.metadata else ""
    except Exception:
        pass
    return str(title), chapters


# ---------------------------------------------------------------------------- EPUB

_BLOCK_TAGS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 li ul ol table tr blockquote section article header footer "
    "figure figcaption dt dd pre aside caption".split()
)
_SKIP_TAGS = frozenset("script style head title nav svg math".split())
_CITATION_MARK = re.compile(r"^\s*[\[(]?\d+(?:\s*[,\-–]\s*\d+)*[\])]?\s*$")


class _HTMLText(HTMLParser):
    """Text of an XHTML document, one block element per paragraph. Citation links
    ("<a href='#ref12'>12</a>") are dropped: they would glue digits onto words."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.link: list[str] | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "a":
            self.link = []

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "a" and self.link is not None:
            text = "".join(self.link)
            if not _CITATION_MARK.match(text):
                self.parts.append(text)
            self.link = None

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        data = data.replace("\n", " ")  # a line break in HTML source is a space
        (self.link if self.link is not None else self.parts).append(data)

    def text(self) -> str:
        return "".join(self.parts)


def html_to_text(html: str) -> str:
    """Plain text of an (X)HTML document, block elements separated by blank lines."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    return parser.text()


def _read_epub(path: Path) -> tuple[str, list[str]]:
    import ebooklib
    from ebooklib import epub

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ebooklib's notices about future defaults
            book = epub.read_epub(str(path), options={"ignore_ncx": True})
    except Exception as exc:
        raise InputError(
            f"{path.name} could not be read as an EPUB ({type(exc).__name__}: {exc}); "
            "re-export it or give a text file"
        ) from exc
    # Spine order is reading order; documents outside the spine (notes) come after.
    documents = list(book.get_items_of_type(ebooklib.ITEM_DOCUMENT))
    by_id = {item.get_id(): item for item in documents}
    ordered = [by_id.pop(idref) for idref, _ in book.spine if idref in by_id]
    ordered += list(by_id.values())
    chapters = []
    for item in ordered:
        if isinstance(item, epub.EpubNav):
            continue  # the table of contents
        content = item.get_content()
        chapters.append(html_to_text(content.decode("utf-8", errors="replace")))
    titles = book.get_metadata("DC", "title")
    return (titles[0][0] if titles else ""), chapters


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


_MD_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL), ""),  # code fences
    (re.compile(r"\A---\n.*?\n(?:---|\.\.\.)\n", re.DOTALL), ""),  # YAML front matter
    (re.compile(r"<!--.*?-->", re.DOTALL), ""),
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links: keep the text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # reference links
    (re.compile(r"^[ \t]{0,3}\[[^\]]+\]:[ \t]+\S.*$", re.MULTILINE), ""),  # link targets
    # headings
    (re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$", re.MULTILINE), r"\1"),
    (re.compile(r"^[ \t]{0,3}>[ \t]?", re.MULTILINE), ""),  # block quotes
    (re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]+", re.MULTILINE), ""),  # list markers
    (re.compile(r"^[ \t]*(?:[-*_][ \t]*){3,}$", re.MULTILINE), ""),  # rules
    # table rules
    (re.compile(r"^[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)+[ \t]*:?-*:?[ \t]*$", re.MULTILINE), ""),
    (re.compile(r"[ \t]*\|[ \t]*"), " "),  # table cells
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # strong
    (re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])"), r"\2"),  # emphasis
    (re.compile(r"`([^`]*)`"), r"\1"),  # inline code
    (re.compile(r"<[^>\n]+>"), ""),  # inline HTML tags
)


def strip_markdown(text: str) -> str:
    """Markdown to plain text, lightly: code blocks, images and HTML comments go;
    heading markers, emphasis, link targets, list and quote markers are removed and
    their text kept."""
    for pattern, replacement in _MD_RULES:
        text = pattern.sub(replacement, text)
    return text


def _split_on(text: str, pattern: re.Pattern[str]) -> list[str]:
    starts = [m.start() for m in pattern.finditer(text)]
    if not starts:
        return [text]
    bounds = [0, *starts, len(text)] if starts[0] > 0 else [*starts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _read_text(path: Path) -> tuple[str, list[str]]:
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise InputError(
            f"{path.name} is {size / 2**20:.0f} MiB, more than the "
            f"{MAX_TEXT_BYTES / 2**20:.0f} MiB a text file may have; split it into "
            "several files"
        )
    text = _decode_text(path, path.read_bytes())
    if path.suffix.lower() == ".md":
        text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.MULTILINE | re.DOTALL)
        # Chapters start at top-level headings, else at second-level ones.
        for level in ("#", "##"):
            chapters = _split_on(text, re.compile(rf"^{level}\s+\S", re.MULTILINE))
            if len(chapters) > 1:
                break
        return "", [strip_markdown(chapter) for chapter in chapters]
    return "", _split_on(text, _CHAPTER_LINE)


# ------------------------------------------------------------------------- public


def read_book(path: str | Path, pages_per_chunk: int = PAGES_PER_CHUNK) -> Book:
    """Read one textbook (.pdf, .epub, .txt or .md) into a `Book` of cleaned chapters.

    PDF chapters follow the PDF's top-level outline when it has one, else they are runs
    of `pages_per_chunk` pages; EPUB chapters are its documents in reading order; text
    and Markdown files are split at "Chapter N" lines or top-level headings. Raises
    InputError, naming the file, when it cannot be read or holds no text."""
    path = Path(path)
    if (
        isinstance(pages_per_chunk, bool)
        or not isinstance(pages_per_chunk, int)
        or (pages_per_chunk < 1)
    ):
        raise ParameterError("pages_per_chunk", pages_per_chunk, "give a whole number >= 1")
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
    if suffix == ".pdf":
        title, raw = _read_pdf(path, pages_per_chunk)
    elif suffix == ".epub":
        title, raw = _read_epub(path)
    else:
        title, raw = _read_text(path)
    chapters = tuple(c for c in (clean_book_text(chapter) for chapter in raw) if c.strip())
    if not chapters:
        raise InputError(
            f"no text was left in {path.name} after cleaning; check that it holds the "
            "book's prose (not only images, tables or references)"
        )
    title = " ".join(title.split()) or path.stem.replace("_", " ")
    return Book(path=path, title=title, chapters=chapters)


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
    progress: bool = True,
) -> tuple[list[Book], list[Problem]]:
    """Read every textbook under `folder` (subfolders included, hidden ones skipped).

    Returns the books read and the problems met: a file with another extension, or one
    that `read_book` refused, is reported and skipped. Raises InputError when the
    folder is missing, holds no file with a supported extension, or holds no usable
    book at all (the message lists the problems)."""
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
            f"{', '.join(wanted)}",
        )
        for p in files
        if p.suffix.lower() not in wanted
    ]
    if not usable:
        raise InputError(
            f"no textbook found in {folder}: it holds no {', '.join(wanted)} file "
            f"({len(files)} other file(s)); put the books there"
        )
    books: list[Book] = []
    # an explicit disable=False would override TQDM_DISABLE (set by the notebooks)
    bar = tqdm(
        usable, desc="reading textbooks", unit="file", **({} if progress else {"disable": True})
    )
    for path in bar:
        bar.set_postfix_str(path.name[:40])
        try:
            books.append(read_book(path))
        except InputError as exc:
            problems.append(Problem(path, str(exc)))
        except Exception as exc:  # one unexpected failure must not lose the others
            problems.append(Problem(path, f"{path.name}: unexpected {type(exc).__name__}: {exc}"))
    if not books:
        listing = "\n".join(f"  - {p.message}" for p in problems)
        raise InputError(f"no usable textbook in {folder}:\n{listing}")
    return books, problems
