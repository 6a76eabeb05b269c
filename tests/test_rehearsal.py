"""The paper's path without its hardware: the rehearsal textbook, the checks that run
before any notebook, where models are placed, resumable paraphrasing, and (slow) every
notebook executed with the rehearsal profile."""

import json
import logging
import subprocess
import sys
import time
import zipfile

import pandas as pd
import pytest
import torch
from conftest import write_tiny_qwen3

from cardioembed import models
from cardioembed.book import preflight as pf
from cardioembed.curation import pairs as P
from cardioembed.curation.rehearsal import FILES, write_rehearsal_textbooks
from cardioembed.errors import InputError
from cardioembed.profiles import load_profile

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ the textbook


def test_the_rehearsal_textbook_is_read_from_all_three_formats(tmp_path):
    from cardioembed.curation.sentences import split_sentences
    from textbook_reader.books import read_folder

    folder = write_rehearsal_textbooks(tmp_path / "books")
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(FILES)
    with zipfile.ZipFile(folder / "cardiology-rehearsal.epub") as epub:
        assert epub.namelist()[0] == "mimetype"
        assert "META-INF/container.xml" in epub.namelist()
    books, problems = read_folder(folder)
    assert not problems and sorted(b.path.name for b in books) == sorted(FILES)
    assert next(b for b in books if b.path.suffix == ".pdf").pages >= 2
    chapters = {
        (b.path.name, c): split_sentences(text, 20)
        for b in books
        for c, text in enumerate(b.chapters)
    }
    assert {name for name, _ in chapters} == set(FILES)
    assert min(map(len, chapters.values())) >= 5
    paragraphs = [p for b in books for text in b.chapters for p in text.split("\n\n")]
    assert not any(p.strip().isdigit() for p in paragraphs)  # page numbers dropped


def test_the_rehearsal_textbook_is_the_same_every_time(tmp_path):
    first = write_rehearsal_textbooks(tmp_path / "a")
    second = write_rehearsal_textbooks(tmp_path / "b")
    for name in FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


# ------------------------------------------------------------------ the preflight


def test_the_paper_profile_fails_in_seconds_offline_naming_what_is_missing(tmp_path):
    """`cardioembed run --profile paper` on a machine without its models: one message
    naming each one and how to provide it, before any notebook starts."""
    env = {
        **__import__("os").environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp_path / "empty-cache"),
    }
    command = [sys.executable, "-m", "cardioembed.cli", "run", "--profile", "paper"]
    command += ["-p", f"runs_root={tmp_path / 'runs'}"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    assert done.returncode == 2, done.stderr
    message = done.stderr
    assert "Traceback" not in message
    for needle in (
        "base_model 'Qwen/Qwen3-Embedding-8B'",
        "paraphrase_model 'Qwen/Qwen2.5-7B-Instruct'",
        "hf download Qwen/Qwen3-Embedding-8B",
        # the paper's baselines, by pinned hub id
        "extra_models['GTE-Base'] 'thenlper/gte-base@",
        "extra_models['MedEmbed-base'] 'abhinand/MedEmbed-base-v0.1@",
        "extra_models['MedTE'] 'MohammadKhodadad/MedTE-cl15-step-8000'",
        "--revision c078288308d8dee004ab72c6191778064285ec0c",
        "textbook_dir is empty",
        "nothing was executed",
    ):
        assert needle in message, message
    assert not (tmp_path / "runs" / "paper").exists() or not any(
        (tmp_path / "runs" / "paper").glob("executed*")
    )
    assert seconds < 60  # seconds, not the hours of a run that fails late


def test_model_checks_accept_what_loads_and_name_what_does_not(tmp_path):
    assert pf.model_problem("base_model", "minilm", offline=True) is None
    assert pf.model_problem("base_model", "smollm2", offline=True) is None
    folder = tmp_path / "model"
    folder.mkdir()
    assert "no config.json" in pf.model_problem("base_model", str(folder), offline=True)
    (folder / "config.json").write_text("{}")
    assert pf.model_problem("base_model", str(folder), offline=True) is None
    assert "no such folder" in pf.model_problem("base_model", "./not/here", offline=True)
    # all-MiniLM-L6-v2 is in the hub cache once the package placed it there
    models.minilm()
    assert pf.model_problem("base_model", models.MINILM_HUB_ID, offline=True) is None
    missing = pf.model_problem("paraphrase_model", "nobody/no-such-model", offline=True)
    assert "not in the local Hugging Face cache" in missing
    assert "-p paraphrase_model=/path/to/no-such-model" in missing


def test_preflight_writes_the_rehearsal_textbook_and_checks_mined_negatives(tmp_path):
    values = {
        "sources": ["textbooks"],
        "textbook_dir": "rehearsal",
        "negatives": "mined",
        "negatives_model": "minilm",
    }
    checked = pf.preflight(values, set(values), tmp_path)
    assert checked["textbook_dir"] == str(tmp_path / pf.TEXTBOOKS_FOLDER)
    assert all((tmp_path / pf.TEXTBOOKS_FOLDER / name).is_file() for name in FILES)
    with pytest.raises(InputError, match="textbook_dir 'nowhere'"):
        pf.preflight({**values, "textbook_dir": "nowhere"}, set(values), tmp_path)
    with pytest.raises(InputError, match="negatives_model"):
        pf.preflight({**values, "negatives_model": "/no/such/miner"}, set(values), tmp_path)


def test_every_rehearsal_key_is_a_notebook_parameter():
    import papermill

    from cardioembed.profiles import check_parameters, notebooks

    profile = load_profile("rehearsal")
    declared = {nb: papermill.inspect_notebook(str(nb)) for nb in notebooks(root=ROOT)}
    check_parameters(profile.params, declared, "rehearsal")
    assert profile.params["split_fractions"] == {"train": 0.85, "validation": 0.1, "test": 0.05}
    assert "weightedmean" in profile.params["sweep_poolings"]


# ------------------------------------------------------------ devices and precision


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return write_tiny_qwen3(tmp_path_factory.mktemp("tiny-lm"), causal=True, layers=1, width=32)


@pytest.fixture()
def fake_gpu(monkeypatch):
    """`torch.cuda.is_available()` says yes and `.to(...)` records where a module is sent
    instead of moving it: the placement decisions, checked on a CPU."""
    sent: list[str] = []
    real_to = torch.nn.Module.to

    def to(self, *args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        if target is not None and "cuda" in str(target):
            sent.append(str(target))
            return self
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.nn.Module, "to", to)
    return sent


def test_dtype_is_bfloat16_on_a_gpu_and_float32_on_a_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert models.torch_dtype("auto") == torch.float32  # an older GPU without bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert models.torch_dtype("auto") == torch.bfloat16
    assert models.torch_dtype("float32") == torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert models.torch_dtype("auto") == torch.float32
    assert models.torch_dtype("bfloat16") == torch.bfloat16


def test_the_paraphrase_model_goes_to_the_gpu_in_bfloat16(tiny_lm, fake_gpu):
    model, _ = P.load_causal_lm(str(tiny_lm))
    assert next(model.parameters()).dtype == torch.bfloat16
    assert fake_gpu == ["cuda"]


def test_lora_adapters_train_in_float32_beside_bfloat16_weights(tiny_lm, tmp_path):
    """What training does after `add_adapter` (peft gives an adapter its base layer's
    dtype): the adapter is cast to float32, the base stays in bfloat16."""
    from peft.tuners.tuners_utils import cast_adapter_dtype

    from cardioembed.profiles import notebook_values
    from cardioembed.training.recipe import Recipe

    recipe = Recipe.from_parameters(
        {**notebook_values("02"), "dtype": "bfloat16", "lora_top_layers": 0}
    )
    model = recipe.load_base()
    model.add_adapter(recipe.lora_config(model))
    cast_adapter_dtype(model.transformers_model, "default")
    trainable = [p for p in model.parameters() if p.requires_grad]
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    assert all(p.dtype == torch.bfloat16 for p in frozen)


def test_the_embedding_base_goes_to_the_gpu_in_bfloat16(tiny_lm, fake_gpu):
    # the base of training and evaluation, and the mining model of `negatives: mined`
    from cardioembed.profiles import notebook_values
    from cardioembed.training.recipe import Recipe

    values = {**notebook_values("02"), "base_model": str(tiny_lm), "pooling": "eos"}
    model = Recipe.from_parameters(values).load_base()
    assert next(model.parameters()).dtype == torch.bfloat16
    assert any("cuda" in target for target in fake_gpu)


# ---------------------------------------------------------- resumable paraphrasing


def _texts(n):
    return [f"The heart finding number {i} is described in chapter {i}." for i in range(n)]


def test_a_restarted_paraphrase_run_writes_only_the_sentences_it_lacks(
    tiny_lm, tmp_path, monkeypatch, caplog
):
    model, tokenizer = P.load_causal_lm(str(tiny_lm))
    generated: list[int] = []
    real_generate = model.generate

    def counting_generate(**kwargs):
        generated.append(int(kwargs["input_ids"].shape[0]))
        return real_generate(**kwargs)

    model.generate = counting_generate
    monkeypatch.setattr(P, "load_causal_lm", lambda name, dtype="auto": (model, tokenizer))
    cache = tmp_path / "corpus" / "paraphrase-cache.json"
    run = dict(max_new_tokens=4, batch_size=1, cache=cache)
    caplog.set_level(logging.INFO, logger="cardioembed.curation.pairs")
    first, _ = P.paraphrase_replies(_texts(3), str(tiny_lm), **run)
    assert sum(generated) == 3
    assert len(json.loads(cache.read_text())["replies"]) == 3
    assert any(r.getMessage().endswith(" left") for r in caplog.records)  # the estimate

    generated.clear()
    again, n_cached = P.paraphrase_replies(_texts(5), str(tiny_lm), **run)
    assert sum(generated) == 2  # the two new sentences only
    assert n_cached == 3 and again[:3] == first
    assert len(json.loads(cache.read_text())["replies"]) == 5

    # an interruption keeps what was finished
    def interrupted(**kwargs):
        if generated:
            raise KeyboardInterrupt
        return counting_generate(**kwargs)

    generated.clear()
    model.generate = interrupted
    with pytest.raises(KeyboardInterrupt):
        P.paraphrase_replies(_texts(8), str(tiny_lm), **run)
    assert len(json.loads(cache.read_text())["replies"]) == 6


# ------------------------------------------------------- the whole rehearsal (slow)


@pytest.mark.slow
@pytest.mark.rehearsal
def test_every_notebook_runs_the_papers_path(rehearsal_run):
    sources = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(p.name for p in (rehearsal_run / "executed").glob("*.ipynb")) == sources
    runs = rehearsal_run / "runs" / "rehearsal"
    from cardioembed.curation.corpus import load_corpus
    from cardioembed.training.recipe import Recipe, main_run

    corpus = load_corpus(runs / "corpus")
    pairs = corpus["pairs"]
    assert set(pairs["source"]) == {"textbook"} and "paraphrase" in set(pairs["kind"])
    files = corpus["files"]
    assert set(files["file"].str.rsplit(".", n=1).str[-1]) == {"pdf", "epub", "md"}
    assert (files["status"] == "used").all()
    assert (corpus["folder"].parent / "paraphrase-cache.json").is_file()
    recipe = Recipe.of_run(main_run(runs / "models"))
    assert (recipe.pooling, recipe.mini_batch_size, recipe.use_hard_negatives) == ("eos", 2, True)
    assert recipe.gradient_checkpointing and recipe.query_prompt.startswith("Instruct: ")
    metrics = pd.read_csv(runs / "evaluation" / "metrics.csv")
    assert "pairs-heldout" in set(metrics["suite"])
    pooling = pd.read_csv(runs / "ablations" / "pooling" / "pooling.csv")
    assert set(pooling["setting"]) == {"eos", "mean", "cls", "weightedmean"}
    temperature = pd.read_csv(runs / "ablations" / "temperature" / "temperature.csv")
    assert set(temperature["setting"].astype(float)) == {0.05, 0.1}
    # every sweep point trained the recipe's full length
    assert set(pooling["steps"]) == set(temperature["steps"]) == {recipe.max_steps}
    leakage = pd.read_csv(runs / "leakage" / "leakage.csv")
    assert set(leakage["split"]) == {"random", "group", "random - group"}
    # the paper's baselines, by a packaged stand-in (extra_models), on every suite and on
    # both splits' test pairs, with the paper's three metrics
    assert "MiniLM" in set(metrics["model"])
    baseline = leakage[leakage["model"] == "MiniLM"]
    assert set(baseline["split"]) == {"random", "group"}
    assert {"acc@1", "acc@5", "mrr@10"} <= set(baseline["metric"])
    page = json.loads((rehearsal_run / "executed" / "06_leakage_and_transfer.ipynb").read_text())
    (table,) = [
        "".join(output["data"]["text/html"])
        for cell in page["cells"]
        for output in cell.get("outputs", [])
        if output.get("metadata", {}).get("scrapbook", {}).get("name") == "paper_table"
    ]
    for row in ("CardioEmbed", "trained", "base", "bm25", "MiniLM", "0.996"):
        assert row in table, row  # this run's models beside the paper's reported Acc@1
    # a corpus of textbooks only has one source: transfer is not measured, and says so
    assert pd.read_csv(runs / "transfer" / "transfer.csv").empty


@pytest.mark.slow
def test_the_rehearsal_recipe_trains_in_two_processes(tiny_lm, tmp_path):
    """torchrun, two CPU processes, the rehearsal recipe (EOS pooling on left padding, a
    query instruction, GradCache, hard negatives, gradient checkpointing, embeddings
    gathered across processes) on a tiny Qwen3 base."""
    rows = [
        {
            "anchor": f"cardiac sentence {i} about valve {i % 7}",
            "positive": f"a rewording of sentence {i}, on heart valve number {i * 3}",
            "negative": f"an unrelated sentence {i} about the kidneys",
            "split": "train" if i < 32 else "validation",
            "group": f"g{i}",
            "source": "textbook",
            "kind": "paraphrase" if i % 2 else "adjacent",
        }
        for i in range(40)
    ]
    pd.DataFrame(rows).to_parquet(tmp_path / "pairs.parquet")
    torchrun = __import__("pathlib").Path(sys.executable).with_name("torchrun")
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env["TQDM_DISABLE"] = "1"  # no progress bars in the captured output
    command = [str(torchrun), "--nproc_per_node", "2", "--master_port", "29531"]
    command += ["-m", "cardioembed.training.cli", "--profile", "rehearsal"]
    command += ["--pairs", str(tmp_path / "pairs.parquet"), "--output", str(tmp_path / "run")]
    command += ["-p", f"base_model={tiny_lm}", "-p", "max_steps=2", "--gather-across-devices"]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert record["world_size"] == 2 and record["global_step"] == 2
    recipe = record["params"]["recipe"]
    assert recipe["mini_batch_size"] == 2 and recipe["gradient_checkpointing"]
    assert recipe["use_hard_negatives"] and recipe["pooling"] == "eos"
