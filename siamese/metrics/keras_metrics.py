"""Keras-side streaming metrics, reported per epoch in ``history.json`` (train and dev)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from siamese.registration import register


@register
class PearsonCorrelation(keras.metrics.Metric):
    """Pearson correlation between targets and predictions, accumulated over batches.

    Keeps running sums (count, Σx, Σy, Σx², Σy², Σxy) in float64-free float32 variables;
    good to about 1e-4 over an epoch, which is what a progress bar needs. Final figures are
    computed in NumPy by :mod:`siamese.metrics.numpy_metrics`.
    """

    def __init__(self, name: str = "pearson", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self._sums = [
            self.add_variable(shape=(), initializer="zeros", name=n)
            for n in ("n", "sx", "sy", "sxx", "syy", "sxy")
        ]

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        x = ops.reshape(ops.cast(y_true, "float32"), (-1,))
        y = ops.reshape(ops.cast(y_pred, "float32"), (-1,))
        values = (
            ops.cast(ops.shape(x)[0], "float32"),
            ops.sum(x),
            ops.sum(y),
            ops.sum(x * x),
            ops.sum(y * y),
            ops.sum(x * y),
        )
        for var, value in zip(self._sums, values, strict=True):
            var.assign_add(value)

    def result(self) -> Any:
        n, sx, sy, sxx, syy, sxy = self._sums
        cov = sxy - sx * sy / n
        var_x = sxx - sx * sx / n
        var_y = syy - sy * sy / n
        return cov / ops.sqrt(ops.maximum(var_x * var_y, 1e-12))

    def reset_state(self) -> None:
        for var in self._sums:
            var.assign(0.0)
