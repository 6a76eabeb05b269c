"""Curation end to end: parameters, textbooks, what is written and what is not."""

import json

import pytest

from cardioembed.corpus import CorpusConfig, curate, curate_to_folder, load_corpus
from cardioembed.errors import InputError, ParameterError

BOOK = """Chapter 1 Heart failure

Heart failure is a clinical syndrome caused by a structural or functional cardiac
abnormality. It results in elevated intracardiac pressures or inadequate cardiac output
at rest or during exercise. Typical symptoms include breathlessness, ankle swelling and
fatigue, e.g. after climbing stairs.

Loop diuretics such as furosemide are given i.v. when congestion is severe. Blood
pressure below 90 mm Hg. calls for caution with vasodilators. The left ventricle may
measure more than 6.5 cm in diastole.

Chapter 2 Atrial fibrillation

Atrial fibrillation is the most common sustained arrhythmia in adults. It raises the
risk of stroke about five-fold. Anticoagulation is guided by the CHA2DS2-VASc score in
most patients.
"""


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("split_fractions", {"train": 1.2, "validation": 0.1, "test": 0.1}, "split_fractions"),
        ("sources", ["hpo", "wikipedia"], "sources"),
        ("pair_kinds", ["name-definition", "quotes"], "pair_kinds"),
        ("negatives", "hardest", "negatives"),
        ("near_duplicate_threshold", 1.5, "near_duplicate_threshold"),
        ("min_sentence_chars", -1, "min_sentence_chars"),
    ],
)
def test_bad_parameters_are_named(field, value, needle):
    with pytest.raises(ParameterError, match=needle):
        CorpusConfig(**{field: value})


def test_textbooks_need_a_folder_and_paraphrase_needs_a_model():
    with pytest.raises(ParameterError, match="textbook_dir"):
        CorpusConfig(sources=["textbooks"], pair_kinds=["adjacent"])
    with pytest.raises(ParameterError, match="paraphrase_model"):
        CorpusConfig(pair_kinds=["paraphrase"])


def test_config_round_trips_through_a_dict():
    config = CorpusConfig(seed=7, sources=["hpo"])
    assert CorpusConfig.from_dict(config.to_dict()) == config


def test_textbook_folder_with_one_bad_file_is_curated_and_reported(tmp_path):
    books = tmp_path / "books"
    books.mkdir()
    (books / "cardiology.md").write_text(BOOK)
    (books / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    config = CorpusConfig(
        sources=["textbooks"],
        textbook_dir=str(books),
        pair_kinds=["adjacent"],
        split_fractions={"train": 0.5, "validation": 0.0, "test": 0.5},
    )
    result = curate(config, echo=lambda _: None)
    assert any("broken.pdf" in p for p in result.problems)
    texts = set(result.sentences["text"])
    assert any("e.g. after climbing stairs" in t for t in texts)
    assert any("i.v." in t and "furosemide" in t for t in texts)
    assert len(result.pairs) > 0
    assert (result.pairs.groupby("group")["split"].nunique() == 1).all()


def test_nothing_usable_stops_before_writing_and_keeps_the_old_artifact(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    (good / "book.txt").write_text(BOOK)
    out = tmp_path / "corpus"
    config = CorpusConfig(
        sources=["textbooks"],
        textbook_dir=str(good),
        pair_kinds=["adjacent"],
        split_fractions={"train": 0.5, "validation": 0.0, "test": 0.5},
    )
    curate_to_folder(config, out, echo=lambda _: None)
    before = (out / "pairs.parquet").read_bytes()

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "binary.txt").write_bytes(bytes(range(256)) * 100)
    with pytest.raises(InputError, match="binary.txt"):
        curate_to_folder(
            CorpusConfig(sources=["textbooks"], textbook_dir=str(bad), pair_kinds=["adjacent"]),
            out,
            echo=lambda _: None,
        )
    assert (out / "pairs.parquet").read_bytes() == before
    assert load_corpus(out)["manifest"]["kind"] == "corpus"


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        curate(
            CorpusConfig(
                sources=["textbooks"], textbook_dir=str(tmp_path / "empty"), pair_kinds=["adjacent"]
            ),
            echo=lambda _: None,
        )


def test_missing_corpus_says_which_notebook_makes_it(tmp_path):
    with pytest.raises(InputError, match="01_curate_corpus"):
        load_corpus(tmp_path / "nothing")


def test_counts_file_is_plain_json(tmp_path):
    books = tmp_path / "b"
    books.mkdir()
    (books / "a.txt").write_text(BOOK)
    out, reused = curate_to_folder(
        CorpusConfig(
            sources=["textbooks"],
            textbook_dir=str(books),
            pair_kinds=["adjacent"],
            split_fractions={"train": 0.5, "validation": 0.0, "test": 0.5},
        ),
        tmp_path / "corpus",
        echo=lambda _: None,
    )
    assert not reused
    counts = json.loads((out / "counts.json").read_text())
    assert (
        counts["pairs"] == counts["pairs_train"] + counts["pairs_validation"] + counts["pairs_test"]
    )
    _, reused = curate_to_folder(
        CorpusConfig(
            sources=["textbooks"],
            textbook_dir=str(books),
            pair_kinds=["adjacent"],
            split_fractions={"train": 0.5, "validation": 0.0, "test": 0.5},
        ),
        tmp_path / "corpus",
        echo=lambda _: None,
    )
    assert reused
