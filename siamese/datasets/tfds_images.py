"""Image datasets from tensorflow-datasets, as :class:`~siamese.datasets.images.LabelledImages`.

tensorflow-datasets (and TensorFlow) are imported only when one of these datasets is asked
for. tfds keeps its own cache (``~/tensorflow_datasets`` or ``$TFDS_DATA_DIR``) and downloads
into it when a dataset is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from siamese.datasets.images import TFDS_NAMES, LabelledImages, resize_images
from siamese.datasets.tfds_source import import_tfds
from siamese.errors import ConfigError, DataError, DatasetNotFoundError

logger = logging.getLogger(__name__)

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
