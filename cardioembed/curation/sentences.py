"""Sentence splitting for clinical text with pysbd, whose cuts where no sentence ends
(after "approx.", before a lowercase word or an inline list's "(ii)") are joined back.
"""

from __future__ import annotations

import re

import pysbd

from cardioembed.errors import check_int
from textbook_reader import split_passages

# Titles, Latin connectives and "approx."/"ca." before a number: never a sentence end.
_NON_TERMINAL = frozenset(
    "dr drs mr mrs ms prof e.g i.e cf vs viz approx ca fig figs eq eqs incl esp".split()
)
# Abbreviations that refer to the number after them ("No. 5", "p. 12", "Fig. 3").
_BEFORE_NUMBER = frozenset("no nos p pp vol fig figs table tab ch chap ref refs eq".split())
_LOWER_WORD = re.compile(r"[a-z]+(?=[^\w]|$)")  # "and", "with"; not "pH", "mRNA"
_END = re.compile(r"[.!?][\"'”’)\]]*$")
_SEGMENTER = pysbd.Segmenter(language="en", clean=False)


def _continues(sentence: str, piece: str) -> bool:
    """Whether pysbd's `piece` continues `sentence` rather than starting a new one."""
    if _LOWER_WORD.match(piece) or not _END.search(sentence):
        return True
    word = sentence.rsplit(" ", 1)[-1].lstrip("([{\"'“‘").rstrip(".").lower()
    return word in _NON_TERMINAL or (word in _BEFORE_NUMBER and piece[:1].isdigit())


def split_sentences(text: str, min_chars: int) -> list[str]:
    """The sentences of `text` of at least `min_chars` characters (the paper: 20), none
    spanning two paragraphs (blocks separated by a blank line)."""
    check_int("min_chars", min_chars, 0, "give a whole number of 0 or more")
    sentences: list[str] = []
    for passage in split_passages(text):
        pieces = filter(None, map(str.strip, _SEGMENTER.segment(passage)))
        paragraph: list[str] = []
        for piece in pieces:
            if paragraph and _continues(paragraph[-1], piece):
                paragraph[-1] = f"{paragraph[-1]} {piece}"
            else:
                paragraph.append(piece)
        sentences += paragraph
    return [s for s in sentences if len(s) >= min_chars]
