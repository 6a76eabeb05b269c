"""What a user relies on when things around a run go wrong: caches that cannot be used,
a corpus replaced by a hand run, a text where a number belongs, hints for their profile."""

import logging

import numpy as np
import pandas as pd
import pytest
from test_runner import unwritable

from cardioembed import cli
from cardioembed.artifacts import write_manifest
from cardioembed.curation.corpus import curation_parameters
from cardioembed.errors import InputError, ParameterError
from cardioembed.evaluation.metrics import Encoder
from cardioembed.evaluation.search import search, trained_corpus
from cardioembed.profiles import check_values, notebook_values
from cardioembed.training.recipe import ARTIFACT_KIND, Recipe, data_fingerprint


class Letters:
    """A model that embeds a text by its first letters."""

    def encode(self, texts, **kwargs):
        return np.array([[ord(t[0]), ord(t[-1]), 1.0] for t in texts], dtype=np.float32)


def test_an_unusable_embedding_cache_is_one_warning_then_computed(tmp_path, caplog):
    texts, model = ["atrial flutter", "heart block"], Letters()
    expected = Encoder(model)(texts)
    with unwritable(tmp_path / "cache") as cache:
        for _ in range(2):
            assert np.allclose(Encoder(model, cache)(texts), expected)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"the cache {cache} cannot be used" in warnings[0]
    # A damaged file: computed again.
    Encoder(model, tmp_path / "damaged")(texts)
    (stored,) = (tmp_path / "damaged").rglob("*.npy")
    stored.write_bytes(b"damaged")
    assert np.allclose(Encoder(model, tmp_path / "damaged")(texts), expected)
    assert f"the cache {tmp_path / 'damaged'} cannot be used" in caplog.text


def _corpus(folder, anchors):
    folder.mkdir(parents=True)
    pairs = pd.DataFrame(
        {
            "anchor": anchors,
            "positive": [f"{a} defined" for a in anchors],
            "split": "train",
            "kind": "name-definition",
        }
    )
    pairs.to_parquet(folder / "pairs.parquet", index=False)
    write_manifest(folder, kind="corpus", params={"anchors": anchors})
    return pairs


def _trained_on(run, pairs):
    recipe = Recipe.from_parameters({**notebook_values("02"), "train_kinds": ["name-definition"]})
    run.mkdir(parents=True)
    params = {"recipe": recipe.to_dict(), "data_hash": data_fingerprint(pairs)}
    write_manifest(run, kind=ARTIFACT_KIND, params=params)


def test_a_model_is_joined_with_the_corpus_it_was_trained_on(tmp_path):
    corpora = tmp_path / "corpus"
    older = _corpus(corpora / "older", ["angina", "syncope", "murmur"])
    _corpus(corpora / "newer", ["angina"])  # e.g. notebook 01 run by hand since
    _trained_on(tmp_path / "models" / "run-a", older)
    assert trained_corpus(tmp_path / "models" / "run-a", corpora) == corpora / "older"
    _trained_on(tmp_path / "models" / "run-b", older.head(2))  # its corpus is gone
    with pytest.raises(InputError, match="run-b was trained on a corpus that is no longer"):
        trained_corpus(tmp_path / "models" / "run-b", corpora)


def test_only_finished_models_are_offered_and_the_list_is_short(tmp_path):
    models = tmp_path / "smoke" / "models"
    for number in range(7):
        _trained_on(models / f"run-{number}", pd.DataFrame({"anchor": ["a"]}))
    (models / "failed-run" / "checkpoints").mkdir(parents=True)  # no finished model
    with pytest.raises(InputError) as info:
        search("smoke", "failed-run", tmp_path, "angina", 3)
    assert "failed-run" not in str(info.value).split("(newest:")[1]
    assert "and 2 more" in str(info.value) and str(info.value).count("run-") == 5


def test_hints_carry_the_profile_they_are_for(tmp_path, capsys):
    assert cli.main(["search", "angina", "--profile", "smoke", "--runs-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"cardioembed run --profile smoke -p runs_root={tmp_path} --only" in err


def test_a_text_where_a_number_belongs_is_named_with_an_example():
    values = {**notebook_values("02"), "learning_rate": "fast"}  # papermill -p learning_rate fast
    with pytest.raises(ParameterError, match="'learning_rate' = 'fast'.*a float, e.g. 0.002"):
        check_values(values, "02")
    for name in ("lora_alpha", "lora_dropout", "epochs", "warmup_ratio"):
        with pytest.raises(ParameterError, match=f"'{name}' = 'fast'"):
            check_values({**notebook_values("02"), name: "fast"}, "02")
    check_values({**notebook_values("02"), "epochs": 2}, "02")  # a whole number is a float


def test_a_missing_parameter_is_named_with_its_notebook():
    """A notebook run without one of its parameters, or a run saved before a parameter
    existed, names what is missing instead of failing later."""
    values = {k: v for k, v in notebook_values("02").items() if k != "pooling"}
    with pytest.raises(InputError, match="pooling missing: pass every parameter of notebook 02"):
        Recipe.from_parameters(values)
    values = {k: v for k, v in notebook_values("01").items() if k not in ("seed", "strict")}
    with pytest.raises(InputError, match="seed, strict missing|strict, seed missing"):
        curation_parameters(values)


def test_a_folder_that_cannot_be_locked_is_named_with_what_to_do(tmp_path, monkeypatch):
    """Some network storage has no file locks: the run stops with a message, not a
    traceback, before anything is written."""
    import filelock

    from cardioembed.book.runner import profile_lock

    def no_locks(self, *args, **kwargs):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(filelock.FileLock, "acquire", no_locks)
    with pytest.raises(InputError, match="cannot be locked.*runs_root"):
        with profile_lock(tmp_path):
            pass
