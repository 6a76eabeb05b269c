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
from cardioembed.modeling import LoraSpec, ModelSpec, build_model
from cardioembed.training import (
    TrainConfig,
    data_fingerprint,
    load_history,
    load_trained,
    run_name,
    scale_from_temperature,
    train,
    train_or_load,
    trained_model_spec,
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


SPEC = ModelSpec(
    "minilm",
    pooling="eos",
    max_seq_length=32,
    query_instruction="Given a cardiology term, retrieve its definition",
)
LORA = LoraSpec(rank=4, alpha=8, dropout=0.0)
CONFIG = TrainConfig(
    batch_size=8, learning_rate=1e-3, max_steps=4, eval_steps=2, save_steps=2, warmup_ratio=0.0
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
        TrainConfig(temperature=0)


def test_train_config_round_trip_and_run_name():
    config = TrainConfig(epochs=1, batch_size=64, learning_rate=2e-3, mini_batch_size=16)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    name = run_name(ModelSpec("minilm", pooling="eos"), LoraSpec(), config, "abc")
    assert name.startswith("minilm-eos-r16-tau0.05-e1-b64-lr2e-3-s42-")
    other = run_name(
        ModelSpec("minilm", pooling="eos", max_seq_length=32), LoraSpec(), config, "abc"
    )
    assert other != name  # the hash covers every parameter
    hub = run_name(ModelSpec("Qwen/Qwen3-Embedding-8B", pooling="eos"), LoraSpec(), config, "abc")
    assert hub.startswith("qwen3-embedding-8b-eos-")
    with pytest.raises(ParameterError):
        TrainConfig(batch_size=1)


def test_data_fingerprint_tracks_content():
    pairs = make_pairs()
    assert data_fingerprint(pairs) == data_fingerprint(pairs.copy())
    changed = pairs.copy()
    changed.loc[0, "positive"] = "other"
    assert data_fingerprint(changed) != data_fingerprint(pairs)


def test_hard_negatives_required_when_asked(tmp_path):
    config = TrainConfig(batch_size=8, max_steps=1, use_hard_negatives=True)
    with pytest.raises(ParameterError) as info:
        train(make_pairs(), SPEC, LORA, config, tmp_path / "run", progress=False)
    assert "mine_hard_negatives" in str(info.value)


def test_checkpoints_of_other_parameters_are_not_resumed(tmp_path):
    ckpt = tmp_path / "run" / "checkpoints"
    (ckpt / "checkpoint-2").mkdir(parents=True)
    (ckpt / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (ckpt / "run_params.json").write_text(json.dumps({"params_hash": "other"}))
    with pytest.raises(InputError, match="other parameters"):
        train(make_pairs(), SPEC, LORA, CONFIG, tmp_path / "run", progress=False)


# ----------------------------------------------------------------------------- trained
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run stopped after 2 of 4 steps, then resumed to the end."""
    out = tmp_path_factory.mktemp("train") / "run"
    pairs = make_pairs()
    first = train(pairs, SPEC, LORA, CONFIG, out, progress=False, stop_after_steps=2)
    second = train(pairs, SPEC, LORA, CONFIG, out, progress=False)
    return pairs, out, first, second


def test_resume_continues_from_last_checkpoint(trained):
    _, out, first, second = trained
    assert not first.finished and first.global_step == 2
    assert second.resumed_from is not None and second.resumed_from.endswith("checkpoint-2")
    assert second.start_step == 2 and second.global_step == 4 and second.finished
    losses = second.history.dropna(subset=["loss"])
    assert sorted(losses["step"].astype(int)) == [1, 2, 3, 4]
    assert np.isfinite(losses["loss"]).all()
    assert not (out / "checkpoints").exists()  # removed once finished


def test_artifact_files_history_and_eval(trained):
    _, out, _, _ = trained
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter",
        "cardioembed_model.json",
        "history.csv",
        "manifest.json",
    ]
    history = load_history(out)
    assert "eval_validation_cosine_accuracy@1" in history.columns
    assert history["eval_validation_cosine_accuracy@1"].dropna().between(0, 1).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "lora-adapter" and manifest["global_step"] == 4


def test_saved_config_is_portable(trained):
    _, out, _, _ = trained
    site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    for name in ("cardioembed_model.json", "adapter/adapter_config.json", "manifest.json"):
        text = (out / name).read_text()
        for folder in site:
            assert folder not in text, name
        assert "site-packages" not in text.replace("\\", "/") or name == "manifest.json"
    record = json.loads((out / "cardioembed_model.json").read_text())
    assert record["base"] == "minilm"
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "minilm"


def test_reload_gives_same_embeddings(trained):
    _, out, _, second = trained
    before = second.model.encode(TEXTS, prompt_name="query")
    reloaded = load_trained(out)
    assert trained_model_spec(out) == SPEC  # what the untrained comparison is built from
    after = reloaded.encode(TEXTS, prompt_name="query")
    assert np.abs(before - after).max() < 1e-6
    base = build_model(SPEC).encode(TEXTS, prompt_name="query")
    assert np.abs(base - after).max() > 1e-4  # the adapter is really applied
    merged = load_trained(out, merge=True)
    assert np.abs(merged.encode(TEXTS, prompt_name="query") - after).max() < 1e-5
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for m in merged.transformers_model.modules() if isinstance(m, BaseTunerLayer)]
    assert layers and all(m.merged for m in layers)


def test_train_or_load_reuses_finished_run(trained, monkeypatch):
    pairs, out, _, _ = trained
    import cardioembed.training as training

    def fail(*args, **kwargs):
        raise AssertionError("should not train again")

    monkeypatch.setattr(training, "train", fail)
    result = train_or_load(pairs, SPEC, LORA, CONFIG, out)
    assert result.loaded and result.global_step == 4 and result.model is not None


# ----------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_cached_loss_with_hard_negatives(tmp_path):
    config = TrainConfig(
        batch_size=8,
        max_steps=1,
        mini_batch_size=4,
        use_hard_negatives=True,
        save_steps=100,
        eval_steps=100,
    )
    result = train(
        make_pairs(negatives=True, n_val=0),
        ModelSpec("minilm", max_seq_length=32),
        LORA,
        config,
        tmp_path / "run",
        progress=False,
    )
    assert result.finished and result.global_step == 1
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_decoder_base_smollm2(tmp_path):
    spec = ModelSpec("smollm2", pooling="eos", max_seq_length=16)
    lora = LoraSpec(rank=4, alpha=8, target_modules=("q_proj", "v_proj"))
    config = TrainConfig(
        batch_size=2, max_steps=2, learning_rate=1e-3, save_steps=100, eval_steps=100
    )
    result = train(make_pairs(8, 0), spec, lora, config, tmp_path / "run", progress=False)
    assert result.finished and result.global_step == 2
    assert result.model.tokenizer.padding_side == "left"
    losses = result.history["loss"].dropna()
    assert len(losses) == 2 and np.isfinite(losses).all()
    adapter = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "smollm2"
    assert set(adapter["target_modules"]) == {"q_proj", "v_proj"}


@pytest.mark.slow
def test_two_processes_torchrun(tmp_path):
    pairs = make_pairs(64, 0)
    pairs.to_parquet(tmp_path / "pairs.parquet")
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [
        str(torchrun),
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "cardioembed.train_cli",
        "--pairs",
        str(tmp_path / "pairs.parquet"),
        "--output",
        str(tmp_path / "run"),
        "--batch-size",
        "8",
        "--max-seq-length",
        "32",
        "--gather-across-devices",
        "--record-anchors",
        str(tmp_path / "anchors"),
        "--no-progress",
        "--save-steps",
        "100",
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
    record = json.loads((tmp_path / "run" / "cardioembed_model.json").read_text())
    assert record["world_size"] == 2
    assert record["global_step"] == 64 // (2 * 8)  # half the steps of one process
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()


def test_select_pairs_keeps_the_chosen_kinds_and_names_the_available_ones():
    from cardioembed.errors import ParameterError
    from cardioembed.training import select_pairs

    pairs = pd.DataFrame(
        {
            "anchor": list("abcd"),
            "positive": list("efgh"),
            "split": ["train", "train", "validation", "test"],
            "kind": ["name-definition", "adjacent", "name-definition", "adjacent"],
        }
    )
    chosen = select_pairs(pairs, ["name-definition"])
    assert list(chosen["anchor"]) == ["a", "c"]
    with pytest.raises(ParameterError, match="adjacent, name-definition"):
        select_pairs(pairs, ["paraphrase"])
    with pytest.raises(ParameterError, match="train_kinds"):
        select_pairs(pairs, [])


def test_main_run_pointer_names_a_finished_run(tmp_path):
    from cardioembed.errors import InputError
    from cardioembed.training import MODEL_FILE, main_run, record_main_run

    with pytest.raises(InputError, match="run notebook 02"):
        main_run(tmp_path)
    record_main_run(tmp_path, "run-a")
    with pytest.raises(InputError, match="missing or unfinished"):
        main_run(tmp_path)
    (tmp_path / "run-a").mkdir()
    (tmp_path / "run-a" / MODEL_FILE).write_text("{}")
    assert main_run(tmp_path) == tmp_path / "run-a"
