"""What the evaluation chapter shows besides the tables: retrieved examples before and
after training, and a 2-D map of the embedding space."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cardioembed.errors import ParameterError
from cardioembed.evaluation.suites import RetrievalSuite


def top_k_examples(
    suite: RetrievalSuite,
    embeddings: Mapping[str, tuple[np.ndarray, np.ndarray]],
    n_queries: int = 5,
    k: int = 3,
    changed_first: tuple[str, str] | None = None,
    seed: int = 42,
) -> pd.DataFrame:
    """The top `k` documents of `n_queries` queries under each model.

    `embeddings`: model name -> (query embeddings, document embeddings) in the suite's
    query and corpus order, unit length. `changed_first=(before, after)` prefers queries
    whose top document differs between the two models (a seeded sample of them), so the
    table shows what training changed; the rest are filled with a seeded sample of the
    others. One row per (query, model, rank)."""
    if not isinstance(n_queries, int) or n_queries < 1:
        raise ParameterError("n_examples", n_queries, "a whole number >= 1")
    qids, dids = list(suite.queries), list(suite.corpus)
    top = {
        name: np.argsort(-(q @ d.T), axis=1, kind="stable")[:, :k]
        for name, (q, d) in embeddings.items()
    }
    order = list(range(len(qids)))
    rng = random.Random(seed)
    rng.shuffle(order)
    if changed_first:
        before, after = changed_first
        changed = [i for i in order if top[before][i, 0] != top[after][i, 0]]
        order = changed + [i for i in order if i not in set(changed)]
    rows = []
    for i in order[:n_queries]:
        relevant = suite.relevant[qids[i]]
        for name, ranks in top.items():
            for rank, j in enumerate(ranks[i], start=1):
                rows.append(
                    {
                        "query": suite.queries[qids[i]],
                        "model": name,
                        "rank": rank,
                        "document": suite.corpus[dids[j]],
                        "relevant": dids[j] in relevant,
                    }
                )
    return pd.DataFrame(rows)


def examples_markdown(examples: pd.DataFrame, max_chars: int = 110) -> str:
    """The examples as a Markdown list: each query, then each model's top documents,
    the relevant one marked."""
    lines = []
    for query, block in examples.groupby("query", sort=False):
        lines.append(f"**{query}**\n")
        for model, rows in block.groupby("model", sort=False):
            lines.append(f"- *{model}*:")
            for row in rows.itertuples():
                text = (
                    row.document
                    if len(row.document) <= max_chars
                    else row.document[: max_chars - 1].rstrip() + "…"
                )
                mark = " ✔" if row.relevant else ""
                lines.append(f"  {row.rank}. {text}{mark}")
        lines.append("")
    return "\n".join(lines)


def embedding_map(embeddings: np.ndarray, seed: int = 42, perplexity: float = 30.0) -> np.ndarray:
    """A 2-D t-SNE map of unit-length embeddings, on cosine distance (scikit-learn)."""
    from sklearn.manifold import TSNE

    n = len(embeddings)
    if n < 5:
        raise ParameterError("embeddings", n, "at least 5 texts for a map")
    tsne = TSNE(
        n_components=2,
        metric="cosine",
        init="pca",
        random_state=seed,
        perplexity=min(perplexity, (n - 1) / 3),
    )
    return tsne.fit_transform(np.asarray(embeddings, dtype=np.float32))


def branch_labels(branch_names: Sequence[str], top: int = 6) -> list[str]:
    """Branch names with all but the `top` most frequent folded into "other"."""
    counts = pd.Series(list(branch_names)).value_counts()
    keep = set(counts.index[:top])
    return [b if b in keep else "other" for b in branch_names]
