"""The toolkit's serialisable Keras objects: one package name, one decorator, one list.

Every custom layer, head, loss and metric is registered with :func:`register` under the
package :data:`PACKAGE`, so a saved ``.keras`` file names it ``siamese>ClassName`` and loads
in Keras's safe mode once ``siamese`` is imported. :func:`registered` lists them all (the
test suite round-trips every one).
"""

from __future__ import annotations

from typing import TypeVar

import keras

PACKAGE = "siamese"

T = TypeVar("T", bound=type)


def register(cls: T) -> T:
    """Register ``cls`` with Keras under ``siamese>ClassName``."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def registered() -> dict[str, type]:
    """Every class registered under :data:`PACKAGE` so far: ``"siamese>Name"`` → class."""
    prefix = f"{PACKAGE}>"
    return {name: obj for name, obj in keras.saving.get_custom_objects().items() if name.startswith(prefix)}
