"""Datasets from tensorflow-datasets: sentence pairs as :class:`~siamese.datasets.records.TextPairs`
and labelled images as :class:`~siamese.datasets.records.LabelledImages`.

Used by :func:`~siamese.datasets.text.load_text_dataset` for specs such as
``"tfds:glue/stsb"`` and by :func:`~siamese.datasets.images.load_image_dataset` for
``"tfds:fashion_mnist"``. tensorflow-datasets (and TensorFlow) are imported only when such a
dataset is asked for. tfds keeps its own cache (``~/tensorflow_datasets`` or
``$TFDS_DATA_DIR``) and downloads into it when a dataset is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from siamese.datasets.files import resize_images
from siamese.datasets.records import BINARY, GRADED, LabelledImages, TextPairs
from siamese.datasets.splits import hold_out
from siamese.errors import ConfigError, DataError, DatasetNotFoundError

logger = logging.getLogger(__name__)

#: Image datasets of tensorflow-datasets that ``tfds:NAME`` accepts.
TFDS_NAMES: tuple[str, ...] = ("fashion_mnist", "mnist", "omniglot")

# Feature names of the two texts, tried in order.
TEXT_FEATURES: tuple[tuple[str, str], ...] = (
    ("sentence1", "sentence2"),
    ("question1", "question2"),
    ("premise", "hypothesis"),
    ("question", "sentence"),
)
# Published score ranges of graded datasets; others use (min, max) of their train labels.
KNOWN_SCALES: dict[str, tuple[float, float]] = {"glue/stsb": (0.0, 5.0)}
_SPLITS = ("train", "validation", "test")
_BATCH = 4096


def import_tfds() -> ModuleType:
    """Import tensorflow-datasets (slow, so only when a ``tfds:`` name is used)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as exc:
        raise ConfigError(
            "tfds: datasets need tensorflow-datasets (pip install tensorflow-datasets)"
        ) from exc
    return tfds


def _text_keys(features: Any, name: str) -> tuple[str, str]:
    """The two text feature names of a dataset."""
    for first, second in TEXT_FEATURES:
        if first in features and second in features:
            return first, second
    raise ConfigError(
        f"tfds dataset {name!r} has no known pair of text features (features: "
        f"{', '.join(features.keys())}; known pairs: "
        f"{', '.join(f'{a}/{b}' for a, b in TEXT_FEATURES)})"
    )


def _label_kind(tfds: ModuleType, features: Any, name: str) -> tuple[str, bool]:
    """``(kind, flip)`` of the ``label`` feature.

    A two-class ``ClassLabel`` is binary; ``flip`` is true when its class 1 is the negative
    one (names like ``entailment`` / ``not_entailment``), so that 1 always means similar.
    A float tensor is graded.
    """
    if "label" not in features:
        raise ConfigError(f"tfds dataset {name!r} has no 'label' feature")
    label = features["label"]
    if isinstance(label, tfds.features.ClassLabel):
        if label.num_classes != 2:
            raise ConfigError(
                f"tfds dataset {name!r} has {label.num_classes} classes; pairs need a binary "
                "label or a graded score"
            )
        names = [str(n).lower() for n in (label.names or [])]
        flip = len(names) == 2 and names[1].startswith("not") and not names[0].startswith("not")
        return BINARY, flip
    if np.issubdtype(np.dtype(getattr(label, "np_dtype", np.int64)), np.floating):
        return GRADED, False
    raise ConfigError(f"tfds dataset {name!r}: label feature {label!r} is not binary or a score")


def _read_split(
    tfds: ModuleType, builder: Any, split: str, keys: tuple[str, str], flip: bool
) -> tuple[list[str], list[str], np.ndarray]:
    """Texts and labels of one split; unlabelled (label < 0) and empty-text pairs dropped."""
    try:
        dataset = builder.as_dataset(split=split, shuffle_files=False)
    except Exception as exc:  # tfds raises many types (missing split, missing files, ...)
        raise DatasetNotFoundError(
            f"tensorflow-datasets could not read {builder.name!r} split {split!r}: {exc}"
        ) from exc
    a: list[str] = []
    b: list[str] = []
    labels: list[np.ndarray] = []
    dropped_empty = 0
    for batch in tfds.as_numpy(dataset.batch(_BATCH)):
        batch_labels = np.asarray(batch["label"], dtype=np.float64).reshape(-1)
        for first, second, value in zip(batch[keys[0]], batch[keys[1]], batch_labels, strict=True):
            if value < 0:
                continue
            text_a = first.decode("utf-8", errors="replace").strip()
            text_b = second.decode("utf-8", errors="replace").strip()
            if not text_a or not text_b:
                dropped_empty += 1
                continue
            a.append(text_a)
            b.append(text_b)
            labels.append(value)
    if dropped_empty:
        logger.warning("%s/%s: dropped %d pairs with an empty text", builder.name, split, dropped_empty)
    values = np.asarray(labels, dtype=np.float32)
    if flip:
        values = 1.0 - values
    return a, b, values


def _builder(tfds: ModuleType, name: str) -> Any:
    """The tfds builder for ``name`` (its features are known before any download)."""
    try:
        return tfds.builder(name)
    except Exception as exc:  # unknown name, bad version, ...
        raise ConfigError(f"unknown tensorflow-datasets dataset {name!r}: {exc}") from exc


def _download(builder: Any, name: str) -> None:
    """Download and prepare the builder's data, unless tfds already has it."""
    try:
        builder.download_and_prepare()
    except Exception as exc:  # network, checksum, missing optional modules, ...
        raise DatasetNotFoundError(
            f"tensorflow-datasets could not download or prepare {name!r} "
            f"({type(exc).__name__}: {exc}); connect to the network once, or set "
            "TFDS_DATA_DIR to a folder where it is already prepared"
        ) from exc


def load_tfds_pairs(name: str, *, seed: int = 0, dev_fraction: float = 0.1) -> dict[str, TextPairs]:
    """Load a tfds sentence-pair dataset as ``train``/``dev``/``test`` :class:`TextPairs`.

    The texts are the first matching pair in :data:`TEXT_FEATURES` (``sentence1``/``sentence2``
    for GLUE and PAWS, ``question1``/``question2`` for QQP). A two-class ``ClassLabel`` gives
    binary pairs; a float ``label`` gives graded ones, with the scale from
    :data:`KNOWN_SCALES` (``(0, 5)`` for ``glue/stsb``) or else the train labels' range.
    Examples labelled ``-1`` (how GLUE marks its unlabelled test sets) are dropped, as are
    pairs with an empty text.

    Splits: ``train`` is tfds' train. When tfds' ``test`` split has labels (e.g.
    ``paws_wiki``), ``validation`` becomes dev and ``test`` test. When it has none (all GLUE
    tasks), tfds' ``validation`` becomes **test** and dev is a seeded, class-stratified
    ``dev_fraction`` held out of train, so every dataset has a labelled test split. Without
    a labelled validation either, there is no test split.

    Args:
        name: The tfds name, e.g. ``"glue/stsb"`` or ``"paws_wiki"``.
        seed: Seed of the dev hold-out.
        dev_fraction: Share of train held out as dev when tfds has no usable dev split.

    Raises:
        ConfigError: tensorflow-datasets is missing, the name is unknown, or the dataset
            is not a two-text dataset with a binary label or a score.
        DatasetNotFoundError: tfds cannot download, prepare or read the data.
        DataError: the dataset has no labelled train pairs.
    """
    tfds = import_tfds()
    builder = _builder(tfds, name)
    features = builder.info.features
    keys = _text_keys(features, name)
    kind, flip = _label_kind(tfds, features, name)
    _download(builder, name)
    known = list(builder.info.splits.keys())
    raw = {
        split: _read_split(tfds, builder, split, keys, flip)
        for split in _SPLITS
        if split in known or not known  # mocked builders list no splits
    }
    raw = {split: parts for split, parts in raw.items() if len(parts[2])}
    if "train" not in raw:
        raise DataError(f"tensorflow-datasets dataset {name!r} has no labelled train pairs")
    base = name.split(":")[0]
    scale = None
    if kind == GRADED:
        train_labels = raw["train"][2]
        scale = KNOWN_SCALES.get(base, (float(train_labels.min()), float(train_labels.max())))

    def pairs(split: str, label: str) -> TextPairs:
        a, b, values = raw[split]
        return TextPairs(a, b, values, kind, scale, f"tfds:{base}/{label}")

    splits: dict[str, TextPairs] = {}
    if "test" in raw and "validation" in raw:
        splits = {"train": pairs("train", "train"), "dev": pairs("validation", "dev")}
    else:
        rest, held = hold_out(pairs("train", "train"), dev_fraction, seed)
        splits = {"train": rest, "dev": held.subset(range(len(held)), f"tfds:{base}/dev")}
    if "test" in raw:
        splits["test"] = pairs("test", "test")
    elif "validation" in raw:
        splits["test"] = pairs("validation", "test")
    logger.info("read tfds:%s: %s", base, ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    return splits


# ----------------------------------------------------------------------------- images

_BATCH = 4096


def _names(feature: object) -> list[str] | None:
    """Class names of a tfds ClassLabel feature, or None when it has none."""
    names = list(getattr(feature, "names", None) or [])
    return names or None


def load_tfds_images(name: str, split: str, *, size: Sequence[int] | None = None) -> LabelledImages:
    """Read one split of a tfds image dataset into memory.

    Omniglot's images (stored as RGB with equal channels) are reduced to their first
    channel, so they match :func:`~siamese.datasets.images.read_omniglot_background`;
    its classes are renumbered ``0..m-1`` over the characters present in the split and its
    ``alphabet`` feature becomes the groups. MNIST and Fashion-MNIST keep tfds' 10 classes.

    Args:
        name: ``"fashion_mnist"``, ``"mnist"`` or ``"omniglot"``.
        split: A tfds split name, e.g. ``"train"`` or ``"test"``.
        size: Optional ``(height, width)`` to resize to.

    Raises:
        ConfigError: unknown dataset name, or tensorflow-datasets is not installed.
        DatasetNotFoundError: tfds cannot load (or download) the split.
        DataError: the split is empty.
    """
    if name not in TFDS_NAMES:
        raise ConfigError(f"unknown tfds image dataset {name!r}: accepted are {', '.join(TFDS_NAMES)}")
    tfds = import_tfds()
    try:
        dataset, info = tfds.load(name, split=split, with_info=True, shuffle_files=False)
    except Exception as exc:  # tfds raises many types (download, missing split, ...)
        raise DatasetNotFoundError(
            f"tensorflow-datasets could not load {name!r} split {split!r}: {exc}"
        ) from exc
    wanted = ("image", "label", "alphabet") if name == "omniglot" else ("image", "label")
    parts: dict[str, list[np.ndarray]] = {key: [] for key in wanted}
    for batch in tfds.as_numpy(dataset.batch(_BATCH)):
        for key in wanted:
            parts[key].append(np.asarray(batch[key]))
    if not parts["image"]:
        raise DataError(f"tensorflow-datasets split {name}/{split} is empty")
    images = np.concatenate(parts["image"]).astype(np.uint8, copy=False)
    labels = np.concatenate(parts["label"]).astype(np.int64)
    label_feature = info.features["label"]
    class_names = _names(label_feature) or [str(i) for i in range(label_feature.num_classes)]
    groups = group_names = None
    if name == "omniglot":
        images = np.ascontiguousarray(images[..., :1])
        groups = np.concatenate(parts["alphabet"]).astype(np.int64)
        alphabet = info.features["alphabet"]
        group_names = _names(alphabet) or [str(i) for i in range(alphabet.num_classes)]
    data = LabelledImages(
        images=resize_images(images, size),
        labels=labels,
        class_names=class_names,
        groups=groups,
        group_names=group_names,
        name=f"tfds:{name}/{split}",
    )
    if name == "omniglot":
        data = data.subset(np.arange(len(data)), name=data.name, relabel=True)
    logger.info("read %s: %d images, %d classes", data.name, len(data), data.num_classes)
    return data
