"""Cleaning of text extracted from textbooks (PDF, EPUB, plain text).

Extracted text carries layout debris that would otherwise become "sentences" of the
corpus: running headers and footers, page numbers, words hyphenated across lines,
figure and table captions, reference lists. `clean_book_text` removes it and returns
prose whose paragraphs are separated by one blank line, so that `split_passages` can
recover them. Text that is not prose is dropped and counted in a `Counter` the caller
passes (`stats`): contents and index pages and lines, code and markup lines, captions,
reference lists, lines of words glued together, headings, and paragraphs in another
language than the book's.

Pages of PDF-derived text are separated by form feeds ("\\f").
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter

from cardioembed.errors import ParameterError

# What cleaning drops, each counted under this name in the `stats` of `clean_book_text`.
FILTERS = {
    "contents_pages": "pages of a table of contents",
    "index_pages": "pages of a back-of-book index",
    "contents_lines": "contents lines with dot leaders and a page number",
    "index_lines": "index entries (a term and a list of page numbers)",
    "code_lines": "lines of program code or markup (LaTeX, HTML, shell, R, ...)",
    "glued_lines": "lines with a run of 30+ letters (words glued by the PDF's text layer)",
    "caption_lines": "figure and table captions",
    "reference_lines": "reference lists and citations",
    "heading_paragraphs": "headings, definition terms and other short lines without a sentence end",
    "footnote_marks": 'footnote numbers after a word\'s punctuation ("absolute.9")',
    "other_language_paragraphs": "paragraphs in another language than the book's",
}

# --------------------------------------------------------------------------- unicode

# Characters that NFKC leaves alone but that only carry layout: zero-width spaces and
# joiners, the byte-order mark, word joiner.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_SOFT_HYPHEN_BREAK = re.compile(r"\u00ad[ \t]*\n[ \t]*")


def normalize_unicode(text: str) -> str:
    """NFKC-normalise `text` and unify line breaks and spaces.

    NFKC folds ligatures ("ﬁ" -> "fi"), non-breaking and other odd spaces, full-width
    forms and superscript digits into plain characters, so that the same word is always
    spelled with the same code points. Soft hyphens are invisible in print: one at a line
    end marks a word broken by the typesetter (joined here), any other is deleted."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # PDFium marks a hyphen that the typesetter put at a line end as U+0002 (and drops
    # the line break): restore it, so that `join_hyphenated` decides what it was.
    text = text.replace("\x02", "-\n").replace("\ufffe", "-\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n")
    if "\u00ad" in text:
        text = _SOFT_HYPHEN_BREAK.sub("", text).replace("\u00ad", "")
    # `str.replace` per character: `str.translate` with a deletion table took 20 ms per
    # 100 kB of the R-intro manual's text (not ASCII), these replaces under 1 ms.
    for char in _INVISIBLE:
        if char in text:
            text = text.replace(char, "")
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

_DIGITS = re.compile(r"\d+")
# Paragraph breaks, compiled once: `re.split(pattern)` with a pattern string is looked
# up in `re`'s cache of 512, which pysbd's patterns evict during sentence splitting.
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_EDGE_LINES = 3  # running heads and feet sit in the first or last lines of a page


def _signature(line: str) -> str:
    # Page numbers inside a running line change from page to page ("12 | Heart
    # failure", "Heart failure | 13"): compare lines with digits masked.
    return _DIGITS.sub("#", " ".join(line.lower().split()))


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


_PROSE_START = re.compile(r"\s*[A-Z][a-z]+\s+[a-z]")


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
    blocks = _BLANK_LINE.split(text)
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
        if in_citation and line.strip() and not _PROSE_START.match(line):
            # A wrapped citation continues until a line reads like prose again.
            if _CITATION_SIGNAL.search(line) or _YEAR.search(line) or len(line) < 60:
                continue
        in_citation = False
        out.append(line)
    return out


# ----------------------------------------------------------------- footnote marks

# A footnote number set after a word and its punctuation ("absolute.9", "(DFSG).3 In
# addition", "statement:2"): at most two digits, then a space or the line end.
# The pattern starts at the punctuation, so that `re` scans for it rather than trying
# every position; the two letters before it are checked in `remove_footnote_marks`.
_FOOTNOTE_MARK = re.compile(r"[.,;:!?][)\]”’\"]?(\d{1,2})(?=\s|$)", re.MULTILINE)
_LETTERS_BEFORE = re.compile(r"[^\W\d_]{2}[)\]”’\"]?$")
# Abbreviations followed by a number they refer to ("Fig.2", "pp.12", "No.3").
_NUMBERED_ABBREVIATIONS = frozenset(
    "fig figs tab no nos vol vols ch chap sec eq eqs ref refs pp ed art para".split()
)
_LAST_TOKEN = re.compile(r"\S+$")


def remove_footnote_marks(text: str, stats: Counter | None = None) -> str:
    """Delete footnote numbers that follow a word's punctuation ("is absolute.9 The",
    "as follows:2"), counted in `stats` as "footnote_marks". A number after a digit
    ("version 3.5"), after an abbreviation that refers to it ("Fig.2", "pp.12") or
    after a name with dots, slashes or underscores ("libz.so.1", "www.x.org.2") is
    kept."""
    stats = stats if stats is not None else Counter()

    def drop(match: re.Match[str]) -> str:
        start = match.start()
        if not _LETTERS_BEFORE.search(text, max(0, start - 3), start):
            return match.group(0)
        before = _LAST_TOKEN.search(text, max(0, start - 40), start)
        token = before.group(0) if before is not None else ""
        word = token.strip("([{\"'“‘)]}”’").lower()
        if word in _NUMBERED_ABBREVIATIONS or any(c in token for c in "./_=@\\"):
            return match.group(0)
        stats["footnote_marks"] += 1
        return match.group(0)[: match.start(1) - start]

    return _FOOTNOTE_MARK.sub(drop, text)


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
                state = "" if _TERMINAL.search(line[-10:]) else "open"
            continue
        if state == "label" or (state == "open" and stripped[0].islower()):
            state = "" if _TERMINAL.search(line[-10:]) else "open"
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
    if _TERMINAL.search(line[-10:]):
        return len(line) < 0.8 * width  # a short last line ends a wrapped paragraph
    # A short line without final punctuation followed by a capital is a heading.
    return (
        len(line) < 0.6 * width
        and len(line.split()) <= 12
        and (line[:1].isupper() or line[:1].isdigit())
        and following[:1].isupper()
    )


_NOT_LETTER = re.compile(r"[\W\d_]+")


def _is_prose_line(line: str) -> bool:
    """A line of running text: four words or more, at least 70% of its characters
    letters (code, tables and URLs have fewer)."""
    sample = line[:300]  # enough to judge, and cheap on a paragraph-long line
    if sample.count(" ") < 3:
        return False
    letters = len(_NOT_LETTER.sub("", sample))
    return letters >= 0.7 * (len(sample) - sample.count(" "))


def _line_width(lines: list[str]) -> int:
    """The width a block's text is wrapped at: the 90th percentile of the lengths of its
    prose lines. Long code lines, URLs or tables on the page must not set it, or every
    prose line would look short and end a paragraph."""
    prose = [len(line) for line in lines if _is_prose_line(line)]
    lengths = sorted(prose or [len(line) for line in lines])
    return lengths[round(0.9 * (len(lengths) - 1))]


# A list item's mark: it starts a paragraph of its own, and is layout, not text.
_BULLET = re.compile(r"^[•◦▪‣●○■□➢►–—]\s+")
# A numbered section heading: "2.2.2 The contrib archive area", "7.35 Why are ...?".
_NUMBERED_HEADING = re.compile(r"^(?:\d{1,3}\.)+\d{1,3}\.?\s+[\"“‘(]?[A-Z]")
# The term of a definition list set on the line of its description ("M-b Go back one
# word.", "col=2 Colours to be used ...", "nocheck This tag says ..."): a lowercase
# word, an option ("--debug"), a setting ("las=1", "mgp=c(3, 1, 0)") or a key
# ("C-a"), perhaps with a lowercase argument ("C-r text"), then a capitalised word.
_DEFINITION_TERM = re.compile(
    r"(?:[a-z][\w+-]*(?:\.[\w+-]+)*|--?[A-Za-z][\w.=-]*|[A-Za-z][\w.]*=[^\s(]*"
    r"(?:\([^()]{0,40}\))?|[A-Z]-[a-z])(?:\s[a-z]\w*)?(?=\s+[A-Z][\w’'-]*\s+\S)"
)
# Lowercase words that start a line of prose (a sentence cut by a page or a list) and
# are not terms: "and Kaplan-Meier ...", "in Europe ...".
_PROSE_WORDS = frozenset(
    "a an the and or but nor of in on at to for with by from as is are was were be been "
    "that which who whom whose if then than so not no see also e i while when where".split()
)
_CLOSING_PUNCTUATION = re.compile(r"[.!:;,]\W*$")


def _is_heading_line(line: str, width: int) -> bool:
    """A numbered section heading line: short, no sentence end but a question mark."""
    return (
        _NUMBERED_HEADING.match(line) is not None
        and len(line) < 0.8 * width
        and len(line.split()) <= 12
        and not _CLOSING_PUNCTUATION.search(line[-6:])
    )


def _own_paragraph(line: str, following: str, width: int, after_sentence: bool) -> int:
    """How much of `line`, from its start, forms a paragraph of its own (0 for none): a
    numbered heading line; after a sentence end, a term of a definition list alone on
    its line ("upstream", "--verbose") or the term that starts a line ("M-b" of "M-b
    Go back one word.")."""
    if _is_heading_line(line, width):
        return len(line)
    if not after_sentence:
        return 0
    words = line.split(None, 4)  # enough to tell a label of four words or fewer
    if words[0].lower() in _PROSE_WORDS:
        return 0
    if (
        len(words) <= 4
        and len(line) < 0.4 * width
        and following[:1].isupper()
        and not _CLOSING_PUNCTUATION.search(line[-6:])
        and not line[:1].isupper()  # a capitalised short line: a heading (`_ends_paragraph`)
    ):
        return len(line)
    term = _DEFINITION_TERM.match(line)
    return term.end() if term is not None else 0


def reflow_paragraphs(text: str) -> str:
    """Join wrapped lines into paragraphs separated by one blank line, with single
    spaces inside. Blank lines always separate paragraphs; inside a block of lines, a
    short line ending a sentence, or a heading, also ends one (PDF extraction often
    loses the blank lines between paragraphs), and so does a list item, whose bullet
    is removed. "Short" is judged against the width of the block's prose lines. A
    numbered section heading ("2.2 Binary packages") and the term of a definition list
    ("M-b" of "M-b Go back one word.", "upstream" on its own line) become paragraphs of
    their own, which `clean_book_text` then drops as headings."""
    paragraphs: list[str] = []
    for block in _BLANK_LINE.split(text):
        lines = [
            " ".join(line.split()) if "  " in line or "\t" in line else line.strip()
            for line in block.split("\n")
        ]
        lines = [line for line in lines if line]
        if not lines:
            continue
        width = _line_width(lines)
        current: list[str] = []
        after_sentence = True  # a block starts with a sentence
        for i, line in enumerate(lines):
            following = lines[i + 1] if i + 1 < len(lines) else ""
            cut = _own_paragraph(line, following, width, after_sentence)
            if cut:
                if current:
                    paragraphs.append(" ".join(current))
                    current = []
                paragraphs.append(line[:cut])
                line = line[cut:].lstrip()
                if not line:
                    after_sentence = True
                    continue
            current.append(_BULLET.sub("", line))
            if following and (
                _ends_paragraph(line, following, width)
                or _BULLET.match(following)
                or _is_heading_line(following, width)
            ):
                paragraphs.append(" ".join(current))
                current = []
            after_sentence = not current or _TERMINAL.search(line[-10:]) is not None
        if current:
            paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


# ------------------------------------------------------- contents, index, code, glue

# "1.2 Related software . . . . . . 2", "Preface ........ xi", "Index … 359"
_LEADER_LINE = re.compile(r"(?:\.\s?){4,}\s*(?:\d{1,4}|[ivxlc]{1,7})\s*$|…{2,}", re.IGNORECASE)
# "Anticoagulation, 359, 486, 533-535": two or more page numbers at the line end
_INDEX_LINE = re.compile(r"(?:,\s*\d{1,4}(?:\s*[-–]\s*\d{1,4})?[a-z]?){2,}\s*$")
# The line ends in one page number ("Heart failure 12"), as every contents line does.
_ENDS_IN_PAGE = re.compile(r"[\s.,–-](?:\d{1,4}|[ivxlc]{1,6})\s*$", re.IGNORECASE)
_CONTENTS_HEADING = re.compile(r"^\s*(?:table\s+of\s+)?contents\s*$", re.IGNORECASE)
_INDEX_HEADING = re.compile(r"\bindex\s*$", re.IGNORECASE)

_MARKUP = re.compile(
    r"\\[A-Za-z]{2,}[\[{*]?"  # LaTeX commands
    r"|</?[A-Za-z][\w:-]*(?:\s+[\w:-]+=\"[^\"]*\")*\s*/?>"  # HTML/XML tags
    r"|^\s*(?:\$|>>>|#!)\s*\S"  # shell and Python prompts
    r"|^\s*(?:def|class|import|from|return|function|var|let|const|#include|#define)\s+\w+"
    r".*[:;{(]\s*$"
    r"|\{\s*$|^\s*[}\])]+[;,]?\s*$"  # opening and closing braces
    r"|<-|->|==|!=|:=|&&|\|\||\+\+|=>"
)
_CODE_CHARS = frozenset("{}[]<>=;\\|$_#~^`@*/()")
_ANY_CODE_CHAR = re.compile(r"[{}\[\]<>=;\\|$_#~^`@*/()+&!-]")
_PLAIN_TOKEN = re.compile(
    r"[(\"'“‘\[]?(?:[A-Za-z][A-Za-z'’-]*|\d[\d.,%–-]*)[)\"'”’\].,;:!?]*", re.ASCII
)
_GLUED = re.compile(r"(?<![/\w.@])[^\W\d_]{30,}")
_TAIL, _HEAD = 120, 400


def _has_glued_words(line: str) -> bool:
    long_tokens = [t for t in line.split() if len(t) >= 30 and "://" not in t]
    return any(_GLUED.search(token) for token in long_tokens)


def is_code_line(line: str) -> bool:
    """True for a line of program code or markup rather than prose: one with LaTeX
    commands or HTML tags, a prompt, a statement end or operator of a programming
    language, or whose words are mostly not plain words and which uses code characters
    (braces, brackets, =, $, _, ...)."""
    stripped = line.strip()
    if not stripped or not _ANY_CODE_CHAR.search(stripped):
        return False
    if _MARKUP.search(stripped):
        tokens = stripped.split()
        plain = sum(1 for t in tokens if _PLAIN_TOKEN.fullmatch(t))
        # An operator alone is not enough in a long prose line ("values -> 0").
        return len(tokens) < 12 or plain < 0.8 * len(tokens) or "\\" in stripped
    if stripped[0] in "><" and len(stripped) > 1 and stripped[1] == " ":
        return True  # an interpreter prompt ("> summary(x)")
    tokens = stripped.split()
    code_chars = sum(1 for c in stripped if c in _CODE_CHARS)
    if not code_chars:
        return False
    plain = sum(1 for t in tokens if _PLAIN_TOKEN.fullmatch(t))
    return plain < 0.5 * len(tokens)


def _page_kind(page: str) -> str:
    """ "contents", "index" or "" (a page of text), from the share of its lines that end
    in page numbers."""
    lines = [line.strip() for line in page.split("\n") if line.strip()]
    if len(lines) < 5:
        return ""
    numbered = sum(1 for line in lines if _ENDS_IN_PAGE.search(line[-12:]))
    if numbered < 0.3 * len(lines):
        return ""  # contents and index lines end in page numbers
    leaders = sum(1 for line in lines if _LEADER_LINE.search(line))
    entries = sum(1 for line in lines if _INDEX_LINE.search(line))
    head = lines[:3]
    if any(_INDEX_HEADING.search(line) for line in head) and (entries + numbered) >= 0.3 * len(
        lines
    ):
        return "index"
    if any(_CONTENTS_HEADING.match(line) for line in head) and numbered >= 0.3 * len(lines):
        return "contents"
    if entries >= 0.4 * len(lines):
        return "index"
    if (leaders + numbered) >= 0.6 * len(lines) and leaders >= 0.2 * len(lines):
        return "contents"
    return ""


def drop_non_prose_pages(pages: list[str], stats: Counter | None = None) -> list[str]:
    """Empty the pages of a table of contents or of an index (most lines end in page
    numbers), counting them in `stats` as "contents_pages" / "index_pages"."""
    out = []
    for page in pages:
        kind = _page_kind(page)
        if kind:
            if stats is not None:
                stats[f"{kind}_pages"] += 1
            out.append("")
        else:
            out.append(page)
    return out


def drop_non_prose_lines(text: str, stats: Counter | None = None) -> str:
    """Drop lines that are not prose: contents lines with dot leaders, index entries,
    program code and markup, and lines with words glued together; counted in `stats`."""
    stats = stats if stats is not None else Counter()
    out = []
    for line in text.split("\n"):
        # The end of a line tells contents and index lines, its start code (a long line
        # is a paragraph of a text file): regexes over whole long lines cost too much.
        tail = line[-_TAIL:].rstrip()
        if not tail:
            out.append(line)
        elif _LEADER_LINE.search(tail):
            stats["contents_lines"] += 1
        elif _INDEX_LINE.search(tail) and not _TERMINAL.search(tail):
            stats["index_lines"] += 1
        elif is_code_line(line[:_HEAD]):
            stats["code_lines"] += 1
        elif _has_glued_words(line):
            stats["glued_lines"] += 1
        else:
            out.append(line)
    return "\n".join(out)


_NUMBERED_EDGE = re.compile(r"^\d{1,4}\s+\D|\D\s+\d{1,4}$")


def _remove_numbered_edges(page: str) -> str:
    """Drop the first and last line of a page when it is a running head or foot with a
    page number ("Chapter 1: Introduction 5", "12 Heart failure"): one that changes
    with the chapter escapes `remove_running_lines`."""
    lines = page.split("\n")
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    drop = set()
    for i in nonblank[:1] + nonblank[-1:]:
        line = lines[i].strip()
        if (
            len(line.split()) <= 12
            and _NUMBERED_EDGE.search(line)
            and not _TERMINAL.search(line[-10:])
        ):
            drop.add(i)
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


def _drop_headings(text: str, stats: Counter) -> str:
    """Drop paragraphs that are headings or labels: twelve words or fewer and no
    sentence end. They would become "sentences" that are not sentences."""
    kept = []
    for paragraph in text.split("\n\n"):
        if not paragraph.strip():
            continue
        if paragraph.count(" ") < 12 and not _TERMINAL.search(paragraph[-10:]):
            stats["heading_paragraphs"] += 1
        else:
            kept.append(paragraph)
    return "\n\n".join(kept)


# ------------------------------------------------------------------------ language

# Languages a cardiology text is likely to be written in or to quote, told apart from
# the chosen one; fewer candidates make detection faster and steadier.
_CANDIDATES = (
    "english german french spanish italian portuguese dutch polish swedish danish czech "
    "russian turkish arabic chinese japanese korean greek"
).split()
_DETECT_CHARS = 120  # a paragraph's first characters are enough to tell its language
_MIN_DETECT_LETTERS = 40  # shorter paragraphs (formulas, names) are kept unjudged


# Words that are common in English and are not words of the other candidate languages
# ("of" is Dutch, "to" Polish, "is" and "we" Dutch, "for" Danish, "will" and "also"
# German, "on" and "most" Polish, "he" Spanish, "her" Danish, so they are not here).
_ENGLISH_ONLY = frozenset(
    "the and with that this these which from have has been were would should could their "
    "must not be it they can any when only may there other into than them its are you "
    "your our his she who what where how why does did used using such each between "
    "through about after before being those while within without whether because "
    "however although same both".split()
)
_WORD = re.compile(r"[^\W\d_]+")


def _plainly_english(sample: str) -> bool:
    """A cheap pre-check that spares lingua most English paragraphs (detection costs
    more than the rest of cleaning): two or more English-only function words, making
    at least a tenth of the words. On the R manuals and the Debian Policy it sent 323
    of 2,434 paragraphs to lingua where comparing raw tokens sent 512."""
    words = _WORD.findall(sample.lower())
    hits = [w for w in words if w in _ENGLISH_ONLY]
    return len(set(hits)) >= 2 and len(hits) >= 0.1 * len(words)


@functools.lru_cache(maxsize=4)
def language_detector(language: str):
    """A `lingua` detector that tells `language` from other common languages; raises
    ParameterError for a name lingua does not know."""
    from lingua import Language, LanguageDetectorBuilder

    names = {lang.name.lower() for lang in Language.all()}
    if not isinstance(language, str) or language.lower() not in names:
        raise ParameterError(
            "language",
            language,
            "give a language name as lingua spells it, e.g. 'english', 'german', 'french'",
        )
    wanted = {language.lower(), *_CANDIDATES}
    languages = [Language.from_str(name) for name in sorted(wanted)]
    return LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode().build()


def keep_language(text: str, language: str, stats: Counter | None = None) -> str:
    """Keep the paragraphs of `text` written in `language` (lingua's detection on the
    paragraph's first 120 characters); others are counted as
    "other_language_paragraphs". Paragraphs with under 40 letters are kept."""
    stats = stats if stats is not None else Counter()
    detector = language_detector(language)
    paragraphs = text.split("\n\n")
    english = language.lower() == "english"
    samples = {
        p[:_DETECT_CHARS]
        for p in paragraphs
        if len(_NOT_LETTER.sub("", p[:_DETECT_CHARS])) >= _MIN_DETECT_LETTERS
        and not (english and _plainly_english(p[:_DETECT_CHARS]))
    }
    if not samples:
        return text
    ordered = sorted(samples)
    found = dict(zip(ordered, detector.detect_languages_in_parallel_of(ordered), strict=True))
    wanted = language.lower()
    kept = []
    for paragraph in paragraphs:
        detected = found.get(paragraph[:_DETECT_CHARS])
        if detected is not None and detected.name.lower() != wanted:
            stats["other_language_paragraphs"] += 1
        else:
            kept.append(paragraph)
    return "\n\n".join(kept)


# ------------------------------------------------------------------------ pipeline


def _nonblank_lines(text: str) -> int:
    return sum(1 for line in text.split("\n") if line.strip())


def clean_book_text(text: str, stats: Counter | None = None, language: str | None = None) -> str:
    """Clean text extracted from a textbook; see the module docstring. The result has
    one paragraph per block, blocks separated by one blank line, no trailing space.
    What was dropped is counted in `stats` (see `FILTERS`); with a `language` (e.g.
    "english"), paragraphs in other languages are dropped."""
    stats = stats if stats is not None else Counter()
    text = normalize_unicode(text)
    text = remove_footnote_marks(text, stats)
    text = break_long_lines(text)
    if "\f" in text:
        pages = remove_running_lines(text.split("\f"))
        pages = drop_non_prose_pages(pages, stats)
        # Pages joined by a line break: a paragraph (or a hyphenated word) may run on.
        text = "\n".join(
            _remove_numbered_edges(remove_page_numbers(page)).strip("\n") for page in pages
        )
    text = remove_page_numbers(text)
    text = drop_non_prose_lines(text, stats)
    text = join_hyphenated(text)
    before = _nonblank_lines(text)
    text = drop_captions(text)
    stats["caption_lines"] += before - _nonblank_lines(text)
    before = _nonblank_lines(text)
    text = drop_references(text)
    stats["reference_lines"] += before - _nonblank_lines(text)
    text = reflow_paragraphs(text)
    text = _drop_headings(text, stats)
    if language:
        text = keep_language(text, language, stats)
    return text


_BLANK_LINES = re.compile(r"\n\s*\n")


def split_passages(text: str) -> list[str]:
    """The paragraphs of (cleaned) text: blocks separated by blank lines, each with its
    whitespace collapsed; empty ones left out."""
    passages = (" ".join(block.split()) for block in _BLANK_LINES.split(text))
    return [p for p in passages if p]
