"""Tests of siamese.metrics against SciPy and brute-force references."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from siamese import metrics
from siamese.errors import ConfigError
from siamese.metrics import numpy_metrics

# --------------------------------------------------------------------------------------------
# Brute-force references
# --------------------------------------------------------------------------------------------


def brute_threshold(scores, labels, metric):
    """Best metric over every threshold, trying each candidate in O(n) (O(n^2) in all)."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels)
    distinct = np.unique(scores)
    candidates = [distinct[0] - 1.0, distinct[-1] + 1.0]
    candidates += list((distinct[1:] + distinct[:-1]) / 2.0)
    values = []
    for t in candidates:
        predicted = (scores >= t).astype(int)
        if metric == "accuracy":
            values.append(metrics.accuracy(labels, predicted))
        else:
            values.append(metrics.f1_score(labels, predicted))
    return max(values)


def brute_auc(scores, labels):
    """Fraction of (positive, negative) pairs ordered correctly, ties counting one half."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    total = 0.0
    for p in pos:
        for n in neg:
            total += 1.0 if p > n else 0.5 if p == n else 0.0
    return total / (len(pos) * len(neg))


def direct_ap(scores, labels):
    """AP by looping over distinct thresholds from the highest score down."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels)
    n_pos = labels.sum()
    ap, previous_recall = 0.0, 0.0
    for t in sorted(set(scores.tolist()), reverse=True):
        chosen = scores >= t
        tp = labels[chosen].sum()
        precision = tp / chosen.sum()
        recall = tp / n_pos
        ap += (recall - previous_recall) * precision
        previous_recall = recall
    return ap


def brute_knn(queries, q_labels, refs, r_labels, k, metric):
    """kNN accuracy with one explicit distance computation per query/reference pair."""
    correct = 0
    for q, label in zip(queries, q_labels, strict=True):
        if metric == "l2":
            dist = np.array([np.sqrt(np.sum((q - r) ** 2)) for r in refs])
        else:
            dist = np.array([-np.dot(q, r) / (np.linalg.norm(q) * np.linalg.norm(r)) for r in refs])
        nearest = np.argsort(dist, kind="stable")[:k]
        votes = [r_labels[i] for i in nearest]
        counts = Counter(votes)
        top = max(counts.values())
        winner = next(v for v in votes if counts[v] == top)  # nearest among tied classes
        correct += winner == label
    return correct / len(queries)


# --------------------------------------------------------------------------------------------
# rankdata, pearson, spearman
# --------------------------------------------------------------------------------------------


def test_rankdata_hand_case():
    np.testing.assert_array_equal(metrics.rankdata([10, 20, 20, 5]), [2.0, 3.5, 3.5, 1.0])
    np.testing.assert_array_equal(metrics.rankdata([3, 3, 3]), [2.0, 2.0, 2.0])


def test_rankdata_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 15, size=300)
    np.testing.assert_allclose(metrics.rankdata(values), stats.rankdata(values))


def test_pearson_hand_cases():
    assert metrics.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert metrics.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # x = [1,2,3,4], y = [1,3,2,4]: centred products sum 4, squares 5 and 5 -> 0.8
    assert metrics.pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


def test_pearson_matches_scipy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=500)
    y = 0.6 * x + rng.normal(size=500)
    assert metrics.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 10, size=400)
    y = x + rng.integers(0, 6, size=400)
    expected = stats.spearmanr(x, y)[0]
    assert metrics.spearman(x, y) == pytest.approx(expected, abs=1e-12)
    assert 0.5 < expected < 1.0  # the data really does have partial agreement


def test_spearman_hand_case_is_rank_based():
    # monotone but non-linear: Spearman is exactly 1, Pearson is not
    x = [1, 2, 3, 4, 5]
    y = [1, 8, 27, 64, 1000]
    assert metrics.spearman(x, y) == pytest.approx(1.0)
    assert metrics.pearson(x, y) < 0.9


@pytest.mark.parametrize("function", [metrics.pearson, metrics.spearman])
def test_correlation_of_constant_input_is_nan(function, caplog):
    assert math.isnan(function([1, 1, 1], [1, 2, 3]))
    assert "constant" in caplog.text


# --------------------------------------------------------------------------------------------
# mse, mae, accuracy, f1
# --------------------------------------------------------------------------------------------


def test_mse_and_mae_hand_cases():
    assert metrics.mse([1, 2, 3], [1, 4, 0]) == pytest.approx((0 + 4 + 9) / 3)
    assert metrics.mae([1, 2, 3], [1, 4, 0]) == pytest.approx((0 + 2 + 3) / 3)
    assert metrics.mse([2.5], [2.5]) == 0.0


def test_accuracy_hand_case():
    assert metrics.accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == pytest.approx(0.5)
    assert metrics.accuracy([True, False], [1, 0]) == 1.0


def test_f1_hand_cases():
    # TP=2, FP=1, FN=1 -> 4 / (4 + 1 + 1)
    assert metrics.f1_score([1, 1, 1, 0, 0], [1, 1, 0, 1, 0]) == pytest.approx(4 / 6)
    assert metrics.f1_score([0, 1], [1, 0]) == 0.0
    assert metrics.f1_score([1, 0], [1, 0]) == 1.0


def test_f1_is_zero_without_any_positive():
    assert metrics.f1_score([0, 0, 0], [0, 0, 0]) == 0.0


# --------------------------------------------------------------------------------------------
# best_threshold
# --------------------------------------------------------------------------------------------


def test_best_threshold_hand_case():
    scores = [0.1, 0.4, 0.35, 0.8]
    labels = [0, 0, 1, 1]
    threshold, value = metrics.best_threshold(scores, labels)
    # Perfect split impossible (0.4 is negative, 0.35 positive): best is 3/4, reached first
    # (highest threshold) between 0.8 and 0.4.
    assert value == pytest.approx(0.75)
    assert threshold == pytest.approx(0.6)
    threshold, value = metrics.best_threshold(scores, labels, metric="f1")
    # t between 0.1 and 0.35: TP=2, FP=1 -> F1 = 4/5
    assert value == pytest.approx(0.8)
    assert threshold == pytest.approx(0.225)


def test_best_threshold_extremes():
    threshold, value = metrics.best_threshold([0.2, 0.5], [1, 1])
    assert value == 1.0 and threshold < 0.2
    threshold, value = metrics.best_threshold([0.2, 0.5], [0, 0])
    assert value == 1.0 and threshold > 0.5


def test_best_threshold_adjacent_floats_still_split():
    a = 1.0
    b = float(np.nextafter(a, 2.0))
    threshold, value = metrics.best_threshold([a, b], [0, 1])
    assert value == 1.0
    assert a < threshold <= b


@pytest.mark.parametrize("metric", ["accuracy", "f1"])
@pytest.mark.parametrize("seed", range(5))
def test_best_threshold_matches_brute_force(metric, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=150)
    scores = np.round(labels * 0.5 + rng.normal(size=150), 1)  # rounding makes ties
    threshold, value = metrics.best_threshold(scores, labels, metric=metric)
    assert value == pytest.approx(brute_threshold(scores, labels, metric))
    predicted = (scores >= threshold).astype(int)
    achieved = (
        metrics.accuracy(labels, predicted) if metric == "accuracy" else metrics.f1_score(labels, predicted)
    )
    assert achieved == pytest.approx(value)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-5, 5), st.integers(0, 1)),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from(["accuracy", "f1"]),
)
def test_best_threshold_property_equals_brute_force(pairs, metric):
    scores = [s / 2 for s, _ in pairs]
    labels = [y for _, y in pairs]
    threshold, value = metrics.best_threshold(scores, labels, metric=metric)
    assert value == pytest.approx(brute_threshold(scores, labels, metric))
    predicted = (np.asarray(scores) >= threshold).astype(int)
    score_fn = metrics.accuracy if metric == "accuracy" else metrics.f1_score
    assert score_fn(labels, predicted) == pytest.approx(value)


# --------------------------------------------------------------------------------------------
# roc_auc, average_precision, log_loss
# --------------------------------------------------------------------------------------------


def test_roc_auc_hand_cases():
    assert metrics.roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert metrics.roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    # pairs (pos 0.5 vs neg 0.5) tie -> 1/2, (pos 0.5 vs neg 0.1) win -> 1: (0.5 + 1) / 2
    assert metrics.roc_auc([0.5, 0.5, 0.1], [1, 0, 0]) == pytest.approx(0.75)


@pytest.mark.parametrize("seed", range(3))
def test_roc_auc_matches_pairwise_brute_force(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=200)
    scores = np.round(labels * 0.7 + rng.normal(size=200), 1)
    assert metrics.roc_auc(scores, labels) == pytest.approx(brute_auc(scores, labels))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=40, unique=True),
    st.randoms(use_true_random=False),
)
def test_roc_auc_property_negating_scores_flips(scores, random):
    labels = [random.randint(0, 1) for _ in scores]
    labels[0], labels[1] = 0, 1  # both classes present
    forward = metrics.roc_auc(scores, labels)
    backward = metrics.roc_auc([-s for s in scores], labels)
    assert forward == pytest.approx(1.0 - backward)


def test_average_precision_hand_cases():
    # P = 1, 1/2, 2/3, 1/2 and R = .5, .5, 1, 1 -> .5 * 1 + .5 * 2/3
    assert metrics.average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.5 + 1 / 3)
    # tie at 0.5 enters together: P=1/2 at R=1/2, then P=2/3 at R=1
    assert metrics.average_precision([0.5, 0.5, 0.2], [1, 0, 1]) == pytest.approx(0.25 + 1 / 3)
    assert metrics.average_precision([0.3, 0.2], [1, 1]) == 1.0


@pytest.mark.parametrize("seed", range(3))
def test_average_precision_matches_direct_computation(seed):
    rng = np.random.default_rng(10 + seed)
    labels = rng.integers(0, 2, size=250)
    scores = np.round(labels * 0.5 + rng.normal(size=250), 1)
    assert metrics.average_precision(scores, labels) == pytest.approx(direct_ap(scores, labels))


def test_log_loss_hand_cases():
    expected = -(math.log(0.8) + math.log(1 - 0.3)) / 2
    assert metrics.log_loss([1, 0], [0.8, 0.3]) == pytest.approx(expected)
    # a confident mistake is clipped to -log(eps)
    assert metrics.log_loss([1], [0.0], eps=1e-3) == pytest.approx(-math.log(1e-3))
    assert metrics.log_loss([0, 1], [0.0, 1.0]) == pytest.approx(-math.log(1 - 1e-7))


# --------------------------------------------------------------------------------------------
# recall_at_k
# --------------------------------------------------------------------------------------------


def test_recall_at_k_hand_cases():
    found = [[1, 2, 3, 9], [4, 5, 6, 7]]
    true = [[3, 2, 8], [7, 6, 4]]
    # row 0: {1,2,3} & {3,2,8} = 2; row 1: {4,5,6} & {7,6,4} = 2 -> 4 / 6
    assert metrics.recall_at_k(found, true, 3) == pytest.approx(4 / 6)
    # k=1 compares only the first column: 1 vs 3, 4 vs 7
    assert metrics.recall_at_k(found, true, 1) == 0.0


def test_recall_at_k_ignores_duplicates_and_padding():
    assert metrics.recall_at_k([[5, 5, -1]], [[5, 6, -1]], 3) == pytest.approx(1 / 3)


def test_recall_at_k_matches_loop_on_random_ids(monkeypatch):
    rng = np.random.default_rng(3)
    true = np.stack([rng.permutation(50)[:10] for _ in range(40)])
    found = np.where(rng.random((40, 10)) < 0.7, true, rng.integers(50, 60, (40, 10)))
    expected = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, true, strict=True)])
    monkeypatch.setattr(numpy_metrics, "_CUBE_ELEMENTS", 300)  # forces several blocks
    assert metrics.recall_at_k(found, true, 10) == pytest.approx(expected)


# --------------------------------------------------------------------------------------------
# knn_accuracy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("k", [1, 5])
def test_knn_accuracy_matches_brute_force(metric, k):
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(4, 6))
    r_labels = rng.integers(0, 4, size=120)
    q_labels = rng.integers(0, 4, size=50)
    refs = centres[r_labels] + 1.2 * rng.normal(size=(120, 6))
    queries = centres[q_labels] + 1.2 * rng.normal(size=(50, 6))
    expected = brute_knn(queries, q_labels, refs, r_labels, k, metric)
    got = metrics.knn_accuracy(queries, q_labels, refs, r_labels, k=k, metric=metric)
    assert got == pytest.approx(expected)
    assert 0.2 < expected < 1.0  # neither trivial nor perfect
    batched = metrics.knn_accuracy(queries, q_labels, refs, r_labels, k=k, metric=metric, batch_size=7)
    assert batched == pytest.approx(expected)


def test_knn_accuracy_small_blocks_give_same_result(monkeypatch):
    rng = np.random.default_rng(5)
    refs = rng.normal(size=(80, 3)).astype(np.float32)
    r_labels = rng.integers(0, 3, size=80)
    queries = rng.normal(size=(30, 3)).astype(np.float32)
    q_labels = rng.integers(0, 3, size=30)
    full = metrics.knn_accuracy(queries, q_labels, refs, r_labels, k=3)
    monkeypatch.setattr(numpy_metrics, "_KNN_BLOCK_ELEMENTS", 100)  # one query per block
    assert metrics.knn_accuracy(queries, q_labels, refs, r_labels, k=3) == full
    assert full == pytest.approx(brute_knn(queries, q_labels, refs, r_labels, 3, "l2"))


def test_knn_accuracy_hand_case_and_vote_tie_goes_to_nearest():
    refs = np.array([[0.0], [1.0], [2.0], [10.0]])
    r_labels = np.array(["a", "b", "b", "a"])
    queries = np.array([[0.1], [1.9], [9.0]])
    # k=1: nearest are 0 (a), 2 (b), 3 (a)
    assert metrics.knn_accuracy(queries, ["a", "b", "a"], refs, r_labels, k=1) == 1.0
    # k=2 for query 0.1: neighbours 0 (a), 1 (b) tie 1-1 -> nearest class a wins
    assert metrics.knn_accuracy([[0.1]], ["a"], refs, r_labels, k=2) == 1.0
    # k=3 for query 0.1: a, b, b -> b wins by majority
    assert metrics.knn_accuracy([[0.1]], ["a"], refs, r_labels, k=3) == 0.0


def test_knn_accuracy_cosine_ignores_length():
    refs = np.array([[1.0, 0.0], [0.0, 1.0]])
    # [5, 1] is far from [1, 0] in L2 but points the same way
    queries = np.array([[5.0, 1.0]])
    assert metrics.knn_accuracy(queries, [0], refs, [0, 1], metric="cosine") == 1.0
    assert metrics.knn_accuracy([[0.4, 1.0]], [0], refs, [0, 1], metric="l2") == 0.0


# --------------------------------------------------------------------------------------------
# one_shot_accuracy
# --------------------------------------------------------------------------------------------


def test_one_shot_accuracy_hand_cases():
    similarity = np.array([[0.1, 0.9, 0.3], [0.8, 0.2, 0.1], [0.1, 0.2, 0.3]])
    assert metrics.one_shot_accuracy(similarity, [1, 0, 0]) == pytest.approx(2 / 3)


def test_one_shot_accuracy_ties_give_chance_credit():
    # all equal: answer 0 gets 1/4 credit, not full credit for sitting first
    assert metrics.one_shot_accuracy(np.zeros((2, 4)), [0, 3]) == pytest.approx(0.25)
    assert metrics.one_shot_accuracy([[1.0, 1.0, 0.0]], [2]) == 0.0


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------

PAIRED_FLOAT = [metrics.pearson, metrics.spearman, metrics.mse, metrics.mae]
PAIRED_BINARY = [metrics.accuracy, metrics.f1_score]
SCORE_LABEL = [
    metrics.roc_auc,
    metrics.average_precision,
    lambda s, y: metrics.best_threshold(s, y),
]


@pytest.mark.parametrize("function", PAIRED_FLOAT + PAIRED_BINARY + SCORE_LABEL)
@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([], [], "empty"),
        ([1, 0, 1], [1, 0], "3 items"),
        ([[1, 0], [0, 1]], [1, 0], "one-dimensional"),
        (["x", "y"], [1, 0], "numbers"),
        ([1, float("nan")], [1, 0], "finite"),
        ([1, 0], [1, float("inf")], "finite"),
    ],
)
def test_common_input_errors(function, a, b, message):
    with pytest.raises(ConfigError, match=message):
        function(a, b)


@pytest.mark.parametrize("function", PAIRED_BINARY)
def test_binary_functions_reject_non_binary(function):
    with pytest.raises(ConfigError, match="predictions must contain only 0 and 1.*item 1"):
        function([1, 0], [1, 2])
    with pytest.raises(ConfigError, match="labels must contain only 0 and 1"):
        function([0.5, 0], [1, 0])


@pytest.mark.parametrize("function", SCORE_LABEL)
def test_labels_must_be_binary(function):
    with pytest.raises(ConfigError, match="labels must contain only 0 and 1.*item 1"):
        function([0.2, 0.4], [1, -1])


def test_log_loss_labels_must_be_binary():
    with pytest.raises(ConfigError, match="labels must contain only 0 and 1"):
        metrics.log_loss([1, 2], [0.2, 0.4])


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        metrics.mse([], [])


def test_best_threshold_rejects_unknown_metric():
    with pytest.raises(ConfigError, match="metric must be one of"):
        metrics.best_threshold([0.1, 0.2], [0, 1], metric="precision")


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0]])
def test_roc_auc_needs_both_classes(labels):
    with pytest.raises(ConfigError, match="no item of class"):
        metrics.roc_auc([0.1] * len(labels), labels)


def test_average_precision_needs_a_positive():
    with pytest.raises(ConfigError, match="no item of class 1"):
        metrics.average_precision([0.1, 0.2], [0, 0])


@pytest.mark.parametrize(
    ("labels", "probs", "eps", "message"),
    [
        ([1, 0], [0.5, 1.2], 1e-7, r"probs must lie in \[0, 1\].*item 1"),
        ([1, 0], [-0.1, 0.5], 1e-7, r"probs must lie in \[0, 1\]"),
        ([1, 0], [0.5, 0.5], 0.7, "eps must be"),
        ([1, 0], [0.5, 0.5], -1.0, "eps must be"),
        ([1, 0], [0.5], 1e-7, "2 items"),
        ([1, 0], [0.5, float("nan")], 1e-7, "finite"),
    ],
)
def test_log_loss_input_errors(labels, probs, eps, message):
    with pytest.raises(ConfigError, match=message):
        metrics.log_loss(labels, probs, eps=eps)


@pytest.mark.parametrize(
    ("found", "true", "k", "message"),
    [
        ([[1, 2]], [[1, 2]], 0, "k must be a positive integer"),
        ([[1, 2]], [[1, 2]], 1.5, "k must be a positive integer"),
        ([[1, 2]], [[1, 2]], 3, "found_ids has 2 columns, fewer than k=3"),
        ([[1, 2, 3]], [[1, 2]], 3, "true_ids has 2 columns"),
        ([1, 2], [[1, 2]], 1, "2-dimensional"),
        ([[1.0, 2.0]], [[1, 2]], 1, "integers"),
        ([[1, 2], [3, 4]], [[1, 2]], 1, "found_ids has 2 items but true_ids has 1"),
        (np.zeros((0, 2), dtype=int), np.zeros((0, 2), dtype=int), 1, "empty"),
    ],
)
def test_recall_at_k_input_errors(found, true, k, message):
    with pytest.raises(ConfigError, match=message):
        metrics.recall_at_k(found, true, k)


KNN_REFS = np.array([[0.0, 1.0], [1.0, 0.0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "manhattan"}, "metric must be one of"),
        ({"k": 0}, "k must be a positive integer"),
        ({"k": 3}, r"k=3 exceeds the number of reference items \(2\)"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"query_emb": [[0.0, 1.0, 2.0]]}, "dimension 3 but ref_emb has 2"),
        ({"query_emb": [0.0, 1.0]}, "query_emb must be a non-empty 2-D array"),
        ({"query_emb": [[np.nan, 1.0]]}, "query_emb must be finite, but row 0"),
        ({"query_labels": [0, 1]}, "query_emb has 1 items but query_labels has 2"),
        ({"ref_labels": [0]}, "ref_emb has 2 items but ref_labels has 1"),
        ({"ref_emb": [[0.0, 1.0], [0.0, 0.0]], "metric": "cosine"}, "ref_emb row 1 is all zeros"),
    ],
)
def test_knn_accuracy_input_errors(kwargs, message):
    arguments = {
        "query_emb": [[0.5, 0.5]],
        "query_labels": [0],
        "ref_emb": KNN_REFS,
        "ref_labels": [0, 1],
    }
    arguments.update(kwargs)
    positional = [arguments.pop(name) for name in ("query_emb", "query_labels")]
    positional += [arguments.pop(name) for name in ("ref_emb", "ref_labels")]
    with pytest.raises(ConfigError, match=message):
        metrics.knn_accuracy(*positional, **arguments)


@pytest.mark.parametrize(
    ("similarity", "answers", "message"),
    [
        ([0.1, 0.2], [0], "non-empty 2-D array"),
        ([[0.1, np.inf]], [0], "finite, but row 0"),
        ([[0.1, 0.2]], [2], r"answers\[0\] is 2, outside \[0, 2\)"),
        ([[0.1, 0.2]], [-1], "outside"),
        ([[0.1, 0.2]], [0.0], "integers"),
        ([[0.1, 0.2]], [0, 1], "similarity has 1 items but answers has 2"),
    ],
)
def test_one_shot_accuracy_input_errors(similarity, answers, message):
    with pytest.raises(ConfigError, match=message):
        metrics.one_shot_accuracy(np.asarray(similarity), answers)


def test_rankdata_rejects_bad_input():
    with pytest.raises(ConfigError, match="empty"):
        metrics.rankdata([])


# ---------------------------------------------------------------------- ranked retrieval


def _brute_force_ranked(found, relevant, k):
    """Each ranked metric computed query by query, from its textbook definition."""
    recall, precision, rr, ndcg, ap = [], [], [], [], []
    for ids, wanted in zip(found, relevant, strict=True):
        wanted = set(wanted)
        rels = [int(i) in wanted for i in ids]
        top = rels[:k] + [False] * max(0, k - len(rels))
        recall.append(sum(top) / len(wanted))
        precision.append(sum(top) / k)
        rr.append(next((1.0 / (r + 1) for r, hit in enumerate(top) if hit), 0.0))
        dcg = sum(1.0 / math.log2(r + 2) for r, hit in enumerate(top) if hit)
        ndcg.append(dcg / sum(1.0 / math.log2(r + 2) for r in range(min(len(wanted), k))))
        big_r = len(wanted)
        first = rels[:big_r] + [False] * max(0, big_r - len(rels))
        ap.append(sum(sum(first[: i + 1]) / (i + 1) for i in range(big_r) if first[i]) / big_r)
    return [float(np.mean(v)) for v in (recall, precision, rr, ndcg, ap)]


def test_ranked_retrieval_metrics_match_brute_force_on_seeded_searches(rng):
    for _ in range(20):
        n, width = int(rng.integers(1, 30)), int(rng.integers(1, 12))
        found = rng.integers(-1, 40, size=(n, width))  # -1: a missing result
        relevant = [list(rng.choice(40, size=int(rng.integers(1, 15)), replace=False)) for _ in range(n)]
        k = int(rng.integers(1, width + 4))
        hits = metrics.relevance(found, relevant)
        counts = [len(r) for r in relevant]
        got = [
            metrics.ranked_recall(hits, counts, k),
            metrics.ranked_precision(hits, k),
            metrics.mean_reciprocal_rank(hits, k),
            metrics.ndcg(hits, counts, k),
            metrics.map_at_r(hits, counts),
        ]
        np.testing.assert_allclose(got, _brute_force_ranked(found, relevant, k), rtol=1e-12)


def test_ranked_retrieval_by_hand():
    # Query 0: its partner (7) second; query 1: partner absent; query 2: two of three class
    # mates at ranks 1 and 3; a missing result (-1) is never relevant.
    found = np.array([[3, 7, 9], [1, 2, -1], [5, 8, 6]])
    hits = metrics.relevance(found, [7, 4, {5, 6, 11}])
    counts = [1, 1, 3]
    assert hits.tolist() == [[False, True, False], [False, False, False], [True, False, True]]
    assert metrics.ranked_recall(hits, counts, 1) == pytest.approx((0 + 0 + 1 / 3) / 3)
    assert metrics.ranked_recall(hits, counts, 3) == pytest.approx((1 + 0 + 2 / 3) / 3)
    assert metrics.mean_reciprocal_rank(hits, 3) == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert metrics.ranked_precision(hits, 2) == pytest.approx((1 / 2 + 0 + 1 / 2) / 3)
    ndcg0 = 1 / math.log2(3)
    ndcg2 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert metrics.ndcg(hits, counts, 3) == pytest.approx((ndcg0 + 0 + ndcg2) / 3)
    assert metrics.map_at_r(hits, counts) == pytest.approx((0 + 0 + (1 + 2 / 3) / 3) / 3)


def test_ranked_retrieval_refuses_bad_input():
    with pytest.raises(ConfigError, match="boolean"):
        metrics.ranked_recall(np.zeros((2, 3)), [1, 1], 2)
    with pytest.raises(ConfigError, match="at least one relevant"):
        metrics.ndcg(np.zeros((2, 3), dtype=bool), [1, 0], 2)
    with pytest.raises(ConfigError, match="positive integer"):
        metrics.mean_reciprocal_rank(np.zeros((2, 3), dtype=bool), 0)
    with pytest.raises(ConfigError, match="rows"):
        metrics.relevance(np.zeros((2, 3), dtype=int), [1])
