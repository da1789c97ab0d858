"""The fast training path: both sides of a batch through the tower in one call.

A pair model from :func:`siamese.models.build_siamese` calls its tower twice per step, once per
side. :func:`fused_trainer` builds a second model over the *same layer objects* that stacks
the two sides of a batch (``[a; b]``, twice the batch), runs the tower once, splits the
encodings back into ``u`` and ``v`` and applies the same head. It computes the same function,
so the same loss and gradients, while each step makes half as many (and twice as large) calls.
Training the fused model trains the pair model: they share every weight.

For a text tower the fused model starts after ``TextVectorization``: it takes token ids, so the
text is turned into ids once, before training, instead of in every step, and each batch can be
cut to its longest sentence (:func:`length_batches`). ``Embedding(mask_zero=True)`` masks the
padding, so trailing padding changes nothing but the time spent on it. The token-id helpers
are :mod:`siamese.encode`'s, which embeds texts the same way.

A tower with batch normalisation would see statistics over both sides together in training
mode, which differs (slightly) from two separate calls; :func:`computes_the_same` tells.

:func:`unique_trainer` goes further for towers of one tensor input (images): it embeds each
distinct item of a batch once and picks each pair's two encodings from those, so a batch whose
pairs share items (pooled sampling, :class:`siamese.pairs.PairSampler`'s ``pool_size``) costs
the tower work of its distinct items only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from siamese.encode import lengths_of, text_chain, text_vectorizer
from siamese.layers import GroupSides, SplitPair, StackPair, TakeRows
from siamese.models import head_of, tower_of
from siamese.training.loop import without_autotune


def computes_the_same(tower: keras.Model) -> bool:
    """Whether the fused call gives exactly the two-call model's training step: it does
    unless a layer mixes the examples of a batch (batch normalisation)."""
    return not any(isinstance(layer, keras.layers.BatchNormalization) for layer in _all_layers(tower))


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_all_layers(layer))
    return found


def fused_trainer(model: keras.Model, *, token_ids: bool = False) -> keras.Model:
    """A model sharing ``model``'s layers that runs the tower once on both sides of a batch.

    Args:
        model: A pair model from :func:`~siamese.models.build_siamese`.
        token_ids: For a text tower: take token ids ``(batch, length)``, any length, instead
            of raw strings (see :func:`siamese.encode.token_ids` to make them).

    Returns:
        An uncompiled ``keras.Model`` with inputs ``[a, b]`` and the head's output.
    """
    tower, head = tower_of(model), head_of(model)
    if token_ids:
        text_vectorizer(tower)  # refuses a tower that is not a text tower
        chain = text_chain(tower)
        input_a = keras.Input(shape=(None,), dtype="int64", name="ids_a")
        input_b = keras.Input(shape=(None,), dtype="int64", name="ids_b")
        encoded = StackPair(name="stack_pair")([input_a, input_b])
        for layer in chain:
            encoded = layer(encoded)
    else:
        spec = tower.inputs[0]
        input_a = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype, name="input_a")
        input_b = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype, name="input_b")
        encoded = tower(StackPair(name="stack_pair")([input_a, input_b]))
    u, v = SplitPair(name="split_pair")(encoded)
    return keras.Model([input_a, input_b], head([u, v]), name=f"{model.name}_fused")


def embedding_trainer(model: keras.Model, *, sides: int = 2, token_ids: bool = False) -> keras.Model:
    """A model sharing ``model``'s tower that embeds ``sides`` inputs in one tower call and
    outputs their encodings side by side, ``(batch, sides, dim)``: what the embedding losses
    (:class:`~siamese.losses.MultipleNegativesRankingLoss`) take, e.g. anchor, positive and
    a hard negative.

    Args:
        model: A pair model from :func:`~siamese.models.build_siamese` (its head is not used).
        sides: Inputs per example.
        token_ids: For a text tower: take token ids ``(batch, length)``, any length, instead
            of raw strings (see :func:`siamese.encode.token_ids`).
    """
    tower = tower_of(model)
    if token_ids:
        text_vectorizer(tower)  # refuses a tower that is not a text tower
        inputs = [keras.Input(shape=(None,), dtype="int64", name=f"ids_{k}") for k in range(sides)]
        encoded = StackPair(name="stack_sides")(inputs)
        for layer in text_chain(tower):
            encoded = layer(encoded)
    else:
        spec = tower.inputs[0]
        inputs = [
            keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype, name=f"input_{k}")
            for k in range(sides)
        ]
        encoded = tower(StackPair(name="stack_sides")(inputs))
    return keras.Model(
        inputs, GroupSides(sides, name="group_sides")(encoded), name=f"{model.name}_embeddings"
    )


def id_trainer(tower: keras.Model) -> keras.Model:
    """A model sharing ``tower``'s layers from token ids ``(batch, length)``, any length, to
    its output: what trains on batches cut to their longest sentence."""
    text_vectorizer(tower)  # refuses a tower that is not a text tower
    ids = keras.Input(shape=(None,), dtype="int64", name="ids")
    encoded = ids
    for layer in text_chain(tower):
        encoded = layer(encoded)
    return keras.Model(ids, encoded, name=f"{tower.name}_ids")


def item_trainer(model: keras.Model) -> keras.Model:
    """A model sharing ``model``'s tower that embeds a batch of items: what a class-labelled
    embedding loss (:class:`~siamese.losses.BatchHardTripletLoss`) trains, each item of the
    batch embedded once."""
    tower = tower_of(model)
    spec = tower.inputs[0]
    items = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype, name="items")
    return keras.Model(items, tower(items), name=f"{model.name}_items")


def unique_trainer(model: keras.Model) -> keras.Model:
    """A model sharing ``model``'s layers that embeds each distinct item of a batch once.

    Its inputs are ``[items, index_a, index_b]``: the batch's distinct items ``(m, ...)`` and,
    for each pair, the positions of its two sides among them (``int32``, ``(batch,)``). The
    tower runs once on ``items``; the head sees ``u = tower(items)[index_a]`` and
    ``v = tower(items)[index_b]``. Without batch normalisation this is the pair model's own
    function on ``(items[index_a], items[index_b])``, so the same loss and gradients, for a
    fraction of the tower's work when the batch repeats items (see the ``pool_size`` of
    :class:`siamese.pairs.PairSampler`). With batch normalisation, training statistics are
    taken over the distinct items (each counted once) instead of over each side.

    Args:
        model: A pair model from :func:`~siamese.models.build_siamese` with a tower of one
            tensor input (an image tower, say).

    Returns:
        An uncompiled ``keras.Model``.
    """
    tower, head = tower_of(model), head_of(model)
    spec = tower.inputs[0]
    items = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype, name="items")
    index_a = keras.Input(shape=(), dtype="int32", name="index_a")
    index_b = keras.Input(shape=(), dtype="int32", name="index_b")
    encoded = tower(items)
    u = TakeRows(name="take_a")([encoded, index_a])
    v = TakeRows(name="take_b")([encoded, index_b])
    return keras.Model([items, index_a, index_b], head([u, v]), name=f"{model.name}_unique")


def unique_items(index_a: Any, index_b: Any) -> tuple[Any, Any, Any]:
    """``(distinct, position_a, position_b)`` of one batch of pairs, as TensorFlow tensors:
    the distinct item indices (in order of first appearance) and where each side's item sits
    among them (``int32``), for :func:`unique_trainer`."""
    import tensorflow as tf

    both = tf.concat([index_a, index_b], axis=0)
    distinct, position = tf.unique(both, out_idx=tf.int32)
    count = tf.shape(index_a)[0]
    return distinct, position[:count], position[count:]


def batch_order(
    lengths: np.ndarray,
    order: np.ndarray,
    batch_size: int,
    *,
    pool_batches: int,
    rng: np.random.Generator | None,
) -> list[np.ndarray]:
    """Batches of ``order`` with similar lengths together ("bucketing").

    ``order`` (already shuffled) is cut into pools of ``pool_batches`` batches; each pool is
    sorted by length and cut into batches; then the batches of all pools are shuffled by
    ``rng``. With ``pool_batches=0`` the batches simply follow ``order`` (``rng`` is unused).
    """
    if pool_batches <= 0:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    pool = pool_batches * batch_size
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def pair_lengths(ids_a: np.ndarray, ids_b: np.ndarray) -> np.ndarray:
    """The longer side's length of each pair (see :func:`lengths_of`)."""
    return np.maximum(lengths_of(ids_a), lengths_of(ids_b))


def length_batches(
    ids_a: np.ndarray,
    ids_b: np.ndarray,
    targets: np.ndarray,
    batches: list[np.ndarray],
    lengths: np.ndarray,
) -> Iterator[tuple[tuple[np.ndarray, ...], np.ndarray]]:
    """``((ids_a, ids_b), targets)`` per batch, both sides cut to the batch's longest row.

    ``lengths`` is :func:`pair_lengths` of the ids, computed once by the caller.
    """
    return side_batches([ids_a, ids_b], targets, batches, lengths)


def side_batches(
    sides: list[np.ndarray], targets: np.ndarray, batches: list[np.ndarray], lengths: np.ndarray
) -> Iterator[tuple[tuple[np.ndarray, ...], np.ndarray]]:
    """``((ids of each side), targets)`` per batch, every side cut to the batch's longest row
    (``lengths``: the longest side's length of each example)."""
    for index in batches:
        width = max(int(lengths[index].max()), 1)
        yield tuple(ids[index, :width] for ids in sides), targets[index]


def padding_share(lengths: np.ndarray, batches: list[np.ndarray], width: int | None = None) -> float:
    """Share of the token slots that are padding, when each batch is cut to its longest row
    (or, with ``width``, padded to that fixed width)."""
    used = sum(int(lengths[b].sum()) for b in batches)
    slots = sum(len(b) * (width or max(int(lengths[b].max()), 1)) for b in batches)
    return 1.0 - used / slots if slots else 0.0


def id_dataset(
    sides: list[np.ndarray],
    targets: np.ndarray,
    batches: list[np.ndarray],
    lengths: np.ndarray,
) -> tf.data.Dataset:
    """The batches of token ids of every side (each cut to the batch's longest sentence) as a
    ``tf.data.Dataset``."""
    target_shape = (None, *targets.shape[1:])
    dataset = tf.data.Dataset.from_generator(
        lambda: side_batches(sides, targets, batches, lengths),
        output_signature=(
            tuple(tf.TensorSpec((None, None), tf.int64) for _ in sides),
            tf.TensorSpec(target_shape, tf.as_dtype(targets.dtype)),
        ),
    )
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2)
    return without_autotune(dataset)
