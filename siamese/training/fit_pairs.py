"""Train a pair model from Python on raw pairs, by the command line's fast road.

``model.fit([a, b], y)`` needs what a Keras string input takes (NumPy arrays of
``dtype=object``) and runs the tower twice per step on padded text. :func:`fit_pairs` takes
lists or NumPy arrays of raw items (strings, images, ids) and trains the same model through
:mod:`siamese.training.fused`: both sides in one tower call and, for text, token ids made once
and batches of similar length, each cut to its longest sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from siamese import encode
from siamese.errors import ConfigError
from siamese.models import tower_of
from siamese.training import fused

#: Batches of similar length are formed within pools of this many batches (as the CLI does).
POOL_BATCHES = 8


def _texts(name: str, items: Any) -> list[str]:
    values = items.tolist() if isinstance(items, np.ndarray) else list(items)
    if not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{name}: a text tower trains on strings")
    return values


def _text_dataset(
    tower: keras.Model,
    a: Any,
    b: Any,
    y: np.ndarray,
    batch_size: int,
    seed: int | None,
) -> Any:
    """A ``tf.data`` dataset of ``((ids_a, ids_b), y)`` batches cut to their longest row; with a
    ``seed``, each pass over it draws a new shuffle (``None``: sorted by length, for dev)."""
    import tensorflow as tf

    vectorizer = encode.text_vectorizer(tower)
    ids_a = encode.token_ids(vectorizer, _texts("a", a))
    ids_b = encode.token_ids(vectorizer, _texts("b", b))
    lengths = fused.pair_lengths(ids_a, ids_b)
    rng = None if seed is None else np.random.default_rng(seed)

    def batches() -> Any:
        if rng is None:
            order = fused.batch_order(
                lengths, np.argsort(lengths, kind="stable"), batch_size, pool_batches=0, rng=None
            )
        else:
            order = fused.batch_order(
                lengths, rng.permutation(len(y)), batch_size, pool_batches=POOL_BATCHES, rng=rng
            )
        yield from fused.length_batches(ids_a, ids_b, y, order, lengths)

    spec = tf.TensorSpec((None, None), tf.int64)
    return tf.data.Dataset.from_generator(
        batches, output_signature=((spec, spec), tf.TensorSpec((None,), tf.float32))
    )


def fit_pairs(
    model: keras.Model,
    a: Sequence[Any] | np.ndarray,
    b: Sequence[Any] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    epochs: int = 1,
    batch_size: int = 64,
    validation: tuple[Any, Any, Any] | None = None,
    seed: int = 0,
    verbose: int | str = "auto",
) -> keras.callbacks.History:
    """Train a compiled pair model on raw pairs; returns Keras's history.

    Args:
        model: A pair model from :func:`siamese.build_siamese`, compiled (its optimizer and
            loss are used).
        a: The first items of the pairs: strings (a list or a NumPy array of any string
            dtype) for a text tower, ``(n, H, W, C)`` images for an image tower, ids for a
            categorical tower.
        b: The second items, as ``a``.
        y: One target per pair (a score, or 1/0).
        epochs: Passes over the pairs.
        batch_size: Pairs per step.
        validation: ``(a, b, y)`` to report the loss on after each epoch.
        seed: Seed of the shuffles.
        verbose: Keras's progress display.

    Raises:
        ConfigError: The model is not compiled, or the items are not what its tower takes.
    """
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        raise ConfigError("compile the model first (model.compile(optimizer=..., loss=...))")
    if not len(a) == len(b) == len(y):
        raise ConfigError(f"a, b and y differ in length ({len(a)}, {len(b)}, {len(y)})")
    tower = tower_of(model)
    targets = np.asarray(y, dtype=np.float32)
    text = tower.inputs[0].dtype == "string"
    trainer = (
        fused.fused_trainer(model, token_ids=text) if (text or fused.computes_the_same(tower)) else model
    )
    if trainer is not model:
        trainer.compile(optimizer=model.optimizer, loss=model.loss)
    if text:
        train = _text_dataset(tower, a, b, targets, batch_size, seed)
        dev = None
        if validation is not None:
            dev_a, dev_b, dev_y = validation
            dev = _text_dataset(tower, dev_a, dev_b, np.asarray(dev_y, np.float32), batch_size, None)
        return trainer.fit(train, epochs=epochs, validation_data=dev, verbose=verbose)
    inputs = [encode.as_model_input(a, tower), encode.as_model_input(b, tower)]
    dev = None
    if validation is not None:
        dev_a, dev_b, dev_y = validation
        dev = (
            [encode.as_model_input(dev_a, tower), encode.as_model_input(dev_b, tower)],
            np.asarray(dev_y, np.float32),
        )
    keras.utils.set_random_seed(seed)
    return trainer.fit(
        inputs, targets, batch_size=batch_size, epochs=epochs, validation_data=dev, verbose=verbose
    )
