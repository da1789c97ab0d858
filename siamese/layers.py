"""The toolkit's own Keras layers (heads live in :mod:`siamese.heads`).

- :class:`MaskedMaxPooling1D`: the maximum over a sequence's real steps (a text tower's
  ``sequence_pooling="max"``);
- :class:`StackPair`, :class:`SplitPair`, :class:`TakeRows`, :class:`GroupSides`: the
  plumbing of the fast trainers of :mod:`siamese.training.fused` (every side of a batch
  through the tower in one call; each distinct item of a batch embedded once).

Each is registered under ``siamese>`` (:mod:`siamese.registration`) and has no weights of
its own, so a saved model that uses one loads in safe mode once ``siamese`` is imported.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from siamese.registration import register


@register
class MaskedMaxPooling1D(keras.layers.Layer):
    """Maximum over the steps of a ``(batch, steps, features)`` sequence, masked steps left
    out (Keras's ``GlobalMaxPooling1D`` ignores the mask, so padding would count). A row with
    no unmasked step pools to zeros."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any, mask: Any = None) -> Any:
        if mask is None:
            return ops.max(inputs, axis=1)
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)
        lowest = ops.cast(ops.min(inputs) - 1.0, inputs.dtype)
        pooled = ops.max(ops.where(keep, inputs, lowest), axis=1)
        return ops.where(ops.any(keep, axis=1), pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], input_shape[2])


@register
class StackPair(keras.layers.Layer):
    """``[a, b]`` → one batch ``[a; b]`` (the sides must have the same shape past the batch)."""

    def call(self, inputs: Any) -> Any:
        return ops.concatenate(list(inputs), axis=0)


@register
class SplitPair(keras.layers.Layer):
    """One batch ``[u; v]`` → ``[u, v]``, its two halves."""

    def call(self, inputs: Any) -> list[Any]:
        half = ops.shape(inputs)[0] // 2
        return [inputs[:half], inputs[half:]]


@register
class TakeRows(keras.layers.Layer):
    """``[table, index]`` → the rows ``table[index]``."""

    def call(self, inputs: Any) -> Any:
        table, index = inputs
        return ops.take(table, index, axis=0)


@register
class GroupSides(keras.layers.Layer):
    """``[x_1; ...; x_s]`` (``s`` sides of a batch stacked, ``(s * batch, dim)``) → ``(batch, s, dim)``:
    each example's encodings side by side, as the embedding losses take them.

    Args:
        sides: How many sides were stacked.
    """

    def __init__(self, sides: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if sides < 1:
            raise ValueError(f"sides must be a positive integer, got {sides!r}")
        self.sides = int(sides)

    def call(self, inputs: Any) -> Any:
        grouped = ops.reshape(inputs, (self.sides, -1, ops.shape(inputs)[-1]))
        return ops.transpose(grouped, (1, 0, 2))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (None, self.sides, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "sides": self.sides}
