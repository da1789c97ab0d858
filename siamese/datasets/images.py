"""Readers for labelled image datasets: Fashion-MNIST, Omniglot, and folders of images.

Every reader returns a :class:`LabelledImages`: a ``uint8`` array of shape ``(n, H, W, C)``
with one ``int64`` class index per image and the class names. Images are decoded with
Pillow, straight out of the staged ``.gz`` and ``.zip`` files (nothing is extracted to disk).

:func:`load_image_dataset` turns a dataset name (``"fashion-mnist"``, ``"omniglot"``,
``"tfds:<name>"``) or a folder path into seeded ``train``/``dev`` (and, where there is one,
``test``) splits. Omniglot is split by alphabet, so that dev holds whole alphabets never seen
in training, as the official one-shot test does; the other datasets are split per class
(stratified).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import re
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image

from siamese.datasets.files import (
    DECODE_ERRORS,
    PathArg,
    Size,
    check_channels,
    check_size,
    is_junk,
    natural_channels,
    open_image,
    open_zip,
    read_member,
    resize_images,
    stack_images,
    to_array,
)
from siamese.datasets.locate import locate
from siamese.datasets.records import LabelledImages, OneShotRun
from siamese.datasets.splits import check_fraction, group_split, stratified_split
from siamese.datasets.tfds import TFDS_NAMES, load_tfds_images
from siamese.errors import ConfigError, DataError

logger = logging.getLogger(__name__)


FASHION_MNIST_CLASSES: list[str] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

FASHION_MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": (
        "images/fashion-mnist/train-images-idx3-ubyte.gz",
        "images/fashion-mnist/train-labels-idx1-ubyte.gz",
    ),
    "test": (
        "images/fashion-mnist/t10k-images-idx3-ubyte.gz",
        "images/fashion-mnist/t10k-labels-idx1-ubyte.gz",
    ),
}

OMNIGLOT_BACKGROUND_FILES: tuple[str, ...] = (
    "images/omniglot/images_background_small1.zip",
    "images/omniglot/images_background_small2.zip",
)
OMNIGLOT_RUNS_FILE = "images/omniglot/all_runs.zip"

OMNIGLOT_LAYOUT = "<top folder>/<Alphabet>/characterNN/XXXX_YY.png"
RUNS_LAYOUT = (
    "runNN/training/classKK.png (exemplars), runNN/test/itemMM.png (queries) and "
    "runNN/class_labels.txt with lines 'runNN/test/itemMM.png runNN/training/classKK.png'"
)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
DATASET_NAMES: tuple[str, ...] = ("fashion-mnist", "omniglot") + tuple(f"tfds:{name}" for name in TFDS_NAMES)

_IDX_MAGIC = {2049: 1, 2051: 3}  # magic number -> number of dimensions
_OMNIGLOT_MEMBER = re.compile(r"^([^/]+)/([^/]+)/(character\d+)/(\d+_\d+\.png)$")
_RUN_LABELS = re.compile(r"^(run\d+)/class_labels\.txt$")
_RUN_MEMBER = re.compile(r"^(run\d+)/(?:class_labels\.txt|training/[^/]+\.png|test/[^/]+\.png)$")


# --------------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- idx / Fashion-MNIST


def read_idx(path: PathArg) -> np.ndarray:
    """Read an idx file (gzip-compressed or plain) of unsigned bytes.

    Args:
        path: The file. Magic 2051 holds images ``(n, rows, cols)``; magic 2049 holds labels
            ``(n,)``. Both store ``uint8`` values after a big-endian header.

    Returns:
        A ``uint8`` array of the shape the header declares.

    Raises:
        DataError: the file is missing, is a corrupt gzip stream, has an unknown magic number,
            or its size does not match the header.
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError as exc:
        raise DataError("idx file not found", path=path) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read idx file (corrupt or truncated gzip?): {exc}", path=path) from exc
    if len(raw) < 4:
        raise DataError(f"idx file too short for a header ({len(raw)} bytes)", path=path)
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _IDX_MAGIC:
        raise DataError(
            f"bad idx magic number {magic} (expected 2051 for images or 2049 for labels)",
            path=path,
        )
    ndim = _IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"idx header truncated: {len(raw)} bytes, need {header}", path=path)
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(dims)  # Python ints: a NumPy product can overflow to a match
    if len(raw) != expected:
        raise DataError(
            f"idx size mismatch: header declares shape {dims} ({expected} bytes) but the "
            f"data has {len(raw)} bytes (truncated or garbage file)",
            path=path,
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_fashion_mnist(split: str = "train") -> LabelledImages:
    """Read the full Fashion-MNIST ``train`` (60,000) or ``test`` (10,000) split.

    Args:
        split: ``"train"`` or ``"test"``. The files are found (or fetched) with
            :func:`~siamese.datasets.locate.locate`.

    Raises:
        ConfigError: unknown split.
        DataError: a file is missing or corrupt, counts differ, or a label is not 0..9.
    """
    if split not in FASHION_MNIST_FILES:
        raise ConfigError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}")
    image_file, label_file = (locate(rel) for rel in FASHION_MNIST_FILES[split])
    images = read_idx(image_file)
    labels = read_idx(label_file)
    if images.ndim != 3:
        raise DataError(f"expected an image idx file (magic 2051), got shape {images.shape}", path=image_file)
    if labels.ndim != 1:
        raise DataError(f"expected a label idx file (magic 2049), got shape {labels.shape}", path=label_file)
    if len(images) != len(labels):
        raise DataError(f"{len(labels)} labels for {len(images)} images in {image_file}", path=label_file)
    bad = np.flatnonzero(labels >= len(FASHION_MNIST_CLASSES))
    if bad.size:
        raise DataError(
            f"label {labels[bad[0]]} is not a Fashion-MNIST class (0..9)",
            path=label_file,
            line=int(bad[0]) + 1,
        )
    logger.info("read Fashion-MNIST %s: %d images", split, len(labels))
    return LabelledImages(
        images=images[:, :, :, None],
        labels=labels.astype(np.int64),
        class_names=list(FASHION_MNIST_CLASSES),
        groups=None,
        group_names=None,
        name=f"fashion-mnist/{split}",
    )


# --------------------------------------------------------------------------- Omniglot


def _background_members(archive: zipfile.ZipFile, path: PathArg) -> list[tuple[str, ...]]:
    """(alphabet, character, file, member) for each image of an Omniglot background zip."""
    found = []
    for member in archive.namelist():
        if is_junk(member):
            continue
        match = _OMNIGLOT_MEMBER.match(member)
        if match is None:
            raise DataError(
                f"zip member {member} does not follow Omniglot's layout {OMNIGLOT_LAYOUT}",
                path=path,
            )
        _, alphabet, character, filename = match.groups()
        found.append((alphabet, character, filename, member))
    if not found:
        raise DataError(f"no images in the zip; expected Omniglot's layout {OMNIGLOT_LAYOUT}", path=path)
    return found


def read_omniglot_background(
    paths: PathArg | Iterable[PathArg] | None = None, *, size: Sequence[int] | None = None
) -> LabelledImages:
    """Read Omniglot background zips into one de-duplicated set of characters.

    Images are decoded straight from the zips. Classes are keyed by (alphabet, character), so
    an alphabet found in several zips (Greek and Latin are in both small sets) is one set of
    classes, and an image met twice (same alphabet, character and file name) is kept once.
    The two staged small sets give 4,840 images of 242 characters in 8 alphabets.

    Args:
        paths: One zip or several; default: the staged ``images_background_small1.zip`` and
            ``images_background_small2.zip``.
        size: Optional ``(height, width)`` to resize to (the originals are 105x105).

    Returns:
        Grayscale images (1 channel, strokes 0 on a 255 background), classes named
        ``"<Alphabet>/characterNN"`` in sorted order, and the alphabet of each image as its
        group.

    Raises:
        DataError: a zip is missing, corrupt, not in Omniglot's layout, or holds an image
            that cannot be decoded.
    """
    target = check_size(size)
    if paths is None:
        paths = [locate(rel) for rel in OMNIGLOT_BACKGROUND_FILES]
    elif isinstance(paths, (str, PathLike)):
        paths = [paths]
    entries: dict[tuple[str, str, str], tuple[tuple[PathArg, str], np.ndarray]] = {}
    digests: dict[tuple[str, str, str], str] = {}
    duplicates = 0
    for path in paths:
        with open_zip(path) as archive:
            for alphabet, character, filename, member in _background_members(archive, path):
                data = read_member(archive, member, path)
                key = (alphabet, character, filename)
                digest = hashlib.sha1(data).hexdigest()
                if key in entries:
                    duplicates += 1
                    if digests[key] != digest:
                        logger.warning("%s: %s differs from an earlier copy; keeping the first", path, member)
                    continue
                image = open_image(data, path=path, what=f"zip member {member}")
                entries[key] = ((path, member), to_array(image, 1, target))
                digests[key] = digest
    if duplicates:
        logger.info("omniglot: dropped %d duplicate images found in more than one zip", duplicates)
    keys = sorted(entries)
    classes = sorted({(a, c) for a, c, _ in keys})
    alphabets = sorted({a for a, _ in classes})
    class_index = {cls: i for i, cls in enumerate(classes)}
    alphabet_index = {a: i for i, a in enumerate(alphabets)}
    images = stack_images([entries[k][1] for k in keys], [entries[k][0] for k in keys])
    logger.info(
        "omniglot background: %d images, %d characters, %d alphabets", len(keys), len(classes), len(alphabets)
    )
    return LabelledImages(
        images=images,
        labels=np.array([class_index[(a, c)] for a, c, _ in keys], dtype=np.int64),
        class_names=[f"{a}/{c}" for a, c in classes],
        groups=np.array([alphabet_index[a] for a, _, _ in keys], dtype=np.int64),
        group_names=alphabets,
        name="omniglot/background",
    )


def _parse_class_labels(
    text: str, run: str, member: str, path: PathArg, queries: list[str], exemplars: list[str]
) -> np.ndarray:
    """Answer (exemplar index) for each query, from a run's ``class_labels.txt``."""
    answers = np.full(len(queries), -1, dtype=np.int64)
    query_index = {q: i for i, q in enumerate(queries)}
    exemplar_index = {e: i for i, e in enumerate(exemplars)}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DataError(
                f"{member}: expected 'query exemplar' (2 fields), got {len(fields)} fields",
                path=path,
                line=number,
            )
        query, exemplar = (f if "/" in f else f"{run}/{f}" for f in fields)
        if query not in query_index:
            raise DataError(f"{member}: query {query} is not an image of {run}/test/", path=path, line=number)
        if exemplar not in exemplar_index:
            raise DataError(
                f"{member}: exemplar {exemplar} is not an image of {run}/training/", path=path, line=number
            )
        answers[query_index[query]] = exemplar_index[exemplar]
    missing = [q for q, a in zip(queries, answers, strict=True) if a < 0]
    if missing:
        raise DataError(f"{member}: no answer for query {missing[0]}", path=path)
    return answers


def _read_run(
    archive: zipfile.ZipFile, run: str, names: list[str], path: PathArg, size: Size | None
) -> OneShotRun:
    exemplars = sorted(n for n in names if n.startswith(f"{run}/training/") and n.endswith(".png"))
    queries = sorted(n for n in names if n.startswith(f"{run}/test/") and n.endswith(".png"))
    if not exemplars or not queries:
        raise DataError(f"{run} has no training or test images; expected {RUNS_LAYOUT}", path=path)
    member = f"{run}/class_labels.txt"
    try:
        text = read_member(archive, member, path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{member} is not UTF-8 text: {exc}", path=path) from exc
    answers = _parse_class_labels(text, run, member, path, queries, exemplars)

    def load(members: list[str]) -> np.ndarray:
        arrays = [
            to_array(open_image(read_member(archive, m, path), path=path, what=f"zip member {m}"), 1, size)
            for m in members
        ]
        return stack_images(arrays, [(path, m) for m in members])

    return OneShotRun(name=run, exemplars=load(exemplars), queries=load(queries), answers=answers)


def read_omniglot_runs(path: PathArg | None = None, *, size: Sequence[int] | None = None) -> list[OneShotRun]:
    """Read Lake et al.'s 20 one-shot classification runs from ``all_runs.zip``.

    Exemplars and queries are listed in file-name order (``class01..class20``,
    ``item01..item20``); each query's answer is the index of its exemplar as given by the
    run's ``class_labels.txt``.

    Args:
        path: The zip; default: the staged ``images/omniglot/all_runs.zip``.
        size: Optional ``(height, width)`` to resize to (the originals are 105x105).

    Raises:
        DataError: the zip is missing, corrupt, not in the runs' layout, a label line is
            malformed or names a missing image, or an image cannot be decoded.
    """
    target = check_size(size)
    if path is None:
        path = locate(OMNIGLOT_RUNS_FILE)
    with open_zip(path) as archive:
        names = [n for n in archive.namelist() if not is_junk(n)]
        runs = sorted(m.group(1) for n in names if (m := _RUN_LABELS.match(n)))
        if not runs:
            raise DataError(f"no runNN/class_labels.txt in the zip; expected {RUNS_LAYOUT}", path=path)
        # Every member must belong to a run: a run whose class_labels.txt lost its name (a damaged
        # zip) must not silently disappear from the benchmark.
        for name in names:
            match = _RUN_MEMBER.match(name)
            if match is None or match.group(1) not in runs:
                raise DataError(f"zip member {name} is not part of a run; expected {RUNS_LAYOUT}", path=path)
        result = [_read_run(archive, run, names, path, target) for run in runs]
    logger.info("omniglot one-shot runs: %d runs", len(result))
    return result


# --------------------------------------------------------------------------- image folders


def _folder_classes(root: Path) -> list[tuple[Path, list[Path]]]:
    """Each class sub-folder with its image files, sorted, checked for size (>= 2 images)."""
    if not root.is_dir():
        raise DataError("not a folder of class sub-folders", path=root)
    classes = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        )
        classes.append((folder, files))
    if not classes:
        raise DataError("no class sub-folders (expected <folder>/<class>/<image>.png)", path=root)
    if not any(files for _, files in classes):
        raise DataError("no PNG or JPEG images in any class sub-folder", path=root)
    for folder, files in classes:
        if len(files) < 2:
            raise DataError(
                f"class folder has {len(files)} image(s); every class needs at least 2",
                path=folder,
            )
    return classes


def read_image_folder(
    path: PathArg, *, size: Sequence[int] | None = None, channels: int | None = None
) -> LabelledImages:
    """Read a folder of class sub-folders of PNG/JPEG images (``<path>/<class>/<image>``).

    Classes are the sub-folders in sorted order, named by their folder names. Hidden files
    and files without a ``.png``/``.jpg``/``.jpeg`` suffix are ignored.

    Channel choice when ``channels`` is None: if every image is grayscale (with or without
    alpha) the result has 1 channel; otherwise every image is converted to RGB (3 channels),
    so a mixed folder becomes RGB. Alpha is always dropped (not composited).

    Args:
        path: The folder.
        size: Optional ``(height, width)`` to resize every image to. Without it, all images
            must have the size of the first one.
        channels: Force 1 (grayscale) or 3 (RGB) channels; None chooses as described above.

    Raises:
        DataError: the folder has no class sub-folders or no images, a class has fewer than
            2 images, an image cannot be decoded, or (without ``size``) sizes differ.
        ConfigError: ``size`` or ``channels`` is not valid.
    """
    target = check_size(size)
    wanted = check_channels(channels)
    root = Path(path)
    classes = _folder_classes(root)
    files = [(label, file) for label, (_, paths) in enumerate(classes) for file in paths]

    # First pass reads only headers: sizes and colour modes, to fail early and pick channels.
    modes = []
    first_size = None
    for _, file in files:
        try:
            with Image.open(file) as image:
                mode, (width, height) = image.mode, image.size
        except DECODE_ERRORS as exc:
            raise DataError(f"cannot decode image: {exc}", path=file) from exc
        if target is None:
            if first_size is None:
                first_size = (height, width, files[0][1])
            elif (height, width) != first_size[:2]:
                raise DataError(
                    f"image is {height}x{width} (HxW) but the first image {first_size[2]} is "
                    f"{first_size[0]}x{first_size[1]}; pass size=(h, w) (--image-size) to "
                    "resize all images",
                    path=file,
                )
        modes.append(mode)
    if wanted is None:
        wanted = 1 if all(natural_channels(m) == 1 for m in modes) else 3

    images = np.stack(
        [to_array(open_image(file, path=file, what=file.name), wanted, target) for _, file in files]
    )
    logger.info("read %d images in %d classes from %s", len(files), len(classes), root)
    return LabelledImages(
        images=images,
        labels=np.array([label for label, _ in files], dtype=np.int64),
        class_names=[folder.name for folder, _ in classes],
        groups=None,
        group_names=None,
        name=root.name or str(root),
    )


def _resized(data: LabelledImages, size: Size | None) -> LabelledImages:
    if size is None or data.images.shape[1:3] == size:
        return data
    return LabelledImages(
        resize_images(data.images, size),
        data.labels,
        data.class_names,
        data.groups,
        data.group_names,
        data.name,
    )


def load_image_split(spec: str, split: str, *, size: Sequence[int] | None = None) -> LabelledImages:
    """One split of :func:`load_image_dataset` ``(spec, size=size)``.

    Fashion-MNIST's ``test`` split has files of its own and is read alone (not the 60,000
    training images as well); any other split is carved as :func:`load_image_dataset` does.

    Raises:
        ConfigError: As :func:`load_image_dataset`, or the dataset has no such split.
        DataError: As :func:`load_image_dataset`.
    """
    if spec == "fashion-mnist" and split == "test":
        return _resized(read_fashion_mnist("test"), check_size(size))
    splits = load_image_dataset(spec, size=size)
    if split not in splits:
        raise ConfigError(f"{spec!r} has no split {split!r}; it has {', '.join(splits)}")
    return splits[split]


def load_image_dataset(
    spec: str,
    *,
    size: Sequence[int] | None = None,
    seed: int = 0,
    dev_fraction: float = 0.1,
) -> dict[str, LabelledImages]:
    """Load an image dataset by name or folder, split into ``train``/``dev`` (and ``test``).

    - ``"fashion-mnist"``: train 54,000 / dev 6,000 (a seeded stratified carve of the
      60,000 training images) / test 10,000.
    - ``"omniglot"``: the de-duplicated background characters split by alphabet into
      train/dev (:func:`group_split`). Its test set is the 20 one-shot runs: see
      :func:`read_omniglot_runs`.
    - ``"tfds:fashion_mnist"``, ``"tfds:mnist"``: tensorflow-datasets' ``train`` split carved
      (stratified) into train/dev, and its ``test`` split.
    - ``"tfds:omniglot"``: tfds' ``train`` split (background alphabets) split by alphabet
      into train/dev, and its ``test`` split (evaluation alphabets), in 1 channel.
    - a folder path: :func:`read_image_folder`, split per class (stratified) into train/dev.

    Args:
        spec: A dataset name (see above) or a folder path.
        size: Optional ``(height, width)`` to resize every image to.
        seed: Seed of the train/dev carve.
        dev_fraction: Share of the images (or, for Omniglot, at least that share of the
            characters, in whole alphabets) put in dev.

    Raises:
        ConfigError: ``spec`` is neither a known name nor an existing path, or an option is
            out of range.
        DataError: the data files are missing or bad.
    """
    target = check_size(size)
    check_fraction(dev_fraction)
    if spec == "fashion-mnist":
        train, dev = stratified_split(
            _resized(read_fashion_mnist("train"), target), dev_fraction=dev_fraction, seed=seed
        )
        return {"train": train, "dev": dev, "test": _resized(read_fashion_mnist("test"), target)}
    if spec == "omniglot":
        train, dev = group_split(read_omniglot_background(size=target), dev_fraction=dev_fraction, seed=seed)
        return {"train": train, "dev": dev}
    if spec.startswith("tfds:"):
        name = spec[len("tfds:") :]
        if name not in TFDS_NAMES:
            raise ConfigError(
                f"unknown tfds image dataset {spec!r}: accepted are "
                + ", ".join(f"tfds:{n}" for n in TFDS_NAMES)
            )
        split = group_split if name == "omniglot" else stratified_split
        train, dev = split(load_tfds_images(name, "train", size=target), dev_fraction=dev_fraction, seed=seed)
        return {"train": train, "dev": dev, "test": load_tfds_images(name, "test", size=target)}
    if Path(spec).expanduser().exists():
        train, dev = stratified_split(
            read_image_folder(Path(spec).expanduser(), size=target), dev_fraction=dev_fraction, seed=seed
        )
        return {"train": train, "dev": dev}
    raise ConfigError(
        f"unknown image dataset {spec!r} (and no such folder): accepted names are "
        + ", ".join(DATASET_NAMES)
        + ", or the path of a folder of class sub-folders"
    )
