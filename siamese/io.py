"""Atomic writes of files and folders, checksums, and the clean-up after a killed writer.

A file is written to a temporary sibling in the same folder, flushed to disk, and renamed
over the target (``os.replace`` is atomic on one filesystem): a process killed at any moment
leaves either the old file or the new one, never half of one. A folder (an index) is written
whole as a new version and committed by replacing a pointer file (:func:`atomic_folder`);
readers read one version (:func:`reading_folder`).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from siamese import faults

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


def fsync_dir(directory: PathLike) -> None:
    """Flush a folder's entries (the rename itself) to disk, where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``.

    The temporary name keeps ``target``'s suffix (Keras checks it). On an exception the
    temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name ends in the target's whole name, so checks on the suffix
    # (".keras", ".weights.h5") pass.
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=f".{target.name}", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, _FILE_MODE)  # mkstemp makes files private; saved artifacts are ordinary files
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def remove_stale_temporaries(folder: PathLike) -> int:
    """Delete temporaries left in ``folder`` (not below) by a process killed mid-write.

    Only names made by :func:`atomic_path` (``.tmp-*``) are touched. Returns how many.
    """
    removed = 0
    for path in Path(folder).glob(".tmp-*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def atomic_write_bytes(target: PathLike, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``target`` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``target`` atomically."""
    atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


def atomic_save(target: PathLike, save: Callable[[Path], Any]) -> None:
    """Call ``save(tmp_path)`` (e.g. ``model.save``) and move the result onto ``target`` atomically."""
    with atomic_path(target) as tmp:
        save(tmp)


def read_json(path: PathLike) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksum(path: PathLike, error: type[Exception] = OSError) -> str:
    """Hex SHA-256 of a file; an unreadable file raises ``error`` naming it."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None


def file_record(path: PathLike) -> dict[str, Any]:
    """Size and SHA-256 of a file just written, after flushing it to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
    return {"sha256": checksum(path), "bytes": Path(path).stat().st_size}


# ----------------------------------------------------------------------------- folders
#
# A folder that readers load while a writer replaces it (an index) is versioned:
#
#     NAME/CURRENT              the name of the current version, one line
#     NAME/v-<ns>-<hex>/        a complete version, never changed once committed
#     NAME/.saving-<pid>-<hex>/ a version being written
#
# A writer fills a new ``.saving-*`` folder, flushes it, renames it to ``v-*`` and then
# replaces ``CURRENT`` with one ``os.replace``: the commit. A reader reads ``CURRENT`` once
# and reads that version only, so it sees one whole version or the other, at every instant
# and whatever the writer is doing; a writer killed at any moment leaves the previous
# version current. Versions no longer current are removed by the next commit, but only
# those no reader holds: a reader holds a shared ``flock`` on its version folder while it
# loads, the writer removes a version only after taking the exclusive lock without waiting
# (and a reader that got its lock re-checks that its version still exists). Without
# ``fcntl`` (Windows), the writer keeps the version before the current one and removes older
# ones; a reader that outlives two commits then reads again from ``CURRENT``.
#
# Folders written by earlier releases hold the files directly (no ``CURRENT``); they are
# read as they are, and the first versioned save into one removes its top-level files after
# the commit. Their temporary siblings (``.NAME.saving-*``, ``.NAME.previous``) are read or
# tidied as before.

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

POINTER_FILE = "CURRENT"


class VersionError(OSError):
    """A versioned folder's pointer is unreadable, or its versions kept changing."""


_VERSION = re.compile(r"^v-\d+-[0-9a-f]+$")


def aside_path(target: PathLike) -> Path:
    """Where an earlier release set the previous copy of ``target`` aside during a swap."""
    target = Path(target)
    return target.parent / f".{target.name}.previous"


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (a process of another user counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def abandoned(temporaries: Iterable[Path], tag: str) -> Iterator[Path]:
    """The temporaries named ``…<tag>-PID-HEX`` whose writing process is gone."""
    for temp in temporaries:
        match = re.search(rf"{re.escape(tag)}-(\d+)-[0-9a-f]+$", temp.name)
        if match and not process_alive(int(match.group(1))):
            yield temp


def remove_abandoned_folders(target: PathLike) -> None:
    """Delete the temporary folders of saves to ``target`` whose process is gone (inside
    ``target``, and the siblings an earlier release used)."""
    target = Path(target)
    temps = [*target.glob(".saving-*"), *target.parent.glob(f".{glob.escape(target.name)}.saving-*")]
    for temp in abandoned(temps, ".saving"):
        logger.info("removing %s, left by an interrupted save", temp)
        shutil.rmtree(temp, ignore_errors=True)


def current_version(target: PathLike) -> Path | None:
    """The folder ``target/CURRENT`` names, or ``None`` when ``target`` is not versioned."""
    target = Path(target)
    try:
        name = (target / POINTER_FILE).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not _VERSION.match(name):
        raise VersionError(f"{target / POINTER_FILE}: does not name a version folder ({name[:80]!r})")
    return target / name


def holds_only_versions(target: PathLike) -> bool:
    """Whether ``target`` holds nothing but what versioned saves write (a pointer, versions,
    and the temporaries of saves), so a save may go into it."""
    return all(
        entry.name == POINTER_FILE or _VERSION.match(entry.name) or entry.name.startswith(".saving-")
        for entry in Path(target).iterdir()
    )


def _open_folder(path: Path) -> int | None:
    """A descriptor of the folder to lock, or ``None`` when it is gone (or, on Windows,
    cannot be opened as a file)."""
    try:
        return os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None


def _remove_unused_versions(target: Path, current: Path) -> None:
    """Delete the versions of ``target`` other than ``current`` that no reader holds."""
    versions = sorted(p for p in target.iterdir() if _VERSION.match(p.name) and p != current)
    if fcntl is None:  # pragma: no cover - Windows: keep the one before the current one
        for version in versions[:-1]:
            shutil.rmtree(version, ignore_errors=True)
        return
    for version in versions:
        fd = _open_folder(version)
        if fd is None:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a reader holds it: the next commit tries again
            os.close(fd)
            continue
        try:
            shutil.rmtree(version, ignore_errors=True)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_folder(target: PathLike, *, legacy_files: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield a new empty folder; on success it becomes ``target``'s current version.

    ``target`` is created if missing. Temporary folders of saves whose process died are
    removed first. On an exception the new folder is deleted and ``target`` is left as it
    was. The caller flushes the files it writes (see :func:`file_record`); the folder
    entries and the pointer are flushed here. ``legacy_files`` are the top-level files of a
    folder written before versions existed, removed after the commit. One writer per folder
    at a time.
    """
    target = Path(os.path.abspath(target))
    target.mkdir(parents=True, exist_ok=True)
    remove_abandoned_folders(target)
    temp = target / f".saving-{os.getpid()}-{secrets.token_hex(4)}"
    temp.mkdir()
    try:
        yield temp
        fsync_dir(temp)
        version = target / f"v-{time.time_ns():020d}-{secrets.token_hex(4)}"
        os.rename(temp, version)
        fsync_dir(target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    faults.kill_point("swap")
    atomic_write_text(target / POINTER_FILE, version.name + "\n")  # the commit
    for name in legacy_files:
        with contextlib.suppress(FileNotFoundError):
            (target / name).unlink()
    shutil.rmtree(aside_path(target), ignore_errors=True)
    _remove_unused_versions(target, version)


@contextlib.contextmanager
def reading_folder(target: PathLike, marker: str) -> Iterator[Path | None]:
    """Yield the folder that holds ``target``'s current files (``None`` when there is none),
    held so that no writer removes it until the block ends.

    For a versioned ``target`` that is the version ``CURRENT`` names; for a folder of an
    earlier release, ``target`` itself (or the previous copy an interrupted swap left aside,
    :func:`readable_folder`). ``marker`` is a file every complete copy holds (a version
    folder without it is yielded all the same: it is damaged, and its reader says so).

    Raises:
        VersionError: ``CURRENT`` is unreadable, or the versions kept disappearing (a writer
            committing faster than this reader can open one).
    """
    target = Path(target)
    for _ in range(1000):
        version = current_version(target)
        if version is None:
            yield readable_folder(target, marker)
            return
        fd = _open_folder(version)
        if fd is None and fcntl is not None:
            continue  # removed between reading CURRENT and opening it: read CURRENT again
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_SH)
            if not version.is_dir():
                continue  # removed while this reader waited for its lock
            yield version
            return
        finally:
            if fd is not None:
                os.close(fd)  # releases the lock
    raise VersionError(f"{target}: its versions kept changing while being opened")


def readable_folder(path: PathLike, marker: str) -> Path | None:
    """The folder to read of an unversioned folder (an earlier release's layout): ``path``
    if it holds ``marker``, or, while an earlier release's save was between its two renames
    (or was killed there), the whole previous copy set aside beside it.
    Nothing is renamed here: readers never move files, so they cannot collide with a
    writer; the next save tidies up."""
    path = Path(path)
    if (path / marker).is_file():
        return path
    aside = aside_path(path)
    if (aside / marker).is_file():
        logger.info("%s is missing; reading the previous copy %s (a save was interrupted)", path, aside)
        return aside
    return path if path.is_dir() else None


def folder_identity(folder: PathLike) -> tuple[int, int] | None:
    """Inode and change time of a folder, or None when it is gone."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_ino, st.st_ctime_ns
