"""Where named datasets live on disk, and how a missing one is fetched.

Named datasets are looked up under ``$SIAMESE_DATA_DIR`` and then the user cache
(``$SIAMESE_CACHE_DIR``, default ``~/.cache/siamese/datasets``), with the same relative layout
as the project's staged data folder, for example ``text/sick/SICK_train.txt``. A file found in
neither is downloaded from its public address (:data:`SOURCES`: each file at a pinned commit
of a public repository, or the dataset's official download, serving exactly the bytes the
toolkit's figures were measured on) and checked against its MD5 sum before it is renamed into
place. Downloads go to ``$SIAMESE_DATA_DIR`` when it is writable, else to the user cache: a
read-only data folder is read, never written.

``$SIAMESE_DATA_MIRROR`` (a base address such as ``http://127.0.0.1:8000``) makes every
download come from ``MIRROR/HOST/PATH`` instead of ``https://HOST/PATH``: for a local copy of
the sources, and for the tests, which serve the staged files from 127.0.0.1.

Offline, a download fails with one line saying so (and where to put the file by hand); a file
whose checksum does not match is refused with another, and nothing is left behind. A
download killed midway leaves only a temporary file (``.NAME.download-PID-HEX``) that is never
read as the file and is removed by the next download of the same file.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import secrets
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from siamese.errors import DatasetNotFoundError
from siamese.faults import kill_point
from siamese.io import abandoned, fsync_dir

logger = logging.getLogger(__name__)

ENV_VAR = "SIAMESE_DATA_DIR"
CACHE_ENV_VAR = "SIAMESE_CACHE_DIR"
MIRROR_ENV_VAR = "SIAMESE_DATA_MIRROR"
#: Seconds a connection may stay silent before a download gives up.
TIMEOUT = 30.0


@dataclass(frozen=True)
class Source:
    """One downloadable file: its public address, MD5 sum and size in bytes."""

    url: str
    md5: str
    size: int


def _github(repo: str, commit: str, path: str) -> str:
    """The address of a file at a pinned commit of a public GitHub repository."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{urllib.parse.quote(path)}"


_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
_OMNIGLOT = ("brendenlake/omniglot", "057f034baf2ecb8530bc5710e5a23584d2a519cc")
_SICK = ("mylius/nlp_similiarity_benchmark", "075191a4e20fe64a125182c2e6f6b6ec8b7db25e")
_STSB = ("zhangzhenhu/Semantic-Texual-Similarity-Toolkits", "c55a72f51bd15a8bd75114247c06984b432050f9")
_MRPC = ("Pzeyang/Paraphrase_Identification", "6239499b4336487deb67936be09d43a25b4d3f37")
_GLUE_MRPC = ("Nstats/my_bert", "733d79335044b1b7eabb5b47a0eae0cd621dadc0")
_PAWS = ("hoangdzung/simmat", "1f89f39a2a7138f3827a7746b74d25994f17d483")
_QQP = ("galsang/BIMPM-pytorch", "3e2a8e16fbb483d309c9d9a089a88b7381e6ed00")
_COURSE = ("FISHWONGY/datacamp_repo", "c794e80de15cec8b00bedc22d9336d77c75ea9af")
_COURSE_DATA = "ML_Scientist_Career_Track/18_Advanced Deep Learning with Keras/data"
_KAGGLE_SEASON = ("smhrt08/TTHT", "fb43fbf45685bc4741eb21d2bfc2fe4972bfb779")
_KAGGLE = ("dlm1223/march-madness", "a03ea6571a6c21063619ff964d0d8dfd2b663883")

# Relative path under the data folder -> where it comes from. The MD5 sums and sizes are the
# staged files' (the provenance of each is recorded with the staged data).
SOURCES: dict[str, Source] = {
    "text/sick/SICK_train.txt": Source(
        _github(*_SICK, "data/SICK_train.txt"), "20514018fbb086a0c46c86f95bb46eff", 506_242
    ),
    "text/sick/SICK_trial.txt": Source(
        _github(*_SICK, "data/SICK_trial.txt"), "ec3c4b09a703e3e2ab6b003e06e19392", 57_225
    ),
    # the SemEval test set, published under the name SICK.txt in that repository
    "text/sick/SICK_test_annotated.txt": Source(
        _github(*_SICK, "data/SICK.txt"), "1df8ab1fa5f6e46fa93ff2783a66b8b4", 559_977
    ),
    "text/stsbenchmark/sts-train.csv": Source(
        _github(*_STSB, "data/stsbenchmark/sts-train.csv"), "e0a88b5f5df2159a499edb6183bd6722", 901_177
    ),
    "text/stsbenchmark/sts-dev.csv": Source(
        _github(*_STSB, "data/stsbenchmark/sts-dev.csv"), "d8861ba32277033ed6b1315883894f78", 255_680
    ),
    "text/stsbenchmark/sts-test.csv": Source(
        _github(*_STSB, "data/stsbenchmark/sts-test.csv"), "f8c608a4dcfeff4ea11912ea72aacd6e", 282_419
    ),
    "text/mrpc/msr_paraphrase_train.txt": Source(
        _github(*_MRPC, "msr_paraphrase_train.txt"), "b4df9c142f7e26dcb1d78d9e73fd71f8", 1_026_746
    ),
    "text/mrpc/msr_paraphrase_test.txt": Source(
        _github(*_MRPC, "msr_paraphrase_test.txt"), "b7e1ed816b22c76d51e0f4bd87768056", 432_882
    ),
    "text/mrpc/glue/dev_ids.tsv": Source(
        _github(*_GLUE_MRPC, "data/MRPC/dev_ids.tsv"), "7ab59a1b04bd7cb773f98a0717106c9b", 6_222
    ),
    "text/paws/dev.tsv": Source(
        _github(*_PAWS, "data/final/dev.tsv"), "1bb4d791d6cf8a0a7c185a136557ad16", 1_894_785
    ),
    "text/paws/test.tsv": Source(
        _github(*_PAWS, "data/final/test.tsv"), "33d97e8c8016bb9a510516ec4e58cd1f", 1_906_717
    ),
    "text/qqp-bimpm/dev.tsv": Source(
        _github(*_QQP, ".data/quora/dev.tsv"), "0965ae660b7bfaa5c99a7d9f6897851e", 1_319_301
    ),
    "text/qqp-bimpm/test.tsv": Source(
        _github(*_QQP, ".data/quora/test.tsv"), "236643fb3eb0a97096cae25177d2878b", 1_318_804
    ),
    "basketball/games_tourney.csv": Source(
        _github(*_COURSE, f"{_COURSE_DATA}/games_tourney.csv"), "06fa93f7bbd9b8a9516a2effb0c41f99", 130_327
    ),
    "basketball/games_season_enriched.csv": Source(
        _github(*_COURSE, f"{_COURSE_DATA}/games_season_enriched.csv"),
        "5d95adddc905e87df893cc9ea4ad7adf",
        204_354,
    ),
    "basketball/kaggle/MRegularSeasonCompactResults.csv.zip": Source(
        _github(*_KAGGLE_SEASON, "MRegularSeasonCompactResults.csv.zip"),
        "e830954b2e2b8b5b2d7e74d4790449ba",
        1_289_125,
    ),
    "basketball/kaggle/NCAATourneyCompactResults.csv": Source(
        _github(*_KAGGLE, "data/NCAATourneyCompactResults.csv"), "385f151d328504243c672d4193f2f321", 61_545
    ),
    "basketball/kaggle/NCAATourneySeeds.csv": Source(
        _github(*_KAGGLE, "data/NCAATourneySeeds.csv"), "181e542b36934d9f90026f7c94682f41", 30_195
    ),
    "basketball/kaggle/Teams.csv": Source(
        _github(*_KAGGLE, "data/Teams.csv"), "cde6c6acc35a5a91701e96b08428ee4d", 9_240
    ),
    "basketball/kaggle/Seasons.csv": Source(
        _github(*_KAGGLE, "data/Seasons.csv"), "32587d6f48c36e74a0d0263a448f3064", 1_489
    ),
    "images/fashion-mnist/train-images-idx3-ubyte.gz": Source(
        f"{_FASHION}/train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26_421_880
    ),
    "images/fashion-mnist/train-labels-idx1-ubyte.gz": Source(
        f"{_FASHION}/train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", 29_515
    ),
    "images/fashion-mnist/t10k-images-idx3-ubyte.gz": Source(
        f"{_FASHION}/t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", 4_422_102
    ),
    "images/fashion-mnist/t10k-labels-idx1-ubyte.gz": Source(
        f"{_FASHION}/t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", 5_148
    ),
    "images/omniglot/images_background_small1.zip": Source(
        _github(*_OMNIGLOT, "python/images_background_small1.zip"),
        "e704a628b5459e08445c13499850abc4",
        1_319_022,
    ),
    "images/omniglot/images_background_small2.zip": Source(
        _github(*_OMNIGLOT, "python/images_background_small2.zip"),
        "b75a71a51d3b13f821f212756fe481fd",
        1_580_917,
    ),
    "images/omniglot/all_runs.zip": Source(
        _github(*_OMNIGLOT, "python/one-shot-classification/all_runs.zip"),
        "e8996daecdf12afeeb4a53a179f06b19",
        352_787,
    ),
}


def data_dir() -> Path | None:
    """The folder named datasets are looked up in first (``$SIAMESE_DATA_DIR``), or ``None``."""
    value = os.environ.get(ENV_VAR)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """The user cache named datasets are downloaded to (``$SIAMESE_CACHE_DIR`` or
    ``~/.cache/siamese/datasets``)."""
    value = os.environ.get(CACHE_ENV_VAR)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "siamese" / "datasets"


def writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (or in the folder that would hold it)."""
    while not folder.exists():
        if folder.parent == folder:
            return False
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def download_dir() -> Path:
    """Where a missing file is downloaded: ``$SIAMESE_DATA_DIR`` if writable, else the cache."""
    root = data_dir()
    if root is not None and writable(root):
        return root
    return cache_dir()


def md5sum(path: str | os.PathLike[str]) -> str:
    """The hex MD5 digest of a file, read in chunks."""
    digest = hashlib.md5()  # noqa: S324 - a checksum published by the data's owners, not security
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mirrored(url: str) -> str:
    """``url`` as ``$SIAMESE_DATA_MIRROR`` serves it (``MIRROR/HOST/PATH``), when set."""
    mirror = os.environ.get(MIRROR_ENV_VAR)
    if not mirror:
        return url
    parts = urllib.parse.urlsplit(url)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}"


def _remove_abandoned_downloads(target: Path) -> None:
    """Delete the temporaries of downloads of ``target`` whose process is gone."""
    for temp in abandoned(target.parent.glob(f".{glob.escape(target.name)}.download-*"), ".download"):
        logger.info("removing %s, left by an interrupted download", temp)
        temp.unlink(missing_ok=True)


class _Progress:
    """A byte counter on stderr, for a download of ``total`` bytes."""

    def __init__(self, name: str, total: int | None) -> None:
        self.name, self.total, self.done, self.shown = name, total, 0, -1
        self.tty = sys.stderr.isatty()

    def update(self, count: int) -> None:
        self.done += count
        percent = int(100 * self.done / self.total) if self.total else None
        if not self.tty or percent == self.shown:
            return
        self.shown = percent
        size = f"{self.done / 2**20:.1f}" + (f"/{self.total / 2**20:.1f} MiB" if self.total else " MiB")
        sys.stderr.write(
            f"\rdownloading {self.name}: {size}" + (f" ({percent}%)" if percent is not None else "")
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty and self.shown != -1:
            sys.stderr.write("\n")
            sys.stderr.flush()


def download(url: str, target: Path, md5: str | None = None, *, size: int | None = None) -> Path:
    """Download ``url`` to ``target`` atomically, checking its MD5 sum when one is given.

    The bytes go to a temporary file beside ``target``, flushed to disk, checked, and only
    then renamed to ``target``.

    Raises:
        DatasetNotFoundError: The address cannot be reached or the file cannot be written
            (one line saying so), or the download's MD5 sum is wrong (another; nothing is
            kept).
    """
    source = mirrored(url)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetNotFoundError(
            f"cannot create the folder for the download ({exc.strerror})", path=target
        ) from None
    _remove_abandoned_downloads(target)
    temp = target.parent / f".{target.name}.download-{os.getpid()}-{secrets.token_hex(4)}"
    logger.info("downloading %s -> %s", source, target)
    progress = _Progress(target.name, size)
    try:
        try:
            with urllib.request.urlopen(source, timeout=TIMEOUT) as response, open(temp, "wb") as out:  # noqa: S310
                digest = hashlib.md5()  # noqa: S324 - see md5sum
                first = True
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    progress.update(len(chunk))
                    if first:
                        out.flush()
                        kill_point("download")
                        first = False
                out.flush()
                os.fsync(out.fileno())
        except (OSError, ValueError) as exc:  # URLError, timeouts and resets are OSErrors
            reason = getattr(exc, "reason", None) or exc
            raise DatasetNotFoundError(
                f"could not download {source} ({reason}); offline? Put the file here by hand, or set "
                f"{ENV_VAR} to a folder that holds it at this relative path",
                path=target,
            ) from None
        finally:
            progress.close()
        got = digest.hexdigest()
        if md5 is not None and got != md5:
            raise DatasetNotFoundError(
                f"the download from {source} does not match its checksum (md5 {got}, expected {md5}, "
                f"{progress.done:,} bytes): refused, nothing was saved",
                path=target,
            )
        os.replace(temp, target)
        fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return target


def locate(relative: str, *, fetch: bool = True) -> Path:
    """Path of a named dataset file, downloading it where possible.

    Args:
        relative: Path relative to the data folder, e.g. ``"text/sick/SICK_train.txt"``.
        fetch: Download a missing file from its address (:data:`SOURCES`).

    Raises:
        DatasetNotFoundError: The file is not there and cannot be fetched.
    """
    roots = [root for root in (data_dir(), cache_dir()) if root is not None]
    for root in roots:
        path = root / relative
        if path.is_file():
            return path
    source = SOURCES.get(relative)
    if fetch and source is not None:
        return download(source.url, download_dir() / relative, source.md5, size=source.size)
    hint = "" if source is not None else " (it has no download address: place it by hand)"
    where = " or ".join(str(root) for root in roots)
    raise DatasetNotFoundError(
        f"dataset file not found in {where}{hint}; set {ENV_VAR} to a folder laid out like the "
        f"staged datasets, with this file at {relative}",
        path=roots[0] / relative,
    )
