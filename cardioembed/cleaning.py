"""Cleaning of text extracted from textbooks (PDF, EPUB, plain text).

Extracted text carries layout debris that would otherwise become "sentences" of the
corpus: running headers and footers, page numbers, words hyphenated across lines,
figure and table captions, reference lists. `clean_book_text` removes it and returns
prose whose paragraphs are separated by one blank line, so that `split_passages` can
recover them.

Pages of PDF-derived text are separated by form feeds ("\\f").
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

__all__ = [
    "break_long_lines",
    "clean_book_text",
    "drop_captions",
    "drop_references",
    "join_hyphenated",
    "normalize_unicode",
    "reflow_paragraphs",
    "remove_page_numbers",
    "remove_running_lines",
    "split_passages",
]

# --------------------------------------------------------------------------- unicode

# Characters that NFKC leaves alone but that only carry layout: zero-width spaces and
# joiners, the byte-order mark, word joiner.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)


def normalize_unicode(text: str) -> str:
    """NFKC-normalise `text` and unify line breaks and spaces.

    NFKC folds ligatures ("ﬁ" -> "fi"), non-breaking and other odd spaces, full-width
    forms and superscript digits into plain characters, so that the same word is always
    spelled with the same code points. Soft hyphens are invisible in print: one at a line
    end marks a word broken by the typesetter (joined here), any other is deleted."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = re.sub(r"\u00ad[ \t]*\n[ \t]*", "", text)
    text = text.replace("\u00ad", "").translate(_INVISIBLE)
    text = unicodedata.normalize("NFKC", text)
    # NFKC turns NBSP into a space but leaves tabs and vertical tabs.
    return text.replace("\t", " ").replace("\v", "\n")


# ---------------------------------------------------------------------- hyphenation

# A first part after which a hyphen is part of the word, not a typesetter's break
# ("beta-\nblocker" stays "beta-blocker", "myo-\ncardial" becomes "myocardial").
_HYPHEN_PREFIXES = frozenset(
    "alpha beta gamma delta kappa anti non self well end left right high low long short "
    "first second third half all".split()
)
# Both start at a word boundary: from inside a word, "\w+" would retry every suffix.
_LINE_HYPHEN = re.compile(r"\b(\w+)-[ \t]*\n[ \t]*(\w+)")
_HYPHENATED_WORD = re.compile(r"\b\w+-\w+\b")
_ANY_LINE_HYPHEN = re.compile(r"-[ \t]*\n")  # starts with a literal: a fast scan


def join_hyphenated(text: str) -> str:
    """Join words hyphenated across a line break when the next line starts with a
    lowercase letter. The hyphen is kept when the hyphenated spelling occurs elsewhere
    in the text, when the first part has a digit or capital ("ACE-inhibitor",
    "type-2"), or when the first part is a common free-standing prefix ("beta-")."""
    if not _ANY_LINE_HYPHEN.search(text):
        return text
    attested = {m.group(0).lower() for m in _HYPHENATED_WORD.finditer(text)}

    def join(match: re.Match[str]) -> str:
        left, right = match.group(1), match.group(2)
        if not right[0].islower():
            # "Kaplan-\nMeier", "NT-\nproBNP": a real hyphen before a capital/number.
            return f"{left}-{right}"
        keep = (
            f"{left}-{right}".lower() in attested
            or left.lower() in _HYPHEN_PREFIXES
            or any(c.isdigit() or c.isupper() for c in left[1:])
            or left.isupper()
        )
        return f"{left}-{right}" if keep else left + right

    return _LINE_HYPHEN.sub(join, text)


# ------------------------------------------------------------- headers and footers

_EDGE_LINES = 3  # running heads and feet sit in the first or last lines of a page


def _signature(line: str) -> str:
    # Page numbers inside a running line change from page to page ("12 | Heart
    # failure", "Heart failure | 13"): compare lines with digits masked.
    return re.sub(r"\d+", "#", " ".join(line.lower().split()))


def _edge_signatures(page: str) -> set[str]:
    lines = [line for line in page.split("\n") if line.strip()]
    edge = lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]
    return {_signature(line) for line in edge if len(line.strip()) <= 120}


def remove_running_lines(pages: list[str], min_fraction: float = 0.5) -> list[str]:
    """Remove running headers and footers: short lines near the top or bottom of a page
    whose text (digits masked) recurs on at least `min_fraction` of the pages. Books
    alternate headers between left and right pages, so a line also counts as running
    when it recurs on `min_fraction` of the odd or of the even pages. Needs three pages
    or more; with fewer, nothing can be told apart from content."""
    if not 0 < min_fraction <= 1:
        from .errors import ParameterError

        raise ParameterError("min_fraction", min_fraction, "give a number in (0, 1]")
    if len(pages) < 3:
        return list(pages)
    per_page = [_edge_signatures(page) for page in pages]
    running: set[str] = set()
    for members in (range(len(pages)), range(0, len(pages), 2), range(1, len(pages), 2)):
        members = list(members)
        if len(members) < 2:
            continue
        counts = Counter(sig for i in members for sig in per_page[i])
        needed = max(2, math.ceil(min_fraction * len(members)))
        running.update(sig for sig, n in counts.items() if n >= needed)
    running.discard("")
    if not running:
        return list(pages)
    cleaned = []
    for page in pages:
        lines = page.split("\n")
        nonblank = [i for i, line in enumerate(lines) if line.strip()]
        edge = set(nonblank[:_EDGE_LINES] + nonblank[-_EDGE_LINES:])
        cleaned.append(
            "\n".join(
                line
                for i, line in enumerate(lines)
                if not (i in edge and _signature(line) in running)
            )
        )
    return cleaned


_PAGE_NUMBER = re.compile(
    r"^[ \t]*(?:[-–—|]\s*)?(?:page\s+)?(?:\d{1,4}|[ivxlc]{1,7})(?:\s+of\s+\d{1,4})?"
    r"(?:\s*[-–—|])?[ \t]*(?:\n|$)",
    re.IGNORECASE | re.MULTILINE,
)


def remove_page_numbers(text: str) -> str:
    """Delete lines that hold nothing but a page number ("12", "- 12 -", "Page 3 of 40",
    "xiv")."""
    return _PAGE_NUMBER.sub("", text)


# --------------------------------------------------------------------- references

_REFERENCE_HEADING = re.compile(
    r"^\s*(?:\d+(?:\.\d+)*\.?\s+)?(?:#+\s*)?(?:selected\s+|suggested\s+|key\s+)?"
    r"(?:references?|bibliography|further\s+reading|suggested\s+reading|"
    r"literature\s+cited|recommended\s+reading)\s*:?\s*$",
    re.IGNORECASE,
)
# "12. Smith J, Jones AB, et al. Title. J Am Coll Cardiol 2019;73:1-10." and "[3] ...".
_CITATION_START = re.compile(
    r"^\s*(?:\[\d{1,4}\]|\d{1,4}\.)\s+(?:[A-Z][\w'’-]+(?:\s[A-Z][\w'’-]+)?\s+[A-Z]{1,4}\b[,.]?)"
)
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_CITATION_SIGNAL = re.compile(
    r"\bet al\b|\bdoi\b|\b(?:19|20)\d\d\s*[;:]\s*\d|\b\d+\s*\(\d+\)\s*:\s*\d|"
    r"\bpp?\.\s*\d|https?://|\bpmid\b",
    re.IGNORECASE,
)


def _is_citation_line(line: str) -> bool:
    return bool(_CITATION_START.match(line) and _YEAR.search(line))


def _looks_like_references(block: list[str]) -> bool:
    lines = [line for line in block if line.strip()]
    if not lines:
        return True
    hits = sum(1 for line in lines if _is_citation_line(line) or _CITATION_SIGNAL.search(line))
    return hits >= 0.4 * len(lines)


def drop_references(text: str) -> str:
    """Drop reference lists: a "References" / "Bibliography" / "Further reading" heading
    with the blocks after it that look like citations, and numbered citation lines
    ("12. Smith J, et al. ... 2019;") wherever they stand, with their continuation
    lines."""
    blocks = re.split(r"\n[ \t]*\n", text)
    kept: list[str] = []
    in_references = False
    for block in blocks:
        lines = block.split("\n")
        if in_references:
            if _looks_like_references(lines):
                continue
            in_references = False
        heading_at = next(
            (i for i, line in enumerate(lines) if _REFERENCE_HEADING.match(line)), None
        )
        if heading_at is not None:
            # Everything after the heading in its block is the list itself.
            lines = lines[:heading_at]
            in_references = True
        kept.append("\n".join(_drop_citation_lines(lines)))
    return "\n\n".join(kept)


def _drop_citation_lines(lines: list[str]) -> list[str]:
    out: list[str] = []
    in_citation = False
    for line in lines:
        if _is_citation_line(line):
            in_citation = True
            continue
        if in_citation and line.strip() and not re.match(r"\s*[A-Z][a-z]+\s+[a-z]", line):
            # A wrapped citation continues until a line reads like prose again.
            if _CITATION_SIGNAL.search(line) or _YEAR.search(line) or len(line) < 60:
                continue
        in_citation = False
        out.append(line)
    return out


# ------------------------------------------------------------------------ captions

_CAPTION = re.compile(
    r"^\s*(?:figure|fig\.?|table|box|chart|panel|algorithm)\s+[A-Z]?\d+"
    r"(?:[.\-–:]\d+)*[a-z]?\b(?!\s+(?:shows?|summari[sz]es|lists?|illustrates?|"
    r"demonstrates?|gives?|compares?|depicts?|presents?|provides?|outlines?|"
    r"describes?|displays?|contains?|and|or|is|was|are)\b)",
    re.IGNORECASE,
)
_TERMINAL = re.compile(r"[.!?:][\"'”’)\]]*\s*$")
_BARE_LABEL = re.compile(r"^\s*\S+\.?\s+[A-Z]?[\d.\-–:]+[a-z]?\s*[.:]?\s*$", re.IGNORECASE)


def drop_captions(text: str) -> str:
    """Drop figure and table captions ("Figure 3.2 ...", "Fig. 4", "Table 2-1 ...").
    A caption runs on over lines that start in lowercase, until a line ends a
    sentence; after a bare label ("Figure 3.2.") the next line is the caption. Prose
    that refers to a figure ("Table 3 lists the causes ...") is kept."""
    out: list[str] = []
    state = ""  # "", "label" (a bare label was seen) or "open" (caption may go on)
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            state = ""
            out.append(line)
            continue
        if _CAPTION.match(line):
            if _BARE_LABEL.match(line):
                state = "label"
            else:
                state = "" if _TERMINAL.search(line) else "open"
            continue
        if state == "label" or (state == "open" and stripped[0].islower()):
            state = "" if _TERMINAL.search(line) else "open"
            continue
        state = ""
        out.append(line)
    return "\n".join(out)


# ------------------------------------------------------------- paragraphs, spaces

_LONG_LINE = 10_000  # longer than any printed paragraph: text without line breaks
_PASSAGE_TARGET = 2_000
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*\s+(?=[\"'“(\[]?[A-Z0-9])")


def break_long_lines(text: str, max_chars: int = _LONG_LINE) -> str:
    """Break lines longer than `max_chars` into paragraphs of about 2,000 characters at
    sentence ends (else at spaces, else anywhere). Text saved without line breaks
    would otherwise become one enormous passage."""
    if len(text) <= max_chars or all(len(line) <= max_chars for line in text.split("\n")):
        return text
    out: list[str] = []
    for line in text.split("\n"):
        if len(line) <= max_chars:
            out.append(line)
            continue
        start = 0
        pieces: list[str] = []
        # Search for the first sentence end past each target length: a few searches
        # per passage rather than a Python step per sentence.
        while (match := _SENTENCE_END.search(line, start + _PASSAGE_TARGET)) is not None:
            pieces.append(line[start : match.end()].rstrip())
            start = match.end()
        rest = line[start:]
        while len(rest) > max_chars:  # no sentence ends: cut at a space, else anywhere
            cut = rest.rfind(" ", 0, _PASSAGE_TARGET)
            cut = cut if cut > 0 else _PASSAGE_TARGET
            pieces.append(rest[:cut])
            rest = rest[cut:].lstrip()
        pieces.append(rest)
        out.append("\n\n".join(pieces))
    return "\n".join(out)


def _ends_paragraph(line: str, following: str, width: int) -> bool:
    if width > 200:
        return True  # unwrapped text: each line is a paragraph
    if _TERMINAL.search(line):
        return len(line) < 0.8 * width  # a short last line ends a wrapped paragraph
    # A short line without final punctuation followed by a capital is a heading.
    return (
        len(line) < 0.6 * width
        and len(line.split()) <= 12
        and (line[:1].isupper() or line[:1].isdigit())
        and following[:1].isupper()
    )


def reflow_paragraphs(text: str) -> str:
    """Join wrapped lines into paragraphs separated by one blank line, with single
    spaces inside. Blank lines always separate paragraphs; inside a block of lines, a
    short line ending a sentence, or a heading, also ends one (PDF extraction often
    loses the blank lines between paragraphs)."""
    paragraphs: list[str] = []
    for block in re.split(r"\n[ \t]*\n", text):
        lines = [
            " ".join(line.split()) if "  " in line or "\t" in line else line.strip()
            for line in block.split("\n")
        ]
        lines = [line for line in lines if line]
        if not lines:
            continue
        lengths = sorted(len(line) for line in lines)
        width = lengths[round(0.9 * (len(lengths) - 1))]
        current: list[str] = []
        for i, line in enumerate(lines):
            current.append(line)
            if i + 1 < len(lines) and _ends_paragraph(line, lines[i + 1], width):
                paragraphs.append(" ".join(current))
                current = []
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


# ------------------------------------------------------------------------ pipeline


def clean_book_text(text: str) -> str:
    """Clean text extracted from a textbook; see the module docstring. The result has
    one paragraph per block, blocks separated by one blank line, no trailing space."""
    text = normalize_unicode(text)
    text = break_long_lines(text)
    if "\f" in text:
        pages = remove_running_lines(text.split("\f"))
        # Pages joined by a line break: a paragraph (or a hyphenated word) may run on.
        text = "\n".join(remove_page_numbers(page).strip("\n") for page in pages)
    text = remove_page_numbers(text)
    text = join_hyphenated(text)
    text = drop_captions(text)
    text = drop_references(text)
    return reflow_paragraphs(text)


def split_passages(text: str) -> list[str]:
    """The paragraphs of (cleaned) text: blocks separated by blank lines, each with its
    whitespace collapsed; empty ones left out."""
    passages = (" ".join(block.split()) for block in re.split(r"\n\s*\n", text))
    return [p for p in passages if p]
