"""Evaluators: run a pair model over pairs and turn its scores into metrics.

The metric arithmetic itself lives in :mod:`siamese.metrics.numpy_metrics` (plain NumPy functions); the
functions here only call them, so training's final figures and ``siamese-eval`` agree.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
import numpy as np

from siamese.encode import as_model_input
from siamese.heads import DISTANCE_HEADS
from siamese.metrics import numpy_metrics as metrics
from siamese.models import tower_of

logger = logging.getLogger(__name__)


def pair_outputs(model: keras.Model, a: Sequence, b: Sequence, *, batch_size: int = 512) -> np.ndarray:
    """The pair model's raw output for each pair, as a float64 vector."""
    tower = tower_of(model)
    xa, xb = as_model_input(a, tower), as_model_input(b, tower)
    out = [
        np.asarray(model([xa[i : i + batch_size], xb[i : i + batch_size]], training=False)).reshape(-1)
        for i in range(0, len(xa), batch_size)
    ]
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def similarity(outputs: np.ndarray, head: str) -> np.ndarray:
    """Turn a head's outputs into similarities (higher = more alike): distances are negated."""
    return -outputs if head in DISTANCE_HEADS else outputs


def to_scale(outputs: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Map outputs trained on targets scaled to [0, 1] back onto the dataset's own scale."""
    low, high = scale
    return low + np.asarray(outputs, dtype=np.float64) * (high - low)


def from_scale(scores: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Map graded scores onto [0, 1] for training."""
    low, high = scale
    return ((np.asarray(scores, dtype=np.float64) - low) / (high - low)).astype(np.float32)


def graded_metrics(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pearson, Spearman and MSE of predictions on the dataset's own scale."""
    return {
        "pearson": metrics.pearson(truth, predicted),
        "spearman": metrics.spearman(truth, predicted),
        "mse": metrics.mse(truth, predicted),
        "n": int(len(truth)),
    }


def binary_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy and F1 at ``threshold`` (1 where score ≥ threshold), ROC-AUC and average precision."""
    labels = np.asarray(labels).astype(np.int64)
    predicted = (np.asarray(scores) >= threshold).astype(np.int64)
    out = {
        "accuracy": metrics.accuracy(labels, predicted),
        "f1": metrics.f1_score(labels, predicted),
        "threshold": float(threshold),
        "n": int(len(labels)),
    }
    if 0 < labels.sum() < len(labels):
        out["roc_auc"] = metrics.roc_auc(scores, labels)
        out["average_precision"] = metrics.average_precision(scores, labels)
    return out


def choose_threshold(scores: np.ndarray, labels: np.ndarray, metric: str = "accuracy") -> float:
    """The decision threshold with the best ``metric`` (``"accuracy"`` or ``"f1"``) on (dev) scores."""
    labels = np.asarray(labels).astype(np.int64)
    threshold, value = metrics.best_threshold(scores, labels, metric=metric)
    logger.info("threshold %.4f chosen on dev (%s %.4f)", threshold, metric, value)
    return float(threshold)
