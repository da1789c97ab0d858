"""Pair models: one tower object applied to both inputs, then a similarity head."""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import keras

from siamese import heads as heads_module
from siamese.errors import ConfigError

logger = logging.getLogger(__name__)


def build_siamese(
    tower: keras.Model,
    head: str | keras.layers.Layer = "abs-diff",
    *,
    name: str = "siamese",
    **head_kwargs: Any,
) -> keras.Model:
    """A two-input model that calls the same ``tower`` on both inputs, then ``head``.

    The tower is one object, so its weights exist once: ``model.summary()`` lists it once
    and the parameter count is the tower's plus the head's. The tower stays reachable as
    ``model.get_layer(tower.name)`` (or :func:`tower_of`).

    Args:
        tower: A single-input ``keras.Model`` (from :mod:`siamese.towers` or your own).
        head: A head name from :data:`siamese.heads.HEADS` or a layer taking ``[u, v]``.
        name: Name of the returned model.
        **head_kwargs: Passed to the head when it is given by name.

    Returns:
        A ``keras.Model`` with inputs ``[a, b]`` and the head's output.

    Raises:
        ValueError: ``tower`` is not a single-input model, or ``head`` is an unknown name.
    """
    if not isinstance(tower, keras.Model) or len(tower.inputs) != 1:
        raise ValueError("tower must be a keras.Model with exactly one input")
    if isinstance(head, str):
        head = heads_module.get(head, **head_kwargs)
    elif head_kwargs:
        raise ValueError("head options may be given only with a head name")
    spec = tower.inputs[0]
    shape = tuple(spec.shape[1:])
    input_a = keras.Input(shape=shape, dtype=spec.dtype, name="input_a")
    input_b = keras.Input(shape=shape, dtype=spec.dtype, name="input_b")
    score = head([tower(input_a), tower(input_b)])
    return keras.Model([input_a, input_b], score, name=name)


def tower_of(model: keras.Model) -> keras.Model:
    """The shared tower inside a pair model built by :func:`build_siamese`.

    Raises:
        ValueError: ``model`` does not hold exactly one nested model.
    """
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"expected one shared tower inside {model.name!r}, found {len(nested)}")
    return nested[0]


def head_of(model: keras.Model) -> keras.layers.Layer:
    """The head of a pair model built by :func:`build_siamese` (its last layer)."""
    return model.layers[-1]


def load_model(path: str | os.PathLike[str], *, compile: bool = True) -> keras.Model:
    """Load a saved pair model (``model.keras``) in Keras's safe mode (``compile=False``: without
    the loss and optimizer it was saved with, whose state is then not read).

    Raises:
        ConfigError: The file is missing or is not a Keras model file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model file not found: {path}")
    try:
        return keras.saving.load_model(path, compile=compile)
    except (ValueError, OSError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"cannot load model {path}: {exc}") from None


def uncompiled(model: keras.Model) -> keras.Model:
    """A model over ``model``'s layers and weights, without its compile state: what a tower
    that was itself trained (compiled) is saved as, so its file carries no optimizer state."""
    return keras.Model(model.input, model.output, name=model.name)


def load_tower(path: str | os.PathLike[str]) -> keras.Model:
    """Load a saved tower (``tower.keras``), ready to embed raw input with :func:`siamese.embed`.

    Args:
        path: A ``tower.keras`` file, or a run folder holding one.

    Raises:
        ConfigError: The file is missing, unreadable, or not a single-input model.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "tower.keras"
    model = load_model(path, compile=False)  # a tower embeds: an optimizer saved with it is not wanted
    if len(model.inputs) != 1:
        raise ConfigError(f"{path} holds a model with {len(model.inputs)} inputs, not a tower")
    return model
