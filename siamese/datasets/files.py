"""Reading image files and zip archives: decoding, resizing, and the checks of a damaged zip.

Shared by the dataset readers (Fashion-MNIST, Omniglot, image folders, the Kaggle basketball
zip) and by :mod:`siamese.encode`, which decodes image files given as queries or corpus items.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from collections.abc import Sequence
from os import PathLike

import numpy as np
from PIL import Image

from siamese.errors import ConfigError, DataError

PathArg = str | PathLike[str]
Size = tuple[int, int]

DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


# A damaged zip can fail in many ways: a bad directory, a bad UTF-8 name (UnicodeDecodeError, a
# ValueError), an unknown format version (NotImplementedError), a stream that ends early (EOFError).
ZIP_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)


# End-of-central-directory record: signature, size, and how far from the end it can be (comment).
_EOCD_SIGNATURE = b"PK\x05\x06"
_EOCD_SIZE = 22
_EOCD_SEARCH = _EOCD_SIZE + 0xFFFF


_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def check_size(size: Sequence[int] | None) -> Size | None:
    """Validate an optional ``(height, width)`` pair."""
    if size is None:
        return None
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"image size must be a pair (height, width), got {size!r}") from exc
    if height < 1 or width < 1:
        raise ConfigError(f"image size must be positive, got {size!r}")
    return height, width


def check_channels(channels: int | None) -> int | None:
    if channels not in (None, 1, 3):
        raise ConfigError(f"channels must be None, 1 or 3, got {channels!r}")
    return channels


def natural_channels(mode: str) -> int:
    """1 for a grayscale Pillow mode (with or without alpha), 3 for anything in colour."""
    return 1 if mode in _GRAY_MODES else 3


def to_array(image: Image.Image, channels: int, size: Size | None) -> np.ndarray:
    """Convert a decoded image to ``uint8`` ``(H, W, channels)``, resizing if asked.

    Alpha is dropped (not composited); 1-bit images become 0/255.
    """
    mode = "L" if channels == 1 else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if channels == 1 else array


def open_image(source: PathArg | bytes, *, path: PathArg, what: str) -> Image.Image:
    """Decode an image fully from a file or from bytes, raising DataError if it is corrupt."""
    try:
        if not isinstance(source, bytes):
            with open(source, "rb") as handle:  # read whole, so no file stays open with the image
                source = handle.read()
        image = Image.open(io.BytesIO(source))
        image.load()
    except DECODE_ERRORS as exc:
        raise DataError(f"cannot decode image {what}: {exc}", path=path) from exc
    return image


def resize_images(images: np.ndarray, size: Sequence[int] | None) -> np.ndarray:
    """Resize a ``uint8`` batch ``(n, H, W, C)`` to ``size=(h, w)`` with bilinear filtering.

    Args:
        images: The batch; ``C`` is 1 or 3.
        size: Target ``(height, width)``; ``None`` or the current size returns ``images``.
    """
    target = check_size(size)
    if target is None or images.shape[1:3] == target:
        return images
    out = np.empty((len(images), target[0], target[1], images.shape[3]), dtype=np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        resized = np.asarray(pil.resize((target[1], target[0]), Image.Resampling.BILINEAR))
        out[i] = resized.reshape(out.shape[1:])
    return out


def open_zip(path: PathArg) -> zipfile.ZipFile:
    """Open a zip, refusing one whose directory lists a member twice or lost some entries."""
    try:
        archive = zipfile.ZipFile(path)
        declared = _declared_entries(path)
    except FileNotFoundError as exc:
        raise DataError("zip file not found", path=path) from exc
    except ZIP_READ_ERRORS as exc:
        raise DataError(f"not a readable zip file: {exc}", path=path) from exc
    names = archive.namelist()
    problem = None
    if declared is not None and declared != len(names):
        problem = f"damaged zip directory: it declares {declared} entries but lists {len(names)}"
    elif len(set(names)) != len(names):
        twice = next(name for i, name in enumerate(names) if name in names[:i])
        problem = f"damaged zip directory: it lists {twice} twice"
    if problem is not None:
        archive.close()
        raise DataError(problem, path=path)
    return archive


def _declared_entries(path: PathArg) -> int | None:
    """The entry count in a zip's end-of-directory record (which Python's zipfile does not check).

    A damaged length field in the directory makes zipfile skip the entries after it without an
    error; comparing with this count catches it. None for Zip64 archives or no record found.
    """
    with open(path, "rb") as handle:
        handle.seek(0, io.SEEK_END)
        handle.seek(max(0, handle.tell() - _EOCD_SEARCH))
        tail = handle.read()
    at = tail.rfind(_EOCD_SIGNATURE)
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        return None
    total = int.from_bytes(tail[at + 10 : at + 12], "little")
    return None if total == 0xFFFF else total


def read_member(archive: zipfile.ZipFile, member: str, path: PathArg) -> bytes:
    try:
        return archive.read(member)
    except ZIP_READ_ERRORS as exc:
        raise DataError(f"cannot read zip member {member}: {exc}", path=path) from exc


def is_junk(member: str) -> bool:
    """Folder entries, macOS resource forks and hidden files, which layouts ignore."""
    base = member.rstrip("/").rsplit("/", 1)[-1]
    return member.endswith("/") or member.startswith("__MACOSX/") or base.startswith(".")


def stack_images(arrays: list[np.ndarray], sources: list[tuple[PathArg, str]]) -> np.ndarray:
    """Stack same-sized images, or name the first one whose size differs.

    ``sources`` gives, for each image, the file it came from and its name (a zip member).
    """
    first = arrays[0].shape
    for array, (path, name) in zip(arrays, sources, strict=True):
        if array.shape != first:
            raise DataError(
                f"image {name} is {array.shape[0]}x{array.shape[1]} (HxW) but the first image "
                f"{sources[0][1]} is {first[0]}x{first[1]}; pass size=(h, w) (--image-size) "
                "to resize all images",
                path=path,
            )
    return np.stack(arrays)


def decode_image_file(path: PathArg, channels: int, size: Size | None) -> np.ndarray:
    """An image file as ``uint8`` ``(H, W, channels)``, resized to ``size`` if given.

    Raises:
        DataError: The file cannot be read or decoded.
    """
    return to_array(open_image(path, path=path, what=os.path.basename(path)), channels, size)
