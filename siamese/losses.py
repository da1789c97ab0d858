"""Losses for pair models, picked by name with :func:`get`.

Label convention everywhere in the toolkit: **1 = similar** (same class, paraphrase),
**0 = dissimilar**. Graded scores (SICK, STS-B) are scaled to [0, 1] before training.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from siamese.registration import register


@register
class ContrastiveLoss(keras.losses.Loss):
    """Contrastive loss on a distance (Hadsell, Chopra & LeCun 2006).

    ``loss = y * d² + (1 - y) * max(margin - d, 0)²`` where ``d`` is the model's output, a
    distance such as the ``euclidean`` head's, and ``y`` is 1 for similar pairs, 0 for
    dissimilar ones. Similar pairs are pulled together; dissimilar ones are pushed at least
    ``margin`` apart. No sigmoid is applied over the distance.

    Args:
        margin: Distance beyond which dissimilar pairs cost nothing.
    """

    def __init__(self, margin: float = 1.0, name: str = "contrastive", **kwargs: Any) -> None:
        if margin <= 0:
            raise ValueError(f"margin must be positive, got {margin!r}")
        super().__init__(name=name, **kwargs)
        self.margin = float(margin)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)), y_pred.dtype)
        similar = y_true * ops.square(y_pred)
        dissimilar = (1.0 - y_true) * ops.square(ops.maximum(self.margin - y_pred, 0.0))
        return ops.mean(similar + dissimilar, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "margin": self.margin}


def _bce(**kwargs: Any) -> keras.losses.Loss:
    return keras.losses.BinaryCrossentropy(**kwargs)


def _mse(**kwargs: Any) -> keras.losses.Loss:
    return keras.losses.MeanSquaredError(**kwargs)


def _mae(**kwargs: Any) -> keras.losses.Loss:
    return keras.losses.MeanAbsoluteError(**kwargs)


#: Loss names → factories. CLI flags and ``config.json`` use these names.
LOSSES = {
    "binary-crossentropy": _bce,
    "contrastive": ContrastiveLoss,
    "mse": _mse,
    "mae": _mae,
}


def get(name: str, **kwargs: Any) -> keras.losses.Loss:
    """Build the loss registered under ``name``.

    Args:
        name: One of :data:`LOSSES`.
        **kwargs: Passed to the loss (e.g. ``margin=2.0`` for ``contrastive``).

    Raises:
        ValueError: ``name`` is not a registered loss.
    """
    try:
        factory = LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}; got {name!r}") from None
    return factory(**kwargs)
