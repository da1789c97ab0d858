"""The one place where raw items become vectors.

Training's evaluation, the index, the command line and the benchmarks all embed through
:func:`embed`:

- texts (a text tower): turned into token ids once, sorted by length and cut into batches,
  each cut to its longest text, when the tower is the plain chain ``TextVectorization`` →
  ``Embedding(mask_zero=True)`` → ... that :func:`siamese.towers.text_tower` builds (the
  padding is masked, so the encodings are the same for less work); otherwise through the
  tower's compiled forward pass;
- image arrays ``(n, H, W, C)`` (an image tower): through the compiled forward pass;
- image files (paths, for an image tower): decoded to the tower's size batch by batch, the
  next batch read in a thread while the tower embeds this one;
- ids (a categorical tower): through the compiled forward pass.

:func:`encoder` adds test-time augmentation (the mean embedding over an image and fixed small
distortions of it). The token-id helpers (:func:`text_vectorizer`, :func:`token_ids`,
:func:`lengths_of`) are shared with the fast text trainer of :mod:`siamese.training.fused`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import keras
import numpy as np

from siamese import faults
from siamese.augment import AffineAugment
from siamese.checks import positive_int
from siamese.datasets.files import decode_image_file
from siamese.errors import ConfigError

#: Seed of the distortions of test-time augmentation: fixed, so that evaluation is
#: repeatable (and independent of the training seed).
TTA_SEED = 123


# ----------------------------------------------------------------------------- inputs


def is_text(items: Any) -> bool:
    """Whether ``items`` are strings or paths (rather than arrays of numbers)."""
    if isinstance(items, str):
        return True
    if isinstance(items, np.ndarray):
        return items.dtype.kind in "USO"
    return isinstance(items, (list, tuple)) and any(isinstance(i, (str, os.PathLike)) for i in items)


def reads_files(tower: keras.Model, items: Any) -> bool:
    """Whether ``items`` are image file paths for an image tower (4-D input)."""
    spec = tower.inputs[0]
    return spec.dtype != "string" and len(spec.shape) == 4 and is_text(items)


def item_list(items: Any) -> Sequence[Any] | np.ndarray:
    """``items`` as a sequence that can be sliced (a single string is refused)."""
    if isinstance(items, str):
        raise ConfigError("pass a list of items, not a single string")
    return items if isinstance(items, (np.ndarray, list, tuple)) else list(items)


def as_model_input(items: Any, tower: keras.Model) -> np.ndarray:
    """Turn raw items (strings, images, ids) into the array the tower's input expects."""
    dtype = tower.inputs[0].dtype
    if dtype == "string":
        if isinstance(items, str):
            raise ConfigError("pass a list of strings, not a single string")
        items = list(items)
        if not all(isinstance(t, str) for t in items):
            raise ConfigError("a text tower embeds strings; got a non-string item")
        return np.asarray(items, dtype=object)
    array = np.asarray(items)
    expected = tuple(tower.inputs[0].shape[1:])
    if array.shape[1:] != expected:
        if array.shape == expected and expected:  # one item without its batch axis
            array = array[None]
        else:
            raise ConfigError(f"tower expects items of shape {expected}, got a batch of shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ConfigError(f"tower expects numeric input, got dtype {array.dtype}")
    return array


def read_image_files(paths: Sequence[str | os.PathLike[str]], shape: Sequence[int]) -> np.ndarray:
    """Decode image files to ``uint8`` arrays of the tower's ``(H, W, C)``, resizing if needed.

    Raises:
        ConfigError: The tower takes a number of channels image files cannot give.
        DataError: A file cannot be read as an image.
    """
    height, width, channels = (int(v) for v in shape)
    if channels not in (1, 3):
        raise ConfigError(f"the tower takes images with {channels} channels; image files give 1 or 3")
    return np.stack([decode_image_file(path, channels, (height, width)) for path in paths])


# ----------------------------------------------------------------------------- embedding


def embed(
    tower: keras.Model,
    items: Sequence[Any] | np.ndarray,
    *,
    batch_size: int = 256,
    progress: bool = False,
) -> np.ndarray:
    """Embed raw items with a tower, in batches; returns a float32 ``(n, dim)`` array.

    Args:
        tower: A tower (e.g. from :func:`siamese.models.load_tower`).
        items: Strings for a text tower; ``(n, H, W, C)`` images or image file paths for an
            image tower; ids for a categorical tower.
        batch_size: Items per forward pass.
        progress: Show a progress bar on stderr (items are then embedded ``batch_size`` at
            a time).

    Raises:
        ConfigError: The items are not of the kind or shape the tower takes.
        DataError: An image file cannot be read.
    """
    batch_size = positive_int("batch_size", batch_size)
    if progress or reads_files(tower, items) or faults.armed("embed"):
        return _embed_in_batches(tower, item_list(items), batch_size=batch_size, progress=progress)
    return _embed_array(tower, as_model_input(items, tower), batch_size)


def _embed_array(tower: keras.Model, array: np.ndarray, batch_size: int) -> np.ndarray:
    if len(array) == 0:
        return np.zeros((0, output_width(tower)), dtype=np.float32)
    if array.dtype == object and trimmable(tower):
        return embed_texts(tower, array, batch_size=batch_size)
    forward = compiled_forward(tower)
    outputs = [
        np.asarray(forward(array[start : start + batch_size])) for start in range(0, len(array), batch_size)
    ]
    return np.concatenate(outputs).astype(np.float32, copy=False)


def _embed_in_batches(
    tower: keras.Model, items: Sequence[Any] | np.ndarray, *, batch_size: int, progress: bool
) -> np.ndarray:
    """Embed ``batch_size`` items at a time, with a progress bar; image files are decoded a
    batch ahead in a thread (TensorFlow releases the GIL while it computes)."""
    files = reads_files(tower, items)
    shape = tuple(tower.inputs[0].shape[1:])
    bar = keras.utils.Progbar(len(items), unit_name="item") if progress else None
    chunks = []
    with ThreadPoolExecutor(max_workers=1) as reader:

        def batch_at(start: int) -> Any:
            batch = items[start : start + batch_size]
            return reader.submit(read_image_files, batch, shape) if files else batch

        pending = batch_at(0) if len(items) else None
        for start in range(0, len(items), batch_size):
            batch = pending.result() if files else pending
            if start + batch_size < len(items):
                pending = batch_at(start + batch_size)
            chunks.append(_embed_array(tower, as_model_input(batch, tower), batch_size))
            if start == 0:
                faults.kill_point("embed")
            if bar is not None:
                with contextlib.redirect_stdout(sys.stderr):
                    bar.update(min(start + batch_size, len(items)))
    if not chunks:
        return np.zeros((0, output_width(tower)), dtype=np.float32)
    return np.concatenate(chunks)


def output_width(tower: keras.Model) -> int:
    """The width of the tower's embeddings."""
    return int(tower.outputs[0].shape[-1])


_FORWARDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_forward(tower: keras.Model) -> Any:
    """The tower's inference call as a compiled ``tf.function``, made once per tower.

    Calling a Keras model eagerly runs its layers op by op (an LSTM step by step, from
    Python); the compiled call runs the same computation as one graph, 2-5 times faster on
    a CPU. The function is traced for a batch of any size, so batches of different sizes do
    not trace it again.
    """
    forward = _FORWARDS.get(tower)
    if forward is None:
        import tensorflow as tf

        held = weakref.ref(tower)  # the cached function must not keep its (weak) key alive
        forward = tf.function(lambda batch: held()(batch, training=False), reduce_retracing=True)
        _FORWARDS[tower] = forward
    return forward


def encoder(tower: keras.Model, test_time_augment: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """Images ``(n, H, W, C)`` → embeddings ``(n, d)`` by ``tower``; with ``test_time_augment``
    N > 0, the mean of the embedding of each image and of N distortions of it (the training
    distortions of :class:`~siamese.augment.AffineAugment`, drawn from :data:`TTA_SEED`: the
    k-th distortion of every image comes from draw k)."""
    if test_time_augment <= 0:
        return lambda images: embed(tower, images)
    distort = AffineAugment(seed=TTA_SEED)

    def encode(images: np.ndarray) -> np.ndarray:
        total = embed(tower, images).astype(np.float64)
        for step in range(test_time_augment):
            total += embed(tower, np.asarray(distort(images, step)))
        return (total / (test_time_augment + 1)).astype(np.float32)

    return encode


# ----------------------------------------------------------------------------- texts


def text_vectorizer(tower: keras.Model) -> keras.layers.TextVectorization:
    """The ``TextVectorization`` layer of a text tower.

    Raises:
        ValueError: The tower has none (it is not a text tower).
    """
    found = [layer for layer in tower.layers if isinstance(layer, keras.layers.TextVectorization)]
    if len(found) != 1:
        raise ValueError(f"{tower.name!r} is not a text tower (it has no TextVectorization layer)")
    return found[0]


def text_chain(tower: keras.Model) -> list[keras.layers.Layer]:
    """The layers after ``TextVectorization``, in order (a :func:`~siamese.towers.text_tower`
    is a chain: embedding, then the LSTM or bidirectional LSTM, then any pooling)."""
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
        chain = text_chain(tower)
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
        chain = text_chain(tower)

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
    out = np.empty((len(ids), output_width(tower)), dtype=np.float32)
    for start in range(0, len(ids), batch_size):
        index = order[start : start + batch_size]
        width = max(int(lengths[index].max()), 1)
        out[index] = np.asarray(forward(ids[index, :width]))
    return out


_VECTORIZERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled_vectorizer(vectorizer: keras.layers.TextVectorization) -> Callable[[Any], Any]:
    """``vectorizer``'s call as a ``tf.function`` made once: called eagerly, its ragged string
    ops cost ~2 ms a sentence of Python dispatch, which dominated the time of a one-query
    search."""
    import tensorflow as tf

    # A new vocabulary (set_vocabulary) makes a new lookup table: the compiled call, which
    # holds the old one, is then made again.
    table = getattr(getattr(vectorizer, "_lookup_layer", None), "lookup_table", None)
    known, compiled = _VECTORIZERS.get(vectorizer, (None, None))
    if compiled is None or known is not table:
        layer = weakref.ref(vectorizer)  # the cache's value must not keep its key alive
        compiled = tf.function(
            lambda texts: layer()(texts), input_signature=[tf.TensorSpec([None], tf.string)]
        )
        _VECTORIZERS[vectorizer] = (table, compiled)
    return compiled


def token_ids(vectorizer: keras.layers.TextVectorization, texts: Any, batch_size: int = 4096) -> np.ndarray:
    """Token ids of ``texts``, ``(n, sequence_length)`` int64, made in batches."""
    texts = np.asarray(texts, dtype=object)
    compiled = _compiled_vectorizer(vectorizer)
    parts = [np.asarray(compiled(texts[i : i + batch_size])) for i in range(0, len(texts), batch_size)]
    width = vectorizer.get_config().get("output_sequence_length") or max(p.shape[1] for p in parts)
    return np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in parts]).astype(np.int64)


def lengths_of(ids: np.ndarray) -> np.ndarray:
    """Tokens before the trailing padding (id 0) of each row."""
    nonzero = ids != 0
    return np.where(nonzero.any(axis=1), ids.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0)
