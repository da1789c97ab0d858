"""Atomic writes of files and folders, checksums, and the clean-up after a killed writer.

A file is written to a temporary sibling in the same folder, flushed to disk, and renamed
over the target (``os.replace`` is atomic on one filesystem): a process killed at any moment
leaves either the old file or the new one, never half of one. A folder (an index) is written
whole into a temporary sibling and swapped in (:func:`atomic_folder`).
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
# A folder is replaced by writing the new copy into a temporary sibling
# (``.NAME.saving-PID-HEX``), renaming the old copy aside (``.NAME.previous``), renaming the
# new one into place and deleting the old one. Between the two renames (a few microseconds)
# the folder is missing; a reader then finds the whole previous copy aside
# (:func:`readable_folder`), so a crash at any moment leaves the old or the new copy. One
# writer per folder at a time.


def aside_path(target: PathLike) -> Path:
    """Where the previous copy of ``target`` waits while a new one is swapped in."""
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


def remove_abandoned_folders(target: PathLike) -> None:
    """Delete the temporary folders of saves to ``target`` whose process is gone."""
    target = Path(target)
    for temp in target.parent.glob(f".{glob.escape(target.name)}.saving-*"):
        match = re.search(r"\.saving-(\d+)-[0-9a-f]+$", temp.name)
        if match and not process_alive(int(match.group(1))):
            logger.info("removing %s, left by an interrupted save", temp)
            shutil.rmtree(temp, ignore_errors=True)


def _swap_into_place(temp: Path, target: Path) -> None:
    """Old folder aside, new folder in, old folder deleted."""
    aside = aside_path(target)
    if target.exists():
        if aside.exists():  # left by an earlier save that crashed after its swap
            shutil.rmtree(aside)
        os.rename(target, aside)
        fsync_dir(target.parent)
    # A crash here leaves no target folder but a whole aside copy: readable_folder() finds
    # it, the next save replaces it.
    os.rename(temp, target)
    fsync_dir(target.parent)
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(target: PathLike) -> Iterator[Path]:
    """Yield a new temporary folder beside ``target``; on success it replaces ``target``.

    Temporary folders of earlier saves whose process died are removed first. On an
    exception the temporary folder is deleted and ``target`` is left as it was. The caller
    flushes the files it writes (see :func:`file_record`); the folder entries are flushed
    here.
    """
    target = Path(os.path.abspath(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_folders(target)
    temp = target.parent / f".{target.name}.saving-{os.getpid()}-{secrets.token_hex(4)}"
    temp.mkdir()
    try:
        yield temp
        fsync_dir(temp)
        _swap_into_place(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def readable_folder(path: PathLike, marker: str) -> Path | None:
    """The folder to read: ``path``, or, while a save is between its two renames (or was
    killed there), the whole previous copy set aside beside it (one that holds ``marker``).
    Nothing is renamed here: readers never move files, so they cannot collide with a
    writer; the next save tidies up."""
    path = Path(path)
    if path.is_dir():
        return path
    aside = aside_path(path)
    if (aside / marker).is_file():
        logger.info("%s is missing; reading the previous copy %s (a save was interrupted)", path, aside)
        return aside
    return None


def folder_identity(folder: PathLike) -> tuple[int, int] | None:
    """Inode and change time of a folder, or None when it is gone."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_ino, st.st_ctime_ns
