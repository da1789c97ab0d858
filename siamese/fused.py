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
padding, so trailing padding changes nothing but the time spent on it.

A tower with batch normalisation would see statistics over both sides together in training
mode, which differs (slightly) from two separate calls; :func:`computes_the_same` tells.

:func:`unique_trainer` goes further for towers of one tensor input (images): it embeds each
distinct item of a batch once and picks each pair's two encodings from those, so a batch whose
pairs share items (pooled sampling, :class:`siamese.pairs.PairSampler`'s ``pool_size``) costs
the tower work of its distinct items only.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
from keras import ops

from siamese.heads import PACKAGE
from siamese.models import tower_of


@keras.saving.register_keras_serializable(package=PACKAGE)
class StackPair(keras.layers.Layer):
    """``[a, b]`` → one batch ``[a; b]`` (the sides must have the same shape past the batch)."""

    def call(self, inputs: Any) -> Any:
        return ops.concatenate(list(inputs), axis=0)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SplitPair(keras.layers.Layer):
    """One batch ``[u; v]`` → ``[u, v]``, its two halves."""

    def call(self, inputs: Any) -> list[Any]:
        half = ops.shape(inputs)[0] // 2
        return [inputs[:half], inputs[half:]]


@keras.saving.register_keras_serializable(package=PACKAGE)
class TakeRows(keras.layers.Layer):
    """``[table, index]`` → the rows ``table[index]``."""

    def call(self, inputs: Any) -> Any:
        table, index = inputs
        return ops.take(table, index, axis=0)


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


def head_of(model: keras.Model) -> keras.layers.Layer:
    """The head of a pair model built by :func:`siamese.models.build_siamese` (its last layer)."""
    return model.layers[-1]


def text_vectorizer(tower: keras.Model) -> keras.layers.TextVectorization:
    """The ``TextVectorization`` layer of a text tower.

    Raises:
        ValueError: The tower has none (it is not a text tower).
    """
    found = [layer for layer in tower.layers if isinstance(layer, keras.layers.TextVectorization)]
    if len(found) != 1:
        raise ValueError(f"{tower.name!r} is not a text tower (it has no TextVectorization layer)")
    return found[0]


def _text_chain(tower: keras.Model) -> list[keras.layers.Layer]:
    """The layers after ``TextVectorization``, in order (a :func:`~siamese.towers.text_tower`
    is a chain: embedding, then the LSTM or bidirectional LSTM)."""
    return [
        layer
        for layer in tower.layers
        if not isinstance(layer, (keras.layers.InputLayer, keras.layers.TextVectorization))
    ]


def trimmable(tower: keras.Model) -> bool:
    """Whether ``tower`` is a text tower whose encodings do not depend on trailing padding:
    a chain ``TextVectorization`` → ``Embedding(mask_zero=True)`` → ... (each layer fed by
    the one before, the last one the output), as :func:`siamese.towers.text_tower` builds."""
    try:
        vectorizer = text_vectorizer(tower)
        chain = _text_chain(tower)
        if not chain or not isinstance(chain[0], keras.layers.Embedding) or not chain[0].mask_zero:
            return False
        feeds = [vectorizer, *chain]
        return all(_main_input(b) is a.output for a, b in zip(feeds, chain, strict=False)) and (
            tower.outputs[0] is chain[-1].output
        )
    except (ValueError, AttributeError):  # not a text tower, or a layer used more than once
        return False


def _main_input(layer: keras.layers.Layer) -> Any:
    """A layer's input tensor (an RNN fed a mask lists ``[inputs, mask]``)."""
    given = layer.input
    return given[0] if isinstance(given, (list, tuple)) else given


_CHAINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def embed_texts(tower: keras.Model, texts: Any, *, batch_size: int) -> np.ndarray:
    """Encodings of ``texts`` by a :func:`trimmable` tower, shortest texts first.

    The texts are turned into ids once, sorted by length and cut into batches, each cut to
    its longest text: the same encodings as the whole tower (the padding is masked) for less
    work, most of all with long ``sequence_length`` and short texts. Returned in the order
    of ``texts``, ``(n, dim)`` float32.
    """
    import tensorflow as tf

    forward = _CHAINS.get(tower)
    if forward is None:
        chain = _text_chain(tower)

        def run(ids: Any) -> Any:
            encoded = ids
            for layer in chain:
                encoded = layer(encoded, training=False)
            return encoded

        forward = tf.function(run, reduce_retracing=True)
        _CHAINS[tower] = forward
    ids = token_ids(text_vectorizer(tower), texts)
    lengths = lengths_of(ids)
    order = np.argsort(lengths, kind="stable")
    out = np.empty((len(ids), int(tower.outputs[0].shape[-1])), dtype=np.float32)
    for start in range(0, len(ids), batch_size):
        index = order[start : start + batch_size]
        width = max(int(lengths[index].max()), 1)
        out[index] = np.asarray(forward(ids[index, :width]))
    return out


def fused_trainer(model: keras.Model, *, token_ids: bool = False) -> keras.Model:
    """A model sharing ``model``'s layers that runs the tower once on both sides of a batch.

    Args:
        model: A pair model from :func:`~siamese.models.build_siamese`.
        token_ids: For a text tower: take token ids ``(batch, length)``, any length, instead
            of raw strings (see :func:`text_vectorizer` to make them).

    Returns:
        An uncompiled ``keras.Model`` with inputs ``[a, b]`` and the head's output.
    """
    tower, head = tower_of(model), head_of(model)
    if token_ids:
        text_vectorizer(tower)  # refuses a tower that is not a text tower
        chain = _text_chain(tower)
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


def token_ids(vectorizer: keras.layers.TextVectorization, texts: Any, batch_size: int = 4096) -> np.ndarray:
    """Token ids of ``texts``, ``(n, sequence_length)`` int64, made in batches."""
    texts = np.asarray(texts, dtype=object)
    parts = [np.asarray(vectorizer(texts[i : i + batch_size])) for i in range(0, len(texts), batch_size)]
    width = vectorizer.get_config().get("output_sequence_length") or max(p.shape[1] for p in parts)
    return np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in parts]).astype(np.int64)


def lengths_of(ids: np.ndarray) -> np.ndarray:
    """Tokens before the trailing padding (id 0) of each row."""
    nonzero = ids != 0
    return np.where(nonzero.any(axis=1), ids.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0)


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
) -> Iterator[tuple[tuple[np.ndarray, np.ndarray], np.ndarray]]:
    """``((ids_a, ids_b), targets)`` per batch, both sides cut to the batch's longest row.

    ``lengths`` is :func:`pair_lengths` of the ids, computed once by the caller.
    """
    for index in batches:
        width = max(int(lengths[index].max()), 1)
        yield (ids_a[index, :width], ids_b[index, :width]), targets[index]


def padding_share(lengths: np.ndarray, batches: list[np.ndarray], width: int | None = None) -> float:
    """Share of the token slots that are padding, when each batch is cut to its longest row
    (or, with ``width``, padded to that fixed width)."""
    used = sum(int(lengths[b].sum()) for b in batches)
    slots = sum(len(b) * (width or max(int(lengths[b].max()), 1)) for b in batches)
    return 1.0 - used / slots if slots else 0.0
