"""LoRA training: temperature, configs, save/reload, resume, decoder base, two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cardioembed.errors import InputError, ParameterError
from cardioembed.profiles import notebook_values
from cardioembed.training.recipe import (
    RandomStateAcrossValidation,
    Recipe,
    data_fingerprint,
    load_history,
    load_trained,
    scale_from_temperature,
    train,
    train_or_load,
)

ROOT = Path(__file__).resolve().parent.parent


def make_pairs(n_train: int = 32, n_val: int = 8, negatives: bool = False) -> pd.DataFrame:
    rows = []
    for i in range(n_train + n_val):
        rows.append(
            {
                "anchor": f"cardiac term {i} of kind {i % 5}",
                "positive": f"definition {i}: an abnormality of heart structure number {i * 7}",
                "negative": f"unrelated sentence {i} about kidneys" if negatives else None,
                "split": "train" if i < n_train else "validation",
                "group": f"g{i}",
                "source": "test",
                "kind": "name-definition",
            }
        )
    return pd.DataFrame(rows)


def make_recipe(**changes) -> Recipe:
    """Notebook 02's recipe with some values changed."""
    return Recipe.from_parameters({**notebook_values("02"), **changes})


RECIPE = make_recipe(
    pooling="eos",
    query_instruction="Given a cardiology term, retrieve its definition",
    lora_rank=4,
    lora_alpha=8,
    lora_top_layers=0,
    batch_size=8,
    learning_rate=1e-3,
    max_steps=4,
    eval_steps=2,
    warmup_ratio=0.0,
)
TEXTS = ["cardiac term 3 of kind 3", "a sentence about the aortic valve"]


# ----------------------------------------------------------------------------- fast
def test_scale_from_temperature():
    assert scale_from_temperature(0.05) == pytest.approx(20.0)
    assert scale_from_temperature(1) == 1.0
    for bad in (0, -0.1, float("nan"), "x", None):
        with pytest.raises(ParameterError) as info:
            scale_from_temperature(bad)
        assert info.value.name == "temperature"
    with pytest.raises(ParameterError):
        make_recipe(temperature=0)


def test_run_name_is_readable_and_covers_every_parameter():
    pairs = make_pairs()
    recipe = make_recipe(pooling="eos", batch_size=64, learning_rate=2e-3, mini_batch_size=16)
    name = recipe.run_name(pairs)
    assert name.startswith("minilm-eos-r16-tau0.05-e1-b64-lr2e-3-s42-")
    assert recipe.replace(max_seq_length=64).run_name(pairs) != name
    hub = recipe.replace(base_model="Qwen/Qwen3-Embedding-8B").run_name(pairs)
    assert hub.startswith("qwen3-embedding-8b-eos-")
    with pytest.raises(ParameterError, match="batch_size"):
        make_recipe(batch_size=1)


def test_recipe_needs_every_parameter_and_names_the_missing_ones():
    values = notebook_values("02")
    del values["temperature"]
    with pytest.raises(InputError, match="temperature"):
        Recipe.from_parameters(values)


def test_data_fingerprint_tracks_content():
    pairs = make_pairs()
    assert data_fingerprint(pairs) == data_fingerprint(pairs.copy())
    changed = pairs.copy()
    changed.loc[0, "positive"] = "other"
    assert data_fingerprint(changed) != data_fingerprint(pairs)


def test_hard_negatives_required_when_asked(tmp_path):
    recipe = RECIPE.replace(max_steps=1, use_hard_negatives=True)
    with pytest.raises(ParameterError) as info:
        train(make_pairs(), recipe, tmp_path / "run")
    assert "mine_hard_negatives" in str(info.value)


def test_checkpoints_of_other_parameters_are_not_resumed(tmp_path):
    ckpt = tmp_path / "run" / "checkpoints"
    (ckpt / "checkpoint-2").mkdir(parents=True)
    (ckpt / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (ckpt / "run_key.json").write_text(json.dumps({"key": "other"}))
    with pytest.raises(InputError, match="other parameters"):
        train(make_pairs(), RECIPE, tmp_path / "run")


# ----------------------------------------------------------------------------- trained
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run stopped after 2 of 4 steps, then resumed to the end."""
    out = tmp_path_factory.mktemp("train") / "run"
    pairs = make_pairs()
    first = train(pairs, RECIPE, out, stop_after_steps=2)
    second = train(pairs, RECIPE, out)
    return pairs, out, first, second


def test_resume_continues_from_last_checkpoint(trained):
    _, out, first, second = trained
    assert not first.finished and first.global_step == 2
    assert second.resumed_from is not None and second.resumed_from.endswith("checkpoint-2")
    assert second.global_step == 4 and second.finished
    losses = second.history.dropna(subset=["loss"])
    assert sorted(losses["step"].astype(int)) == [1, 2, 3, 4]
    assert np.isfinite(losses["loss"]).all()
    assert not (out / "checkpoints").exists()  # removed once finished


def test_run_folder_is_a_sentence_transformers_model(trained):
    _, out, _, _ = trained
    names = {p.name for p in out.iterdir()}
    assert {"modules.json", "adapter_config.json", "adapter_model.safetensors"} <= names
    assert {"README.md", "history.csv", "manifest.json"} <= names
    history = load_history(out)
    assert "eval_validation_cosine_accuracy@1" in history.columns
    assert history["eval_validation_cosine_accuracy@1"].dropna().between(0, 1).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["global_step"] == 4
    assert Recipe.of_run(out) == RECIPE  # what notebooks 03-05 start from
    card = (out / "README.md").read_text()
    assert "MultipleNegativesRankingLoss" in card and "cosine_accuracy@1" in card


def test_saved_base_reference_is_portable(trained):
    _, out, _, _ = trained
    site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    for name in ("adapter_config.json", "manifest.json", "modules.json"):
        text = (out / name).read_text()
        assert not any(folder in text for folder in site), name
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    # in one order whatever the process's hash seed: identical runs write identical files
    assert adapter["target_modules"] == sorted(adapter["target_modules"])


def test_plain_sentence_transformers_reloads_the_trained_model(trained):
    """`SentenceTransformer(folder)` gives the embeddings training left; the adapter is
    really applied (the base alone differs)."""
    from sentence_transformers import SentenceTransformer

    _, out, _, second = trained
    before = second.model.encode(TEXTS, prompt_name="query")
    reloaded = SentenceTransformer(str(out))
    after = reloaded.encode(TEXTS, prompt_name="query")
    assert np.abs(before - after).max() < 1e-6
    assert reloaded.prompts["query"] == RECIPE.query_prompt
    base = RECIPE.load_base().encode(TEXTS, prompt_name="query")
    assert np.abs(base - after).max() > 1e-4
    again = load_trained(out).encode(TEXTS, prompt_name="query")
    assert np.abs(again - after).max() < 1e-6


def test_train_or_load_reuses_finished_run(trained, monkeypatch):
    pairs, out, _, _ = trained
    import cardioembed.training.recipe as training

    def fail(*args, **kwargs):
        raise AssertionError("should not train again")

    monkeypatch.setattr(training, "train", fail)
    result = train_or_load(pairs, RECIPE, out)
    assert result.loaded and result.global_step == 4 and result.model is not None


def test_validation_does_not_change_what_is_trained(trained, tmp_path):
    """Sweeps train without validation and reuse notebook 02's validated run under the
    same key: that is only right if validating leaves the training untouched (MiniLM's
    dropout and every evaluation DataLoader draw from the same generator)."""
    pairs, _, _, second = trained
    unvalidated = train(pairs, RECIPE, tmp_path / "run", validate=False)
    assert "eval_validation_cosine_accuracy@1" in second.history  # it did validate
    losses = [r.history.dropna(subset=["loss"])["loss"].tolist() for r in (second, unvalidated)]
    assert losses[0] == losses[1]


def test_a_change_to_the_training_code_trains_again(trained, tmp_path, monkeypatch):
    """A run made by other code is never reused: editing the loss in the training code
    changes the run's key, so load-or-train trains again; code of another stage does not."""
    import shutil

    from cardioembed import artifacts

    pairs, finished, _, _ = trained
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    package = tmp_path / "cardioembed"
    shutil.copytree(
        artifacts.ROOT / "cardioembed", package, ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(artifacts.ROOT / "notebooks", tmp_path / "notebooks")
    monkeypatch.setattr(artifacts, "ROOT", tmp_path)
    artifacts.code_hash.cache_clear()
    name = RECIPE.run_name(pairs)
    try:
        assert train_or_load(pairs, RECIPE, out).loaded  # an exact copy of the code
        plots = package / "book" / "plots.py"
        plots.write_text(plots.read_text() + "\n# another stage\n")
        artifacts.code_hash.cache_clear()
        assert train_or_load(pairs, RECIPE, out).loaded
        notebook = tmp_path / "notebooks" / "02_train_lora.ipynb"
        notebook.write_text(notebook.read_text().replace("## Step 1", "## Step one"))
        artifacts.code_hash.cache_clear()
        assert train_or_load(pairs, RECIPE, out).loaded  # its prose is not its code
        text = notebook.read_text()
        notebook.write_text(
            text.replace("loss = recipe.loss(model)", "loss = recipe.loss(model) * 2")
        )
        artifacts.code_hash.cache_clear()
        assert RECIPE.run_name(pairs) != name  # its code is
        glue_cell = "glue(key, value, display=False)"
        assert glue_cell in text  # a remove-cell that glues numbers for the book
        notebook.write_text(text.replace(glue_cell, "glue(key, value, display=True)"))
        artifacts.code_hash.cache_clear()
        assert RECIPE.run_name(pairs) == name
        notebook.write_text(text)
        recipe_py = package / "training" / "recipe.py"
        text = recipe_py.read_text()
        assert "scale = scale_from_temperature(self.temperature)" in text
        recipe_py.write_text(
            text.replace("scale = scale_from_temperature(", "scale = 2 * scale_from_temperature(")
        )
        artifacts.code_hash.cache_clear()
        assert RECIPE.run_name(pairs) != name  # another folder for the new code's run
        retrained = train_or_load(pairs, RECIPE, out)  # and never the old one's model
        assert not retrained.loaded and retrained.global_step == 4
    finally:
        artifacts.code_hash.cache_clear()


def test_dtype_device_and_processes_are_part_of_a_runs_key(monkeypatch):
    pairs = make_pairs()
    one = RECIPE.run_params(pairs)
    assert one["dtype"] == "float32" and one["device"] == "cpu" and one["processes"] == 1
    assert one["base"].startswith("sentence-transformers/all-MiniLM-L6-v2@")
    assert RECIPE.replace(dtype="bfloat16").run_name(pairs) != RECIPE.run_name(pairs)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert RECIPE.run_params(pairs)["processes"] == 2
    two = RECIPE.run_name(pairs)
    gathered = RECIPE.run_params(pairs, gather_across_devices=True)
    assert gathered["gather_across_devices"] and gathered != RECIPE.run_params(pairs)
    assert RECIPE.run_name(pairs, gather_across_devices=True) != two
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert RECIPE.run_name(pairs) != two


# ----------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_cached_loss_with_hard_negatives(tmp_path):
    recipe = RECIPE.replace(
        pooling="mean", max_steps=1, mini_batch_size=4, use_hard_negatives=True, eval_steps=100
    )
    result = train(make_pairs(negatives=True, n_val=0), recipe, tmp_path / "run")
    assert result.finished and result.global_step == 1
    assert (tmp_path / "run" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_decoder_base_smollm2(tmp_path):
    recipe = RECIPE.replace(
        base_model="smollm2",
        max_seq_length=16,
        lora_target_modules="q_proj,v_proj",
        batch_size=2,
        max_steps=2,
        eval_steps=100,
        query_instruction="",
    )
    result = train(make_pairs(8, 0), recipe, tmp_path / "run")
    assert result.finished and result.global_step == 2
    assert result.model.tokenizer.padding_side == "left"
    losses = result.history["loss"].dropna()
    assert len(losses) == 2 and np.isfinite(losses).all()
    adapter = json.loads((tmp_path / "run" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"].endswith("smollm2-135m-instruct-fp32")
    assert set(adapter["target_modules"]) == {"q_proj", "v_proj"}


# `python -m cardioembed.training.cli` whose trainer appends each anchor it trains on to
# <folder>/anchors_rank<r>.txt (the folder: the first argument), to check the sharding.
RECORDING_CLI = """
import functools
import os
import sys
from pathlib import Path

from transformers import TrainerCallback

from cardioembed.training import cli, recipe

path = Path(sys.argv.pop(1)) / f"anchors_rank{os.environ.get('RANK', '0')}.txt"
path.parent.mkdir(parents=True, exist_ok=True)


class RecordAnchors(TrainerCallback):
    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        # accelerate wraps the trainer's DataLoader; the batches come from the one inside
        loader = getattr(train_dataloader, "base_dataloader", train_dataloader)
        collate = loader.collate_fn

        def recording(features):
            with open(path, "a") as handle:
                handle.writelines(str(f["anchor"]).replace("\\n", " ") + "\\n" for f in features)
            return collate(features)

        loader.collate_fn = recording


recipe.train = functools.partial(recipe.train, callbacks=[RecordAnchors()])
sys.exit(cli.main())
"""


@pytest.mark.slow
def test_two_processes_torchrun(tmp_path):
    pairs = make_pairs(64, 0)
    pairs.to_parquet(tmp_path / "pairs.parquet")
    (tmp_path / "recording_cli.py").write_text(RECORDING_CLI)
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    command = [
        str(torchrun),
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        str(tmp_path / "recording_cli.py"),
        str(tmp_path / "anchors"),
        "--pairs",
        str(tmp_path / "pairs.parquet"),
        "--output",
        str(tmp_path / "run"),
        "--profile",
        "teaching",
        "-p",
        "batch_size=8",
        "-p",
        "train_kinds=[name-definition]",
        "--gather-across-devices",
    ]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = [
        set((tmp_path / "anchors" / f"anchors_rank{r}.txt").read_text().splitlines())
        for r in (0, 1)
    ]
    assert seen[0] and seen[1] and not (seen[0] & seen[1])  # each rank its own shard
    assert seen[0] | seen[1] == set(pairs["anchor"])
    record = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert record["world_size"] == 2
    assert record["global_step"] == 64 // (2 * 8)  # half the steps of one process
    assert (tmp_path / "run" / "adapter_model.safetensors").is_file()


def test_training_pairs_keep_the_chosen_kinds_and_name_the_available_ones():
    pairs = pd.DataFrame(
        {
            "anchor": list("abcd"),
            "positive": list("efgh"),
            "split": ["train", "train", "validation", "test"],
            "kind": ["name-definition", "adjacent", "name-definition", "adjacent"],
        }
    )
    chosen = RECIPE.replace(train_kinds=["name-definition"]).training_pairs(pairs)
    assert list(chosen["anchor"]) == ["a", "c"]
    with pytest.raises(ParameterError, match="adjacent, name-definition"):
        RECIPE.replace(train_kinds=["paraphrase"]).training_pairs(pairs)
    with pytest.raises(ParameterError, match="train_kinds"):
        RECIPE.replace(train_kinds=[]).training_pairs(pairs)


def test_main_run_pointer_names_a_finished_run(tmp_path):
    from cardioembed.errors import InputError
    from cardioembed.training.recipe import main_run, record_main_run

    with pytest.raises(InputError, match="run notebook 02"):
        main_run(tmp_path)
    record_main_run(tmp_path, "run-a")
    with pytest.raises(InputError, match="missing or unfinished"):
        main_run(tmp_path)
    (tmp_path / "run-a").mkdir()
    (tmp_path / "run-a" / "manifest.json").write_text("{}")
    assert main_run(tmp_path) == tmp_path / "run-a"


def test_the_random_state_comes_back_also_after_an_evaluation_that_raised():
    """`TrainingRun.training` closes the callback when the block ends, whatever happened."""
    import torch
    from transformers import TrainerControl

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    callback = RandomStateAcrossValidation()
    callback.on_step_end(None, None, TrainerControl(should_evaluate=True))
    torch.rand(10)  # what an evaluation's DataLoader draws before it raises
    callback.close()  # the block's end
    callback.close()  # a second close does nothing
    assert torch.equal(torch.rand(3), expected)
