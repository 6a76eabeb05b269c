"""Scoring models on the evaluation suites, with seeded ``scipy.stats.bootstrap`` intervals."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cardioembed import models as hub
from cardioembed.artifacts import atomic_path, params_hash, tolerate_cache
from cardioembed.errors import ParameterError, check_int
from cardioembed.evaluation.suites import SPECIFIC_PAIRS, RetrievalSuite, Suite

RETRIEVAL_METRICS = ("acc@1", "acc@5", "acc@10", "mrr@10", "ndcg@10")
METRICS_COLUMNS = ["suite", "model", "metric", "value", "ci_low", "ci_high", "n_queries"]
GAINS_COLUMNS = ["suite", "model", "metric", "gain", "ci_low", "ci_high"]
BM25_NAME = "bm25"
BM25_VERSION = importlib.metadata.version("bm25s")
logger = logging.getLogger(__name__)


def bm25_scores(queries: Sequence[str], corpus: Sequence[str]) -> np.ndarray:
    """(queries x documents) bm25s scores, English stop words removed."""
    import bm25s

    def tokenize(texts):
        return bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)

    retriever = bm25s.BM25()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        retriever.index(tokenize(corpus), show_progress=False)
    out = np.zeros((len(queries), len(corpus)), dtype=np.float32)
    for i, tokens in enumerate(tokenize(queries)):
        tokens = [t for t in tokens if t in retriever.vocab_dict]
        if tokens:
            out[i] = retriever.get_scores(tokens)
    return out


def model_fingerprint(model) -> str:
    """A content hash of what makes a model's embeddings: its tensors (adapter included),
    tokenizer, modules' configuration, max_seq_length, prompts and device type. An object
    without a state_dict (a test's stand-in) is known by its type and repr."""
    digest = hashlib.sha256(type(model).__name__.encode())
    if not hasattr(model, "state_dict"):
        digest.update(repr(model).encode())
        return digest.hexdigest()[:16]
    hub.hash_tensors(digest, model.state_dict().items())
    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)

    def kept(settings: dict) -> dict:  # how, where from, or last called; not what it is
        volatile = ("local_files_only", "is_local", "truncation", "padding", "name_or_path")
        return {k: v for k, v in settings.items() if k not in volatile and not k.endswith("_file")}

    described = [
        [[type(m).__name__, getattr(m, "get_config_dict", dict)()] for m in model.children()],
        [model.max_seq_length, model.prompts, model.device.type, type(tokenizer).__name__],
        [len(tokenizer), tokenizer.padding_side, kept(tokenizer.init_kwargs)],
        # a slow (Python) tokenizer has no backend: its vocabulary describes it
        kept(json.loads(backend.to_str())) if backend else tokenizer.get_vocab(),
    ]
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def query_prompt_for(model, suite: RetrievalSuite) -> str | None:
    """The model's own "query" prompt, or for a Qwen3-style one ("Instruct: ...") the
    suite's task instruction in that template; None without one (MiniLM)."""
    own = model.prompts.get("query")
    if own and "Instruct:" in own and suite.query_prompt:
        return hub.QWEN3_QUERY_TEMPLATE.format(task=suite.query_prompt)
    return own or None


class Encoder:
    """`model.encode`, unit-length float32, each text set encoded once: on disk as
    ``<cache_dir>/<model fingerprint>/<text-set hash>.npy`` (None: memory only) and, within
    a run, text by text (several suites share the cardiovascular definitions)."""

    def __init__(self, model, cache_dir: str | os.PathLike | None = None):
        self.model = model
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._by_text: dict[str, dict[str, np.ndarray]] = {}  # prompt -> text -> embedding

    @functools.cached_property
    def fingerprint(self) -> str:
        return model_fingerprint(self.model)

    def __call__(self, texts: Sequence[str], prompt: str | None = None) -> np.ndarray:
        texts = [str(t) for t in texts]
        known = self._by_text.setdefault(prompt or "", {})
        path = None
        if self.cache_dir is not None:
            key = params_hash({"prompt": prompt or "", "texts": texts}, 20)
            path = self.cache_dir / self.fingerprint / f"{key}.npy"
        if path is not None and path.is_file() and not all(t in known for t in texts):
            with tolerate_cache(self.cache_dir):  # a damaged file is recomputed
                known.update(zip(texts, np.load(path), strict=True))
        todo = [t for t in dict.fromkeys(texts) if t not in known]
        if todo:
            settings = {"batch_size": 64, "show_progress_bar": False, "normalize_embeddings": True}
            raw = np.asarray(self.model.encode(todo, prompt=prompt or None, **settings), np.float32)
            norms = np.linalg.norm(raw, axis=1, keepdims=True)  # stand-ins do not normalise
            known.update(zip(todo, raw / np.where(norms == 0, 1, norms), strict=True))
        emb = np.stack([known[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)
        if path is not None and not path.is_file():
            with tolerate_cache(self.cache_dir), atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.save(f, emb)
        return emb


def rank_metrics(
    scores: np.ndarray, relevant: Sequence[Sequence[int]], seed: int, qids: Sequence[str]
) -> pd.DataFrame:
    """Per-query metrics from a (queries x documents) score matrix and each query's relevant
    columns; ties ordered by a seeded permutation. Hand-written: the bootstrap needs
    per-query values, InformationRetrievalEvaluator returns means (ties broken by position)."""
    n_q, n_d = scores.shape
    priority = np.random.default_rng(seed).permutation(n_d)
    rows = np.zeros((n_q, len(RETRIEVAL_METRICS)))
    discount = 1.0 / np.log2(np.arange(2, 12))
    for i in range(n_q):
        rel = np.asarray(sorted(set(relevant[i])), dtype=int)
        s, s_rel = scores[i], scores[i][rel][:, None]
        ties = (s[None, :] == s_rel) & (priority[None, :] < priority[rel][:, None])
        ranks = (s[None, :] > s_rel).sum(1) + ties.sum(1) + 1
        first = ranks.min()
        dcg = sum(discount[r - 1] for r in ranks if r <= 10)
        idcg = discount[: min(len(rel), 10)].sum()
        rows[i] = [first <= 1, first <= 5, first <= 10, (first <= 10) / first, dcg / idcg]
    frame = pd.DataFrame(rows, columns=list(RETRIEVAL_METRICS))
    frame.insert(0, "item", list(qids))
    return frame


def spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Spearman correlation along `axis`, batched (scipy's `spearmanr` gives a matrix, and
    the bootstrap calls this once for all its resamples)."""
    from scipy.stats import pearsonr, rankdata

    rx, ry = rankdata(x, axis=axis), rankdata(y, axis=axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant resample has no correlation: NaN
        rho = pearsonr(rx, ry, axis=axis).statistic
    return float(rho) if np.ndim(rho) == 0 else rho


def mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(np.subtract(a, b), axis=axis)


def spearman_difference(x, x_base, gold, axis: int = -1):
    return spearman(x, gold, axis) - spearman(x_base, gold, axis)


@dataclass(frozen=True)
class BootstrapConfig:
    """The resamples and seed of every interval; the intervals are 95%, by percentile."""

    n_resamples: int
    seed: int = 0

    def __post_init__(self):
        check_int("n_resamples", self.n_resamples, 1, "a whole number >= 1, e.g. 1000")


def interval(
    statistic: Callable, samples: Sequence[np.ndarray], config: BootstrapConfig, paired: bool = True
) -> tuple[float, float, float]:
    """(statistic, low, high) by ``scipy.stats.bootstrap``, seeded. A sample under 2 items,
    or a statistic without spread (a model against itself), gives the point as both bounds."""
    from scipy.stats import bootstrap

    samples = tuple(np.asarray(s, dtype=float) for s in samples)
    point = float(statistic(*samples, axis=-1))
    if not np.isfinite(point):
        return point, float("nan"), float("nan")
    if min(len(s) for s in samples) < 2:
        return point, point, point
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant resample has no correlation: NaN, a warning
        settings = {"n_resamples": config.n_resamples, "method": "percentile"}  # 95%: the default
        rng = np.random.default_rng(config.seed)
        ci = bootstrap(
            samples, statistic, paired=paired, vectorized=True, axis=-1, rng=rng, **settings
        ).confidence_interval
    low, high = float(ci.low), float(ci.high)
    return (point, low, high) if np.isfinite(low) and np.isfinite(high) else (point, point, point)


def difference_of_gains(
    in_domain: Sequence[np.ndarray], out_domain: Sequence[np.ndarray], config: BootstrapConfig
) -> tuple[float, float, float]:
    """(gain in domain) - (gain out of domain) with its interval; each suite's arrays are
    (model, base) or (cosine, base cosine, gold). The suites hold other queries, so their
    index arrays are resampled independently, each paired within itself."""
    gain = mean_difference if len(in_domain) == 2 else spearman_difference
    inside = [np.asarray(a, dtype=float) for a in in_domain]
    outside = [np.asarray(a, dtype=float) for a in out_domain]

    def statistic(i, j, axis=-1):
        i, j = i.astype(int), j.astype(int)
        return gain(*(a[i] for a in inside)) - gain(*(a[j] for a in outside))

    indices = (np.arange(len(inside[0])), np.arange(len(outside[0])))
    return interval(statistic, indices, config, paired=False)


def retrieval_inputs(suite: RetrievalSuite) -> tuple[list, list, list, list[list[int]]]:
    """Query ids, query texts, document texts and each query's relevant document columns."""
    qids, dids = list(suite.queries), list(suite.corpus)
    column = {d: i for i, d in enumerate(dids)}
    relevant = [[column[d] for d in suite.relevant[q]] for q in qids]
    return qids, [suite.queries[q] for q in qids], [suite.corpus[d] for d in dids], relevant


def score_suite(model, suite: Suite, encoder: Encoder | None = None, *, seed: int):
    """Per-item results: retrieval -> item and the five metrics (`seed`: of the tie-break);
    similarity -> item, cosine, gold; BM25 on a similarity suite -> None."""
    is_bm25 = isinstance(model, str) and model == BM25_NAME
    encoder = encoder or (None if is_bm25 else Encoder(model))
    if suite.kind == "similarity":
        if is_bm25:
            return None
        a, b = encoder([p[0] for p in suite.pairs]), encoder([p[1] for p in suite.pairs])
        items, gold = ["|".join(i) for i in suite.ids], np.asarray(suite.gold, dtype=float)
        return pd.DataFrame({"item": items, "cosine": (a * b).sum(1).astype(float), "gold": gold})
    qids, queries, documents, relevant = retrieval_inputs(suite)
    if is_bm25:
        scores = bm25_scores(queries, documents)
    else:
        scores = encoder(queries, query_prompt_for(encoder.model, suite)) @ encoder(documents).T
    return rank_metrics(scores, relevant, seed, qids)


def summarise(
    per_query: pd.DataFrame,
    suites: Mapping[str, Suite],
    *,
    base: str | None,
    config: BootstrapConfig,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The metrics and gains tables of per-item results (suite, model, item, ...). Gains are
    paired with `base`; suite ``cardio-specific:<label>`` holds each model's gain on the
    in-domain suite of a :data:`SPECIFIC_PAIRS` pair minus its gain on the other."""
    metric_rows, gain_rows = [], []
    by_key = {key: rows.set_index("item") for key, rows in per_query.groupby(["suite", "model"])}
    paired: dict[tuple[str, str, str], list[np.ndarray]] = {}  # (suite, model, metric) -> arrays
    for suite_name, suite in suites.items():
        retrieval = suite.kind == "retrieval"
        for model in dict.fromkeys(per_query["model"]):
            data = by_key.get((suite_name, model))
            if data is None:
                continue
            ref = by_key.get((suite_name, base)) if model != base else None
            for metric in RETRIEVAL_METRICS if retrieval else ["spearman"]:
                column = metric if retrieval else "cosine"
                gold = [] if retrieval else [data["gold"].to_numpy()]
                row = interval(np.mean if retrieval else spearman, [data[column], *gold], config)
                metric_rows.append([suite_name, model, metric, *row, len(data)])
                if ref is not None:  # the same queries, in the same order
                    arrays = [data[column].to_numpy(), ref.loc[data.index, column].to_numpy()]
                    arrays = paired[(suite_name, model, metric)] = [*arrays, *gold]
                    gain = mean_difference if retrieval else spearman_difference
                    gain_rows.append([suite_name, model, metric, *interval(gain, arrays, config)])
    for label, (in_name, out_name) in SPECIFIC_PAIRS.items():
        for (suite_name, model, metric), inside in paired.items():
            outside = paired.get((out_name, model, metric))
            if suite_name == in_name and outside is not None:
                row = difference_of_gains(inside, outside, config)
                gain_rows.append([f"cardio-specific:{label}", model, metric, *row])
    return (
        pd.DataFrame(metric_rows, columns=METRICS_COLUMNS),
        pd.DataFrame(gain_rows, columns=GAINS_COLUMNS),
    )


def scoring_params(
    encoders: Mapping[str, Encoder | None], suites: Mapping[str, Suite], bootstrap: BootstrapConfig
) -> dict[str, Any]:
    """What scored tables depend on, for their manifest: each model's fingerprint (an encoder
    per model name, None for BM25), the base's name, the suites and the bootstrap."""
    return {
        "models": {n: e.fingerprint if e else f"bm25s-{BM25_VERSION}" for n, e in encoders.items()},
        "base": "base",
        "suites": {n: [s.kind, s.n_items, s.fingerprint()] for n, s in suites.items()},
        "bootstrap": vars(bootstrap),
    }


def evaluate_models(
    models: Mapping[str, Any],
    suites: Mapping[str, Suite],
    bootstrap: BootstrapConfig,
    *,
    cache_dir: str | os.PathLike | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Notebook 06's scoring of its transfer models (name -> a model, or BM25_NAME): the loop
    notebook 05 shows in cell c05-08 (a test keeps the two equal), then the metrics, gains
    over "base" and per-query tables, and their manifest's :func:`scoring_params`."""
    if not models:
        raise ParameterError("models", dict(models), "give at least one model")
    if "base" not in models:
        logger.warning("no model named 'base': the gains table will be empty")
    encoders, frames = {}, []
    for model_name, model in models.items():
        if isinstance(model, str) and model != BM25_NAME:
            raise ParameterError("models", {model_name: model}, "a model with encode(), or 'bm25'")
        encoders[model_name] = None if model == BM25_NAME else Encoder(model, cache_dir)
        for suite_name, suite in suites.items():
            frame = score_suite(model, suite, encoders[model_name], seed=bootstrap.seed)
            if frame is not None:
                frame.insert(0, "model", model_name)
                frame.insert(0, "suite", suite_name)
                frames.append(frame)
    per_query = pd.concat(frames, ignore_index=True)
    metrics, gains = summarise(per_query, suites, base="base", config=bootstrap)
    return metrics, gains, per_query, scoring_params(encoders, suites, bootstrap)


def pick(table: pd.DataFrame, suite: str, model: str, metric: str) -> pd.Series | None:
    rows = table[(table.suite == suite) & (table.model == model) & (table.metric == metric)]
    return rows.iloc[0] if len(rows) else None


def verdict(low: float, high: float) -> str:
    """Where a difference's 95% interval lies: "above zero", "below zero", "within noise"
    (it covers zero) or "not measured" (it is not a number)."""
    if not np.isfinite([low, high]).all():
        return "not measured"
    return "above zero" if low > 0 else "below zero" if high < 0 else "within noise"


def claim_verdict(lows, highs, above: float = 0.0, measured: bool = True) -> str:
    """The verdict on a claim that a quantity exceeds `above`, from its 95% interval on
    each training seed: "confirmed" when every interval lies above it, "not confirmed"
    when every one lies below, "cannot tell" otherwise; "not measured at this scale" when
    `measured` is false (the build cannot test the claim) or no interval is a number."""
    lows, highs = np.asarray(lows, dtype=float) - above, np.asarray(highs, dtype=float) - above
    if not measured or not np.isfinite(lows + highs).any():
        return "not measured at this scale"
    sides = {verdict(low, high) for low, high in zip(lows, highs, strict=True)}
    side = sides.pop() if len(sides) == 1 else ""
    return {"above zero": "confirmed", "below zero": "not confirmed"}.get(side, "cannot tell")
