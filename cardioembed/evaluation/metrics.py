"""Scoring models on the evaluation suites, with bootstrap intervals.

- Retrieval, per query: acc@1, acc@5, acc@10, mrr@10, ndcg@10 (binary relevance, ideal DCG
  over min(|relevant|, 10) documents, as sentence-transformers' InformationRetrievalEvaluator
  computes them). Ties of score are broken by a seeded random order of the corpus, so a
  query whose scores are all equal (BM25 with no word in common) gets a chance-level rank.
- Similarity: Spearman correlation of the embeddings' cosine with the gold score. BM25
  (`bm25s`) scores retrieval only: its score is neither symmetric nor bounded.
- Intervals: ``scipy.stats.bootstrap`` over queries or pairs, seeded. A model's gain over
  the base is bootstrapped paired (the same resampled queries for both). The
  cardiology-specific gain, (gain in domain) - (gain out of domain, same format), resamples
  each suite on its own: they hold other queries.
- Embeddings are cached on disk by :class:`Encoder`, keyed by a content hash of the model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cardioembed import models as hub
from cardioembed.artifacts import atomic_path
from cardioembed.errors import ParameterError, check_int
from cardioembed.evaluation.suites import SPECIFIC_PAIRS, RetrievalSuite, SimilaritySuite, Suite

logger = logging.getLogger(__name__)

RETRIEVAL_METRICS = ("acc@1", "acc@5", "acc@10", "mrr@10", "ndcg@10")
SIMILARITY_METRICS = ("spearman",)
METRICS_COLUMNS = ["suite", "model", "metric", "value", "ci_low", "ci_high", "n_queries"]
GAINS_COLUMNS = ["suite", "model", "metric", "gain", "ci_low", "ci_high"]
BM25_NAME = "bm25"
CI_METHODS = ("percentile", "BCa", "basic")
SPECIFIC_PREFIX = "cardio-specific:"


def bm25_scores(queries: Sequence[str], corpus: Sequence[str]) -> np.ndarray:
    """(queries x documents) BM25 scores: bm25s (Lucene variant) over `corpus`, English stop
    words removed."""
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


# ============================================================================ encoding
def model_fingerprint(model) -> str:
    """A content hash of what makes a model's embeddings: the bytes of every tensor of its
    state_dict (base weights and any LoRA adapter, each with its name, dtype and shape), its
    tokenizer (class, vocabulary size, settings and, for a fast tokenizer, its whole
    definition), the configuration of each module (pooling, normalisation), max_seq_length,
    prompts and device type. An object without a state_dict is known by its type and repr."""
    digest = hashlib.sha256(type(model).__name__.encode())
    if not callable(getattr(model, "state_dict", None)):
        digest.update(repr(model).encode())
        return digest.hexdigest()[:16]
    import torch

    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            flat = tensor.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}".encode())
            digest.update(flat.view(torch.uint8).numpy())
    tokenizer = getattr(model, "tokenizer", None)
    # how it was loaded or last called, not what it is
    volatile = ("local_files_only", "is_local", "truncation", "padding")
    described = {
        "modules": [
            [type(m).__name__, getattr(m, "get_config_dict", dict)()] for m in model.children()
        ],
        "max_seq_length": getattr(model, "max_seq_length", None),
        "prompts": getattr(model, "prompts", None),
        "device": getattr(getattr(model, "device", None), "type", None),
        "tokenizer": None,
    }
    if tokenizer is not None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:  # its truncation and padding are set by each call: left out
            backend = {k: v for k, v in json.loads(backend.to_str()).items() if k not in volatile}
        described["tokenizer"] = [
            type(tokenizer).__name__,
            len(tokenizer),
            getattr(tokenizer, "padding_side", None),
            {k: v for k, v in getattr(tokenizer, "init_kwargs", {}).items() if k not in volatile},
            backend,
        ]
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def query_prompt_for(model, suite: RetrievalSuite) -> str | None:
    """The text put before each query of `suite` for `model`: none for a model without a
    "query" prompt (MiniLM); for a Qwen3-style one ("Instruct: ...Query:") the suite's task
    instruction in that template; else the model's own query prompt."""
    own = (getattr(model, "prompts", None) or {}).get("query")
    if own and "Instruct:" in own and suite.query_prompt:
        return hub.QWEN3_QUERY_TEMPLATE.format(task=suite.query_prompt)
    return own or None


class Encoder:
    """`model.encode` of text sets, L2-normalised float32, each set encoded once: on disk
    across runs (``<cache_dir>/<model fingerprint>/<text-set hash>.npy``) and, within a
    run, text by text (the cardiovascular definitions are the corpus of two suites and the
    texts of a third). Without `cache_dir`, memory only (and no fingerprint computed)."""

    def __init__(self, model, cache_dir: str | os.PathLike | None = None, batch_size: int = 64):
        self.model = model
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.batch_size = batch_size
        self._fingerprint: str | None = None
        self._by_text: dict[str, dict[str, np.ndarray]] = {}  # prompt -> text -> embedding
        self.encoded_texts = 0  # texts actually encoded (cache misses), for reports

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model)
        return self._fingerprint

    def __call__(self, texts: Sequence[str], prompt: str | None = None) -> np.ndarray:
        texts = [str(t) for t in texts]
        known = self._by_text.setdefault(prompt or "", {})
        path = None
        if self.cache_dir is not None:
            digest = hashlib.sha256((prompt or "").encode() + b"\x1d")
            for text in texts:
                digest.update(text.encode() + b"\x1e")
            path = self.cache_dir / self.fingerprint / f"{digest.hexdigest()[:20]}.npy"
        if path is not None and path.is_file() and not all(t in known for t in texts):
            try:
                stored = np.load(path)
                if stored.shape[0] == len(texts):
                    known.update(zip(texts, stored, strict=True))
            except (OSError, ValueError):
                pass  # a damaged cache file is recomputed
        todo = [t for t in dict.fromkeys(texts) if t not in known]
        if todo:
            raw = self.model.encode(
                todo,
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
                **({"prompt": prompt} if prompt else {}),
            )
            raw = np.asarray(raw, dtype=np.float32)
            norms = np.linalg.norm(raw, axis=1, keepdims=True)
            known.update(zip(todo, raw / np.where(norms == 0, 1, norms), strict=True))
            self.encoded_texts += len(todo)
        emb = np.stack([known[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)
        if path is not None and not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.save(handle, emb)
        return emb


# ============================================================================ metrics
def rank_metrics(
    scores: np.ndarray, relevant: Sequence[Sequence[int]], seed: int, qids: Sequence[str]
) -> pd.DataFrame:
    """Per-query acc@1/5/10, mrr@10, ndcg@10 from a (queries x documents) score matrix and,
    for each query, the column indices of its relevant documents. Ties are ordered by one
    seeded random permutation of the documents. Hand-written because the bootstrap needs
    per-query values and InformationRetrievalEvaluator returns means (and breaks ties by
    position)."""
    scores = np.asarray(scores)
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
        rows[i] = [
            first <= 1,
            first <= 5,
            first <= 10,
            1.0 / first if first <= 10 else 0.0,
            dcg / idcg,
        ]
    frame = pd.DataFrame(rows, columns=list(RETRIEVAL_METRICS))
    frame.insert(0, "item", list(qids))
    return frame


def spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Spearman correlation along `axis`, batched over the other axes: Pearson's r of the
    ranks (scipy's `spearmanr` returns a correlation matrix, not a batch, and the bootstrap
    calls this once for all its resamples)."""
    from scipy.stats import pearsonr, rankdata

    rx = rankdata(np.asarray(x, dtype=float), axis=axis)
    ry = rankdata(np.asarray(y, dtype=float), axis=axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant resample has no correlation: NaN
        rho = pearsonr(rx, ry, axis=axis).statistic
    return float(rho) if np.ndim(rho) == 0 else rho


def mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """mean(a) - mean(b) of paired per-query values (a model's gain over the base)."""
    return np.mean(np.subtract(a, b), axis=axis)


def spearman_difference(x, x_base, gold, axis: int = -1):
    """rho(x, gold) - rho(x_base, gold): a model's Spearman gain over the base."""
    return spearman(x, gold, axis) - spearman(x_base, gold, axis)


# ============================================================================ bootstrap
@dataclass(frozen=True)
class BootstrapConfig:
    """The settings of every `scipy.stats.bootstrap` interval."""

    n_resamples: int
    confidence_level: float = 0.95
    method: str = "percentile"
    seed: int = 0

    def __post_init__(self):
        check_int("n_resamples", self.n_resamples, 1, "a whole number >= 1, e.g. 1000")
        if not 0 < self.confidence_level < 1:
            raise ParameterError("confidence_level", self.confidence_level, "in (0, 1), e.g. 0.95")
        if self.method not in CI_METHODS:
            raise ParameterError("ci_method", self.method, f"one of {', '.join(CI_METHODS)}")


def interval(
    statistic: Callable, samples: Sequence[np.ndarray], config: BootstrapConfig, paired: bool = True
) -> tuple[float, float, float]:
    """(statistic of the samples, low, high): ``scipy.stats.bootstrap`` of a vectorised
    statistic, seeded. `paired`: the samples are resampled with the same indices (one
    model against another on the same queries). A sample under 2 items, or a statistic
    without spread (a model against itself), gives the point as both bounds."""
    from scipy.stats import bootstrap

    samples = tuple(np.asarray(s, dtype=float) for s in samples)
    point = float(statistic(*samples, axis=-1))
    if not np.isfinite(point):
        return point, float("nan"), float("nan")
    if min(len(s) for s in samples) < 2:
        return point, point, point
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa on a degenerate distribution warns, gives NaN
        settings = {k: v for k, v in dataclasses.asdict(config).items() if k != "seed"}
        rng = np.random.default_rng(config.seed)
        ci = bootstrap(
            samples, statistic, paired=paired, vectorized=True, axis=-1, rng=rng, **settings
        ).confidence_interval
    low, high = float(ci.low), float(ci.high)
    return (point, low, high) if np.isfinite(low) and np.isfinite(high) else (point, point, point)


def difference_of_gains(
    in_domain: Sequence[np.ndarray], out_domain: Sequence[np.ndarray], config: BootstrapConfig
) -> tuple[float, float, float]:
    """(gain in domain) - (gain out of domain) with its interval. Each suite gives its
    per-item arrays: retrieval (model, base), similarity (model cosine, base cosine, gold).
    The suites have different queries: each is resampled on its own, paired within itself,
    so scipy resamples their index arrays independently."""
    gain = mean_difference if len(in_domain) == 2 else spearman_difference
    inside = [np.asarray(a, dtype=float) for a in in_domain]
    outside = [np.asarray(a, dtype=float) for a in out_domain]

    def statistic(i, j, axis=-1):
        i, j = i.astype(int), j.astype(int)
        return gain(*(a[i] for a in inside)) - gain(*(a[j] for a in outside))

    indices = (np.arange(len(inside[0])), np.arange(len(outside[0])))
    return interval(statistic, indices, config, paired=False)


# ============================================================================ scoring
def score_suite(model, suite: Suite, encoder: Encoder | None = None, *, seed: int):
    """Per-item results of one model on one suite: retrieval -> item + the five metrics
    (`seed`: of the tie-break); similarity -> item, cosine, gold. None when the model does
    not apply (BM25 on a similarity suite)."""
    is_bm25 = isinstance(model, str) and model == BM25_NAME
    encoder = encoder or (None if is_bm25 else Encoder(model))
    if isinstance(suite, RetrievalSuite):
        qids, dids = list(suite.queries), list(suite.corpus)
        queries, documents = [suite.queries[q] for q in qids], [suite.corpus[d] for d in dids]
        if is_bm25:
            scores = bm25_scores(queries, documents)
        else:
            scores = encoder(queries, query_prompt_for(encoder.model, suite)) @ encoder(documents).T
        column = {d: i for i, d in enumerate(dids)}
        relevant = [[column[d] for d in suite.relevant[q]] for q in qids]
        return rank_metrics(scores, relevant, seed, qids)
    if isinstance(suite, SimilaritySuite):
        if is_bm25:
            return None
        a, b = encoder([p[0] for p in suite.pairs]), encoder([p[1] for p in suite.pairs])
        ids = suite.ids or [(str(i),) for i in range(len(suite.pairs))]
        return pd.DataFrame(
            {
                "item": ["|".join(i) for i in ids],
                "cosine": (a * b).sum(1).astype(float),
                "gold": np.asarray(suite.gold, dtype=float),
            }
        )
    raise TypeError(f"not a suite: {type(suite).__name__}")


def summarise(
    per_query: pd.DataFrame,
    suites: Mapping[str, Suite],
    *,
    base: str | None,
    config: BootstrapConfig,
    specific_pairs: Mapping[str, tuple[str, str]] = SPECIFIC_PAIRS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """metrics and gains tables from the per-item results (columns suite, model, item,
    then the metric columns or cosine/gold). Gains are paired with `base` on the same
    items; suite ``cardio-specific:<label>`` of `specific_pairs` holds, per model, the gain
    on the in-domain suite minus the gain on its out-of-domain partner."""
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
            for metric in RETRIEVAL_METRICS if retrieval else SIMILARITY_METRICS:
                column = metric if retrieval else "cosine"
                gold = [] if retrieval else [data["gold"].to_numpy()]
                row = interval(np.mean if retrieval else spearman, [data[column], *gold], config)
                metric_rows.append([suite_name, model, metric, *row, len(data)])
                if ref is not None:  # the same queries, in the same order
                    arrays = [
                        data[column].to_numpy(),
                        ref.loc[data.index, column].to_numpy(),
                        *gold,
                    ]
                    paired[(suite_name, model, metric)] = arrays
                    gain = mean_difference if retrieval else spearman_difference
                    gain_rows.append([suite_name, model, metric, *interval(gain, arrays, config)])
    for label, (in_name, out_name) in specific_pairs.items():
        for (suite_name, model, metric), inside in list(paired.items()):
            outside = paired.get((out_name, model, metric))
            if suite_name == in_name and outside is not None:
                row = difference_of_gains(inside, outside, config)
                gain_rows.append([f"{SPECIFIC_PREFIX}{label}", model, metric, *row])
    return (
        pd.DataFrame(metric_rows, columns=METRICS_COLUMNS),
        pd.DataFrame(gain_rows, columns=GAINS_COLUMNS),
    )


@dataclass
class EvaluationResult:
    """What :func:`evaluate_models` found; `params`: what it depends on (for a manifest)."""

    metrics: pd.DataFrame
    gains: pd.DataFrame
    per_query: pd.DataFrame
    params: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    encoded_texts: dict[str, int] = field(default_factory=dict)

    def write(self, folder: str | os.PathLike) -> None:
        """metrics.csv, gains.csv and per_query.parquet into `folder` (an `atomic_dir`)."""
        self.metrics.to_csv(Path(folder) / "metrics.csv", index=False)
        self.gains.to_csv(Path(folder) / "gains.csv", index=False)
        self.per_query.to_parquet(Path(folder) / "per_query.parquet", index=False)


def evaluate_models(
    models: Mapping[str, Any],
    suites: Mapping[str, Suite],
    bootstrap: BootstrapConfig,
    *,
    cache_dir: str | os.PathLike | None,
    base: str | None = "base",
    specific_pairs: Mapping[str, tuple[str, str]] = SPECIFIC_PAIRS,
) -> EvaluationResult:
    """Score every model on every suite (:func:`score_suite`, ties broken with
    `bootstrap.seed`) and summarise (:func:`summarise`). `models`: name -> ``"bm25"`` or a
    model with ``encode``; gains are differences from the one named `base`. Embeddings are
    cached under `cache_dir` (None: memory only)."""
    if not models:
        raise ParameterError("models", dict(models), "give at least one model")
    if base is not None and base not in models:
        logger.warning("no model named %r: the gains table will be empty", base)
        base = None
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    encoded: dict[str, int] = {}
    fingerprints: dict[str, str] = {}
    frames = []
    for model_name, model in models.items():
        clock = time.perf_counter()
        if isinstance(model, str) and model != BM25_NAME:
            raise ParameterError("models", {model_name: model}, "a model with encode(), or 'bm25'")
        encoder = None if isinstance(model, str) else Encoder(model, cache_dir)
        bm25 = f"bm25s-{importlib.metadata.version('bm25s')}"
        fingerprints[model_name] = encoder.fingerprint if encoder else bm25
        for suite_name, suite in suites.items():
            frame = score_suite(model, suite, encoder, seed=bootstrap.seed)
            if frame is not None:
                frames.append(frame.assign(suite=suite_name, model=model_name))
        took = seconds[f"score:{model_name}"] = round(time.perf_counter() - clock, 2)
        encoded[model_name] = encoder.encoded_texts if encoder else 0
        logger.info("%s: %.1f s (%d texts encoded)", model_name, took, encoded[model_name])
    per_query = pd.concat(frames, ignore_index=True)
    per_query = per_query[
        ["suite", "model", *[c for c in per_query if c not in ("suite", "model")]]
    ]
    clock = time.perf_counter()
    metrics, gains = summarise(
        per_query, suites, base=base, config=bootstrap, specific_pairs=specific_pairs
    )
    seconds["bootstrap"] = round(time.perf_counter() - clock, 2)
    seconds["total"] = round(time.perf_counter() - started, 2)
    params = {
        "models": fingerprints,
        "base": base,
        "suites": {
            n: {"kind": s.kind, "items": s.n_items, "fingerprint": s.fingerprint()}
            for n, s in suites.items()
        },
        "bootstrap": dataclasses.asdict(bootstrap),
        "specific_pairs": {k: list(v) for k, v in specific_pairs.items()},
    }
    return EvaluationResult(metrics, gains, per_query, params, seconds, encoded)


def pick(table: pd.DataFrame, suite: str, model: str, metric: str) -> pd.Series | None:
    """The row of a metrics or gains table for (suite, model, metric), or None."""
    rows = table[(table.suite == suite) & (table.model == model) & (table.metric == metric)]
    return rows.iloc[0] if len(rows) else None


def mteb_public(
    model, tasks: Iterable[str], encode_kwargs: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Public MTEB tasks (e.g. BIOSSES, SciFact) on `model`: one record per task with task,
    metric (the task's main score), value, status ("ok" or "skipped") and reason. A task
    whose data cannot be loaded (offline, or the hub out of reach without a local copy:
    `offline_when_unreachable` makes that fail at once) is skipped with the reason."""
    import mteb

    records = []
    for name in tasks:
        record = {"task": name, "metric": None, "value": None, "status": "skipped", "reason": ""}
        records.append(record)
        try:
            task = mteb.get_tasks(tasks=[name])[0]
        except Exception as error:
            record["reason"] = f"MTEB has no task {name!r}: {error}"
            continue
        record["metric"], offline = task.metadata.main_score, False
        try:
            with hub.offline_when_unreachable() as offline:
                task.load_data()
        except Exception as error:
            why = (
                "offline (HF_HUB_OFFLINE=1)"
                if hub.offline_requested()
                else "the Hugging Face Hub cannot be reached from this machine"
            )
            record["reason"] = (
                f"its dataset {task.metadata.dataset.get('path')} could not be loaded: "
                + (
                    f"{why}, and it is not in the local Hugging Face cache"
                    if offline
                    else f"{type(error).__name__}: {str(error)[:200]}"
                )
            )
            continue
        try:
            # mteb's retrieval search draws its own progress bar unless encode_kwargs say no
            kwargs = {"show_progress_bar": False, **(encode_kwargs or {})}
            result = mteb.evaluate(
                model, [task], cache=None, show_progress_bar=False, encode_kwargs=kwargs
            )
        except Exception as error:
            record["reason"] = f"the evaluation failed: {type(error).__name__}: {str(error)[:200]}"
            continue
        scores = result.task_results[0].scores
        split = "test" if "test" in scores else next(iter(scores))
        record.update(value=float(scores[split][0]["main_score"]), status="ok")
    return records
