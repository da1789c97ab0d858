"""Where named datasets live on disk, and how a missing one is fetched.

Named datasets are looked up under ``$SIAMESE_DATA_DIR`` (default
``~/.cache/siamese/datasets``) with the same relative layout as the project's staged data
folder, for example ``text/sick/SICK_train.txt``. A file that is missing is downloaded from
its official address into that folder and checked against its published MD5 sum. Offline, or
for a file with no known address, one :class:`~siamese.errors.DatasetNotFoundError` says which
variable and which layout would serve.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from siamese.errors import DatasetNotFoundError

logger = logging.getLogger(__name__)

ENV_VAR = "SIAMESE_DATA_DIR"


@dataclass(frozen=True)
class Source:
    """One downloadable file: its official address and published MD5 sum."""

    url: str
    md5: str


# Relative path under the data folder -> official source. Files not listed here must be
# placed by hand (the error message says where).
SOURCES: dict[str, Source] = {
    "images/fashion-mnist/train-images-idx3-ubyte.gz": Source(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    ),
    "images/fashion-mnist/train-labels-idx1-ubyte.gz": Source(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-labels-idx1-ubyte.gz",
        "25c81989df183df01b3e8a0aad5dffbe",
    ),
    "images/fashion-mnist/t10k-images-idx3-ubyte.gz": Source(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz",
        "bef4ecab320f06d8554ea6380940ec79",
    ),
    "images/fashion-mnist/t10k-labels-idx1-ubyte.gz": Source(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz",
        "bb300cfdad3c16e7a12a480ee83cd310",
    ),
    "images/omniglot/images_background_small1.zip": Source(
        "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/images_background_small1.zip",
        "e704a628b5459e08445c13499850abc4",
    ),
    "images/omniglot/images_background_small2.zip": Source(
        "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/images_background_small2.zip",
        "b75a71a51d3b13f821f212756fe481fd",
    ),
    "images/omniglot/all_runs.zip": Source(
        "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/one-shot-classification/all_runs.zip",
        "e8996daecdf12afeeb4a53a179f06b19",
    ),
}


def data_dir() -> Path:
    """The folder named datasets are looked up in (``$SIAMESE_DATA_DIR`` or the user cache)."""
    value = os.environ.get(ENV_VAR)
    if value:
        return Path(value).expanduser()
    return Path.home() / ".cache" / "siamese" / "datasets"


def md5sum(path: str | os.PathLike[str]) -> str:
    """The hex MD5 digest of a file, read in chunks."""
    digest = hashlib.md5()  # noqa: S324 - a checksum published by the data's owners, not security
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, target: Path, md5: str | None = None, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``target`` atomically, checking its MD5 sum when one is given.

    Raises:
        DatasetNotFoundError: the address cannot be reached, or the file's checksum is wrong.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        logger.info("downloading %s -> %s", url, target)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            shutil.copyfileobj(resp, out, 1 << 20)
        if md5 is not None:
            got = md5sum(tmp_name)
            if got != md5:
                raise DatasetNotFoundError(
                    f"checksum mismatch for download of {url}: md5 {got}, expected {md5}",
                    path=target,
                )
        os.replace(tmp_name, target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DatasetNotFoundError(
            f"could not download {url} ({exc}); set {ENV_VAR} to a folder that holds the "
            "file at this relative path, or connect to the network",
            path=target,
        ) from exc
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


def locate(relative: str, *, fetch: bool = True) -> Path:
    """Path of a named dataset file, downloading it into the data folder where possible.

    Args:
        relative: Path relative to the data folder, e.g. ``"text/sick/SICK_train.txt"``.
        fetch: Try to download a missing file from its official address.

    Raises:
        DatasetNotFoundError: the file is not there and cannot be fetched.
    """
    root = data_dir()
    path = root / relative
    if path.is_file():
        return path
    source = SOURCES.get(relative)
    if fetch and source is not None:
        return download(source.url, path, source.md5)
    hint = "" if source is not None else " (it has no download address: place it by hand)"
    raise DatasetNotFoundError(
        f"dataset file not found{hint}; set {ENV_VAR} to a folder laid out like the "
        f"staged datasets, with this file at {relative}",
        path=path,
    )
