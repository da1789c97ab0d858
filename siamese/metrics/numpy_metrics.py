"""Evaluation metrics in plain NumPy.

Every function checks its inputs (shape, length, finiteness, 0/1 labels where the metric is
binary) and raises :class:`siamese.errors.ConfigError` with a message naming the offending
argument, so a caller's mistake never surfaces as a bare NumPy error or a silent ``nan``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from siamese.checks import int_array, numeric_array, positive_int, same_length
from siamese.errors import ConfigError

logger = logging.getLogger(__name__)

ArrayLike = Any  # anything ``np.asarray`` accepts: lists, tuples, arrays

# Largest number of elements of one block of the query x reference distance matrix in
# knn_accuracy (8 Mi float64 values is 64 MiB, plus as much again for the neighbour indices).
_KNN_BLOCK_ELEMENTS = 1 << 23
# Largest number of elements of the (rows, k, k) comparison cube used by recall_at_k and the
# kNN vote.
_CUBE_ELEMENTS = 1 << 24

_THRESHOLD_METRICS = ("accuracy", "f1")
_KNN_METRICS = ("l2", "cosine")


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _float_vector(name: str, values: ArrayLike) -> np.ndarray:
    """Returns ``values`` as a non-empty, finite, one-dimensional float64 array."""
    array = numeric_array(name, values)
    if array.ndim != 1:
        raise ConfigError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ConfigError(f"{name} is empty")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ConfigError(f"{name} must be finite, but item {bad} is {array[bad]}")
    return array


def _binary_vector(name: str, values: ArrayLike) -> np.ndarray:
    """Returns ``values`` as a non-empty one-dimensional int64 array of zeros and ones."""
    array = _float_vector(name, values)
    not_binary = (array != 0) & (array != 1)
    if np.any(not_binary):
        bad = int(np.flatnonzero(not_binary)[0])
        raise ConfigError(f"{name} must contain only 0 and 1, but item {bad} is {array[bad]}")
    return array.astype(np.int64)


def _both_classes(labels: np.ndarray, name: str = "labels") -> tuple[int, int]:
    """Returns (positives, negatives), raising ConfigError when either class is absent."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        absent = "1 (positive)" if positives == 0 else "0 (negative)"
        raise ConfigError(f"{name} contain no item of class {absent}; both classes are needed")
    return positives, negatives


# --------------------------------------------------------------------------------------------
# Correlation and regression errors
# --------------------------------------------------------------------------------------------


def rankdata(values: ArrayLike) -> np.ndarray:
    """Ranks values from 1 to n, giving tied values the average of their ranks.

    Args:
        values: One-dimensional, non-empty, finite numbers.

    Returns:
        Float64 ranks in the order of ``values``; for example ``[10, 20, 20, 5]`` ranks as
        ``[2.0, 3.5, 3.5, 1.0]``.

    Raises:
        ConfigError: If ``values`` is not a non-empty finite one-dimensional numeric array.
    """
    array = _float_vector("values", values)
    order = np.argsort(array, kind="mergesort")
    ordered = array[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    # A tie group at sorted positions start..end-1 holds ranks start+1..end; their mean is:
    group_ranks = (starts + 1 + ends) / 2.0
    ranks = np.empty(len(array), dtype=np.float64)
    ranks[order] = np.repeat(group_ranks, ends - starts)
    return ranks


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two checked vectors; ``nan`` when either is constant."""
    xc = x - x.mean()
    yc = y - y.mean()
    denominator = np.sqrt(np.dot(xc, xc) * np.dot(yc, yc))
    if denominator == 0.0:
        logger.warning("correlation is undefined for a constant input; returning nan")
        return float("nan")
    return float(np.clip(np.dot(xc, yc) / denominator, -1.0, 1.0))


def pearson(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson's linear correlation coefficient.

    Args:
        x: One-dimensional, non-empty, finite numbers.
        y: Numbers paired with ``x``, same length.

    Returns:
        The coefficient in [-1, 1], or ``nan`` (with a logged warning) when ``x`` or ``y`` is
        constant, since the correlation is then undefined.

    Raises:
        ConfigError: If an input is empty, not one-dimensional, not finite, or the lengths
            differ.
    """
    xv = _float_vector("x", x)
    yv = _float_vector("y", y)
    same_length("x", xv, "y", yv)
    return _correlation(xv, yv)


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rank correlation: Pearson's coefficient of the ranks, ties averaged.

    Args:
        x: One-dimensional, non-empty, finite numbers.
        y: Numbers paired with ``x``, same length.

    Returns:
        The coefficient in [-1, 1], or ``nan`` (with a logged warning) when ``x`` or ``y`` is
        constant.

    Raises:
        ConfigError: If an input is empty, not one-dimensional, not finite, or the lengths
            differ.
    """
    xv = _float_vector("x", x)
    yv = _float_vector("y", y)
    same_length("x", xv, "y", yv)
    return _correlation(rankdata(xv), rankdata(yv))


def _regression_pair(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Returns ``y_pred - y_true`` after checking both inputs."""
    truth = _float_vector("y_true", y_true)
    predicted = _float_vector("y_pred", y_pred)
    same_length("y_true", truth, "y_pred", predicted)
    return predicted - truth


def mse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean squared error.

    Args:
        y_true: Target values, one-dimensional, non-empty, finite.
        y_pred: Predicted values, same length.

    Returns:
        The mean of ``(y_pred - y_true) ** 2``.

    Raises:
        ConfigError: If an input is empty, not one-dimensional, not finite, or the lengths
            differ.
    """
    diff = _regression_pair(y_true, y_pred)
    return float(np.mean(diff * diff))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error.

    Args:
        y_true: Target values, one-dimensional, non-empty, finite.
        y_pred: Predicted values, same length.

    Returns:
        The mean of ``|y_pred - y_true|``.

    Raises:
        ConfigError: If an input is empty, not one-dimensional, not finite, or the lengths
            differ.
    """
    return float(np.mean(np.abs(_regression_pair(y_true, y_pred))))


# --------------------------------------------------------------------------------------------
# Binary classification
# --------------------------------------------------------------------------------------------


def _binary_pair(labels: ArrayLike, predictions: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Checks and returns two paired 0/1 vectors."""
    truth = _binary_vector("labels", labels)
    predicted = _binary_vector("predictions", predictions)
    same_length("labels", truth, "predictions", predicted)
    return truth, predicted


def _f1_from_counts(tp: np.ndarray, fp: np.ndarray, positives: int) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN) = 2TP / (TP + FP + P), and 0 where that is 0/0."""
    denominator = tp + fp + positives
    safe = np.where(denominator == 0, 1, denominator)
    return np.where(denominator == 0, 0.0, 2.0 * tp / safe)


def accuracy(labels: ArrayLike, predictions: ArrayLike) -> float:
    """Fraction of predictions equal to their label.

    Args:
        labels: True classes, 0 or 1, one-dimensional and non-empty.
        predictions: Predicted classes, 0 or 1, same length.

    Returns:
        The accuracy in [0, 1].

    Raises:
        ConfigError: If an input is empty, not one-dimensional, holds values other than 0 and
            1, or the lengths differ.
    """
    truth, predicted = _binary_pair(labels, predictions)
    return float(np.mean(truth == predicted))


def f1_score(labels: ArrayLike, predictions: ArrayLike) -> float:
    """F1 score of the positive class (1): the harmonic mean of precision and recall.

    Computed as ``2 TP / (2 TP + FP + FN)``. When there is no positive label and no positive
    prediction, precision and recall are both 0/0; this function then returns 0.0 (the same
    convention as scikit-learn's default), so an all-negative model never scores well.

    Args:
        labels: True classes, 0 or 1, one-dimensional and non-empty.
        predictions: Predicted classes, 0 or 1, same length.

    Returns:
        The F1 score in [0, 1].

    Raises:
        ConfigError: If an input is empty, not one-dimensional, holds values other than 0 and
            1, or the lengths differ.
    """
    truth, predicted = _binary_pair(labels, predictions)
    tp = np.array(int(np.sum(truth & predicted)))
    fp = np.array(int(np.sum(predicted & (1 - truth))))
    return float(_f1_from_counts(tp, fp, int(truth.sum())))


def _scores_and_labels(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Checks and returns a float score vector and its paired 0/1 label vector."""
    score_array = _float_vector("scores", scores)
    label_array = _binary_vector("labels", labels)
    same_length("scores", score_array, "labels", label_array)
    return score_array, label_array


def _descending_groups(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Groups equal scores, highest first.

    Returns:
        The distinct scores in decreasing order, and for each, the number of true and false
        positives when every item scoring at least that much is predicted positive.
    """
    order = np.argsort(-scores, kind="mergesort")
    ordered = scores[order]
    ends = np.r_[np.flatnonzero(ordered[1:] != ordered[:-1]), len(ordered) - 1]
    tp = np.cumsum(labels[order])[ends]
    fp = ends + 1 - tp
    return ordered[ends], tp, fp


def _between(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Thresholds strictly above each ``low`` and at most each ``high`` (``low < high``)."""
    middle = high / 2.0 + low / 2.0  # halves first so the sum cannot overflow
    # Rounding can land on (or, near underflow, below) ``low``; ``high`` itself still splits
    # the two groups correctly because items are predicted positive when score >= threshold.
    return np.where((middle <= low) | (middle > high), high, middle)


def _outside(value: float, direction: float) -> float:
    """A round number beyond ``value`` in ``direction`` (+1 or -1), or the next float."""
    candidate = value + direction
    if (candidate - value) * direction > 0:
        return float(candidate)
    return float(np.nextafter(value, direction * np.inf))


def best_threshold(scores: ArrayLike, labels: ArrayLike, *, metric: str = "accuracy") -> tuple[float, float]:
    """Finds the decision threshold that maximises accuracy or F1 on the given scores.

    An item is predicted positive when ``score >= threshold``. The candidates are one value
    above the highest score (nothing predicted positive), the midpoint between each pair of
    neighbouring distinct scores, and one value below the lowest score (everything predicted
    positive); together they produce every distinct labelling a threshold can. Sorting once
    makes this O(n log n). When several candidates reach the same best value, the highest
    threshold (fewest positive predictions) is returned.

    Args:
        scores: Similarity scores, higher meaning more likely positive; one-dimensional,
            non-empty, finite.
        labels: True classes, 0 or 1, same length as ``scores``.
        metric: ``"accuracy"`` or ``"f1"`` (see :func:`f1_score` for its 0/0 convention).

    Returns:
        ``(threshold, value)``: the best threshold and the metric it achieves.

    Raises:
        ConfigError: If ``metric`` is unknown, or an input is empty, not one-dimensional, not
            finite, not 0/1 (labels), or the lengths differ.
    """
    if metric not in _THRESHOLD_METRICS:
        raise ConfigError(f"metric must be one of {_THRESHOLD_METRICS}, got {metric!r}")
    score_array, label_array = _scores_and_labels(scores, labels)
    distinct, tp, fp = _descending_groups(score_array, label_array)
    positives = int(label_array.sum())
    negatives = len(label_array) - positives
    # Candidate j predicts the j highest score groups positive (j = 0 .. number of groups).
    tp = np.r_[0, tp]
    fp = np.r_[0, fp]
    if metric == "accuracy":
        correct = tp + (negatives - fp)  # integers, so equal values compare exactly
        best = int(np.argmax(correct))
        value = correct[best] / len(label_array)
    else:
        f1 = _f1_from_counts(tp, fp, positives)
        best = int(np.argmax(f1))
        value = f1[best]
    if best == 0:
        threshold = _outside(float(distinct[0]), +1.0)
    elif best == len(distinct):
        threshold = _outside(float(distinct[-1]), -1.0)
    else:
        threshold = float(_between(distinct[best - 1 : best], distinct[best : best + 1])[0])
    return threshold, float(value)


def roc_auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve, as the Mann-Whitney statistic.

    Equals the probability that a random positive item scores higher than a random negative
    one, with tied pairs counted as one half.

    Args:
        scores: Scores, higher meaning more likely positive; one-dimensional, non-empty,
            finite.
        labels: True classes, 0 or 1, same length; both classes must occur.

    Returns:
        The AUC in [0, 1].

    Raises:
        ConfigError: If one class is absent, or an input is empty, not one-dimensional, not
            finite, not 0/1 (labels), or the lengths differ.
    """
    score_array, label_array = _scores_and_labels(scores, labels)
    positives, negatives = _both_classes(label_array)
    ranks = rankdata(score_array)
    wins = ranks[label_array == 1].sum() - positives * (positives + 1) / 2.0
    return float(wins / (positives * negatives))


def average_precision(scores: ArrayLike, labels: ArrayLike) -> float:
    """Average precision: the step-wise area under the precision-recall curve.

    ``AP = sum_n (R_n - R_(n-1)) * P_n`` over the thresholds ``n`` taken at each distinct
    score from the highest down, where ``P_n`` and ``R_n`` are the precision and recall when
    every item scoring at least that threshold is predicted positive (``R_0 = 0``). Items with
    equal scores therefore enter together, as in scikit-learn's definition.

    Args:
        scores: Scores, higher meaning more likely positive; one-dimensional, non-empty,
            finite.
        labels: True classes, 0 or 1, same length; at least one must be 1.

    Returns:
        The average precision in [0, 1].

    Raises:
        ConfigError: If no label is 1, or an input is empty, not one-dimensional, not finite,
            not 0/1 (labels), or the lengths differ.
    """
    score_array, label_array = _scores_and_labels(scores, labels)
    positives = int(label_array.sum())
    if positives == 0:
        raise ConfigError("labels contain no item of class 1 (positive); AP is undefined")
    _, tp, fp = _descending_groups(score_array, label_array)
    precision = tp / (tp + fp)
    recall_steps = np.diff(np.r_[0, tp]) / positives
    return float(np.sum(recall_steps * precision))


def log_loss(labels: ArrayLike, probs: ArrayLike, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of predicted probabilities of class 1.

    Args:
        labels: True classes, 0 or 1, one-dimensional and non-empty.
        probs: Predicted probabilities that each label is 1, in [0, 1], same length.
        eps: Probabilities are clipped to ``[eps, 1 - eps]`` so a confident mistake costs
            ``-log(eps)`` rather than infinity; must be in [0, 0.5).

    Returns:
        ``-mean(y log p + (1 - y) log(1 - p))`` in nats.

    Raises:
        ConfigError: If ``eps`` is out of range, a probability lies outside [0, 1], or an
            input is empty, not one-dimensional, not finite, or the lengths differ.
    """
    if not (isinstance(eps, (int, float, np.floating)) and 0.0 <= eps < 0.5):
        raise ConfigError(f"eps must be a number in [0, 0.5), got {eps!r}")
    truth = _binary_vector("labels", labels)
    p = _float_vector("probs", probs)
    same_length("labels", truth, "probs", p)
    outside = (p < 0.0) | (p > 1.0)
    if np.any(outside):
        bad = int(np.flatnonzero(outside)[0])
        raise ConfigError(f"probs must lie in [0, 1], but item {bad} is {p[bad]}")
    p = np.clip(p, eps, 1.0 - eps)
    with np.errstate(divide="ignore"):  # only reachable with eps == 0
        losses = np.where(truth == 1, -np.log(p), -np.log1p(-p))
    return float(np.mean(losses))


# --------------------------------------------------------------------------------------------
# Retrieval
# --------------------------------------------------------------------------------------------


def _rows_per_block(row_elements: int, limit: int) -> int:
    """How many rows of ``row_elements`` elements fit in ``limit`` elements (at least 1)."""
    return max(1, limit // max(1, row_elements))


def recall_at_k(found_ids: ArrayLike, true_ids: ArrayLike, k: int) -> float:
    """Recall of an approximate search against exact search results.

    For each query, the fraction of the true ``k`` nearest ids that appear among the first
    ``k`` ids found, averaged over queries. Each id counts once per query, and negative ids
    (FAISS pads missing results with -1) never count as found.

    Args:
        found_ids: Integer array (n_queries, >= k) of ids returned by the search under test.
        true_ids: Integer array (n_queries, >= k) of ids returned by exact search.
        k: Number of neighbours compared, at least 1.

    Returns:
        The mean recall in [0, 1].

    Raises:
        ConfigError: If ``k`` is not a positive integer, an array is not a non-empty 2-D
            integer array with at least ``k`` columns, or the row counts differ.
    """
    k = positive_int("k", k)
    found = int_array("found_ids", found_ids, 2)
    true = int_array("true_ids", true_ids, 2)
    same_length("found_ids", found, "true_ids", true)
    for name, array in (("found_ids", found), ("true_ids", true)):
        if array.shape[1] < k:
            raise ConfigError(f"{name} has {array.shape[1]} columns, fewer than k={k}")
    found = np.sort(found[:, :k], axis=1)
    true = true[:, :k]
    # Keep the first of each run of equal ids in a row, and drop padding.
    keep = found >= 0
    keep[:, 1:] &= found[:, 1:] != found[:, :-1]
    hits = 0
    step = _rows_per_block(k * k, _CUBE_ELEMENTS)
    for start in range(0, len(found), step):
        block = slice(start, start + step)
        present = (found[block, :, None] == true[block, None, :]).any(axis=2)
        hits += int(np.sum(present & keep[block]))
    return hits / (len(found) * k)


# --------------------------------------------------------------------------------------------
# Ranked retrieval: what a search returned, against what was relevant
# --------------------------------------------------------------------------------------------
#
# A search's results for n queries are an (n, K) array of ids, best first (-1: no result).
# :func:`relevance` turns them into an (n, K) boolean array, True where a result is relevant
# to its query; the metrics below read that array and the number of relevant items of each
# query (for a pair, 1: its partner; for a class, the other items of the class). Results are
# taken in the order the search returned them: among equal scores, that order decides.


def relevance(found_ids: ArrayLike, relevant: Sequence[Any] | ArrayLike) -> np.ndarray:
    """Which results are relevant: ``(n, K)`` booleans, in the order of ``found_ids``.

    Args:
        found_ids: ``(n, K)`` integer ids of each query's results, best first; negative ids
            (FAISS's "no result") are never relevant.
        relevant: For each query, its relevant ids: a collection of ids, or one id.

    Raises:
        ConfigError: The shapes do not fit or ``found_ids`` is not integer.
    """
    found = int_array("found_ids", found_ids, 2)
    if len(relevant) != len(found):
        raise ConfigError(f"found_ids has {len(found)} rows but relevant has {len(relevant)}")
    hits = np.zeros(found.shape, dtype=bool)
    for row, wanted in enumerate(relevant):
        wanted = {int(wanted)} if isinstance(wanted, (int, np.integer)) else {int(i) for i in wanted}
        hits[row] = [int(i) in wanted and i >= 0 for i in found[row]]
    return hits


def _ranked(
    hits: ArrayLike, n_relevant: ArrayLike | None, k: int | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Checked ``hits`` (2-D booleans, padded with False up to ``k`` columns) and
    ``n_relevant`` (one count of at least 1 per row)."""
    array = np.asarray(hits)
    if array.ndim != 2 or array.shape[0] == 0 or array.dtype != bool:
        raise ConfigError(
            f"hits must be a non-empty 2-D boolean array, got {array.dtype} of shape {array.shape}"
        )
    if k is not None and positive_int("k", k) > array.shape[1]:  # missing results are not relevant
        array = np.pad(array, ((0, 0), (0, k - array.shape[1])))
    if n_relevant is None:
        return array, None
    counts = int_array("n_relevant", n_relevant, 1)
    same_length("hits", array, "n_relevant", counts)
    if counts.min() < 1:
        raise ConfigError("every query needs at least one relevant item (n_relevant >= 1)")
    return array, counts


def ranked_recall(hits: ArrayLike, n_relevant: ArrayLike, k: int) -> float:
    """Mean share of each query's relevant items found in its first ``k`` results (for a
    query with one relevant item: the share of queries that found it in the top ``k``)."""
    array, counts = _ranked(hits, n_relevant, k)
    return float(np.mean(array[:, :k].sum(axis=1) / counts))


def ranked_precision(hits: ArrayLike, k: int) -> float:
    """Mean share of relevant items among each query's first ``k`` results (a missing result
    counts as not relevant)."""
    array, _ = _ranked(hits, None, k)
    return float(np.mean(array[:, :k].sum(axis=1) / k))


def mean_reciprocal_rank(hits: ArrayLike, k: int) -> float:
    """Mean of ``1 / rank`` of each query's first relevant result within the first ``k``
    (0 when there is none)."""
    array, _ = _ranked(hits, None, k)
    top = array[:, :k]
    first = np.argmax(top, axis=1) + 1
    return float(np.mean(np.where(top.any(axis=1), 1.0 / first, 0.0)))


def ndcg(hits: ArrayLike, n_relevant: ArrayLike, k: int) -> float:
    """Mean normalised discounted cumulative gain at ``k`` with binary gains: the sum of
    ``1 / log2(rank + 1)`` over relevant results in the first ``k``, over its best value
    (all ``min(R, k)`` relevant items first)."""
    array, counts = _ranked(hits, n_relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    gain = (array[:, :k] * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(counts, k) - 1]
    return float(np.mean(gain / ideal))


def map_at_r(hits: ArrayLike, n_relevant: ArrayLike) -> float:
    """Mean average precision at R (Musgrave et al. 2020): for a query with R relevant items,
    ``(1/R) * sum over i <= R of precision@i * relevant(i)``, over its first R results."""
    array, counts = _ranked(hits, n_relevant, None)
    width = int(counts.max())
    if array.shape[1] < width:
        array = np.pad(array, ((0, 0), (0, width - array.shape[1])))
    array = array[:, :width]
    within = np.arange(1, width + 1)[None, :] <= counts[:, None]
    relevant = array & within
    precision = np.cumsum(relevant, axis=1) / np.arange(1, width + 1)
    return float(np.mean((precision * relevant).sum(axis=1) / counts))


def _embedding_matrix(name: str, values: ArrayLike) -> np.ndarray:
    """Returns ``values`` as a non-empty finite 2-D float array (float32 kept as float32)."""
    array = numeric_array(name, values)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ConfigError(f"{name} must be a non-empty 2-D array, got shape {array.shape}")
    if array.dtype != np.float32:
        array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise ConfigError(f"{name} must be finite, but row {bad} is not")
    return array


def _label_vector(name: str, values: ArrayLike) -> np.ndarray:
    """Returns class labels (numbers or strings) as a non-empty one-dimensional array."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} could not be read as an array: {exc}") from None
    if array.ndim != 1 or array.size == 0:
        raise ConfigError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    return array


def _unit_rows(name: str, matrix: np.ndarray) -> np.ndarray:
    """Scales each row to unit length; a zero row has no direction, so it is an error."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if np.any(norms == 0):
        bad = int(np.flatnonzero(norms[:, 0] == 0)[0])
        raise ConfigError(f"{name} row {bad} is all zeros; cosine similarity is undefined")
    return matrix / norms


def nearest(queries: np.ndarray, refs: np.ndarray, ref_sq: np.ndarray | None, k: int) -> np.ndarray:
    """Indices (rows, k) of each query's k nearest references, nearest first, by exact search.

    ``ref_sq`` holds the references' squared norms for Euclidean distance, or is ``None``
    for cosine similarity (rows then unit vectors). Inputs are not checked (see
    :func:`knn_accuracy`).
    """
    if ref_sq is None:  # cosine: rows are unit vectors, nearer means more similar
        distance = -(queries @ refs.T)
    else:  # squared L2 without the per-query constant |q|^2, which does not change the order
        distance = ref_sq[None, :] - 2.0 * (queries @ refs.T)
    if k == 1:
        return np.argmin(distance, axis=1)[:, None]
    if k < distance.shape[1]:
        candidates = np.argpartition(distance, k - 1, axis=1)[:, :k]
    else:
        candidates = np.broadcast_to(np.arange(distance.shape[1]), distance.shape)
    candidate_distance = np.take_along_axis(distance, candidates, axis=1)
    order = np.argsort(candidate_distance, axis=1, kind="mergesort")
    return np.take_along_axis(candidates, order, axis=1)


def _vote(neighbour_classes: np.ndarray) -> np.ndarray:
    """Majority class of each row (nearest first); ties go to the class met first."""
    counts = (neighbour_classes[:, :, None] == neighbour_classes[:, None, :]).sum(axis=2)
    first_best = np.argmax(counts == counts.max(axis=1, keepdims=True), axis=1)
    return neighbour_classes[np.arange(len(neighbour_classes)), first_best]


def knn_accuracy(
    query_emb: ArrayLike,
    query_labels: ArrayLike,
    ref_emb: ArrayLike,
    ref_labels: ArrayLike,
    *,
    k: int = 1,
    metric: str = "l2",
    batch_size: int = 1024,
) -> float:
    """Accuracy of a k-nearest-neighbour classifier over embeddings, by exact search.

    Each query takes the majority class of its ``k`` nearest reference items; when several
    classes tie for the most votes, the one holding the nearest of those neighbours wins.
    Queries are processed in batches, further shrunk so that one block of the distance
    matrix stays near 64 MiB, so 10,000 queries against 60,000 references fit in memory.
    When reference items lie at exactly the same distance, which of them are counted as the
    k nearest is unspecified.

    Args:
        query_emb: Query embeddings, shape (n_queries, dim), finite.
        query_labels: Class of each query, shape (n_queries,).
        ref_emb: Reference embeddings, shape (n_refs, dim), finite.
        ref_labels: Class of each reference item, shape (n_refs,), same kind as
            ``query_labels``.
        k: Number of neighbours voting, from 1 to n_refs.
        metric: ``"l2"`` (Euclidean distance) or ``"cosine"`` (cosine similarity; no row may
            be all zeros).
        batch_size: Most queries compared at once, at least 1.

    Returns:
        The fraction of queries whose predicted class equals their label.

    Raises:
        ConfigError: If ``metric``, ``k`` or ``batch_size`` is invalid, the shapes disagree,
            an embedding is not finite, or (cosine) an embedding is all zeros.
    """
    if metric not in _KNN_METRICS:
        raise ConfigError(f"metric must be one of {_KNN_METRICS}, got {metric!r}")
    k = positive_int("k", k)
    batch_size = positive_int("batch_size", batch_size)
    queries = _embedding_matrix("query_emb", query_emb)
    refs = _embedding_matrix("ref_emb", ref_emb)
    q_labels = _label_vector("query_labels", query_labels)
    r_labels = _label_vector("ref_labels", ref_labels)
    same_length("query_emb", queries, "query_labels", q_labels)
    same_length("ref_emb", refs, "ref_labels", r_labels)
    if queries.shape[1] != refs.shape[1]:
        raise ConfigError(f"query_emb has dimension {queries.shape[1]} but ref_emb has {refs.shape[1]}")
    if k > len(refs):
        raise ConfigError(f"k={k} exceeds the number of reference items ({len(refs)})")
    dtype = np.result_type(queries, refs)
    queries, refs = queries.astype(dtype, copy=False), refs.astype(dtype, copy=False)
    ref_sq = None
    if metric == "cosine":
        queries = _unit_rows("query_emb", queries)
        refs = _unit_rows("ref_emb", refs)
    else:
        ref_sq = np.einsum("ij,ij->i", refs, refs)
    class_names, ref_classes = np.unique(r_labels, return_inverse=True)
    ref_classes = ref_classes.reshape(-1)
    step = min(
        batch_size,
        _rows_per_block(len(refs), _KNN_BLOCK_ELEMENTS),
        _rows_per_block(k * k, _CUBE_ELEMENTS),
    )
    logger.debug("knn_accuracy: %d queries, %d refs, %d per block", len(queries), len(refs), step)
    correct = 0
    for start in range(0, len(queries), step):
        neighbours = nearest(queries[start : start + step], refs, ref_sq, k)
        predicted = class_names[_vote(ref_classes[neighbours])]
        correct += int(np.sum(predicted == q_labels[start : start + step]))
    return correct / len(queries)


def one_shot_accuracy(similarity: np.ndarray, answers: ArrayLike | Sequence[int]) -> float:
    """Accuracy of N-way one-shot trials scored by similarity.

    A trial is correct when its highest similarity is at the answer's index. If several
    candidates share the highest similarity, the trial earns ``1 / (number tied)`` when the
    answer is among them (the expected score of breaking the tie at random), so a model that
    scores everything equally gets chance accuracy rather than credit for answer position.

    Args:
        similarity: Array (n_trials, n_way) of finite scores, higher meaning more similar.
        answers: Index in ``[0, n_way)`` of the correct candidate of each trial.

    Returns:
        The mean credit over trials, in [0, 1].

    Raises:
        ConfigError: If ``similarity`` is not a non-empty finite 2-D array, an answer is not
            an integer index within a row, or the trial counts differ.
    """
    sim = numeric_array("similarity", similarity)
    if sim.ndim != 2 or sim.shape[0] == 0 or sim.shape[1] == 0:
        raise ConfigError(f"similarity must be a non-empty 2-D array, got shape {sim.shape}")
    sim = sim.astype(np.float64)
    if not np.all(np.isfinite(sim)):
        bad = int(np.flatnonzero(~np.isfinite(sim).all(axis=1))[0])
        raise ConfigError(f"similarity must be finite, but row {bad} is not")
    answer = int_array("answers", answers, 1)
    same_length("similarity", sim, "answers", answer)
    outside = (answer < 0) | (answer >= sim.shape[1])
    if np.any(outside):
        bad = int(np.flatnonzero(outside)[0])
        raise ConfigError(
            f"answers[{bad}] is {answer[bad]}, outside [0, {sim.shape[1]}) for {sim.shape[1]}-way"
        )
    is_top = sim == sim.max(axis=1, keepdims=True)
    answer_is_top = is_top[np.arange(len(sim)), answer]
    return float(np.mean(answer_is_top / is_top.sum(axis=1)))
