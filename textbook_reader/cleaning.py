"""From the lines of a page to paragraphs of prose, every dropped block counted.

`paragraphs` tells prose from the rest by the layout of `Line`s (a PDF's, or plain
text's with a line's number as its height); only whole sentences are kept, and each
drop is counted under a `FILTERS` name with a few examples. The rules, in words, are in
book/data.md ("How textbooks are read and filtered").
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from typing import NamedTuple

FILTERS = {
    "running_lines": "running heads and feet: lines at the same height at the edge of many pages",
    "contents_index": "pages of a table of contents or an index (most lines end in a page number)",
    "headings": "headings: set larger or bold, or a heading element",
    "small_print": "footnotes and captions set smaller than the body, figure captions, asides",
    "code": "code, synopses and markup: monospaced blocks, pre and code elements",
    "tables": "tables: rows with gaps between cells, table elements",
    "lists": "list elements (EPUB, Markdown)",
    "references": "reference lists: the blocks under a References or Bibliography heading",
    "fragments": "blocks that are not sentences: labels, list lines, cut text",
    "footnote_marks": "footnote numbers after a word's punctuation",
}
EXAMPLES = 3  # dropped blocks kept per filter, to show what it drops


class Line(NamedTuple):
    """One line of a page; `y` is its baseline (upwards), `style` "", "bold" or "mono"."""

    text: str
    page: int
    column: int
    x0: float
    x1: float
    y: float
    size: float
    style: str = ""


def drop(stats: Counter, examples: dict, name: str, text: str) -> None:
    """Count a dropped block under `name` and keep its start as an example."""
    stats[name] += 1
    kept = examples.setdefault(name, [])
    if len(kept) < EXAMPLES:
        kept.append(" ".join(text.split())[:160])


# Characters that NFKC leaves alone but that only carry layout: zero-width spaces and
# joiners, the byte-order mark, word joiner; soft hyphens are invisible in print.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def normalize_unicode(text: str) -> str:
    """NFKC (ligatures, odd spaces fold), one kind of line break, soft hyphens joined."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00ad\n", "")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n").translate(_INVISIBLE)
    return unicodedata.normalize("NFKC", text).replace("\t", " ").replace("\v", "\n")


# ------------------------------------------------------------------ hyphenation

HYPHEN = "\ufffe"  # a hyphen the typesetter put at a line end (PDFium's own mark)
# First parts after which a hyphen belongs to the word ("beta-blocker", "non-invasive").
_HYPHEN_PREFIXES = frozenset(
    "alpha beta gamma delta kappa anti non self well end left right high low long short "
    "first second third half all".split()
)
_BROKEN = re.compile(rf"(\w+){HYPHEN}\s*(\w*)")
_HYPHENATED = re.compile(r"\b\w+-\w+\b")


def rebuild_words(text: str, attested: set[str]) -> str:
    """Words broken at line ends joined ("myo-cardial"); the hyphen stays before a capital
    ("Kaplan-Meier"), after a capital or digit ("ACE-inhibitor") or a prefix ("beta-
    blocker"), and where the book spells the word with it elsewhere (`attested`)."""

    def join(match: re.Match[str]) -> str:
        left, right = match.groups()
        keep = (
            not right[:1].islower()
            or f"{left}-{right}".lower() in attested
            or left.lower() in _HYPHEN_PREFIXES
            or any(c.isdigit() or c.isupper() for c in left[1:])
        )
        return f"{left}-{right}" if keep else left + right

    return _BROKEN.sub(join, text) if HYPHEN in text else text


# ---------------------------------------------------------------------- layout

# A line that ends in a page number ("Heart failure . . . 12", "Anticoagulation, 359").
_PAGE_REFERENCE = re.compile(r"[\s.,–-](?:\d{1,4}|[ivxlc]{1,7})$", re.IGNORECASE)
# Dot leaders, or "term, 12".
_LISTING = re.compile(r"(?:\.\s?){3,}\s*\S+$|,\s*\d{1,4}(?:[–-]\d{1,4})?$")
_REFERENCES_HEADING = re.compile(
    r"^(?:[\d.]+\s+)?(?:references|bibliography|further reading|literature cited)$", re.I
)
# A citation has a year or starts with its number ("[12] ...", "12. Smith J").
_CITATION = re.compile(r"\b(?:19|20)\d\d\b|^\[\d+\]|^\d+\.\s")
_TERMINAL = re.compile(r"[.!?:][\"'”’)\]]*$")
_SENTENCE_START = re.compile(r"[\"'“‘”’(\[]?[A-Z0-9]")  # some books open quotes with ”
_SENTENCE_BREAK = re.compile(rf"[.!?][\"'”’)\]]*\s+(?={_SENTENCE_START.pattern})")
_BULLET = re.compile(r"^[•◦▪‣●○■□➢►–—*·]\s+")
# A footnote number set after a word's punctuation ("absolute.9 The"): two lowercase
# letters first and no dot before them, so that "3.5", "POSIX.2" and "libz.so.1" stay.
_FOOTNOTE_MARK = re.compile(
    r"(?:(?<=[a-z]{2}[.,;:!?])|(?<=[^\W\d_][)\]”’\"][.,;:!?]))(?<![./_@]\w\w.)\d{1,2}(?=\s)"
)
_GLUED = re.compile(r"[^\W\d_]{30,}")  # words glued together by a text layer without spaces
# Markup inside a sentence: a LaTeX command ("\\usepackage") or an HTML/XML tag.
_MARKUP = re.compile(r"\\[A-Za-z]{2,}|</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>")


def _mode(values, weights=None):
    """The most common value (by summed `weights`, if given), the first seen on a tie."""
    counts: Counter = Counter()
    for value, weight in zip(values, weights or itertools.repeat(1), strict=False):
        counts[value] += weight
    return counts.most_common(1)[0][0] if counts else 0.0


def _gaps(lines: list[Line]):
    """Each line and its distance down to the next of its column, where under three sizes."""
    for a, b in zip(lines, lines[1:], strict=False):
        if (a.page, a.column) == (b.page, b.column) and 0 < a.y - b.y < 3 * a.size:
            yield a, a.y - b.y


def _running(lines: list[Line], pages: int) -> set[int]:
    """Indexes of running heads and feet: a page's top or bottom line set apart (by 1.3
    line spacings) at a height shared by half the pages, or whose text (digits masked)
    recurs there on half the pages of one parity (left and right heads alternate)."""
    if pages < 3:
        return set()
    edges = []  # (line, its neighbour inwards, at the top)
    for _, page in itertools.groupby(range(len(lines)), key=lambda i: lines[i].page):
        order = sorted(page, key=lambda i: -lines[i].y)
        if len(order) > 1:
            edges += [(order[0], order[1], True), (order[-1], order[-2], False)]
    spacing = _mode(round(gap, 1) for _, gap in _gaps(lines))
    apart = {i for i, j, _ in edges if abs(lines[i].y - lines[j].y) > 1.3 * spacing}
    heights = Counter((round(lines[i].y), top) for i, _, top in edges if i in apart)

    def masked(i: int) -> tuple[int, str]:
        return lines[i].page % 2, re.sub(r"\d+", "#", lines[i].text.lower())

    texts = Counter(masked(i) for i, _, _ in edges)
    return {
        i
        for i, _, top in edges
        if (i in apart and heights[(round(lines[i].y), top)] >= pages / 2)
        or texts[masked(i)] >= max(3, pages / 4)
    }


def _spread(line: Line) -> bool:
    """Whether the line is wider than its text: gaps between table cells or before a page number."""
    return line.x1 - line.x0 > 0.8 * line.size * len(line.text) + 3 * line.size


def _listing_pages(lines: list[Line]) -> set[int]:
    """Pages where most lines end in a page number after dot leaders, a gap or a comma."""
    ends: dict[int, list[bool]] = {}
    for line in lines:
        listed = _PAGE_REFERENCE.search(line.text) and (_LISTING.search(line.text) or _spread(line))
        ends.setdefault(line.page, []).append(bool(listed))
    return {p for p, flags in ends.items() if len(flags) >= 5 and sum(flags) >= 0.5 * len(flags)}


def _blocks(lines: list[Line], spacing: float, body: float) -> list[list[Line]]:
    """Lines grouped into blocks (paragraphs, headings, code, ...) in reading order; a
    column's edges are its lines' on pages of the same parity."""
    groups: dict[tuple[int, int], list[Line]] = {}
    for line in lines:
        groups.setdefault((line.page % 2, line.column), []).append(line)
    left, right = {}, {}  # where most lines start, where 90% of lines end
    for key, group in groups.items():
        rights = sorted(line.x1 for line in group)
        left[key] = _mode(round(line.x0) for line in group)
        right[key] = rights[round(0.9 * (len(rights) - 1))]
    blocks: list[list[Line]] = []
    current: list[Line] = []
    open_block: list[Line] | None = None  # a paragraph that may run on over a break
    for line in lines:
        prev = current[-1] if current else None
        # The previous line ended short: the first word of this one would have fit on it.
        short = (
            prev is not None
            and prev.x1 + 0.5 * prev.size * (len(line.text.split(" ", 1)[0]) + 1)
            < right[(prev.page % 2, prev.column)] - prev.size
        )
        if prev is None:
            new = True
        elif (prev.page, prev.column) != (line.page, line.column):
            new = not (
                open_block
                and line.x0 - left[(line.page % 2, line.column)] <= 0.8 * line.size  # not indented
                and line.size == body
                and (not short or line.text[:1].islower())
            )
            if not new:
                current = open_block
        else:
            new = bool(
                abs(line.size - prev.size) > 0.5  # inline code or bold words: same size
                or not 0 < prev.y - line.y <= 1.5 * spacing * prev.size
                # indented after a sentence end: a new paragraph; after a line that runs
                # on, the hanging indent of a list item or a reference
                or (line.x0 - prev.x0 > 0.5 * line.size and _TERMINAL.search(prev.text))
                or short
                or _BULLET.match(line.text)
            )
        if new:
            current = [line]
            blocks.append(current)
        else:
            current.append(line)
        if line.size == body:
            open_block = None if _TERMINAL.search(line.text) else current
        elif line.size > body:
            open_block = None  # a heading or code: the paragraph before it has ended
    return blocks


def _join(block: list[Line]) -> str:
    parts = []
    for line in block:
        text = _BULLET.sub("", line.text) if not parts else line.text
        if parts and parts[-1].endswith(("-", HYPHEN)) and text[:1].islower():
            parts[-1] = parts[-1].rstrip("-" + HYPHEN) + HYPHEN + text
        else:
            parts.append(text)
    return " ".join(parts)


def paragraphs(
    lines: list[Line], pages: int, stats: Counter, examples: dict, spacing: float = 0.0
) -> list[tuple[int, str]]:
    """The prose paragraphs of a document's lines (in page order) as (page, text); drops
    counted in `stats`, sampled in `examples`. `spacing` in ems where known (plain text)."""
    running = _running(lines, pages)
    listing = _listing_pages(lines)
    for i in sorted(running):
        drop(stats, examples, "running_lines", lines[i].text)
    for page in sorted(listing):
        drop(stats, examples, "contents_index", f"page {page + 1}")
    lines = [ln for i, ln in enumerate(lines) if i not in running and ln.page not in listing]
    if not lines:
        return []
    body = _mode([line.size for line in lines], [len(line.text) for line in lines])
    # The line spacing, in ems; a paragraph's gap is wider than 1.3 ems in any book.
    spacing = spacing or min(1.3, _mode(round(gap / a.size, 2) for a, gap in _gaps(lines)))
    texts = [(block, _join(block)) for block in _blocks(lines, spacing, body)]
    attested = {m.lower() for m in _HYPHENATED.findall(" ".join(text for _, text in texts))}
    out: list[tuple[int, str]] = []
    in_references = False
    for block, text in texts:
        first = block[0]
        style = _mode([line.style for line in block], [len(line.text) for line in block])
        heading = first.size > 1.08 * body or (style == "bold" and len(block) <= 2)
        unfinished_line = len(block) == 1 and not _TERMINAL.search(text)
        if heading or unfinished_line:
            in_references = bool(_REFERENCES_HEADING.match(text.strip()))
        elif in_references:
            in_references = bool(_CITATION.search(text))  # the list ends at a block of prose
        if heading or (unfinished_line and _SENTENCE_START.match(text)):
            kind = "headings"  # or a label: a line of its own without a sentence end
        elif in_references:
            kind = "references"
        elif style == "mono":
            kind = "code"
        elif first.size < 0.92 * body:
            kind = "small_print"
        elif sum(map(_spread, block)) >= max(1, len(block) / 2):
            kind = "tables"  # rows with gaps between cells
        else:
            text, kind = trim_cut_sentences(text, stats, examples), ""
        if kind:
            drop(stats, examples, kind, text)
        elif text:
            out.append((first.page, rebuild_words(text, attested)))
    return out


def trim_cut_sentences(text: str, stats: Counter, examples: dict) -> str:
    """The paragraph without a first or last sentence cut at a break (not starting or
    ending like a sentence); "" for words glued together. Counted as "fragments"."""
    if _GLUED.search(text):
        drop(stats, examples, "fragments", text)
        return ""
    if not _SENTENCE_START.match(text):
        cut = _SENTENCE_BREAK.search(text)
        drop(stats, examples, "fragments", text[: cut.end() if cut else len(text)])
        text = text[cut.end() :] if cut else ""
    if text and not _TERMINAL.search(text):
        ends = list(_SENTENCE_BREAK.finditer(text))
        drop(stats, examples, "fragments", text[ends[-1].end() if ends else 0 :])
        text = text[: ends[-1].end()].rstrip() if ends else ""
    return text


# ------------------------------------------------------------------ plain text

_LONG_LINE = 10_000  # longer than any printed paragraph: text without line breaks
_PASSAGE_TARGET = 2_000


def break_long_lines(text: str) -> str:
    """Lines over 10,000 characters broken into paragraphs of about 2,000 at sentence ends
    (else spaces): text saved without line breaks would be one enormous passage."""
    out: list[str] = []
    for line in text.split("\n"):
        start, pieces = 0, []
        # One search per passage for the first sentence end past the target length.
        while len(line) > _LONG_LINE and (
            match := _SENTENCE_BREAK.search(line, start + _PASSAGE_TARGET)
        ):
            pieces.append(line[start : match.end()].rstrip())
            start = match.end()
        rest = line[start:]
        while len(rest) > _LONG_LINE:
            cut = rest.rfind(" ", 0, _PASSAGE_TARGET)
            cut = cut if cut > 0 else _PASSAGE_TARGET
            pieces.append(rest[:cut])
            rest = rest[cut:].lstrip()
        out.append("\n\n".join([*pieces, rest]))
    return "\n".join(out)


def text_paragraphs(text: str, stats: Counter, examples: dict) -> list[str]:
    """The prose paragraphs of plain text, pages split at form feeds: a line's height is
    minus its number, its x0 its indent, and a character half an em wide (size 2)."""
    lines = []
    pages = break_long_lines(normalize_unicode(text)).split("\f")
    for page, body in enumerate(pages):
        for number, raw in enumerate(body.split("\n")):
            if stripped := raw.strip():
                indent, width = len(raw) - len(raw.lstrip()), len(raw.rstrip())
                lines.append(Line(" ".join(stripped.split()), page, 0, indent, width, -number, 2))
    # Lines are one unit apart: half an em at size 2.
    return [p for _, p in paragraphs(lines, len(pages), stats, examples, spacing=0.5)]


def finish(found: list[str], stats: Counter, examples: dict) -> list[str]:
    """Footnote marks and sentences with markup (code quoted in prose) removed."""
    kept = []
    for paragraph in found:
        paragraph, marks = _FOOTNOTE_MARK.subn("", paragraph)
        stats["footnote_marks"] += marks
        if _MARKUP.search(paragraph):
            ends = [m.end() for m in _SENTENCE_BREAK.finditer(paragraph)]
            sentences = [
                paragraph[a:b] for a, b in zip([0, *ends], [*ends, len(paragraph)], strict=True)
            ]
            for sentence in filter(_MARKUP.search, sentences):
                drop(stats, examples, "code", sentence)
            paragraph = "".join(s for s in sentences if not _MARKUP.search(s)).strip()
        if paragraph:
            kept.append(paragraph)
    return kept


def split_passages(text: str) -> list[str]:
    """The blocks of text separated by blank lines, whitespace collapsed, empty ones out."""
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]
