"""Sentence splitting for clinical text, built on the maintained splitter pysbd.

pysbd is the splitter; two hand-written pieces around it are kept, each for a reason:

* Speed. pysbd alone needs 28 s of CPU for the 15,000 sentences of
  ``benchmarks/curation.py --sizes 15000`` (so some 280 s for 150,000, against a 60 s
  budget); this module needs 0.4 s. Most sentence ends in textbook prose are not in
  doubt ("... the ventricle. The ..."), so a cheap scan decides those itself, by pysbd's
  own rules, and asks pysbd only about the doubtful ones (initials, "et al.", "etc.", a
  lone digit), showing it a few tokens around each and caching its answer. Paragraphs
  with quoted sentences or ellipses go to pysbd whole. `tests/test_sentences.py` checks
  that the result equals pysbd's on prose.
* Clinical abbreviations. pysbd cuts after some of them ("approx. | 35% of patients"):
  on the same benchmark it returns 17,463 pieces for 15,019 sentences. Here they never
  end a sentence, and such pysbd fragments are merged back; see `_NON_TERMINAL`.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pysbd
from pysbd.lang.english import English

from cardioembed.errors import ParameterError

__all__ = ["split_sentences"]

# Abbreviations after which a sentence essentially never ends, so a period and a capital
# after them do not start a new sentence: titles ("Dr. Smith"), Latin connectives
# ("e.g.", "i.e.", "cf.", "vs."), and "approx." / "ca." before a number, where pysbd
# splits ("approx. | 35% of patients"). Lowercase, without the final period.
_NON_TERMINAL = frozenset(
    "dr drs mr mrs ms prof e.g i.e cf vs viz approx ca fig figs eq eqs incl esp".split()
)
# Abbreviations that refer to a number after them ("No. 5", "p. 12", "Fig. 3").
_BEFORE_NUMBER = frozenset("no nos p pp vol fig figs table tab ch chap ref refs eq".split())
# Every abbreviation that either list or pysbd knows: a period after one of them is in
# doubt, so it is never decided by the cheap scan.
_ABBREVIATIONS = frozenset(
    {a.lower() for a in English.Abbreviation.ABBREVIATIONS}
    | _NON_TERMINAL
    | _BEFORE_NUMBER
    | set("al etc approx i.v i.m s.c p.o b.i.d t.i.d q.i.d q.d p.r.n a.m p.m min max".split())
)

# A candidate end: sentence punctuation, closing quotes or brackets, then whitespace.
_CANDIDATE = re.compile(r"[.!?]+[\"'”’)\]]*\s+")
# Text that the cheap scan leaves wholly to pysbd: ellipses, and quotations that hold
# sentence punctuation ('He said "stop." Then ...'); a quoted term (“preload”) does not.
_HARD = re.compile(r"…|\.\.|[\"“«][^\"”»]{0,500}?[.!?][^\"”»]{0,500}?[\"”»]")
_PREV_TOKEN = re.compile(r"(\S*)$")
# A plain word (hyphens allowed), or a number of two digits or more, or a percentage.
_PLAIN_WORD = re.compile(r"[^\W\d_](?:[^\W_]|[-/])*[^\W\d_]|\d{2,}%?|\d+%|\d+(?:[.,/]\d+)+%?")
# Words after which pysbd ends a sentence even behind an abbreviation ("etc. The").
_STARTERS = frozenset(English.AbbreviationReplacer.SENTENCE_STARTERS)
_NEXT_TOKEN = re.compile(r"\S+")
_CLOSING = re.compile(r"[)\]]")
_LOWER_WORD = re.compile(r"[a-z]+(?=[^\w]|$)")

_SAFE, _NOT, _DOUBT = 0, 1, 2


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def _starts_lowercase_word(text: str) -> bool:
    # "and", "with" continue a sentence; "pH", "mRNA", "eGFR" may start one.
    return bool(_LOWER_WORD.match(text))


def _classify(paragraph: str, punct_at: int, punct: str, after: str) -> int:
    # Paragraphs have single spaces (see split_sentences): the token starts after one.
    raw = paragraph[paragraph.rfind(" ", 0, punct_at) + 1 : punct_at]
    token = raw.lstrip("([{\"'“‘").rstrip(")]}\"'”’")
    word = token.lower()
    if _starts_lowercase_word(after):
        return _NOT
    if word in _NON_TERMINAL or (word in _BEFORE_NUMBER and after[:1].isdigit()):
        return _NOT
    if not after[:1].isupper():
        return _DOUBT
    if punct.startswith(("!", "?")):
        return _SAFE
    if raw.endswith((")", "]")) and token.isdigit():
        return _SAFE  # "(see Chapter 3). The": not a list number
    if word in _ABBREVIATIONS or not _PLAIN_WORD.fullmatch(token):
        return _DOUBT
    if len(token) == 2 and token.isupper():
        return _DOUBT  # initials: "Smith JA. Heart failure ..."
    return _SAFE


def _needs_merge(fragment: str, following: str) -> bool:
    # Hand-written because pysbd has no option to keep clinical abbreviations unsplit.
    if _starts_lowercase_word(following):
        return True
    token = _PREV_TOKEN.search(fragment.rstrip()).group(1)
    if not token.endswith("."):
        return False
    word = token.lstrip("([{\"'“‘").rstrip(".").lower()
    return word in _NON_TERMINAL or (word in _BEFORE_NUMBER and following[:1].isdigit())


def _pysbd(text: str) -> list[str]:
    """pysbd's split, with fragments cut after a non-terminal abbreviation or before a
    lowercase word merged back."""
    merged: list[str] = []
    for fragment in _segmenter().segment(text):
        fragment = fragment.strip()
        if not fragment:
            continue
        if merged and _needs_merge(merged[-1], fragment):
            merged[-1] = f"{merged[-1]} {fragment}"
        else:
            merged.append(fragment)
    return merged


def _window(paragraph: str, match: re.Match[str]) -> str:
    """The context that pysbd's rules read at a candidate end: the token before it, its
    punctuation and the token after. Words that pysbd treats alike are replaced by one
    stand-in so that decisions can be cached: the word before the token ("was") and a
    capitalised word after it that is not one of pysbd's sentence starters ("Zebra")."""
    token = paragraph[paragraph.rfind(" ", 0, match.start()) + 1 : match.start()]
    after = _NEXT_TOKEN.match(paragraph, match.end()).group(0)
    core = after.rstrip(",;:")
    if core.isalpha() and core[0].isupper() and core not in _STARTERS:
        after = "Zebra" + after[len(core) :]
    return f"was {token}{match.group(0).rstrip()} {after}"


@lru_cache(maxsize=1 << 16)
def _pysbd_ends_sentence(window: str) -> bool:
    """Whether pysbd ends a sentence at the (only) space after the punctuation in
    `window` (see `_window`), cached: "al. The", "etc. In" recur throughout a book."""
    cut = window.rindex(" ")
    segments = _segmenter().segment(window)
    if "".join(segments) != window:
        return len(segments) > 1
    offset = 0
    for segment in segments[:-1]:
        offset += len(segment)
        if cut <= offset <= cut + 1:
            return True
    return False


def _split_paragraph(paragraph: str) -> list[str]:
    # Hand-written for speed: pysbd on every paragraph is ~70x slower (module docstring).
    if _HARD.search(paragraph):
        return _pysbd(paragraph)
    cuts = [0]
    depth = 0
    scanned = 0
    brackets = "(" in paragraph or "[" in paragraph
    for match in _CANDIDATE.finditer(paragraph):
        end = match.end()
        if end >= len(paragraph):
            break
        if brackets:
            # No sentence ends inside "( ... )", nor does pysbd end one there.
            at = match.start()
            depth += paragraph.count("(", scanned, at) + paragraph.count("[", scanned, at)
            depth -= paragraph.count(")", scanned, at) + paragraph.count("]", scanned, at)
            depth = max(depth, 0)
            scanned = at
        # Inside brackets that close later on (an unclosed one is extraction debris).
        inside = depth > 0 and _CLOSING.search(paragraph, end, end + 300) is not None
        if inside:
            continue
        verdict = _classify(paragraph, match.start(), match.group(0), paragraph[end : end + 24])
        if verdict == _DOUBT:
            verdict = _SAFE if _pysbd_ends_sentence(_window(paragraph, match)) else _NOT
        if verdict == _SAFE:
            cuts.append(end)
    cuts.append(len(paragraph))
    pieces = (paragraph[a:b].strip() for a, b in zip(cuts, cuts[1:], strict=False))
    return [piece for piece in pieces if piece]


def split_sentences(text: str, min_chars: int = 20) -> list[str]:
    """Split `text` into sentences, in order, each with its whitespace collapsed.

    Paragraphs (blocks separated by a blank line) are split separately: a sentence
    never spans two. Clinical abbreviations and numbers stay inside their sentence
    ("e.g.", "i.v.", "mm Hg.", "Dr.", "3.5 cm", "approx.", "vs."). Sentences shorter
    than `min_chars` characters (headings, labels, debris) are dropped; the study's
    paper drops those under 20."""
    if isinstance(min_chars, bool) or not isinstance(min_chars, int) or min_chars < 0:
        raise ParameterError("min_chars", min_chars, "give a whole number of 0 or more")
    if not isinstance(text, str):
        raise ParameterError("text", type(text).__name__, "give a str")
    sentences: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        paragraph = " ".join(block.split())
        if paragraph:
            sentences.extend(_split_paragraph(paragraph))
    return [s for s in sentences if len(s) >= min_chars]
