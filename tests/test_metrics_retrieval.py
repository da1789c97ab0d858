"""The retrieval evaluator: queries through the index, own copies left out, figures by hand
and against brute force."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import siamese
from siamese.errors import ConfigError
from siamese.metrics import numpy_metrics as metrics
from siamese.metrics import retrieval


def _word_tower(vectors: dict[str, tuple[float, ...]]) -> keras.Model:
    """A tower that maps each one-word text to a fixed vector (unknown words to zeros)."""
    words = list(vectors)
    vectorize = keras.layers.TextVectorization(output_sequence_length=1, standardize=None)
    vectorize.set_vocabulary(words)
    dim = len(next(iter(vectors.values())))
    table = np.zeros((len(words) + 2, dim), dtype=np.float32)
    table[2:] = [vectors[w] for w in words]
    embedding = keras.layers.Embedding(len(table), dim, weights=[table], trainable=False)
    text = keras.Input(shape=(), dtype="string")
    return keras.Model(text, keras.layers.Flatten()(embedding(vectorize(text))))


def _at(degrees: float) -> tuple[float, float]:
    return math.cos(math.radians(degrees)), math.sin(math.radians(degrees))


def test_pair_retrieval_by_hand():
    # Unit vectors at these angles: cosine order is angular distance order.
    angles = {"a": 0, "b": 10, "c": 100, "d": 150, "e": 115, "f": 300}
    tower = _word_tower({w: _at(d) for w, d in angles.items()})
    pairs_a = ["a", "c", "f", "d", "b"]
    pairs_b = ["b", "d", "a", "e", "c"]
    labels = [1, 1, 1, 0, 0]
    rset = retrieval.pair_retrieval_set(pairs_a, pairs_b, np.asarray(labels) == 1)
    assert rset.corpus == ["a", "c", "f", "d", "b", "e"]
    # Queries a, c, f; a finds b first (10 degrees); c finds e (15), then d (50): rank 2;
    # f (at -60) finds a (60 away), then b (70): a is its partner, rank 1.
    figures = retrieval.retrieval_of(tower, rset)
    assert figures["retrieval_queries"] == 3 and figures["retrieval_corpus"] == 6
    assert figures["retrieval_recall@1"] == pytest.approx(2 / 3)
    assert figures["retrieval_recall@5"] == pytest.approx(1.0)
    assert figures["retrieval_mrr@10"] == pytest.approx((1 + 1 / 2 + 1) / 3)
    assert figures["retrieval_ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 1) / 3)
    assert figures["retrieval_queries_per_second"] > 0


def test_the_query_itself_is_never_among_its_results():
    found = np.array([[4, 1, 2], [0, 4, 3], [1, 2, 3]])
    own = np.array([4, 4, 9])
    np.testing.assert_array_equal(retrieval.without_own(found, own, 2), [[1, 2], [0, 3], [1, 2]])


def test_class_retrieval_matches_brute_force(rng):
    centers = rng.normal(size=(4, 6))
    labels = rng.integers(0, 4, size=60)
    labels[0] = 5  # a class of one item: in the corpus, never a query
    points = centers[np.minimum(labels, 3)] + rng.normal(scale=1.2, size=(60, 6))
    words = {f"w{i}": tuple(p) for i, p in enumerate(points)}
    rset = retrieval.class_retrieval_set(list(words), labels)
    assert 0 not in rset.query_ids and len(rset.query_ids) == 59
    figures = retrieval.retrieval_of(_word_tower(words), rset)

    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)  # the query's own copy is left out
    order = np.argsort(-similarity, axis=1, kind="stable")[1:, :-1]
    hits = labels[order] == labels[1:, None]
    counts = np.array([np.sum(labels == labels[i]) - 1 for i in range(1, 60)])
    assert figures["retrieval_map@r"] == pytest.approx(metrics.map_at_r(hits, counts), abs=1e-9)
    for k in retrieval.KS:
        assert figures[f"retrieval_precision@{k}"] == pytest.approx(metrics.ranked_precision(hits, k))
        assert figures[f"retrieval_recall@{k}"] == pytest.approx(metrics.ranked_recall(hits, counts, k))


def test_retrieval_sets_refuse_data_without_positives():
    with pytest.raises(ConfigError, match="no positive pair"):
        retrieval.pair_retrieval_set(["a", "b"], ["c", "d"], [False, False])
    with pytest.raises(ConfigError, match="no positive pair"):
        retrieval.pair_retrieval_set(["a"], ["a"], [True])  # a pair of an item with itself
    with pytest.raises(ConfigError, match="no class holds two items"):
        retrieval.class_retrieval_set(["a", "b"], [0, 1])
    index = siamese.Index.from_vectors(np.eye(3, dtype=np.float32))
    with pytest.raises(ConfigError, match="no tower"):
        retrieval.evaluate_retrieval(index, retrieval.class_retrieval_set(["a", "b", "c"], [0, 0, 1]))
