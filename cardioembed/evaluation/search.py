"""`cardioembed search "query"`: a profile's corpus searched with a trained model. The
passages (the corpus's distinct texts) are embedded once per model into the evaluation's
`Encoder` cache in `runs/<profile>/cache/`; sentence-transformers' `util.semantic_search`
ranks them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cardioembed.curation.corpus import load_corpus
from cardioembed.errors import InputError
from cardioembed.evaluation.metrics import Encoder
from cardioembed.models import load_model
from cardioembed.paths import run_dir
from cardioembed.training.recipe import Recipe, load_trained, main_run

BASE = "base"  # --model base: the main run's base model, untrained


def corpus_passages(corpus: dict) -> list[str]:
    """The distinct texts of a corpus: every pair's positive and every sentence."""
    texts = list(corpus["pairs"]["positive"].astype(str))
    if corpus.get("sentences") is not None and "text" in corpus["sentences"]:
        texts += list(corpus["sentences"]["text"].astype(str))
    return list(dict.fromkeys(t for t in texts if t.strip()))


@dataclass
class Searcher:
    model_name: str
    model: object
    passages: list[str]
    encoder: Encoder

    @classmethod
    def open(cls, profile: str, model: str, runs_root: str | os.PathLike) -> Searcher:
        """`model`: empty for notebook 02's main run, `base` for its untrained base, a run
        name under `runs/<profile>/models/`, or a model folder."""
        folder = run_dir(profile, runs_root)
        corpus, models = load_corpus(folder / "corpus"), folder / "models"
        if not model:
            name, loaded = main_run(models).name, load_trained(main_run(models))
        elif model == BASE:
            name, loaded = BASE, Recipe.of_run(main_run(models)).load_base()
        elif (models / model).is_dir():
            name, loaded = model, load_trained(models / model)
        elif Path(model).is_dir():
            name, loaded = Path(model).name, load_model(model)
        else:
            found = sorted(models.iterdir()) if models.is_dir() else []
            runs = ", ".join(p.name for p in found if p.is_dir()) or "none: run notebook 02"
            raise InputError(
                f"--model {model!r} is neither a run in {models} (runs: {runs}), "
                f"'{BASE}', nor a model folder"
            )
        searcher = cls(name, loaded, corpus_passages(corpus), Encoder(loaded, folder / "cache"))
        searcher.encoder(searcher.passages)  # embedded once; kept on disk for the next search
        return searcher

    def search(self, query: str, top: int) -> pd.DataFrame:
        """The `top` passages closest to `query`: rank, score (cosine), passage."""
        import torch
        from sentence_transformers import util

        if not str(query).strip():
            raise InputError("the search query is empty; give a few words, e.g. 'atrial flutter'")
        if top < 1:
            raise InputError(f"--top {top}: give a number of passages >= 1")
        prompt = (getattr(self.model, "prompts", None) or {}).get("query") or None
        embedded = self.model.encode([query], prompt=prompt, normalize_embeddings=True)
        passages = torch.from_numpy(self.encoder(self.passages))
        hits = util.semantic_search(torch.as_tensor(embedded), passages, top_k=top)[0]
        return pd.DataFrame(
            {
                "rank": range(1, len(hits) + 1),
                "score": [round(float(h["score"]), 3) for h in hits],
                "passage": [self.passages[h["corpus_id"]] for h in hits],
            }
        )
