"""The retrieval evaluator: what a user gets from the index, measured through the index.

A :class:`RetrievalSet` is a corpus, queries into it, and what is relevant to each query:

- from pairs (:func:`pair_retrieval_set`): the corpus is the split's distinct items (both
  sides of every pair), the queries are the first items of the positive pairs, and a query's
  one relevant item is its partner;
- from class labels (:func:`class_retrieval_set`): the corpus is every item, every item of a
  class with two or more items is a query, and the other items of its class are relevant.

:func:`evaluate_retrieval` embeds the queries with the index's tower and searches the index
(:meth:`siamese.index.Index.search_vectors`, the search path of :meth:`~siamese.index.Index.search`
without building a :class:`~siamese.index.Hit` per result), leaves out each query's own copy,
and scores the ranked results with the plain metrics of :mod:`siamese.metrics.numpy_metrics`:
recall@k, MRR@10 and nDCG@10 for pairs; precision@k, recall@k and MAP@R for classes; and the
queries per second of embedding plus search. Keys start with ``retrieval_``; the primary
metric (:data:`PRIMARY`) is MRR@10 for pairs and MAP@R for classes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from siamese import encode
from siamese.errors import ConfigError
from siamese.index import Index
from siamese.metrics import numpy_metrics as metrics

logger = logging.getLogger(__name__)

PAIRS = "pairs"
CLASSES = "classes"
#: The k of recall@k (and precision@k for classes).
KS = (1, 5, 10)
#: The cut-off of MRR and nDCG.
RANKED_K = 10
#: The key each kind of evaluation is judged by (early stopping, model choice, tables).
PRIMARY = {PAIRS: "retrieval_mrr@10", CLASSES: "retrieval_map@r"}


@dataclass(eq=False)
class RetrievalSet:
    """A corpus, queries into it, and what is relevant to each query.

    Attributes:
        kind: :data:`PAIRS` (one relevant item per query) or :data:`CLASSES`.
        queries: The queries' raw items.
        query_ids: The index id of each query's own copy (left out of its results).
        partners: For pairs, the index id of each query's relevant item.
        labels: For classes, the class of each corpus item (ids are positions).
        corpus: The items to index (an item's id is its position), or ``None`` for queries
            into an index built before (:func:`pair_queries_of_index`).
    """

    kind: str
    queries: Sequence[Any] | np.ndarray
    query_ids: np.ndarray
    partners: np.ndarray | None = None
    labels: np.ndarray | None = None
    corpus: Sequence[Any] | np.ndarray | None = None

    def relevant_counts(self) -> np.ndarray:
        """How many corpus items are relevant to each query."""
        if self.kind == PAIRS:
            return np.ones(len(self.query_ids), dtype=np.int64)
        _, inverse, counts = np.unique(self.labels, return_inverse=True, return_counts=True)
        return (counts[inverse.reshape(-1)] - 1)[self.query_ids]

    def hits(self, found: np.ndarray) -> np.ndarray:
        """Which of ``found`` (``(n, K)`` corpus ids, best first, -1 missing) are relevant."""
        if self.kind == PAIRS:
            return (found == self.partners[:, None]) & (found >= 0)
        query_labels = self.labels[self.query_ids]
        return (self.labels[np.maximum(found, 0)] == query_labels[:, None]) & (found >= 0)


def pair_retrieval_set(
    a: Sequence[Any], b: Sequence[Any], positive: Sequence[bool] | np.ndarray
) -> RetrievalSet:
    """Queries from positive pairs: the first item of each, its partner the one relevant item.

    The corpus is every distinct item of both sides (in order of first appearance). A pair
    whose two items are the same item is left out (its partner is the query itself).

    Raises:
        ConfigError: The lengths differ, or no positive pair is left.
    """
    positive = np.asarray(positive, dtype=bool).reshape(-1)
    if not len(a) == len(b) == len(positive):
        raise ConfigError(f"got {len(a)} first items, {len(b)} second items and {len(positive)} labels")
    ids: dict[Any, int] = {}
    for item in [*a, *b]:
        ids.setdefault(item, len(ids))
    chosen = [
        (ids[x], ids[y]) for x, y, keep in zip(a, b, positive, strict=True) if keep and ids[x] != ids[y]
    ]
    if not chosen:
        raise ConfigError("no positive pair to query with: retrieval needs pairs labelled similar")
    query_ids, partners = (np.asarray(side, dtype=np.int64) for side in zip(*chosen, strict=True))
    corpus = list(ids)
    return RetrievalSet(PAIRS, [corpus[i] for i in query_ids], query_ids, partners=partners, corpus=corpus)


def pair_queries_of_index(
    index: Index, a: Sequence[str], b: Sequence[str], positive: Sequence[bool] | np.ndarray, *, source: str
) -> RetrievalSet:
    """Queries from positive pairs into an index built before, its items found by payload.

    Raises:
        ConfigError: A pair's item is not an item of the index (``source`` names the pairs),
            or no positive pair is left.
    """
    by_payload = {payload: int(i) for i, payload in zip(index.ids, index.payloads, strict=True)}
    positive = np.asarray(positive, dtype=bool).reshape(-1)
    missing = [item for item in (*a, *b) if item not in by_payload]
    if missing:
        raise ConfigError(
            f"{source}: {len(missing)} items of its pairs are not in the index (e.g. {missing[0]!r}); "
            "build the index from the same data (siamese-index build --input ... --split ...)"
        )
    chosen = [
        (x, by_payload[x], by_payload[y])
        for x, y, keep in zip(a, b, positive, strict=True)
        if keep and x != y
    ]
    if not chosen:
        raise ConfigError(f"{source}: no positive pair to query with: retrieval needs pairs labelled similar")
    queries, query_ids, partners = zip(*chosen, strict=True)
    return RetrievalSet(
        PAIRS,
        list(queries),
        np.asarray(query_ids, dtype=np.int64),
        partners=np.asarray(partners, dtype=np.int64),
    )


def class_retrieval_set(
    items: Sequence[Any] | np.ndarray, labels: Sequence[Any] | np.ndarray
) -> RetrievalSet:
    """Every item of a class with two or more items queries the others of its class.

    Raises:
        ConfigError: The lengths differ, or no class has two items.
    """
    labels = np.asarray(labels).reshape(-1)
    if len(items) != len(labels):
        raise ConfigError(f"got {len(items)} items and {len(labels)} labels")
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    query_ids = np.flatnonzero(counts[inverse.reshape(-1)] >= 2).astype(np.int64)
    if len(query_ids) == 0:
        raise ConfigError("no class holds two items: retrieval by class needs at least one such class")
    queries = items[query_ids] if isinstance(items, np.ndarray) else [items[i] for i in query_ids]
    return RetrievalSet(CLASSES, queries, query_ids, labels=labels, corpus=items)


def evaluate_retrieval(index: Index, retrieval: RetrievalSet, *, batch_size: int = 1024) -> dict[str, float]:
    """Search ``index`` with the queries and score the results; see the module docstring.

    Raises:
        ConfigError: The index has no tower, or does not hold the set's corpus.
    """
    if index.tower is None:
        raise ConfigError("the index has no tower to embed the queries with")
    if retrieval.corpus is not None and index.ntotal != len(retrieval.corpus):
        raise ConfigError(f"the index holds {index.ntotal} items, the corpus {len(retrieval.corpus)}")
    depth = search_depth(retrieval, index.ntotal)
    queries = retrieval.queries
    began = time.perf_counter()
    found = []
    for start in range(0, len(retrieval.query_ids), batch_size):
        vectors = encode.embed(index.tower, queries[start : start + batch_size], batch_size=batch_size)
        found.append(index.search_vectors(vectors, depth + 1)[1])
    seconds = time.perf_counter() - began
    figures = score_results(retrieval, np.concatenate(found), corpus_size=index.ntotal)
    figures["retrieval_queries_per_second"] = len(retrieval.query_ids) / max(seconds, 1e-9)
    logger.info(
        "retrieval: %d queries into %d items, %s %.4f",
        len(retrieval.query_ids),
        index.ntotal,
        PRIMARY[retrieval.kind],
        figures[PRIMARY[retrieval.kind]],
    )
    return figures


def search_depth(retrieval: RetrievalSet, corpus_size: int) -> int:
    """How many results each query needs, its own copy not counted: the largest k of the
    figures (for classes, R: every relevant item), at most the rest of the corpus."""
    counts = retrieval.relevant_counts()
    depth = max(*KS, RANKED_K, int(counts.max()) if retrieval.kind == CLASSES else 0)
    return min(depth, corpus_size - 1)


def score_results(retrieval: RetrievalSet, found: np.ndarray, *, corpus_size: int) -> dict[str, float]:
    """The figures of ranked results: ``found`` holds each query's ``search_depth + 1`` best
    ids (its own copy among them or not), best first, -1 for a missing result."""
    depth = search_depth(retrieval, corpus_size)
    counts = retrieval.relevant_counts()
    hits = retrieval.hits(without_own(np.asarray(found), retrieval.query_ids, depth))
    figures: dict[str, float] = {}
    for k in KS:
        figures[f"retrieval_recall@{k}"] = metrics.ranked_recall(hits, counts, k)
    if retrieval.kind == PAIRS:
        figures[f"retrieval_mrr@{RANKED_K}"] = metrics.mean_reciprocal_rank(hits, RANKED_K)
        figures[f"retrieval_ndcg@{RANKED_K}"] = metrics.ndcg(hits, counts, RANKED_K)
    else:
        for k in KS:
            figures[f"retrieval_precision@{k}"] = metrics.ranked_precision(hits, k)
        figures["retrieval_map@r"] = metrics.map_at_r(hits, counts)
    figures["retrieval_queries"] = int(len(retrieval.query_ids))
    figures["retrieval_corpus"] = int(corpus_size)
    return figures


def without_own(found: np.ndarray, own: np.ndarray, depth: int) -> np.ndarray:
    """Each row of ``found`` without the query's own id (its first occurrence), cut to ``depth``
    columns (the last result goes where the own id was not found)."""
    is_own = found == own[:, None]
    first = is_own & (np.cumsum(is_own, axis=1) == 1)
    order = np.argsort(first, axis=1, kind="stable")  # the own id moves last, the rest keep order
    return np.take_along_axis(found, order, axis=1)[:, :depth]


def retrieval_of(tower: Any, retrieval: RetrievalSet, *, batch_size: int = 1024) -> dict[str, float]:
    """Build a cosine Flat index of ``retrieval.corpus`` with ``tower`` and evaluate it."""
    if retrieval.corpus is None:
        raise ConfigError("this retrieval set has no corpus of its own: evaluate it on its index")
    index = Index.build(tower, retrieval.corpus, metric="cosine", batch_size=batch_size, progress=False)
    return evaluate_retrieval(index, retrieval, batch_size=batch_size)
