"""An index folder on disk: its files, its manifest, and reading them back with every check.

An index folder holds:

- ``index.faiss``: the FAISS index (``faiss.write_index``), ids included;
- ``payloads.jsonl``: one ``{"id": ..., "payload": ...}`` per line, in row order;
- ``vectors.npy``: the vectors as FAISS received them (normalised for cosine), in the same
  row order. They are kept because compressed indexes (PQ, SQ, HNSW graphs) cannot give the
  exact vectors back, and exact vectors are what :func:`siamese.index.recall_at_k` compares
  against and what a rebuild with another factory string needs without re-embedding. A
  loaded index maps this file rather than reading it (:mod:`siamese.index.stored_vectors`);
- ``lists.ivfdata`` (an on-disk IVF index only): its inverted lists, memory-mapped when the
  index is loaded (``index.faiss`` names this file; FAISS finds it beside ``index.faiss``);
- ``manifest.json``: format version, dimension, metric, factory string, count, the tower's
  path (relative to the index folder) and sha256, toolkit version, creation time, and the
  size and sha256 of every other file.

:func:`write_folder` writes them into a folder (the caller commits it as the index
folder's new version with :func:`siamese.io.atomic_folder`: the index folder holds
``CURRENT``, naming the current version, and the version folders ``v-*`` holding the files
above; see :mod:`siamese.io`); :func:`read_folder` reads one back, refusing any file that
is missing, truncated, altered or inconsistent with the others. A file larger than
:data:`HASH_LIMIT` is checked by size at each load, and by its sha256 only on request
(``verify=True``, ``siamese-index info --verify``): hashing a file larger than memory at every
load would read it all from disk each time.
"""

from __future__ import annotations

import array
import json
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import faiss
import numpy as np

from siamese.errors import IndexFileError
from siamese.faults import kill_point
from siamese.index.faiss_helpers import LISTS_FILE, METRICS, faiss_ids, faiss_message, read_index, write_index
from siamese.io import checksum, file_record

FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
PAYLOADS_FILE = "payloads.jsonl"
VECTORS_FILE = "vectors.npy"
MANIFEST_FILE = "manifest.json"
DATA_FILES = (INDEX_FILE, PAYLOADS_FILE, VECTORS_FILE)
#: Files up to this size are hashed at every load; larger ones only when asked to.
HASH_LIMIT = 1 << 30

MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,),
    "dimension": (int,),
    "metric": (str,),
    "factory": (str,),
    "count": (int,),
    "tower_path": (str, type(None)),
    "tower_sha256": (str, type(None)),
    "toolkit_version": (str,),
    "created": (str,),
    "files": (dict,),
}


@dataclass(eq=False)
class FolderContents:
    """What an index folder holds, read and checked."""

    manifest: dict[str, Any]
    faiss_index: faiss.Index
    vectors: np.memmap  # mapped, not read
    ids: np.ndarray
    payloads: list[Any]


def write_folder(
    folder: Path,
    faiss_index: faiss.Index,
    write_vectors: Callable[[IO[bytes]], None],
    ids: np.ndarray,
    payloads: Sequence[Any],
    manifest: Callable[[dict[str, dict[str, Any]]], dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Write an index's files into ``folder``, each flushed to disk, the manifest last.

    Args:
        folder: An empty folder (the temporary copy of an atomic save).
        faiss_index: The FAISS index.
        write_vectors: Writes the vectors, in row order, as a ``.npy`` array to a file.
        ids: The ids in row order.
        payloads: The payloads in row order.
        manifest: Builds the manifest from the files' records (name → size and sha256).

    Returns:
        The files' records.
    """
    extra = write_index(faiss_index, folder / INDEX_FILE)
    kill_point("faiss-write")
    with open(folder / VECTORS_FILE, "wb") as f:
        write_vectors(f)
    with open(folder / PAYLOADS_FILE, "w", encoding="utf-8", newline="\n") as f:
        for i, payload in zip(ids, payloads, strict=True):
            f.write(json.dumps({"id": int(i), "payload": payload}, ensure_ascii=False) + "\n")
    files = {name: file_record(folder / name) for name in (*DATA_FILES, *extra)}
    with open(folder / MANIFEST_FILE, "w", encoding="utf-8") as f:
        json.dump(manifest(files), f, indent=2)
        f.write("\n")
    file_record(folder / MANIFEST_FILE)  # fsync
    return files


def read_folder(folder: Path, *, verify: bool = False) -> FolderContents:
    """Read an index folder, checking every file against the manifest and each other
    (``verify``: the sha256 of every file, however large; see the module docstring).

    Raises:
        IndexFileError: A file is missing, truncated, corrupt or inconsistent.
    """
    manifest = read_manifest(folder / MANIFEST_FILE)
    for name in data_files(manifest):
        verify_file(folder / name, manifest["files"].get(name), hash_it=verify)
    count, dim = manifest["count"], manifest["dimension"]
    faiss_index = read_faiss(folder / INDEX_FILE, count, dim)
    vectors = read_vectors(folder / VECTORS_FILE, count, dim)
    ids, payloads = read_payloads(folder / PAYLOADS_FILE, count)
    check_faiss_ids(folder / INDEX_FILE, faiss_index, ids)
    return FolderContents(manifest, faiss_index, vectors, ids, payloads)


def read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise IndexFileError(f"{path}: missing; the folder is not an index or its save did not finish")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IndexFileError(f"{path}: not a readable JSON manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise IndexFileError(f"{path}: expected a JSON object")
    for key, types in MANIFEST_TYPES.items():
        value = manifest.get(key)
        if key not in manifest or not isinstance(value, types) or (int in types and isinstance(value, bool)):
            raise IndexFileError(f"{path}: field {key!r} is missing or of the wrong type")
    if manifest["format_version"] != FORMAT_VERSION:
        raise IndexFileError(
            f"{path}: index format {manifest['format_version']} is not supported (this siamese reads "
            f"format {FORMAT_VERSION}); rebuild the index"
        )
    if manifest["metric"] not in METRICS or manifest["dimension"] < 1 or manifest["count"] < 0:
        raise IndexFileError(f"{path}: bad metric, dimension or count")
    return manifest


def data_files(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The data files an index folder must hold: the lists file too where the manifest lists it."""
    return (*DATA_FILES, LISTS_FILE) if LISTS_FILE in manifest["files"] else DATA_FILES


def verify_file(path: Path, record: Any, *, hash_it: bool = False) -> None:
    """Check a file against its manifest record: its size always, its sha256 when it is at
    most :data:`HASH_LIMIT` bytes or ``hash_it``."""
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("bytes"), int)
        or not isinstance(record.get("sha256"), str)
    ):
        raise IndexFileError(f"{path}: not listed in {MANIFEST_FILE} with its size and sha256")
    if not path.is_file():
        raise IndexFileError(f"{path}: missing from the index folder")
    size = path.stat().st_size
    if size != record["bytes"]:
        raise IndexFileError(f"{path}: {size} bytes, the manifest says {record['bytes']} (truncated?)")
    if (hash_it or size <= HASH_LIMIT) and checksum(path, IndexFileError) != record["sha256"]:
        raise IndexFileError(f"{path}: corrupt (sha256 differs from the manifest)")


def read_faiss(path: Path, count: int, dim: int) -> faiss.Index:
    try:
        index = read_index(path)
    except (RuntimeError, MemoryError) as exc:  # MemoryError: a damaged size asked for too much
        raise IndexFileError(f"{path}: not a readable FAISS index ({faiss_message(exc)})") from None
    if index.ntotal != count or index.d != dim:
        raise IndexFileError(
            f"{path}: holds {index.ntotal} vectors of dimension {index.d}; the manifest says {count} of {dim}"
        )
    return index


def check_faiss_ids(path: Path, index: faiss.Index, ids: np.ndarray) -> None:
    """Refuse a FAISS index whose ids are not exactly those of ``payloads.jsonl``."""
    stored = faiss_ids(index)
    if stored is None or len(stored) != len(ids) or not _same_ids(stored, ids):
        raise IndexFileError(f"{path}: its ids are not the ids listed in {PAYLOADS_FILE}")


def _same_ids(stored: np.ndarray, ids: np.ndarray) -> bool:
    """Whether two arrays of distinct ids (``ids`` checked distinct) hold the same ids."""
    n = len(ids)
    if n and 0 <= int(ids.min()) and int(ids.max()) < n:  # ids is a permutation of 0..n-1
        if int(stored.min()) < 0 or int(stored.max()) >= n:
            return False
        seen = np.zeros(n, dtype=bool)
        seen[stored] = True
        return bool(seen.all())  # n stored ids covering every slot: the same set
    stored.sort()
    return bool(np.array_equal(stored, np.sort(ids)))


def read_vectors(path: Path, count: int, dim: int) -> np.memmap:
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise IndexFileError(f"{path}: not a .npy file")
        # Memory-mapped, so that a damaged header declaring a huge shape allocates nothing.
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError, OverflowError, SyntaxError, tokenize.TokenError) as exc:
        raise IndexFileError(f"{path}: not a readable .npy array ({exc})") from None
    if vectors.dtype != np.float32 or vectors.shape != (count, dim) or not vectors.flags.c_contiguous:
        raise IndexFileError(
            f"{path}: holds {vectors.dtype} of shape {vectors.shape}, "
            f"not C-ordered float32 of shape {(count, dim)}"
        )
    return vectors


def read_payloads(path: Path, count: int) -> tuple[np.ndarray, list[Any]]:
    ids = array.array("q")  # 8 bytes an id (a list would hold a Python int object for each)
    payloads: list[Any] = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise IndexFileError(f"{path}, line {number}: not valid JSON ({exc.msg})") from None
                except RecursionError:
                    raise IndexFileError(f"{path}, line {number}: JSON nested too deeply") from None
                item_id = record.get("id") if isinstance(record, dict) else None
                bad_id = not isinstance(item_id, int) or isinstance(item_id, bool) or not 0 <= item_id < 2**63
                if bad_id or "payload" not in record:
                    raise IndexFileError(f'{path}, line {number}: expected {{"id": <id>, "payload": ...}}')
                ids.append(item_id)
                payloads.append(record["payload"])
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexFileError(f"{path}: unreadable ({exc})") from None
    if len(ids) != count:
        raise IndexFileError(f"{path}: {len(ids)} lines but the manifest says {count} items")
    as_array = np.frombuffer(ids, dtype=np.int64) if len(ids) else np.zeros(0, dtype=np.int64)
    if not _distinct(as_array):
        raise IndexFileError(f"{path}: repeated ids")
    return as_array, payloads


def _distinct(ids: np.ndarray) -> bool:
    """Whether no id repeats: a bitmap for ids below their count (the default ids), else a sort."""
    if len(ids) == 0:
        return True
    if 0 <= int(ids.min()) and int(ids.max()) < len(ids):
        seen = np.zeros(len(ids), dtype=bool)
        seen[ids] = True
        return bool(seen.all())  # n ids in [0, n): distinct exactly when every slot is hit
    return bool(np.all(np.diff(np.sort(ids)) != 0))
