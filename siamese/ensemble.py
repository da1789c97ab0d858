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

import keras

from siamese.heads import EnsembleHead
from siamese.models import build_siamese, head_of, tower_of


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
