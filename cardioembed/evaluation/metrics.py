"""Scoring models on the evaluation suites, with bootstrap intervals.

- Models: the string ``"bm25"`` (:class:`BM25`, the `bm25s` package; retrieval suites only,
  see below), or any object with a SentenceTransformer-like ``encode`` method.
- Embeddings are cached on disk as ``.npy`` keyed by (model fingerprint, text-set hash), so
  a rerun encodes nothing; within one run each distinct text set is encoded once.
- Metrics per query (retrieval): acc@1, acc@5, acc@10, mrr@10, ndcg@10 (binary relevance,
  ideal DCG over min(|relevant|, 10) documents, as sentence-transformers'
  ``InformationRetrievalEvaluator`` and MTEB/pytrec_eval compute them). Ties of score are
  broken by a seeded random order of the corpus, so a query whose scores are all equal
  (BM25 with no word in common) gets a chance-level rank, not a lucky first place.
- Similarity suites: Spearman correlation of embedding cosine with the gold score.
- Intervals: ``scipy.stats.bootstrap`` (percentile by default, seeded) over queries or
  pairs. The gain of a model over ``base`` is bootstrapped PAIRED: the same resampled
  queries for both (for Spearman, the same resampled pairs, both correlations recomputed).
- Cardiology-specific gain = (gain in domain) - (gain out of domain, same format). The two
  suites have different queries, so each is resampled independently (paired within a
  suite, independent across suites) and the interval is that of the difference.

BM25 on similarity suites: skipped (no row). A BM25 score is not symmetric, not bounded,
and is 0 for most pairs of definitions that share no stemmed word; it is a retrieval
baseline, not a similarity measure.

Outputs of :func:`evaluate_models` (``out_dir``): ``metrics.csv`` (suite, model, metric,
value, ci_low, ci_high, n_queries), ``gains.csv`` (suite, model, metric, gain, ci_low,
ci_high; suite ``cardio-specific:<pair>`` for the specific gains), ``per_query.parquet``,
``manifest.json``; each written atomically, the manifest last.

MTEB: :func:`mteb_public` runs BIOSSES / SciFact when their data can be loaded, else
returns a ``skipped`` record with the reason; :func:`mteb_task` wraps a suite as an MTEB
task that loads the local data, so ``mteb.evaluate`` scores any model on it offline.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cardioembed.artifacts import MANIFEST, atomic_path, params_hash, write_manifest
from cardioembed.errors import ParameterError
from cardioembed.evaluation import hub
from cardioembed.evaluation.suites import SPECIFIC_PAIRS, RetrievalSuite, SimilaritySuite, Suite

logger = logging.getLogger(__name__)

RETRIEVAL_METRICS = ("acc@1", "acc@5", "acc@10", "mrr@10", "ndcg@10")
SIMILARITY_METRICS = ("spearman",)
METRICS_COLUMNS = ["suite", "model", "metric", "value", "ci_low", "ci_high", "n_queries"]
GAINS_COLUMNS = ["suite", "model", "metric", "gain", "ci_low", "ci_high"]
BM25_NAME = "bm25"
CI_METHODS = ("percentile", "BCa", "basic")
SPECIFIC_PREFIX = "cardio-specific:"


# ============================================================================ BM25
class BM25:
    """BM25 (bm25s, Lucene variant) over a suite's corpus; English stop words removed,
    Snowball-stemmed when PyStemmer is installed, else plain lower-cased words."""

    name = BM25_NAME

    def __init__(self):
        try:
            import Stemmer  # PyStemmer, optional

            self._stemmer = Stemmer.Stemmer("english")
            self.stemmed = True
        except ImportError:
            self._stemmer = None
            self.stemmed = False

    @property
    def fingerprint(self) -> str:
        return f"bm25s-{importlib.metadata.version('bm25s')}-{'stem' if self.stemmed else 'plain'}"

    def _tokenize(self, texts: list[str]) -> list[list[str]]:
        import bm25s

        return bm25s.tokenize(
            texts, stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False
        )

    def scores(self, queries: Sequence[str], corpus: Sequence[str]) -> np.ndarray:
        """(queries x documents) BM25 scores."""
        import bm25s

        retriever = bm25s.BM25()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            retriever.index(self._tokenize(list(corpus)), show_progress=False)
        vocab = retriever.vocab_dict
        out = np.zeros((len(queries), len(corpus)), dtype=np.float32)
        for i, tokens in enumerate(self._tokenize(list(queries))):
            tokens = [t for t in tokens if t in vocab]
            if tokens:
                out[i] = retriever.get_scores(tokens)
        return out


# ============================================================================ encoding
def model_fingerprint(model) -> str:
    """A short hash that changes when the model's weights, modules or prompts change.

    `model.cardioembed_fingerprint`, when set, is used as is. Otherwise: the module
    description (`repr`), prompts, max length, and for every parameter its name, shape and
    two cheap summaries (sum and sum of squares, in float64): one pass over the weights,
    no copy, so it costs little even for a large model on a GPU. An object without
    `named_parameters` is known by its type and `repr` alone: give it a `repr` that names
    its state, or set `cardioembed_fingerprint`."""
    given = getattr(model, "cardioembed_fingerprint", None)
    if given:
        return str(given)
    digest = hashlib.sha256()
    digest.update(type(model).__name__.encode())
    digest.update(repr(model).encode())
    digest.update(json.dumps(getattr(model, "prompts", None) or {}, sort_keys=True).encode())
    digest.update(str(getattr(model, "max_seq_length", "")).encode())
    named = getattr(model, "named_parameters", None)
    if callable(named):
        import torch

        with torch.no_grad():
            for pname, param in named():
                p = param.detach()
                summary = torch.stack([p.double().sum(), (p.double() ** 2).sum()]).cpu().tolist()
                digest.update(f"{pname}{tuple(p.shape)}{summary[0]:.10e}{summary[1]:.10e}".encode())
    return digest.hexdigest()[:16]


def query_prompt_for(model, suite: RetrievalSuite) -> str | None:
    """The text put before each query of `suite` for `model`: none for a model without a
    "query" prompt (MiniLM); for a Qwen3-style one ("Instruct: ...Query:") the suite's task
    instruction in that template; else the model's own query prompt."""
    prompts = getattr(model, "prompts", None) or {}
    own = prompts.get("query")
    if not own:
        return None
    if "Instruct:" in own and suite.query_prompt:
        from cardioembed.training.models import QWEN3_QUERY_TEMPLATE

        return QWEN3_QUERY_TEMPLATE.format(task=suite.query_prompt)
    return own


class Encoder:
    """Encodes text sets with one model, each distinct set once: in memory for the run and
    on disk (``<cache_dir>/<fingerprint>/<text-set hash>.npy``) across runs; within a run a
    text already encoded for another set (the cardiovascular definitions are the corpus of
    two suites and the texts of a third) is not encoded again. Embeddings are
    L2-normalised float32, so a dot product is the cosine."""

    def __init__(
        self,
        model,
        cache_dir: str | os.PathLike | None = None,
        fingerprint: str | None = None,
        batch_size: int = 64,
    ):
        self.model = model
        self.fingerprint = fingerprint or model_fingerprint(model)
        self.cache_dir = None if cache_dir is None else Path(cache_dir) / self.fingerprint
        self.batch_size = batch_size
        self._memory: dict[str, np.ndarray] = {}  # text-set hash -> embeddings
        self._by_text: dict[str, dict[str, np.ndarray]] = {}  # prompt -> text -> embedding
        self.encoded_texts = 0  # texts actually encoded (cache misses), for reports

    def __call__(self, texts: Sequence[str], prompt: str | None = None) -> np.ndarray:
        texts = [str(t) for t in texts]
        digest = hashlib.sha256((prompt or "").encode() + b"\x1d")
        for text in texts:
            digest.update(text.encode() + b"\x1e")
        key = digest.hexdigest()[:20]  # the text set and its prompt
        if key in self._memory:
            return self._memory[key]
        path = None if self.cache_dir is None else self.cache_dir / f"{key}.npy"
        if path is not None and path.is_file():
            try:
                emb = np.load(path)
                if emb.shape[0] == len(texts):
                    self._memory[key] = emb
                    return emb
            except (OSError, ValueError):
                pass  # a damaged cache file is recomputed
        known = self._by_text.setdefault(prompt or "", {})
        todo = [t for t in dict.fromkeys(texts) if t not in known]
        if todo:
            kwargs: dict[str, Any] = {
                "batch_size": self.batch_size,
                "show_progress_bar": False,
                "convert_to_numpy": True,
                "normalize_embeddings": True,
            }
            if prompt:
                kwargs["prompt"] = prompt
            raw = np.asarray(self.model.encode(todo, **kwargs), dtype=np.float32)
            self.encoded_texts += len(todo)
            norms = np.linalg.norm(raw, axis=1, keepdims=True)
            raw = raw / np.where(norms == 0, 1, norms)
            known.update(zip(todo, raw, strict=True))
        emb = np.stack([known[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as handle:
                    np.save(handle, emb)
        self._memory[key] = emb
        return emb


# ============================================================================ metrics
def rank_metrics(
    scores: np.ndarray,
    relevant: Sequence[Sequence[int]],
    seed: int = 0,
    qids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-query acc@1/5/10, mrr@10, ndcg@10 from a (queries x documents) score matrix and,
    for each query, the column indices of its relevant documents. Ties are ordered by one
    seeded random permutation of the documents."""
    scores = np.asarray(scores)
    n_q, n_d = scores.shape
    if len(relevant) != n_q:
        raise ValueError(f"{n_q} score rows but {len(relevant)} relevant lists")
    priority = np.random.default_rng(seed).permutation(n_d)
    rows = np.zeros((n_q, len(RETRIEVAL_METRICS)))
    discount = 1.0 / np.log2(np.arange(2, 12))
    for i in range(n_q):
        rel = np.asarray(sorted(set(relevant[i])), dtype=int)
        s = scores[i]
        s_rel = s[rel][:, None]
        ranks = (
            (s[None, :] > s_rel).sum(1)
            + ((s[None, :] == s_rel) & (priority[None, :] < priority[rel][:, None])).sum(1)
            + 1
        )
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
    frame.insert(0, "item", list(qids) if qids is not None else [str(i) for i in range(n_q)])
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
    n_resamples: int = 1000
    confidence_level: float = 0.95
    method: str = "percentile"
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.n_resamples, int) or self.n_resamples < 1:
            raise ParameterError("n_resamples", self.n_resamples, "a whole number >= 1, e.g. 1000")
        if not 0 < self.confidence_level < 1:
            raise ParameterError("confidence_level", self.confidence_level, "in (0, 1), e.g. 0.95")
        if self.method not in CI_METHODS:
            raise ParameterError("ci_method", self.method, f"one of {', '.join(CI_METHODS)}")


def interval(
    statistic: Callable,
    samples: Sequence[np.ndarray],
    config: BootstrapConfig = BootstrapConfig(),
    paired: bool = True,
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
        ci = bootstrap(
            samples,
            statistic,
            n_resamples=config.n_resamples,
            confidence_level=config.confidence_level,
            method=config.method,
            paired=paired,
            vectorized=True,
            axis=-1,
            rng=np.random.default_rng(config.seed),
        ).confidence_interval
    low, high = float(ci.low), float(ci.high)
    return (point, low, high) if np.isfinite(low) and np.isfinite(high) else (point, point, point)


def difference_of_gains(
    in_domain: Sequence[np.ndarray],
    out_domain: Sequence[np.ndarray],
    config: BootstrapConfig = BootstrapConfig(),
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
def score_suite(
    model, suite: Suite, encoder: Encoder | None = None, seed: int = 0
) -> pd.DataFrame | None:
    """Per-item results of one model on one suite: retrieval -> item + the five metrics;
    similarity -> item, cosine, gold. None when the model does not apply (BM25 on a
    similarity suite)."""
    is_bm25 = isinstance(model, BM25) or model == BM25_NAME
    if isinstance(suite, RetrievalSuite):
        qids, dids = list(suite.queries), list(suite.corpus)
        q_texts = [suite.queries[q] for q in qids]
        d_texts = [suite.corpus[d] for d in dids]
        if is_bm25:
            scores = (model if isinstance(model, BM25) else BM25()).scores(q_texts, d_texts)
        else:
            encoder = encoder or Encoder(model)
            q = encoder(q_texts, prompt=query_prompt_for(encoder.model, suite))
            d = encoder(d_texts)
            scores = q @ d.T
        col = {d: i for i, d in enumerate(dids)}
        relevant = [[col[d] for d in suite.relevant[q]] for q in qids]
        return rank_metrics(scores, relevant, seed=seed, qids=qids)
    if isinstance(suite, SimilaritySuite):
        if is_bm25:
            return None
        encoder = encoder or Encoder(model)
        a = encoder([p[0] for p in suite.pairs])
        b = encoder([p[1] for p in suite.pairs])
        items = (
            [f"{x}|{y}" for x, y in suite.ids]
            if suite.ids
            else [str(i) for i in range(len(suite.pairs))]
        )
        return pd.DataFrame(
            {
                "item": items,
                "cosine": (a * b).sum(1).astype(float),
                "gold": np.asarray(suite.gold, dtype=float),
            }
        )
    raise TypeError(f"not a suite: {type(suite).__name__}")


@dataclass
class EvaluationResult:
    metrics: pd.DataFrame
    gains: pd.DataFrame
    per_query: pd.DataFrame
    seconds: dict[str, float]
    encoded_texts: dict[str, int]
    out_dir: Path | None = None


def _rows(per_query: pd.DataFrame, suite: str, model: str) -> pd.DataFrame:
    return per_query[(per_query["suite"] == suite) & (per_query["model"] == model)].set_index(
        "item"
    )


def _arrays(kind: str, metric: str, data: pd.DataFrame, ref: pd.DataFrame) -> list[np.ndarray]:
    """The paired per-item arrays of a gain: (model, base), or (cosine, base cosine, gold)."""
    if kind == "retrieval":
        return [data[metric].to_numpy(), ref[metric].to_numpy()]
    return [data["cosine"].to_numpy(), ref["cosine"].to_numpy(), data["gold"].to_numpy()]


def summarise(
    per_query: pd.DataFrame,
    suites: Mapping[str, Suite],
    base: str | None = "base",
    config: BootstrapConfig = BootstrapConfig(),
    specific_pairs: Mapping[str, tuple[str, str]] = SPECIFIC_PAIRS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """metrics and gains tables from the per-item results (columns suite, model, item,
    then the metric columns or cosine/gold). Gains are paired with `base` on the same
    items; suite ``cardio-specific:<label>`` of `specific_pairs` holds, per model, the gain
    on the in-domain suite minus the gain on its out-of-domain partner."""
    metric_rows, gain_rows = [], []
    models = list(dict.fromkeys(per_query["model"]))
    paired: dict[tuple[str, str, str], list[np.ndarray]] = {}  # (suite, model, metric) -> arrays
    for suite_name, suite in suites.items():
        metrics = RETRIEVAL_METRICS if suite.kind == "retrieval" else SIMILARITY_METRICS
        for model in models:
            data = _rows(per_query, suite_name, model)
            if not len(data):
                continue
            for metric in metrics:
                if suite.kind == "retrieval":
                    row = interval(np.mean, [data[metric]], config)
                else:
                    row = interval(spearman, [data["cosine"], data["gold"]], config)
                metric_rows.append([suite_name, model, metric, *row, len(data)])
            ref = _rows(per_query, suite_name, base) if base not in (None, model) else []
            if not len(ref):
                continue
            ref = ref.loc[data.index]  # the same queries, in the same order
            gain = mean_difference if suite.kind == "retrieval" else spearman_difference
            for metric in metrics:
                arrays = paired[(suite_name, model, metric)] = _arrays(
                    suite.kind, metric, data, ref
                )
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


def evaluate_models(
    models: Mapping[str, Any],
    suites: Mapping[str, Suite],
    out_dir: str | os.PathLike | None,
    *,
    base: str | None = "base",
    cache_dir: str | os.PathLike | None = None,
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    ci_method: str = "percentile",
    seed: int = 0,
    batch_size: int = 64,
    fingerprints: Mapping[str, str] | None = None,
    specific_pairs: Mapping[str, tuple[str, str]] = SPECIFIC_PAIRS,
    echo: Callable[[str], None] = print,
) -> EvaluationResult:
    """Score every model on every suite; write metrics.csv, gains.csv, per_query.parquet and
    a manifest into `out_dir` (None: write nothing).

    `models`: name -> ``"bm25"``, a :class:`BM25`, or a model with ``encode``. Name the
    untrained model ``base`` (or pass `base=`): gains are differences from it. Embeddings
    are cached under `cache_dir` (default ``<out_dir>/cache``)."""
    config = BootstrapConfig(n_resamples, confidence_level, ci_method, seed)
    if not models:
        raise ParameterError("models", dict(models), "give at least one model")
    if base is not None and base not in models:
        echo(f"no model named {base!r}: gains.csv will be empty")
        base = None
    if cache_dir is None and out_dir is not None:
        cache_dir = Path(out_dir) / "cache"
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    encoded: dict[str, int] = {}
    fingerprints = dict(fingerprints or {})
    frames = []
    for model_name, model in models.items():
        clock = time.perf_counter()
        if isinstance(model, str) and model != BM25_NAME:
            raise ParameterError(
                "models", {model_name: model}, "a model object with encode(), or 'bm25'"
            )
        if isinstance(model, str) or isinstance(model, BM25):
            model = model if isinstance(model, BM25) else BM25()
            fingerprints[model_name] = model.fingerprint
            encoder = None
        else:
            encoder = Encoder(model, cache_dir, fingerprints.get(model_name), batch_size)
            fingerprints[model_name] = encoder.fingerprint
        for suite_name, suite in suites.items():
            frame = score_suite(model, suite, encoder, seed=seed)
            if frame is None:
                continue
            frame.insert(0, "model", model_name)
            frame.insert(0, "suite", suite_name)
            frames.append(frame)
        seconds[f"score:{model_name}"] = round(time.perf_counter() - clock, 2)
        encoded[model_name] = encoder.encoded_texts if encoder else 0
        echo(
            f"  {model_name}: {seconds[f'score:{model_name}']:.1f} s "
            f"({encoded[model_name]} texts encoded)"
        )
    per_query = pd.concat(frames, ignore_index=True)
    clock = time.perf_counter()
    metrics, gains = summarise(per_query, suites, base, config, specific_pairs)
    seconds["bootstrap"] = round(time.perf_counter() - clock, 2)
    seconds["total"] = round(time.perf_counter() - started, 2)
    result = EvaluationResult(metrics, gains, per_query, seconds, encoded)
    if out_dir is not None:
        params = {
            "models": fingerprints,
            "base": base,
            "suites": {
                n: {"kind": s.kind, "items": s.n_items, "fingerprint": s.fingerprint()}
                for n, s in suites.items()
            },
            "bootstrap": {
                "n_resamples": n_resamples,
                "confidence_level": confidence_level,
                "method": ci_method,
                "seed": seed,
            },
            "specific_pairs": {k: list(v) for k, v in specific_pairs.items()},
        }
        result.out_dir = write_results(result, out_dir, params)
    return result


def write_results(
    result: EvaluationResult, out_dir: str | os.PathLike, params: Mapping[str, Any]
) -> Path:
    """Write the tables atomically, the manifest last (its absence marks an unfinished
    artifact; the embedding cache beside them is kept)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)
    for name, frame in (("metrics.csv", result.metrics), ("gains.csv", result.gains)):
        with atomic_path(out_dir / name) as tmp:
            frame.to_csv(tmp, index=False)
    with atomic_path(out_dir / "per_query.parquet") as tmp:
        result.per_query.to_parquet(tmp, index=False)
    # write_manifest hashes every file under the folder: keep the cache out of it
    staging = out_dir / ".manifest-staging"
    staging.mkdir(exist_ok=True)
    try:
        for name in ("metrics.csv", "gains.csv", "per_query.parquet"):
            try:
                os.link(out_dir / name, staging / name)
            except OSError:
                shutil.copy2(out_dir / name, staging / name)
        write_manifest(
            staging,
            kind="evaluation",
            params=params,
            seconds=result.seconds.get("total"),
            extra={
                "seconds_by_step": result.seconds,
                "encoded_texts": result.encoded_texts,
                "params_hash_note": params_hash(params),
            },
        )
        os.replace(staging / MANIFEST, out_dir / MANIFEST)
    finally:
        for path in staging.iterdir():
            path.unlink()
        staging.rmdir()
    return out_dir


def pick(table: pd.DataFrame, suite: str, model: str, metric: str) -> pd.Series | None:
    """The row of a metrics or gains table for (suite, model, metric), or None."""
    rows = table[(table.suite == suite) & (table.model == model) & (table.metric == metric)]
    return rows.iloc[0] if len(rows) else None


# ============================================================================ MTEB
PUBLIC_MTEB_TASKS = ("BIOSSES", "SciFact")


def _quiet_encode(encode_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    # mteb's retrieval search draws its own progress bar unless encode_kwargs turn it off
    return {"show_progress_bar": False, **(encode_kwargs or {})}


def mteb_public(
    model, tasks: Iterable[str] = PUBLIC_MTEB_TASKS, encode_kwargs: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run public MTEB tasks (default BIOSSES, Spearman; SciFact, NDCG@10) on `model`.

    Returns one record per task: task, metric (the task's main score), value, status
    ("ok" or "skipped") and reason. Where the data cannot be loaded (offline, or the hub
    out of reach, without a local copy: :func:`hub.offline_when_unreachable` makes that
    fail at once instead of retrying), the task is skipped with the reason in plain words;
    nothing is raised."""
    records = []
    try:
        import mteb
    except Exception as error:  # pragma: no cover - mteb is pinned
        return [
            {
                "task": t,
                "metric": None,
                "value": None,
                "status": "skipped",
                "reason": f"the mteb package cannot be imported: {error}",
            }
            for t in tasks
        ]
    for name in tasks:
        record: dict[str, Any] = {
            "task": name,
            "metric": None,
            "value": None,
            "status": "skipped",
            "reason": "",
        }
        try:
            task = mteb.get_tasks(tasks=[name])[0]
            record["metric"] = task.metadata.main_score
        except Exception as error:
            record["reason"] = f"MTEB has no task {name!r}: {error}"
            records.append(record)
            continue
        offline = False
        try:
            with hub.offline_when_unreachable() as offline:
                task.load_data()
        except Exception as error:
            where = task.metadata.dataset.get("path", "?")
            why = (
                "offline (HF_HUB_OFFLINE=1)"
                if hub.offline_requested()
                else "the Hugging Face Hub cannot be reached from this machine"
            )
            record["reason"] = f"its dataset {where} could not be loaded" + (
                f": {why}, and it is not in the local Hugging Face cache"
                if offline
                else f": {type(error).__name__}: {str(error)[:200]}"
            )
            records.append(record)
            continue
        try:
            result = mteb.evaluate(
                model,
                [task],
                cache=None,
                show_progress_bar=False,
                encode_kwargs=_quiet_encode(encode_kwargs),
            )
            scores = result.task_results[0].scores
            split = "test" if "test" in scores else next(iter(scores))
            record.update(value=float(scores[split][0]["main_score"]), status="ok")
        except Exception as error:
            record["reason"] = f"the evaluation failed: {type(error).__name__}: {str(error)[:200]}"
        records.append(record)
    return records


_TASK_CLASSES: dict[str, type] = {}


def _task_metadata(suite: Suite, task_type: str, main_score: str):
    from mteb.abstasks.task_metadata import TaskMetadata

    return TaskMetadata(
        name=f"CardioEmbed-{suite.name}",
        description=suite.description or f"cardioembed suite {suite.name}",
        reference=None,
        dataset={"path": f"local/cardioembed/{suite.name}", "revision": suite.fingerprint()},
        type=task_type,
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score=main_score,
        date=None,
        domains=["Medical"],
        task_subtypes=[],
        license="not specified",
        annotations_creators="derived",
        dialect=[],
        sample_creation="found",
        bibtex_citation="",
    )


def mteb_task(suite: Suite):
    """An MTEB task (AbsTaskRetrieval or AbsTaskSTS subclass) that serves `suite`'s local
    texts, so ``mteb.evaluate(model, [mteb_task(suite)], cache=None)`` scores any model on
    it offline. Query/document ids are prefixed ("q:", "d:") so they never collide."""
    from datasets import Dataset

    if isinstance(suite, RetrievalSuite):
        from mteb.abstasks.retrieval import AbsTaskRetrieval
        from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

        def load_data(self, num_proc: int | None = None, **kwargs) -> None:
            if self.data_loaded:
                return
            split = RetrievalSplitData(
                queries=Dataset.from_list(
                    [{"id": f"q:{q}", "text": t} for q, t in suite.queries.items()]
                ),
                corpus=Dataset.from_list(
                    [{"id": f"d:{d}", "text": t, "title": ""} for d, t in suite.corpus.items()]
                ),
                relevant_docs={
                    f"q:{q}": {f"d:{d}": 1 for d in docs} for q, docs in suite.relevant.items()
                },
                top_ranked=None,
            )
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

        cls = type(
            f"CardioEmbedTask_{suite.name.replace('-', '_')}",
            (AbsTaskRetrieval,),
            {
                "metadata": _task_metadata(suite, "Retrieval", "ndcg_at_10"),
                "load_data": load_data,
            },
        )
        return cls()
    if isinstance(suite, SimilaritySuite):
        from datasets import DatasetDict
        from mteb.abstasks.sts import AbsTaskSTS

        gold = np.asarray(suite.gold, dtype=float)

        def load_data(self, num_proc: int | None = None, **kwargs) -> None:
            if self.data_loaded:
                return
            self.dataset = DatasetDict(
                {
                    "test": Dataset.from_dict(
                        {
                            "sentence1": [p[0] for p in suite.pairs],
                            "sentence2": [p[1] for p in suite.pairs],
                            "score": [float(g) for g in suite.gold],
                        }
                    )
                }
            )
            self.data_loaded = True

        cls = type(
            f"CardioEmbedTask_{suite.name.replace('-', '_')}",
            (AbsTaskSTS,),
            {
                "metadata": _task_metadata(suite, "STS", "cosine_spearman"),
                "load_data": load_data,
                "min_score": float(gold.min()) if len(gold) else 0.0,
                "max_score": float(gold.max()) if len(gold) and gold.max() > gold.min() else 1.0,
            },
        )
        return cls()
    raise TypeError(f"not a suite: {type(suite).__name__}")


def mteb_evaluate_suites(
    model, suites: Mapping[str, Suite], encode_kwargs: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Score `model` on the suites through MTEB (offline): suite, metric, value."""
    import mteb

    rows = []
    for name, suite in suites.items():
        task = mteb_task(suite)
        result = mteb.evaluate(
            model,
            [task],
            cache=None,
            show_progress_bar=False,
            encode_kwargs=_quiet_encode(encode_kwargs),
        )
        scores = result.task_results[0].scores["test"][0]
        rows.append(
            {
                "suite": name,
                "metric": task.metadata.main_score,
                "value": float(scores["main_score"]),
            }
        )
    return pd.DataFrame(rows)


__all__ = [
    "BM25",
    "BM25_NAME",
    "Encoder",
    "model_fingerprint",
    "query_prompt_for",
    "rank_metrics",
    "spearman",
    "BootstrapConfig",
    "mean_difference",
    "spearman_difference",
    "interval",
    "difference_of_gains",
    "score_suite",
    "summarise",
    "evaluate_models",
    "write_results",
    "EvaluationResult",
    "mteb_public",
    "mteb_task",
    "mteb_evaluate_suites",
    "RETRIEVAL_METRICS",
    "METRICS_COLUMNS",
    "GAINS_COLUMNS",
    "PUBLIC_MTEB_TASKS",
]
