"""`cardioembed search "query"`: a profile's corpus searched with a trained model, ranked by
sentence-transformers' `util.semantic_search`."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pandas as pd

from cardioembed.artifacts import load_manifest
from cardioembed.curation.corpus import load_corpus
from cardioembed.errors import InputError
from cardioembed.evaluation.metrics import Encoder
from cardioembed.models import load_model
from cardioembed.paths import run_dir
from cardioembed.training import recipe as training

BASE = "base"  # --model base: the main run's base model, untrained


def corpus_passages(corpus: dict) -> list[str]:
    """The distinct texts of a corpus: every pair's positive and every sentence."""
    texts = [*corpus["pairs"]["positive"].astype(str), *corpus["sentences"]["text"].astype(str)]
    return list(dict.fromkeys(t for t in texts if t.strip()))


def trained_corpus(run: Path, corpora: Path) -> Path:
    """The corpus folder under `corpora` that `run` was trained on (a later curation may have
    changed the current one): its training pairs give the data hash the run records."""
    recipe, recorded = training.Recipe.of_run(run), load_manifest(run)["params"].get("data_hash")
    for corpus in sorted(corpora.glob("*/pairs.parquet"), key=os.path.getmtime, reverse=True):
        with contextlib.suppress(OSError, ValueError):  # unreadable, or without the run's kinds
            pairs = recipe.training_pairs(pd.read_parquet(corpus))
            if load_manifest(corpus.parent) and training.data_fingerprint(pairs) == recorded:
                return corpus.parent
    raise InputError(
        f"the run {run.name} was trained on a corpus that is no longer in {corpora}: the "
        "current one differs (notebook 01 ran since, perhaps by hand). Train on the current "
        "corpus with `cardioembed run --only 02`, or give --model a run trained on it"
    )


def search(
    profile: str, model: str, runs_root: str | os.PathLike, query: str, top: int
) -> tuple[str, pd.DataFrame]:
    """The `top` passages closest to `query` (rank, score: cosine, passage), and a line that
    names the model and the corpus searched. `model`: empty for notebook 02's main run,
    `base` for its untrained base, a run name under `runs/<profile>/models/`, or a folder."""
    from sentence_transformers import util

    if not str(query).strip():
        raise InputError("the search query is empty; give a few words, e.g. 'atrial flutter'")
    if top < 1:
        raise InputError(f"--top {top}: give a number of passages >= 1")
    folder = run_dir(profile, runs_root)
    corpora, models = folder / "corpus", folder / "models"
    runs = training.trained_runs(models)  # finished ones only
    if not model or model == BASE:
        run = training.main_run(models)
    elif Path(model).is_dir() and model not in runs:
        run = None  # a model folder: the current corpus
    elif (run := runs.get(model)) is None:
        newest = sorted(runs, key=lambda n: runs[n].stat().st_mtime, reverse=True)
        shown = ", ".join(newest[:5]) + (f" and {len(runs) - 5} more" * (len(runs) > 5))
        raise InputError(
            f"--model {model!r} is neither a finished run in {models} (newest: "
            f"{shown or 'none: cardioembed run --only 02'}), '{BASE}', nor a model folder"
        )
    corpus = load_corpus(trained_corpus(run, corpora) if run else corpora)
    if model == BASE:
        name, loaded = BASE, training.Recipe.of_run(run).load_base()
    elif run is not None:
        name, loaded = run.name, training.load_trained(run)
    else:
        name, loaded = Path(model).name, load_model(model)
    passages = corpus_passages(corpus)
    embedded = Encoder(loaded, folder / "cache")(passages)  # kept on disk for the next search
    asked = Encoder(loaded)([query], prompt=loaded.prompts.get("query"))
    hits = util.semantic_search(asked, embedded, top_k=top)[0]
    found = pd.DataFrame(
        {
            "rank": range(1, len(hits) + 1),
            "score": [round(float(h["score"]), 3) for h in hits],
            "passage": [passages[h["corpus_id"]] for h in hits],
        }
    )
    return f"{name}, {len(passages):,} passages of the corpus {corpus['folder'].name}", found
