"""Sentence splitting of clinical text."""

from __future__ import annotations

import pysbd
import pytest

from cardioembed.curation.sentences import split_sentences
from cardioembed.errors import InputError, ParameterError

CLINICAL = (
    "The patient was given metoprolol 5 mg i.v. and the blood pressure fell to "
    "90/60 mm Hg. Dr. Smith measured an ejection fraction of approx. 35% vs. 55% at "
    "baseline. Beta-blockers, e.g. bisoprolol, reduce mortality in heart failure. "
    "The aortic root measured 3.5 cm on echocardiography. Statins lower LDL "
    "cholesterol, i.e. they reduce events. Smith et al. found no benefit in the "
    "elderly. The trial was stopped early (see Fig. 3 and p. 12). Symptoms include "
    "dyspnoea, orthopnoea, fatigue, etc. The mean gradient was 40 mm Hg. Why does the "
    "ventricle dilate? It dilates because of volume overload."
)

EXPECTED = [
    "The patient was given metoprolol 5 mg i.v. and the blood pressure fell to 90/60 mm Hg.",
    "Dr. Smith measured an ejection fraction of approx. 35% vs. 55% at baseline.",
    "Beta-blockers, e.g. bisoprolol, reduce mortality in heart failure.",
    "The aortic root measured 3.5 cm on echocardiography.",
    "Statins lower LDL cholesterol, i.e. they reduce events.",
    "Smith et al. found no benefit in the elderly.",
    "The trial was stopped early (see Fig. 3 and p. 12).",
    "Symptoms include dyspnoea, orthopnoea, fatigue, etc.",
    "The mean gradient was 40 mm Hg.",
    "Why does the ventricle dilate?",
    "It dilates because of volume overload.",
]


def test_clinical_abbreviations_and_numbers_stay_intact():
    assert split_sentences(CLINICAL, 0) == EXPECTED


def test_fixes_pysbd_split_after_approx():
    # pysbd alone cuts after "approx." before a number; the fragments are merged back.
    text = "The ejection fraction was approx. 35% at baseline. It improved later on."
    raw = pysbd.Segmenter(language="en", clean=False).segment(text)
    assert len(raw) == 3
    assert split_sentences(text, 20) == [
        "The ejection fraction was approx. 35% at baseline.",
        "It improved later on.",
    ]


def test_paragraphs_split_separately_and_whitespace_collapsed():
    text = "Aortic stenosis causes syncope\non exertion\n\nIt also causes angina and dyspnoea."
    assert split_sentences(text, 20) == [
        "Aortic stenosis causes syncope on exertion",
        "It also causes angina and dyspnoea.",
    ]


def test_an_inline_list_stays_one_sentence():
    # pysbd starts a sentence at each item of a list written inside a sentence.
    text = (
        "Incomplete RBBB is defined by (i) QRS duration between 110 and 120 ms; "
        "(ii) rsr in leads V1 or V2. The R deflection is usually wider."
    )
    assert split_sentences(text, 0) == [
        "Incomplete RBBB is defined by (i) QRS duration between 110 and 120 ms; "
        "(ii) rsr in leads V1 or V2.",
        "The R deflection is usually wider.",
    ]


def test_quotes_and_ellipses():
    text = 'He said "the pain is worse at night." Then he left... The nurse called the doctor.'
    sentences = split_sentences(text, 0)
    assert sentences[-1] == "The nurse called the doctor."
    assert "".join(sentences).replace(" ", "") == text.replace(" ", "")


def test_min_chars_filter():
    text = "Yes. No. The QRS complex was wide and bizarre. Short one here."
    assert split_sentences(text, 20) == ["The QRS complex was wide and bizarre."]
    assert split_sentences(text, 0) == [
        "Yes.",
        "No.",
        "The QRS complex was wide and bizarre.",
        "Short one here.",
    ]
    assert split_sentences(text, 15) == [
        "The QRS complex was wide and bizarre.",
        "Short one here.",
    ]


@pytest.mark.parametrize("bad", [-1, 2.5, "20", True, None])
def test_min_chars_validated(bad):
    with pytest.raises(ParameterError, match="min_chars") as info:
        split_sentences("A sentence that is long enough.", bad)
    assert isinstance(info.value, InputError)


def test_empty_text():
    assert split_sentences("", 20) == []
    assert split_sentences("\n\n  \n", 20) == []
