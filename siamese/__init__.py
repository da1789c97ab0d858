"""siamese: Siamese similarity models for text, images and categories, searchable with FAISS.

One tower (an encoder from raw input to a vector) is applied to both inputs of a pair; a head
turns the two encodings into a similarity. The trained tower embeds a corpus into an index.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from siamese._tf import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

from siamese import heads, layers, losses  # noqa: E402, F401  (registers the serialisable classes)
from siamese._version import __version__  # noqa: E402
from siamese.encode import embed  # noqa: E402
from siamese.errors import (  # noqa: E402
    ConfigError,
    DataError,
    DatasetNotFoundError,
    IndexFileError,
    SiameseError,
)
from siamese.metrics import keras_metrics  # noqa: E402, F401  (registers PearsonCorrelation)
from siamese.models import build_siamese, load_model, load_tower, tower_of  # noqa: E402
from siamese.towers import categorical_tower, image_tower, text_tower  # noqa: E402
from siamese.training.fit_pairs import fit_pairs  # noqa: E402
from siamese.vectors import WordVectors, load_word_vectors  # noqa: E402

_INDEX_NAMES = ("Hit", "Index", "recall_at_k")


def __getattr__(name: str) -> object:
    """``siamese.Index`` and friends, imported on first use (FAISS loads only when needed)."""
    if name in _INDEX_NAMES:
        from siamese import index

        return getattr(index, name)
    raise AttributeError(f"module 'siamese' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "Hit",
    "Index",
    "DataError",
    "DatasetNotFoundError",
    "IndexFileError",
    "SiameseError",
    "WordVectors",
    "__version__",
    "build_siamese",
    "categorical_tower",
    "embed",
    "fit_pairs",
    "heads",
    "image_tower",
    "load_model",
    "load_tower",
    "load_word_vectors",
    "losses",
    "recall_at_k",
    "text_tower",
    "tower_of",
]
