"""Curation: parameters, textbooks, and notebook 01 run end to end: what is written,
reused, reported and refused."""

import json
import logging

import pytest

from cardioembed.book.runner import NotebookFailed, run_profile
from cardioembed.curation.corpus import curation_parameters, load_corpus
from cardioembed.errors import InputError, ParameterError
from cardioembed.profiles import load_profile, notebook_values
from textbook_reader import ReaderError, read_folder

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


CODE = "```r\nfit <- lm(ef ~ age, data = registry)\nsummary(fit)\n```\n"
NOTES = f"""# Valve disease

Aortic stenosis narrows the valve opening and raises the pressure load on the left
ventricle. Symptoms often appear late, e.g. on exertion.

{CODE}"""
TEXTBOOKS = dict(  # notebook 01 on a folder of textbooks, small and quick
    sources=["textbooks"],
    pair_kinds=["adjacent"],
    split_fractions={"train": 0.5, "validation": 0.0, "test": 0.5},
)


def config_with(**changes) -> dict:
    """Notebook 01's parameters (their one home) with some changed, checked."""
    return curation_parameters({**notebook_values("01", "teaching"), **changes})


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


def test_an_unknown_pair_kind_is_named_with_the_kinds_there_are():
    with pytest.raises(ParameterError, match="pair_kinds") as info:
        config_with(pair_kinds=["name-definition", "definition-name"])
    assert "definition-name" in str(info.value) and "synonym-definition" in str(info.value)


def test_textbooks_need_a_folder_and_paraphrase_needs_a_model():
    with pytest.raises(ParameterError, match="textbook_dir"):
        config_with(sources=["textbooks"], pair_kinds=["adjacent"])
    with pytest.raises(ParameterError, match="paraphrase_model"):
        config_with(pair_kinds=["paraphrase"])


def test_checked_parameters_round_trip_and_need_every_parameter():
    params = config_with(seed=7, sources=["hpo"])
    assert curation_parameters(params) == params
    values = notebook_values("01", "teaching")
    del values["negatives_model"]
    with pytest.raises(InputError, match="negatives_model"):
        curation_parameters(values)


def test_textbook_dir_without_the_textbooks_source_is_an_error():
    with pytest.raises(ParameterError, match="textbook_dir") as info:
        config_with(sources=["hpo", "icd10cm"], textbook_dir="/books")
    assert "add it" in str(info.value) and "sources=[hpo,icd10cm,textbooks]" in str(info.value)


def test_an_empty_or_unusable_textbook_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReaderError, match="empty"):
        read_folder(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "binary.txt").write_bytes(bytes(range(256)) * 100)
    with pytest.raises(ReaderError, match="binary.txt"):
        read_folder(bad)


def test_missing_corpus_says_which_notebook_makes_it(tmp_path):
    with pytest.raises(InputError, match="01_curate_corpus"):
        load_corpus(tmp_path / "nothing")


# ------------------------------------------------------------------ notebook 01 run


def run_01(runs_root, **changes) -> tuple[str, str]:
    """Notebook 01 as `cardioembed run --only 01` runs it with the teaching profile's
    values changed; returns what the runner reported and the notebook printed."""
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    runner_log = logging.getLogger("cardioembed.book.runner")
    level = runner_log.level
    runner_log.addHandler(handler)
    runner_log.setLevel(logging.INFO)
    try:
        profile = load_profile("teaching").with_overrides({"runs_root": str(runs_root), **changes})
        (executed,) = run_profile(profile, only=["01"])
    finally:
        runner_log.removeHandler(handler)
        runner_log.setLevel(level)
    cells = json.loads(executed.read_text())["cells"]
    printed = "".join(
        "".join(out.get("text", "")) for cell in cells for out in cell.get("outputs", [])
    )
    return "\n".join(lines), printed


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """A textbook folder with a good book, a book with code, a broken PDF and a file in
    another encoding, curated with seed 42, then 7, then 42 again."""
    root = tmp_path_factory.mktemp("curation")
    books = root / "books"
    books.mkdir()
    (books / "good.txt").write_text(BOOK)
    (books / "notes.md").write_text(NOTES)
    (books / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (books / "latin.txt").write_bytes("Caf\u00e9 au lait spots are seen.".encode("latin-1"))
    runs, out = root / "runs", root / "runs" / "teaching" / "corpus"
    made = {"runs": runs, "out": out, "books": books}
    for name, seed in (("first", 42), ("second", 7), ("again", 42)):
        made[f"{name}_said"], made[f"{name}_printed"] = run_01(
            runs, textbook_dir=str(books), seed=seed, **TEXTBOOKS
        )
        made[name] = load_corpus(out)["folder"]  # the current one, which notebooks 02-06 read
        made[f"{name}_files"] = {p.name: p.read_bytes() for p in made[name].iterdir()}
    return made


@pytest.mark.slow
def test_textbooks_are_curated_and_the_skipped_files_reported(curated):
    corpus = load_corpus(curated["first"])
    assert "curated now" in curated["first_printed"]
    # the reader's progress and its skipped files are printed in the chapter
    assert curated["first_printed"].count("reading textbook 1 of 4: broken.pdf") == 1
    assert curated["first_printed"].count("skipped: latin.txt is not UTF-8 text") == 1
    assert any("broken.pdf" in p for p in corpus["problems"])
    texts = set(corpus["sentences"]["text"])
    assert any("e.g. after climbing stairs" in t for t in texts)
    assert any("i.v." in t and "furosemide" in t for t in texts)
    assert not any("summary(fit)" in t for t in texts)
    pairs, counts = corpus["pairs"], corpus["counts"]
    assert len(pairs) > 0 and (pairs.groupby("group")["split"].nunique() == 1).all()
    assert (
        counts["pairs"] == counts["pairs_train"] + counts["pairs_validation"] + counts["pairs_test"]
    )
    assert counts["textbook_dropped_code"] == 1  # the fenced block of notes.md
    assert counts["textbook_dropped_headings"] == 3  # two chapter lines, one Markdown heading
    manifest = corpus["manifest"]
    assert set(manifest["inputs"]) == {"good.txt", "notes.md"}  # the files used
    files = corpus["files"].set_index("file")
    assert files["status"].to_dict() == {
        "good.txt": "used",
        "notes.md": "used",
        "broken.pdf": "skipped",
        "latin.txt": "skipped",
    }
    assert "iconv" in files.loc["latin.txt", "reason"]
    assert counts["textbook_files_skipped"] == 2
    # the terminal lists the skipped files under the notebook's line
    assert curated["first_said"].count("skipped: ") == 2


@pytest.mark.slow
def test_each_seed_has_its_own_folder_and_the_same_key_is_reused(curated):
    first, second, again = curated["first"], curated["second"], curated["again"]
    assert second != first and second.parent == first.parent == curated["out"]
    assert "seed7" in second.name and "seed42" in first.name
    assert "curated now" in curated["second_printed"]
    assert load_corpus(first)["manifest"]["params"]["seed"] == 42
    # Back to the first parameters: reused as it was, and current again.
    assert again == first and "reused" in curated["again_printed"]
    assert curated["again_files"] == curated["first_files"]
    assert curated["again_said"].count("skipped: ") == 2  # reported again


@pytest.mark.slow
def test_strict_mode_and_no_pairs_stop_before_anything_is_written(curated):
    runs, out = curated["runs"], curated["out"]
    before = {p.name for p in out.iterdir()}
    with pytest.raises(NotebookFailed, match="strict") as info:
        run_01(runs, textbook_dir=str(curated["books"]), strict=True, **TEXTBOOKS)
    assert "strict=False" in str(info.value)
    assert "broken.pdf" in str(info.value) and "latin.txt" in str(info.value)
    with pytest.raises(NotebookFailed, match="no pairs could be made") as info:
        run_01(runs, sources=["icd10cm"], pair_kinds=["name-definition"])
    assert "nothing was written" in str(info.value)
    assert {p.name for p in out.iterdir()} == before
    assert load_corpus(out)["folder"] == curated["again"]
    assert {p.name: p.read_bytes() for p in curated["again"].iterdir()} == curated["again_files"]
