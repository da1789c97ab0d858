"""Similarity heads: registered layers that turn two encodings ``[u, v]`` into one score.

Each head is called on a list ``[u, v]`` of two ``(batch, dim)`` tensors and returns
``(batch, 1)``. Heads are picked by name with :func:`get`; the same names are used by the
command-line tools and by ``config.json``.

| name        | output                                   | typical loss                  |
|-------------|------------------------------------------|-------------------------------|
| abs-diff    | Dense(\\|u - v\\|), sigmoid by default      | binary cross-entropy, MSE     |
| manhattan   | exp(-‖u - v‖₁) in (0, 1] (MaLSTM)        | MSE on scores scaled to [0,1] |
| cosine      | cos(u, v) in [-1, 1]                      | MSE                           |
| euclidean   | ‖u - v‖₂ ≥ 0, a distance                  | contrastive                   |
| concat      | Dense([u, v, \\|u - v\\|, u * v])            | binary cross-entropy, MSE     |

:class:`EnsembleHead` (not picked by name) averages the scores of several members' heads,
each reading its member's slice of the encodings (see :mod:`siamese.ensemble`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from siamese.registration import register


def _pair(inputs: Any) -> tuple[Any, Any]:
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        raise ValueError("a similarity head is called on a list of two encodings [u, v]")
    return inputs[0], inputs[1]


@register
class AbsDiffHead(keras.layers.Layer):
    """``Dense(|u - v|)``: the element-wise absolute difference, then a learned layer.

    Args:
        units: Output width (1 for one score).
        activation: Output activation; ``"sigmoid"`` gives a probability of "similar".
    """

    def __init__(self, units: int = 1, activation: str | None = "sigmoid", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.activation = activation
        self.dense = keras.layers.Dense(units, activation=activation, name="score")

    def build(self, input_shape: Any) -> None:
        self.dense.build(input_shape[0])

    def call(self, inputs: Any) -> Any:
        u, v = _pair(inputs)
        return self.dense(ops.abs(ops.subtract(u, v)))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0][0], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "activation": self.activation}


@register
class ManhattanSimilarity(keras.layers.Layer):
    """``exp(-‖u - v‖₁)``: 1 for identical encodings, towards 0 as they differ (MaLSTM)."""

    def call(self, inputs: Any) -> Any:
        u, v = _pair(inputs)
        return ops.exp(-ops.sum(ops.abs(ops.subtract(u, v)), axis=-1, keepdims=True))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0][0], 1)


@register
class CosineSimilarity(keras.layers.Layer):
    """Cosine of the angle between ``u`` and ``v``, in [-1, 1].

    Args:
        epsilon: Added to the norms so a zero vector does not divide by zero.
    """

    def __init__(self, epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs: Any) -> Any:
        u, v = _pair(inputs)
        dot = ops.sum(ops.multiply(u, v), axis=-1, keepdims=True)
        norm_u = ops.sqrt(ops.sum(ops.square(u), axis=-1, keepdims=True))
        norm_v = ops.sqrt(ops.sum(ops.square(v), axis=-1, keepdims=True))
        return dot / (norm_u * norm_v + self.epsilon)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0][0], 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


@register
class EuclideanDistance(keras.layers.Layer):
    """``‖u - v‖₂``, a distance (0 for identical encodings), for the contrastive loss.

    Args:
        epsilon: Floor under the squared distance, so the gradient of the square root stays
            finite when ``u == v``.
    """

    def __init__(self, epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs: Any) -> Any:
        u, v = _pair(inputs)
        squared = ops.sum(ops.square(ops.subtract(u, v)), axis=-1, keepdims=True)
        return ops.sqrt(ops.maximum(squared, self.epsilon))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0][0], 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


@register
class ConcatHead(keras.layers.Layer):
    """``Dense([u, v, |u - v|, u * v])``, optionally through one hidden layer.

    Args:
        units: Output width.
        activation: Output activation (``"sigmoid"`` for a probability, ``None`` for a score).
        hidden_units: Width of an optional ReLU hidden layer (0 for none).
    """

    def __init__(
        self,
        units: int = 1,
        activation: str | None = "sigmoid",
        hidden_units: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if hidden_units < 0:
            raise ValueError(f"hidden_units must be 0 or a positive integer, got {hidden_units!r}")
        self.units = units
        self.activation = activation
        self.hidden_units = hidden_units
        self.hidden = (
            keras.layers.Dense(hidden_units, activation="relu", name="hidden") if hidden_units else None
        )
        self.dense = keras.layers.Dense(units, activation=activation, name="score")

    def build(self, input_shape: Any) -> None:
        batch, dim = input_shape[0][0], input_shape[0][-1]
        shape = (batch, 4 * dim)
        if self.hidden is not None:
            self.hidden.build(shape)
            shape = (batch, self.hidden_units)
        self.dense.build(shape)

    def call(self, inputs: Any) -> Any:
        u, v = _pair(inputs)
        x = ops.concatenate([u, v, ops.abs(ops.subtract(u, v)), ops.multiply(u, v)], axis=-1)
        if self.hidden is not None:
            x = self.hidden(x)
        return self.dense(x)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0][0], self.units)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "hidden_units": self.hidden_units,
        }


@register
class EnsembleHead(keras.layers.Layer):
    """The mean of member heads' scores, each head reading its member's slice of ``[u, v]``.

    Args:
        heads: The members' heads, in the order their towers' encodings are concatenated.
        widths: Width of each member's encoding.
    """

    def __init__(self, heads: Sequence[keras.layers.Layer], widths: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not heads or len(heads) != len(widths):
            raise ValueError("an ensemble head needs one encoding width per member head, and at least one")
        self.heads = list(heads)
        self.widths = [int(w) for w in widths]

    def build(self, input_shape: Any) -> None:
        batch = input_shape[0][0]
        for head, width in zip(self.heads, self.widths, strict=True):
            if not head.built:
                head.build([(batch, width), (batch, width)])

    def call(self, inputs: Any) -> Any:
        u, v = inputs
        scores, start = [], 0
        for head, width in zip(self.heads, self.widths, strict=True):
            stop = start + width
            scores.append(head([u[:, start:stop], v[:, start:stop]]))
            start = stop
        return ops.mean(ops.stack(scores, axis=0), axis=0)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        first = (input_shape[0][0], self.widths[0])
        return self.heads[0].compute_output_shape([first, first])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "heads": [keras.saving.serialize_keras_object(head) for head in self.heads],
            "widths": self.widths,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EnsembleHead:
        config = dict(config)
        config["heads"] = [keras.saving.deserialize_keras_object(head) for head in config["heads"]]
        return cls(**config)


#: Head names → classes. CLI flags and ``config.json`` use these names.
HEADS: dict[str, type[keras.layers.Layer]] = {
    "abs-diff": AbsDiffHead,
    "manhattan": ManhattanSimilarity,
    "cosine": CosineSimilarity,
    "euclidean": EuclideanDistance,
    "concat": ConcatHead,
}

#: Heads whose output is a distance (smaller = more similar) rather than a similarity.
DISTANCE_HEADS = frozenset({"euclidean"})


def get(name: str, **kwargs: Any) -> keras.layers.Layer:
    """Build the head registered under ``name``.

    Args:
        name: One of :data:`HEADS`.
        **kwargs: Passed to the head's constructor (e.g. ``activation=None``).

    Raises:
        ValueError: ``name`` is not a registered head.
    """
    try:
        cls = HEADS[name]
    except (KeyError, TypeError):
        raise ValueError(f"head must be one of {', '.join(HEADS)}; got {name!r}") from None
    return cls(name=kwargs.pop("name", "head"), **kwargs)


def name_of(head: keras.layers.Layer) -> str | None:
    """The registered name of a head instance, or ``None`` for a head not in the table."""
    for name, cls in HEADS.items():
        if type(head) is cls:
            return name
    return None
