"""Search a profile's corpus with a trained model: `cardioembed search "query"`.

The passages searched are the corpus's distinct texts (definitions, descriptions,
textbook sentences). Their embeddings are computed once per model and kept in
`runs/<profile>/cache/` (the evaluation's `Encoder` cache, keyed by the model's content), so
a second search costs one query's encoding. The ranking is sentence-transformers'
`util.semantic_search`.
"""

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
    """A model and the embedded passages of one profile's corpus."""

    model_name: str
    model: object
    passages: list[str]
    encoder: Encoder

    @classmethod
    def open(cls, profile: str, model: str, runs_root: str | os.PathLike) -> Searcher:
        """`model`: empty for the main run of notebook 02, `base` for its untrained base,
        a run name under `runs/<profile>/models/`, or a model folder."""
        folder = run_dir(profile, runs_root)
        corpus = load_corpus(folder / "corpus")
        models = folder / "models"
        if not model:
            path = main_run(models)
            name, loaded = path.name, load_trained(path)
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
        encoder = Encoder(loaded, folder / "cache")
        searcher = cls(name, loaded, corpus_passages(corpus), encoder)
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
        prompts = getattr(self.model, "prompts", None) or {}
        query_embedding = self.model.encode(
            [query], prompt=prompts.get("query") or None, normalize_embeddings=True
        )
        hits = util.semantic_search(
            torch.as_tensor(query_embedding),
            torch.from_numpy(self.encoder(self.passages)),
            top_k=top,
        )[0]
        return pd.DataFrame(
            {
                "rank": range(1, len(hits) + 1),
                "score": [round(float(h["score"]), 3) for h in hits],
                "passage": [self.passages[h["corpus_id"]] for h in hits],
            }
        )
