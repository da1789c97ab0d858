"""What ``siamese-index build --input`` reads: the items to embed and their payloads.

For a text tower: a text dataset name (the distinct sentences, both sides, of one split,
``test`` unless another is asked for, or of every split with ``"all"``), a ``.txt`` file (one
item per line), or a CSV/TSV of pairs (the distinct sentences of both text columns, of the
whole file unless a split is asked for). For an image tower: an image dataset name
(``fashion-mnist`` is its test split; ``fashion-mnist:train`` its training split;
``omniglot`` the background images), or a folder of images (searched recursively; the
payload is the file's path).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from siamese.datasets.images import IMAGE_SUFFIXES, load_image_split
from siamese.datasets.records import TextPairs
from siamese.datasets.text import TEXT_DATASETS, load_text_dataset
from siamese.errors import ConfigError, DataError

logger = logging.getLogger(__name__)


def _distinct(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(t for t in texts if t.strip()))


#: What ``split`` takes to index every split of a dataset.
ALL_SPLITS = "all"


def pair_splits(spec: str, split: str | None = None, **csv_options: Any) -> list[TextPairs]:
    """The pairs of ``split`` of a text dataset name or a CSV/TSV of pairs: a named dataset's
    ``test`` split by default, a file's every pair; ``"all"``: every split.

    Raises:
        ConfigError: The dataset has no such split.
    """
    named = spec.lower() in TEXT_DATASETS or spec.startswith("tfds:")
    splits = load_text_dataset(spec, **csv_options)
    chosen = split or ("test" if named else ALL_SPLITS)
    if chosen == ALL_SPLITS:
        return list(splits.values())
    if chosen not in splits:
        raise ConfigError(f"{spec!r} has no split {chosen!r}; it has {', '.join(splits)} (or {ALL_SPLITS})")
    return [splits[chosen]]


def text_corpus(spec: str, split: str | None = None, **csv_options: Any) -> tuple[list[str], list[str]]:
    """Distinct texts to index and their payloads (the texts themselves)."""
    path = Path(spec).expanduser()
    if spec.lower() in TEXT_DATASETS or spec.startswith("tfds:") or path.suffix.lower() in (".csv", ".tsv"):
        chosen = pair_splits(spec, split, **csv_options)
        texts = _distinct([t for pairs in chosen for t in (*pairs.a, *pairs.b)])
    elif path.is_file():
        if split is not None:
            raise ConfigError(f"--split applies to a dataset or a CSV/TSV of pairs, not to {spec!r}")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text ({exc.reason})", path=path) from None
        texts = _distinct([line.strip() for line in lines])
    else:
        raise ConfigError(
            f"--input {spec!r}: expected a text dataset name ({', '.join(TEXT_DATASETS)}), "
            "a .txt file with one item per line, or a CSV/TSV of pairs"
        )
    if not texts:
        raise DataError("no text to index (the corpus is empty)", path=path if path.exists() else None)
    logger.info("corpus %s: %d distinct texts", spec, len(texts))
    return texts, texts


def image_corpus(spec: str, *, size: tuple[int, int] | None = None) -> tuple[Any, list[Any]]:
    """Images (an array, or file paths) to index and their payloads."""
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError("no PNG/JPEG images in this folder", path=path)
        return [str(p) for p in files], [str(p) for p in files]
    name, split = spec, ""
    head, colon, tail = spec.rpartition(":")
    if colon and head and head != "tfds":  # "NAME:SPLIT"; "tfds:NAME" is a name
        name, split = head, tail
    if not split:  # the held-out split where the dataset has one
        split = "test" if name == "fashion-mnist" or name.startswith("tfds:") else "train"
    try:
        data = load_image_split(name, split, size=size)
    except ConfigError as exc:
        raise ConfigError(f"--input {spec!r}: {exc}") from None
    payloads = [
        {"split": split, "index": int(i), "label": data.class_names[int(label)]}
        for i, label in enumerate(data.labels)
    ]
    return data.images, payloads


def is_text_tower(tower: Any) -> bool:
    """Whether a tower takes strings."""
    return str(tower.inputs[0].dtype) == "string"


def read_corpus(spec: str, tower: Any, *, split: str | None = None, **options: Any) -> tuple[Any, list[Any]]:
    """Items and payloads for ``tower`` (text or image) from ``spec`` (and ``split``)."""
    if is_text_tower(tower):
        return text_corpus(spec, split, **options)
    if split is not None:
        spec = f"{spec}:{split}"
    shape = tuple(tower.inputs[0].shape[1:3])
    return image_corpus(spec, size=shape)
