"""Argument checks shared by the library: one place for "a positive integer", "a fraction",
"one of these names" and the array checks of the NumPy metrics and samplers.

Each check returns the value in its checked form or raises
:class:`~siamese.errors.ConfigError` (a ``ValueError``) naming the argument, so a caller's
mistake never surfaces as a bare NumPy error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from siamese.errors import ConfigError


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is an integer of at least 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(name: str, value: Any) -> int:
    """``value`` if it is an integer of at least 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def fraction(name: str, value: Any, *, include_one: bool = True) -> float:
    """``value`` as a float in [0, 1] (or [0, 1) when ``include_one`` is false)."""
    interval = "[0, 1]" if include_one else "[0, 1)"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in {interval}, got {value!r}") from None
    if not (0.0 <= number <= 1.0 if include_one else 0.0 <= number < 1.0):
        raise ConfigError(f"{name} must be in {interval}, got {value!r}")
    return number


def choice(name: str, value: Any, accepted: Sequence[str]) -> str:
    """``value`` if it is one of ``accepted``."""
    if value not in accepted:
        raise ConfigError(f"{name} must be one of {', '.join(accepted)}; got {value!r}")
    return value


def numeric_array(name: str, values: Any) -> np.ndarray:
    """``values`` as a NumPy array of numbers (or booleans)."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} could not be read as an array: {exc}") from None
    if array.dtype.kind not in "biuf":
        raise ConfigError(f"{name} must hold numbers, got dtype {array.dtype}")
    return array


def int_array(name: str, values: Any, ndim: int) -> np.ndarray:
    """``values`` as a non-empty ``int64`` array with ``ndim`` dimensions."""
    array = numeric_array(name, values)
    if array.ndim != ndim:
        raise ConfigError(f"{name} must be {ndim}-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ConfigError(f"{name} is empty")
    if array.dtype.kind not in "iu":
        raise ConfigError(f"{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64)


def same_length(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Refuse two sequences whose first dimensions differ."""
    if len(a) != len(b):
        raise ConfigError(f"{name_a} has {len(a)} items but {name_b} has {len(b)}")
