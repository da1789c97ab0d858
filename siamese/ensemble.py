"""Ensembles: several pair models of the same kind, used as one pair model.

The members' towers run side by side inside one tower whose encoding is their encodings
concatenated (:func:`ensemble_tower`); an :class:`EnsembleHead` gives each member's head its
member's slice of the two encodings and averages the scores. The result is an ordinary pair
model built by :func:`siamese.models.build_siamese` (one shared tower, one head), so
evaluation, ``tower.keras`` and the index treat it like any other.

For the index, the concatenated encoding's squared L2 distance is the sum of the members'
squared distances; cosine similarity weighs each member by the size of its encodings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from siamese.fused import head_of
from siamese.models import build_siamese, tower_of

PACKAGE = "siamese"


@keras.saving.register_keras_serializable(package=PACKAGE)
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


def ensemble_tower(towers: Sequence[keras.Model], *, name: str = "ensemble_tower") -> keras.Model:
    """One tower that runs ``towers`` (same kind of input) and concatenates their encodings.

    The towers are renamed ``member_0``, ``member_1``, ... (names must differ inside a model).
    """
    spec = towers[0].inputs[0]
    for tower in towers[1:]:
        other = tower.inputs[0]
        if tuple(other.shape[1:]) != tuple(spec.shape[1:]) or other.dtype != spec.dtype:
            raise ValueError("the members' towers take different inputs")
    item = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype, name="item")
    for k, tower in enumerate(towers):
        tower.name = f"member_{k}"
    encodings = [tower(item) for tower in towers]
    joined = keras.layers.Concatenate(name="members")(encodings) if len(towers) > 1 else encodings[0]
    return keras.Model(item, joined, name=name)


def ensemble_model(models: Sequence[keras.Model], *, name: str = "siamese_ensemble") -> keras.Model:
    """One pair model whose score is the mean of ``models``' scores (their weights are shared,
    not copied). Each model must be a pair model of :func:`~siamese.models.build_siamese`."""
    if not models:
        raise ValueError("an ensemble needs at least one member")
    towers = [tower_of(model) for model in models]
    widths = [int(tower.outputs[0].shape[-1]) for tower in towers]
    head = EnsembleHead([head_of(model) for model in models], widths, name="ensemble_head")
    return build_siamese(ensemble_tower(towers), head, name=name)
