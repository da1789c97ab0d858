"""Metrics: plain NumPy functions, Keras streaming metrics, and the evaluators that use them.

- :mod:`siamese.metrics.numpy_metrics`: free functions checked against brute force or SciPy
  (``pearson``, ``best_threshold``, ``knn_accuracy``, ...), re-exported here;
- :mod:`siamese.metrics.keras_metrics`: metrics reported per epoch during training;
- :mod:`siamese.metrics.evaluators`: a pair model's outputs on pairs turned into the figures
  of ``metrics.json``.
"""

from __future__ import annotations

from siamese.metrics.numpy_metrics import (
    accuracy,
    average_precision,
    best_threshold,
    f1_score,
    knn_accuracy,
    log_loss,
    mae,
    map_at_r,
    mean_reciprocal_rank,
    mse,
    ndcg,
    nearest,
    one_shot_accuracy,
    pearson,
    rankdata,
    ranked_precision,
    ranked_recall,
    recall_at_k,
    relevance,
    roc_auc,
    spearman,
)

__all__ = [
    "accuracy",
    "average_precision",
    "best_threshold",
    "f1_score",
    "knn_accuracy",
    "log_loss",
    "mae",
    "map_at_r",
    "mean_reciprocal_rank",
    "mse",
    "ndcg",
    "nearest",
    "one_shot_accuracy",
    "pearson",
    "rankdata",
    "ranked_precision",
    "ranked_recall",
    "recall_at_k",
    "relevance",
    "roc_auc",
    "spearman",
]
