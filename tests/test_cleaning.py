"""Cleaning of text extracted from textbooks."""

from __future__ import annotations

from collections import Counter

import pytest

from cardioembed.curation.cleaning import (
    break_long_lines,
    clean_book_text,
    drop_captions,
    drop_references,
    join_hyphenated,
    keep_language,
    normalize_unicode,
    reflow_paragraphs,
    remove_footnote_marks,
    remove_page_numbers,
    remove_running_lines,
    split_passages,
)
from cardioembed.errors import InputError


def test_normalize_unicode_folds_ligatures_spaces_and_soft_hyphens():
    text = "The ﬁrst ﬂow\u00a0rate was 5\u202fmL, an\u00adtico\u00adagu\u00adlation\u200b."
    assert normalize_unicode(text) == "The first flow rate was 5 mL, anticoagulation."
    # A soft hyphen at a line end joins the broken word.
    assert normalize_unicode("myo\u00ad\ncardial") == "myocardial"
    assert normalize_unicode("a\r\nb\rc\td") == "a\nb\nc d"


def test_join_hyphenated_joins_breaks_and_keeps_real_hyphens():
    text = (
        "myo-\ncardial infarction, non-\ninvasive tests, a beta-\nblocker, "
        "an ACE-\ninhibitor, the Kaplan-\nMeier curve, peri-\ncarditis and a "
        "well-known end-\nstage disease with a long-\nterm course; the long-term plan."
    )
    joined = join_hyphenated(text)
    assert "myocardial infarction" in joined
    assert "pericarditis" in joined
    assert "non-invasive" in joined  # a free-standing prefix keeps its hyphen
    assert "beta-blocker" in joined
    assert "ACE-inhibitor" in joined  # capitals before the hyphen: an acronym
    assert "Kaplan-Meier" in joined  # capital after the break: a real hyphen
    assert "end-stage" in joined
    assert "long-term course" in joined  # spelled with the hyphen elsewhere
    assert "\n" not in joined


VALVES = ["mitral", "aortic", "tricuspid", "pulmonary", "prosthetic", "bicuspid"]


def _pages() -> list[str]:
    pages = []
    for number, valve in enumerate(VALVES, start=1):
        header = "CARDIOLOGY: A CLINICAL TEXTBOOK" if number % 2 else "Chapter 3 · Heart Failure"
        body = [
            f"Disease of the {valve} valve may be silent for many years before symptoms.",
            f"Echocardiography shows the {valve} valve and measures its gradient.",
            f"The {valve} valve is discussed on this page.",
            f"Surgery on the {valve} valve is advised once the ventricle begins to fail.",
            f"Follow-up of the {valve} valve is yearly.",
        ]
        pages.append("\n".join([header, *body, str(number)]))
    return pages


def test_remove_running_lines_removes_alternating_headers_only():
    cleaned = remove_running_lines(_pages())
    joined = "\n".join(cleaned)
    assert "CARDIOLOGY: A CLINICAL TEXTBOOK" not in joined
    assert "Chapter 3 · Heart Failure" not in joined
    for valve in VALVES:
        assert f"Disease of the {valve} valve may be silent" in joined
        assert f"The {valve} valve is discussed on this page." in joined
        assert f"Follow-up of the {valve} valve is yearly." in joined
    assert all(len(page.strip().split("\n")) == 5 for page in cleaned)
    # Page numbers differ from page to page but share the masked signature "#".
    assert all(not page.rstrip().endswith(str(i + 1)) for i, page in enumerate(cleaned))


def test_remove_running_lines_leaves_short_inputs_and_checks_fraction():
    assert remove_running_lines(["a\nb", "a\nc"]) == ["a\nb", "a\nc"]
    with pytest.raises(InputError, match="min_fraction"):
        remove_running_lines(["x"] * 4, min_fraction=0)


def test_remove_page_numbers():
    text = "Some text here.\n12\n- 13 -\nPage 4 of 200\nxiv\nMore text with 12 in it."
    assert remove_page_numbers(text) == "Some text here.\nMore text with 12 in it."


def test_clean_multi_page_text_removes_layout_debris():
    pages = [
        "Cardiology Handbook\n"
        "Atrial fibrillation is the most common sustained arrhythmia and its\n"
        "prevalence rises steeply with age, reaching ten per cent in the very old;\n"
        "stroke prevention comes first.\n"
        "1",
        "Cardiology Handbook\n"
        "Figure 3.2 Electrocardiogram showing atrial fibrillation with an irregularly\n"
        "irregular rhythm and no P waves.\n"
        "Anticoagulation with a direct oral anticoagulant is preferred over warfarin\n"
        "for most patients, because intracranial bleeding is less common with the\n"
        "newer drugs and no monitoring of the anticoagulant effect is needed in\n"
        "most patients.\n"
        "2",
        "Cardiology Handbook\n"
        "Table 2-1 Risk factors for stroke\n"
        "Rate control uses beta-blockers or non-dihydropyridine calcium channel\n"
        "blockers, while rhythm control relies on ablation or antiarrhythmic drugs.\n"
        "References\n"
        "1. Smith J, Jones AB, et al. Atrial fibrillation outcomes. N Engl J Med\n"
        "2019;380:1-10.\n"
        "2. Brown K, White L. Anticoagulation in the elderly. Lancet 2020;395:22-30.\n"
        "3",
    ]
    cleaned = clean_book_text("\f".join(pages))
    assert "Cardiology Handbook" not in cleaned
    assert "Figure 3.2" not in cleaned and "no P waves" not in cleaned
    assert "Table 2-1" not in cleaned
    assert "References" not in cleaned and "Smith J" not in cleaned
    assert "Lancet" not in cleaned
    assert "\n1\n" not in cleaned and not cleaned.rstrip().endswith("3")
    assert "Anticoagulation with a direct oral anticoagulant" in cleaned
    assert "Rate control uses beta-blockers" in cleaned
    passages = split_passages(cleaned)
    assert len(passages) == 3
    assert passages[0].startswith("Atrial fibrillation is the most common")
    # Without blank lines, a short line that ends a sentence ends a paragraph.
    assert passages[0].endswith("stroke prevention comes first.")
    assert passages[1].startswith("Anticoagulation with")
    assert "\n" not in "".join(passages)


def test_reference_heading_drops_following_list_until_prose():
    text = (
        "Hypertension raises the risk of stroke and of heart failure.\n\n"
        "Further reading\n\n"
        "Williams B, Mancia G, et al. 2018 ESC/ESH Guidelines. Eur Heart J 2018;39:3021.\n\n"
        "Whelton PK, et al. 2017 ACC/AHA guideline. Hypertension 2018;71:e13-e115.\n\n"
        "Chapter 5 Valvular heart disease\n\n"
        "Aortic stenosis is the most common valve lesion in the elderly."
    )
    cleaned = drop_references(text)
    assert "Williams" not in cleaned and "Whelton" not in cleaned
    assert "Further reading" not in cleaned
    assert "Hypertension raises" in cleaned
    assert "Aortic stenosis is the most common" in cleaned


def test_numbered_citation_lines_dropped_anywhere_but_numbered_prose_kept():
    text = (
        "12. Smith J, Jones AB, et al. Beta-blockers after infarction. Circulation 2019;\n"
        "140:100-110.\n"
        "1. Patients with a low ejection fraction should receive a beta-blocker.\n"
        "The dose is titrated every two weeks."
    )
    cleaned = drop_references(text)
    assert "Smith J" not in cleaned and "140:100" not in cleaned
    assert "1. Patients with a low ejection fraction" in cleaned
    assert "The dose is titrated" in cleaned


def test_captions_dropped_but_prose_about_figures_kept():
    text = (
        "Fig. 4 Coronary angiogram.\n"
        "Table 3 lists the causes of chest pain seen in the emergency department.\n"
        "FIGURE 12.1: Algorithm for the management\n"
        "of acute chest pain in adults.\n"
        "Chest pain is a common presentation."
    )
    cleaned = drop_captions(text)
    assert "Coronary angiogram" not in cleaned
    assert "Algorithm" not in cleaned and "of acute chest pain in adults" not in cleaned
    assert "Table 3 lists the causes" in cleaned
    assert "Chest pain is a common presentation." in cleaned


def test_whitespace_collapsed_and_paragraphs_kept():
    text = "First   paragraph\twith  spaces\nwrapped here.\n\n\n\nSecond\u00a0paragraph.  \n"
    cleaned = clean_book_text(text)
    assert cleaned == "First paragraph with spaces wrapped here.\n\nSecond paragraph."
    assert split_passages(cleaned) == [
        "First paragraph with spaces wrapped here.",
        "Second paragraph.",
    ]


def test_headings_end_a_paragraph_and_are_dropped():
    text = (
        "Pericarditis\n"
        "Acute pericarditis presents with pleuritic chest pain that improves on sitting\n"
        "forward, a friction rub and widespread ST elevation on the electrocardiogram.\n"
    )
    stats = Counter()
    passages = split_passages(clean_book_text(text, stats))
    # The heading ends the paragraph before it, and is dropped: it is not a sentence.
    assert passages == [" ".join(text.split("\n", 1)[1].split())]
    assert stats["heading_paragraphs"] == 1


def test_break_long_lines_splits_unbroken_text_at_sentence_ends():
    sentence = "The left ventricle pumps blood into the aorta during systole. "
    text = sentence * 2000  # about 120,000 characters on one line
    broken = break_long_lines(text)
    passages = split_passages(broken)
    assert len(passages) > 10
    assert all(len(p) < 5_000 for p in passages)
    assert all(p.endswith("systole.") for p in passages)
    assert " ".join(passages) == text.strip()


def test_footnote_marks_after_punctuation_are_removed_and_counted():
    stats: Counter = Counter()
    text = (
        "A link to /run should be absolute.9\nThe guidelines (DFSG).3 In addition, "
        "the terms are used as follows:2 must and should."
    )
    cleaned = remove_footnote_marks(text, stats)
    assert cleaned == (
        "A link to /run should be absolute.\nThe guidelines (DFSG). In addition, "
        "the terms are used as follows: must and should."
    )
    assert stats["footnote_marks"] == 3


def test_numbers_that_are_not_footnote_marks_are_kept():
    text = (
        "See Fig.2 and pp.12 of version 3.5 for libz.so.1 and www.example.org.2 here; "
        "the dose is 2.5 mg."
    )
    stats: Counter = Counter()
    assert remove_footnote_marks(text, stats) == text
    assert not stats


def test_numbered_section_headings_are_split_off_and_dropped():
    text = (
        "Since 1998, changes to this document have been discussed on the mailing list\n"
        "1.3.2 Current process\n"
        "Each proposal is reviewed by the maintainers before it is accepted into the text\n"
        "of the manual, and a version number is given to every released edition of it.\n"
        "7.35 Why are p-values not displayed?\n"
    )
    stats: Counter = Counter()
    paragraphs = clean_book_text(text, stats).split("\n\n")
    assert paragraphs[0].endswith("on the mailing list")
    assert "1.3.2" not in "".join(paragraphs)
    assert paragraphs[1].startswith("Each proposal") and paragraphs[1].endswith("edition of it.")
    assert "7.35 Why are p-values not displayed?" in paragraphs
    assert stats["heading_paragraphs"] >= 1


def test_definition_list_terms_are_split_from_their_descriptions():
    text = (
        "The following keys move the cursor along the line you are editing at the prompt.\n"
        "C-a Go to the beginning of the command.\n"
        "M-b Go back one word.\n"
        "col=2 Colours to be used for points, lines, text, filled regions and images.\n"
        "nocheck This tag says to not run any build-time test suite.\n"
        "upstream\n"
        "The source of software that is being packaged, or the portion of it that comes\n"
        "from outside of the distribution, is called upstream in this manual.\n"
    )
    paragraphs = reflow_paragraphs(text).split("\n\n")
    assert paragraphs == [
        "The following keys move the cursor along the line you are editing at the prompt.",
        "C-a",
        "Go to the beginning of the command.",
        "M-b",
        "Go back one word.",
        "col=2",
        "Colours to be used for points, lines, text, filled regions and images.",
        "nocheck",
        "This tag says to not run any build-time test suite.",
        "upstream",
        "The source of software that is being packaged, or the portion of it that comes "
        "from outside of the distribution, is called upstream in this manual.",
    ]
    stats: Counter = Counter()
    cleaned = clean_book_text(text, stats)
    assert "Go back one word." in cleaned.split("\n\n")
    assert "M-b" not in cleaned and "nocheck" not in cleaned
    assert stats["heading_paragraphs"] == 5


def test_prose_lines_that_start_lowercase_are_not_taken_for_terms():
    text = (
        "Patients were followed for five years after the first admission to hospital\n"
        "and Kaplan-Meier curves were drawn for each group of the trial by the team.\n"
        "in Europe The figures were similar to those seen in the American registry data.\n"
    )
    # The third line follows a sentence end but starts with a preposition: prose.
    assert reflow_paragraphs(text).split("\n\n") == [
        "Patients were followed for five years after the first admission to hospital and "
        "Kaplan-Meier curves were drawn for each group of the trial by the team. in Europe "
        "The figures were similar to those seen in the American registry data."
    ]


def test_language_check_keeps_english_with_punctuated_function_words():
    english = (
        "The most convenient way to use this software is at a graphics workstation, "
        "which these guides describe."
    )
    german = (
        "Die Herzinsuffizienz ist eine häufige Erkrankung, die mit einer hohen "
        "Sterblichkeit einhergeht und oft ältere Menschen betrifft."
    )
    stats: Counter = Counter()
    assert keep_language(f"{english}\n\n{german}", "english", stats) == english
    assert stats["other_language_paragraphs"] == 1
