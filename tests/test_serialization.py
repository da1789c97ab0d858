"""Every registered custom Keras object of the toolkit round-trips: get_config → from_config,
and save → safe-mode load in a fresh process → the same outputs (see conftest.RoundTrip)."""

from __future__ import annotations

import keras
import numpy as np
from conftest import RoundTrip, assert_round_trips

import siamese  # noqa: F401  (registers every serialisable class)
from siamese import heads, layers, losses, registration
from siamese.metrics.keras_metrics import PearsonCorrelation

RNG = np.random.default_rng(0)
U = RNG.normal(size=(5, 4)).astype(np.float32)
V = RNG.normal(size=(5, 4)).astype(np.float32)


def _pair_layer(layer: keras.layers.Layer) -> RoundTrip:
    """A layer called on ``[u, v]`` (a head, or StackPair)."""
    u, v = keras.Input((4,), name="u"), keras.Input((4,), name="v")
    return RoundTrip(layer, keras.Model([u, v], layer([u, v])), [U, V])


def _masked_max_pooling() -> RoundTrip:
    ids = keras.Input((None,), dtype="int32", name="ids")
    layer = layers.MaskedMaxPooling1D(name="pool")
    embedded = keras.layers.Embedding(12, 3, mask_zero=True, name="embedding")(ids)
    sample = np.array([[3, 4, 0, 0], [5, 6, 7, 8], [0, 0, 0, 0]], dtype=np.int32)
    return RoundTrip(layer, keras.Model(ids, layer(embedded)), [sample])


def _split_pair() -> RoundTrip:
    both = keras.Input((4,), name="both")
    layer = layers.SplitPair(name="split")
    return RoundTrip(layer, keras.Model(both, layer(both)), [np.concatenate([U, V])])


def _take_rows() -> RoundTrip:
    table, index = keras.Input((4,), name="table"), keras.Input((), dtype="int32", name="index")
    layer = layers.TakeRows(name="take")
    return RoundTrip(
        layer, keras.Model([table, index], layer([table, index])), [U, np.array([4, 0, 0, 2], "int32")]
    )


def _group_sides() -> RoundTrip:
    stacked = keras.Input((4,), name="stacked")
    layer = layers.GroupSides(3, name="group")
    return RoundTrip(layer, keras.Model(stacked, layer(stacked)), [np.concatenate([U, V, U + V])])


def _ensemble_head() -> RoundTrip:
    members = [heads.AbsDiffHead(name="m0"), heads.ConcatHead(hidden_units=3, name="m1")]
    return _pair_layer(heads.EnsembleHead(members, [2, 2], name="ensemble_head"))


def _loss() -> RoundTrip:
    labels = np.array([1, 0, 1, 0, 1], dtype=np.float32)
    distances = np.array([0.2, 0.5, 1.4, 2.0, 0.0], dtype=np.float32)
    return RoundTrip(losses.ContrastiveLoss(margin=1.5), None, [labels, distances])


def _embedding_losses() -> list[RoundTrip]:
    stacked = RNG.normal(size=(4, 3, 5)).astype(np.float32)
    labels = np.array([0, 0, 1, 1], dtype=np.float32)
    scores = np.array([0.2, 0.9, 0.5, 0.7], dtype=np.float32)
    return [
        RoundTrip(
            losses.MultipleNegativesRankingLoss(scale=9.0, symmetric=True),
            None,
            [np.zeros(4, "float32"), stacked],
        ),
        RoundTrip(losses.CoSENTLoss(scale=11.0), None, [scores, np.tanh(U[:4, :1])]),
        RoundTrip(losses.BatchHardTripletLoss(margin=0.7), None, [labels, U[:4]]),
    ]


def _metric() -> RoundTrip:
    truth = np.array([0.1, 0.4, 0.3, 0.9, 0.7], dtype=np.float32)
    return RoundTrip(PearsonCorrelation(name="pearson"), None, [truth, truth**2 + 0.05 * U[:, 0]])


CASES = [
    _masked_max_pooling(),
    _pair_layer(layers.StackPair(name="stack")),
    _split_pair(),
    _take_rows(),
    _group_sides(),
    _pair_layer(heads.AbsDiffHead(name="head")),
    _pair_layer(heads.ManhattanSimilarity(name="head")),
    _pair_layer(heads.CosineSimilarity(name="head")),
    _pair_layer(heads.EuclideanDistance(name="head")),
    _pair_layer(heads.ConcatHead(hidden_units=3, name="head")),
    _ensemble_head(),
    _loss(),
    *_embedding_losses(),
    _metric(),
]


def test_every_registered_object_has_a_round_trip_case():
    covered = {type(case.obj) for case in CASES}
    assert set(registration.registered().values()) == covered


def test_every_registered_object_round_trips(tmp_path):
    assert_round_trips(CASES, tmp_path)
