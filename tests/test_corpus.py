"""Curation end to end: parameters, textbooks, what is written and what is not."""

import dataclasses
import json
import logging

import pytest

from cardioembed.curation.corpus import CorpusConfig, curate, curate_to_folder, load_corpus
from cardioembed.errors import InputError, ParameterError
from cardioembed.profiles import notebook_values

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


def config_with(**changes) -> CorpusConfig:
    """Notebook 01's parameters (their one home) with some changed."""
    return CorpusConfig.from_parameters({**notebook_values("01", "teaching"), **changes})


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("split_fractions", {"train": 1.2, "validation": 0.1, "test": 0.1}, "split_fractions"),
        ("sources", ["hpo", "wikipedia"], "sources"),
        ("pair_kinds", ["name-definition", "quotes"], "pair_kinds"),
        ("negatives", "hardest", "negatives"),
        ("near_duplicate_threshold", 1.5, "near_duplicate_threshold"),
        ("min_sentence_chars", -1, "min_sentence_chars"),
        ("paraphrase_batch_size", 0, "paraphrase_batch_size"),
        ("paraphrase_max_new_tokens", 2.5, "paraphrase_max_new_tokens"),
        ("seed", "42", "seed"),
    ],
)
def test_bad_parameters_are_named(field, value, needle):
    with pytest.raises(ParameterError, match=needle):
        config_with(**{field: value})


def test_textbooks_need_a_folder_and_paraphrase_needs_a_model():
    with pytest.raises(ParameterError, match="textbook_dir"):
        config_with(sources=["textbooks"], pair_kinds=["adjacent"])
    with pytest.raises(ParameterError, match="paraphrase_model"):
        config_with(pair_kinds=["paraphrase"])


def test_config_round_trips_through_a_dict_and_needs_every_parameter():
    config = config_with(seed=7, sources=["hpo"])
    assert CorpusConfig.from_parameters(dataclasses.asdict(config)) == config
    values = notebook_values("01", "teaching")
    del values["negatives_model"]
    with pytest.raises(InputError, match="negatives_model"):
        CorpusConfig.from_parameters(values)


def test_textbook_folder_with_one_bad_file_is_curated_and_reported(tmp_path):
    books = tmp_path / "books"
    books.mkdir()
    (books / "cardiology.md").write_text(BOOK)
    (books / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    config = config_with(
        sources=["textbooks"],
        textbook_dir=str(books),
        pair_kinds=["adjacent"],
        split_fractions={"train": 0.5, "validation": 0.0, "test": 0.5},
    )
    result = curate(config)
    assert any("broken.pdf" in p for p in result["problems"])
    texts = set(result["sentences"]["text"])
    assert any("e.g. after climbing stairs" in t for t in texts)
    assert any("i.v." in t and "furosemide" in t for t in texts)
    assert len(result["pairs"]) > 0
    assert (result["pairs"].groupby("group")["split"].nunique() == 1).all()


def test_nothing_usable_stops_before_writing_and_keeps_the_old_artifact(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    (good / "book.txt").write_text(BOOK)
    out = tmp_path / "corpus"
    config = config_with(
        sources=["textbooks"],
        textbook_dir=str(good),
        pair_kinds=["adjacent"],
        split_fractions={"train": 0.5, "validation": 0.0, "test": 0.5},
    )
    folder, _ = curate_to_folder(config, out)
    before = (folder / "pairs.parquet").read_bytes()

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "binary.txt").write_bytes(bytes(range(256)) * 100)
    with pytest.raises(InputError, match="binary.txt"):
        curate_to_folder(
            config_with(sources=["textbooks"], textbook_dir=str(bad), pair_kinds=["adjacent"]),
            out,
        )
    assert (folder / "pairs.parquet").read_bytes() == before
    assert load_corpus(out)["folder"] == folder


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        curate(
            config_with(
                sources=["textbooks"], textbook_dir=str(tmp_path / "empty"), pair_kinds=["adjacent"]
            ),
        )


def test_missing_corpus_says_which_notebook_makes_it(tmp_path):
    with pytest.raises(InputError, match="01_curate_corpus"):
        load_corpus(tmp_path / "nothing")


def test_counts_file_is_plain_json_and_a_second_run_reuses_the_corpus(tmp_path):
    books = tmp_path / "b"
    books.mkdir()
    (books / "a.txt").write_text(BOOK)
    out, reused = curate_to_folder(_textbook_config(books), tmp_path / "corpus")
    assert not reused
    counts = json.loads((out / "counts.json").read_text())
    assert (
        counts["pairs"] == counts["pairs_train"] + counts["pairs_validation"] + counts["pairs_test"]
    )
    assert curate_to_folder(_textbook_config(books), tmp_path / "corpus") == (out, True)


def _textbook_config(folder, **overrides):
    return config_with(
        sources=["textbooks"],
        textbook_dir=str(folder),
        pair_kinds=["adjacent"],
        split_fractions={"train": 0.5, "validation": 0.0, "test": 0.5},
        **overrides,
    )


def test_textbook_dir_without_the_textbooks_source_is_an_error():
    with pytest.raises(ParameterError, match="textbook_dir") as info:
        config_with(sources=["hpo", "icd10cm"], textbook_dir="/books")
    assert "add it" in str(info.value) and "sources=[hpo,icd10cm,textbooks]" in str(info.value)
    with pytest.raises(ParameterError, match="language"):
        config_with(sources=["textbooks"], textbook_dir="/books", language="elvish")


def test_a_curation_with_another_seed_leaves_the_first_corpus_intact(tmp_path):
    books = tmp_path / "books"
    books.mkdir()
    (books / "a.txt").write_text(BOOK)
    out = tmp_path / "corpus"
    first, _ = curate_to_folder(_textbook_config(books), out)
    files_before = {p.name: p.read_bytes() for p in first.iterdir()}
    assert load_corpus(out)["folder"] == first
    second, reused = curate_to_folder(_textbook_config(books, seed=7), out)
    assert not reused and second != first and second.parent == out
    assert "seed7" in second.name and "seed42" in first.name
    assert {p.name: p.read_bytes() for p in first.iterdir()} == files_before
    assert load_corpus(out)["folder"] == second  # notebooks 02-05 read the current one
    assert load_corpus(first)["manifest"]["params"]["seed"] == 42
    # Back to the first parameters: reused, and current again.
    again, reused = curate_to_folder(_textbook_config(books), out)
    assert reused and again == first and load_corpus(out)["folder"] == first


def test_manifest_lists_used_and_skipped_files_apart_and_strict_fails(tmp_path, caplog):
    books = tmp_path / "books"
    books.mkdir()
    (books / "good.txt").write_text(BOOK)
    (books / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (books / "latin.txt").write_bytes("Caf\u00e9 au lait spots are seen.".encode("latin-1"))
    caplog.set_level(logging.WARNING)
    folder, _ = curate_to_folder(_textbook_config(books), tmp_path / "corpus")
    corpus = load_corpus(folder)
    manifest = corpus["manifest"]
    assert set(manifest["inputs"]) == {"good.txt"}
    assert set(manifest["inputs_skipped"]) == {"broken.pdf", "latin.txt"}
    assert "iconv" in manifest["inputs_skipped"]["latin.txt"]
    assert sum(r.getMessage().startswith("skipped") for r in caplog.records) == 2
    files = corpus["files"].set_index("file")["status"].to_dict()
    assert files == {"good.txt": "used", "broken.pdf": "skipped", "latin.txt": "skipped"}
    assert corpus["counts"]["textbook_files_skipped"] == 2
    # Reusing the corpus reports the skipped files again; strict refuses it.
    caplog.clear()
    _, reused = curate_to_folder(_textbook_config(books), tmp_path / "corpus")
    assert reused and sum(r.getMessage().startswith("skipped") for r in caplog.records) == 2
    for out in (tmp_path / "corpus", tmp_path / "fresh"):
        with pytest.raises(InputError, match="strict") as info:
            curate_to_folder(_textbook_config(books, strict=True), out)
        assert "strict=False" in str(info.value)
        # new or reused, the error lists the files (no "listed above")
        assert "broken.pdf" in str(info.value) and "latin.txt" in str(info.value)
    assert not (tmp_path / "fresh").exists() or not any((tmp_path / "fresh").iterdir())


def test_filter_counts_reach_the_corpus_counts(tmp_path):
    books = tmp_path / "books"
    books.mkdir()
    code = "```r\nfit <- lm(ef ~ age, data = registry)\nsummary(fit)\n```\n"
    (books / "a.md").write_text(f"# Heart failure\n\n{BOOK}\n\n{code}")
    result = curate(_textbook_config(books))
    assert result["counts"]["textbook_dropped_code"] == 1  # one fenced block
    assert result["counts"]["textbook_dropped_headings"] == 1
    texts = " ".join(result["sentences"]["text"])
    assert "summary(fit)" not in texts and "Heart failure is a clinical syndrome" in texts
