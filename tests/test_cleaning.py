"""From lines to paragraphs of prose: plain text, where a line's number is its height."""

from __future__ import annotations

from collections import Counter

from textbook_reader.cleaning import (
    HYPHEN,
    break_long_lines,
    finish,
    normalize_unicode,
    rebuild_words,
    split_passages,
    text_paragraphs,
)


def clean_book_text(text: str, stats: Counter | None = None, examples=None) -> str:
    """Prose paragraphs of plain text separated by a blank line, as `read_book` cleans a
    chapter of a .txt file."""
    stats = Counter() if stats is None else stats
    examples = {} if examples is None else examples
    return "\n\n".join(finish(text_paragraphs(text, stats, examples), stats, examples))


def test_normalize_unicode_folds_ligatures_spaces_and_soft_hyphens():
    text = "The ﬁrst ﬂow\u00a0rate was 5\u202fmL, an\u00adtico\u00adagu\u00adlation\u200b."
    assert normalize_unicode(text) == "The first flow rate was 5 mL, anticoagulation."
    # A soft hyphen at a line end joins the broken word.
    assert normalize_unicode("myo\u00ad\ncardial") == "myocardial"
    assert normalize_unicode("a\r\nb\rc\td") == "a\nb\nc d"


def test_words_broken_at_line_ends_are_rebuilt_and_real_hyphens_kept():
    broken = (
        f"myo{HYPHEN}cardial, non{HYPHEN}invasive, a beta{HYPHEN}blocker, an ACE{HYPHEN}"
        f"inhibitor, the Kaplan{HYPHEN}Meier curve, peri{HYPHEN}carditis, a long{HYPHEN}term "
        "course"
    )
    assert rebuild_words(broken, attested={"long-term"}) == (
        "myocardial, non-invasive, a beta-blocker, an ACE-inhibitor, the Kaplan-Meier curve, "
        "pericarditis, a long-term course"
    )


VALVES = ["mitral", "aortic", "tricuspid", "pulmonary", "prosthetic", "bicuspid"]


def test_pages_of_text_lose_running_heads_page_numbers_and_breaks():
    pages = []
    for number, valve in enumerate(VALVES, start=1):
        head = "CARDIOLOGY: A CLINICAL TEXTBOOK" if number % 2 else "Chapter 3 · Heart Failure"
        body = (
            "ges of the valve are slow, as a rule, and they are followed up by the team.\n"
            if number > 1
            else ""
        ) + (
            f"Disease of the {valve} valve may be silent for many years before the first\n"
            "symptoms, and echocardiography shows the valve and measures its gradient\n"
            f"across the orifice. The {valve} valve is then followed up every year, and\n"
            "surgery is advised once the ventricle begins to fail. A long-term plan is\n"
            "agreed with the patient, who is told that the disease may progress and that\n"
            "the degenerative changes of its leaflets are seen in the elderly, and chan-"
        )
        pages.append(f"{head}\n\n{body}\n\n{number}")
    stats: Counter = Counter()
    passages = split_passages(clean_book_text("\f".join(pages), stats))
    assert len(passages) == 1  # the paragraph runs over every page break
    text = passages[0]
    assert "CARDIOLOGY" not in text and "Chapter 3" not in text
    assert stats["running_lines"] == 12  # a head and a page number on each page
    assert text.count("and changes of the valve are slow, as a rule") == 5
    assert text.count("A long-term plan") == 5  # the book's last sentence is cut: dropped
    assert "orifice. The mitral valve is then followed up every year, and surgery" in text
    assert text.endswith("the ventricle begins to fail.")
    assert stats["fragments"] == 1


def test_paragraphs_end_at_blank_lines_short_lines_and_indents():
    text = (
        "First   paragraph\twith  spaces, wrapped here to make a line that is long\n"
        "enough.\n"
        "Second paragraph starts after a short line that ends a sentence, and it is\n"
        "wrapped too.\n"
        "    An indented line after a sentence end starts the third paragraph of the\n"
        "text.\n\n\n\n"
        "Fourth\u00a0paragraph.  \n"
    )
    assert split_passages(clean_book_text(text)) == [
        "First paragraph with spaces, wrapped here to make a line that is long enough.",
        "Second paragraph starts after a short line that ends a sentence, and it is wrapped too.",
        "An indented line after a sentence end starts the third paragraph of the text.",
        "Fourth paragraph.",
    ]


def test_headings_labels_and_cut_sentences_are_dropped_and_counted():
    text = (
        "Pericarditis\n\n"
        "Acute pericarditis presents with pleuritic chest pain that improves on sitting\n"
        "forward, a friction rub and widespread ST elevation on the electrocardiogram.\n\n"
        "7.35 Why are p-values not displayed?\n\n"
        "and a sentence cut at a page break. Treatment starts with an anti-inflammatory\n"
        "drug. Colchicine lowers the risk of a recurrence, and the dose is\n"
    )
    stats: Counter = Counter()
    examples: dict = {}
    assert split_passages(clean_book_text(text, stats, examples=examples)) == [
        "Acute pericarditis presents with pleuritic chest pain that improves on sitting "
        "forward, a friction rub and widespread ST elevation on the electrocardiogram.",
        "7.35 Why are p-values not displayed?",
        "Treatment starts with an anti-inflammatory drug.",
    ]
    assert stats["headings"] == 1
    assert examples["fragments"] == [
        "and a sentence cut at a page break.",
        "Colchicine lowers the risk of a recurrence, and the dose is",
    ]


def test_reference_list_is_dropped_until_prose():
    text = (
        "Hypertension raises the risk of stroke and of heart failure.\n\n"
        "Further reading\n\n"
        "Williams B, Mancia G, et al. 2018 ESC/ESH Guidelines. Eur Heart J 2018;39:3021.\n\n"
        "Whelton PK, et al. ACC/AHA guideline. Hypertension 2018;71:e13-e115.\n\n"
        "Aortic stenosis is the most common valve lesion in the elderly."
    )
    stats: Counter = Counter()
    assert split_passages(clean_book_text(text, stats)) == [
        "Hypertension raises the risk of stroke and of heart failure.",
        "Aortic stenosis is the most common valve lesion in the elderly.",
    ]
    assert stats["references"] == 2


def test_contents_and_index_pages_are_dropped():
    contents = "Contents\n" + "\n".join(
        f"{n}. Topic {n} . . . . . . . {n * 7}" for n in range(1, 7)
    )
    index = "Index\n" + "\n".join(f"term {n}, {n}, {n + 40}-{n + 42}" for n in range(1, 7))
    prose = "The heart has four chambers and four valves."
    stats: Counter = Counter()
    assert clean_book_text("\f".join([contents, prose, index]), stats) == prose
    assert stats["contents_index"] == 2


def test_sentences_with_markup_are_dropped_from_their_paragraph():
    text = (
        "The package is loaded first. Write \\usepackage{babelbib} in the preamble. Then "
        "the styles are chosen, and <b>bold</b> text is shown."
    )
    stats: Counter = Counter()
    assert clean_book_text(text, stats) == "The package is loaded first."
    assert stats["code"] == 2


def test_break_long_lines_splits_unbroken_text_at_sentence_ends():
    sentence = "The left ventricle pumps blood into the aorta during systole. "
    text = sentence * 2000  # about 120,000 characters on one line
    passages = split_passages(break_long_lines(text))
    assert len(passages) > 10
    assert all(len(p) < 5_000 for p in passages)
    assert all(p.endswith("systole.") for p in passages)
    assert " ".join(passages) == text.strip()


def test_footnote_marks_after_punctuation_are_removed_and_counted():
    stats: Counter = Counter()
    text = (
        "A link to /run should be absolute.9 The guidelines (DFSG).3 In addition, "
        "the terms are used as follows:2 must and should."
    )
    assert finish([text], stats, {}) == [
        "A link to /run should be absolute. The guidelines (DFSG). In addition, "
        "the terms are used as follows: must and should."
    ]
    assert stats["footnote_marks"] == 3
    kept = "See version 3.5 of libz.so.1 and POSIX.2 here; the dose is 2.5 mg."
    assert finish([kept], stats, {}) == [kept]
