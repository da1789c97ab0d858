"""FAISS plumbing behind :class:`siamese.index.Index`: making an index from a factory string,
the id map, per-query search parameters, and FAISS's errors as one readable line.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import re
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from siamese.checks import positive_int
from siamese.errors import ConfigError

METRICS = ("cosine", "ip", "l2")
FAISS_METRICS = {
    "cosine": faiss.METRIC_INNER_PRODUCT,
    "ip": faiss.METRIC_INNER_PRODUCT,
    "l2": faiss.METRIC_L2,
}
_FAISS_ERROR_PREFIX = re.compile(r"^Error in .*? at \S+:\d+: (Error: )?")


def new_faiss_index(dim: int, factory: str, metric: str) -> faiss.Index:
    """An empty FAISS index; wrapped in ``IndexIDMap`` unless it keeps ids itself (IVF).

    Not ``IndexIDMap2``: its id → row hash map (tens of bytes per vector) serves only
    ``reconstruct``, which the toolkit does not use (it keeps the exact vectors itself).
    """
    if not isinstance(factory, str) or not factory.strip():
        raise ConfigError(f"factory must be a FAISS factory string ('Flat', 'IVF256,Flat'), not {factory!r}")
    try:
        index = faiss.index_factory(dim, factory, FAISS_METRICS[metric])
    except RuntimeError as exc:
        raise ConfigError(_factory_problem(factory, dim, metric, exc)) from None
    if keeps_ids(index):
        return index
    return faiss.IndexIDMap(index)


def _factory_problem(factory: str, dim: int, metric: str, exc: RuntimeError) -> str:
    message = faiss_message(exc)
    if "could not parse" in message:
        return f"unknown FAISS factory string {factory!r}"
    pq = re.search(r"(?<![O])PQ(\d+)", factory)
    if "subquantizers" in message and pq:
        return f"factory {factory!r}: PQ m={pq.group(1)} must divide the dimension {dim}"
    return f"FAISS factory string {factory!r} fails with dimension {dim}, metric {metric!r}: {message}"


def prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    """Vectors as FAISS gets them: L2-normalised for ``"cosine"``, as they are otherwise."""
    if metric != "cosine":
        return vectors
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def faiss_message(exc: BaseException) -> str:
    """A FAISS error without its C++ source location."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return _FAISS_ERROR_PREFIX.sub("", text)


def keeps_ids(index: faiss.Index) -> bool:
    """Whether ``add_with_ids`` works without an ``IndexIDMap`` (IVF keeps ids in its lists).

    An IVF index must not be wrapped: ``IndexIDMap.remove_ids`` assumes the inner index
    renumbers the rows after a removal, as Flat does and IVF does not.
    """
    index = faiss.downcast_index(index)
    while isinstance(index, faiss.IndexPreTransform):
        index = faiss.downcast_index(index.index)
    return isinstance(index, (faiss.IndexIVF, faiss.IndexIDMap))


def core_index(index: faiss.Index) -> faiss.Index:
    """The index under the id map and pre-transforms."""
    index = faiss.downcast_index(index)
    while isinstance(index, (faiss.IndexIDMap, faiss.IndexPreTransform)):
        index = faiss.downcast_index(index.index)
    return index


def faiss_ids(index: faiss.Index) -> np.ndarray | None:
    """The ids a FAISS index can return from a search, or None when its parts disagree."""
    core = index
    while isinstance(core, faiss.IndexPreTransform):
        core = faiss.downcast_index(core.index)
    if isinstance(core, faiss.IndexIDMap):
        ids = faiss.vector_to_array(core.id_map)
        return ids if core.index.ntotal == len(ids) else None
    ivf = faiss.try_extract_index_ivf(core)
    if ivf is None:
        return np.arange(index.ntotal, dtype=np.int64)
    lists = ivf.invlists
    if ivf.quantizer.ntotal != ivf.nlist or lists.nlist != ivf.nlist:
        return None
    parts = [np.zeros(0, dtype=np.int64)]
    try:
        for i in range(ivf.nlist):
            if size := lists.list_size(i):
                parts.append(faiss.rev_swig_ptr(lists.get_ids(i), size).copy())
    except RuntimeError:
        return None
    return np.concatenate(parts)


def search_params(
    index: faiss.Index, factory: str, nprobe: int | None, ef_search: int | None
) -> list[Any] | None:
    """FAISS per-query parameters, with every object they point to kept alive in the list.

    Raises:
        ConfigError: ``nprobe`` on an index without IVF lists, or ``ef_search`` without an
            HNSW graph.
    """
    if nprobe is None and ef_search is None:
        return None
    ivf = faiss.try_extract_index_ivf(index)
    core = core_index(index)
    hnsw = None
    if ef_search is not None:
        quantizer = None if ivf is None else faiss.downcast_index(ivf.quantizer)
        if not isinstance(core, faiss.IndexHNSW) and not isinstance(quantizer, faiss.IndexHNSW):
            raise ConfigError(f"ef_search applies only to HNSW; {factory!r} has no HNSW graph")
        hnsw = faiss.SearchParametersHNSW(efSearch=positive_int("ef_search", ef_search))
    if ivf is None:
        if nprobe is not None:
            raise ConfigError(f"nprobe applies only to IVF indexes; {factory!r} has no IVF lists")
        return [hnsw]
    params = faiss.SearchParametersIVF()
    params.nprobe = positive_int("nprobe", nprobe) if nprobe is not None else ivf.nprobe
    if hnsw is not None:
        params.quantizer_params = hnsw
    return [params, hnsw]


def id_map_of(index: faiss.Index) -> np.ndarray | None:
    """The row → id map of an ``IndexIDMap``/``IndexIDMap2``, or None for another index.

    A view of FAISS's own array, not a copy: valid until the index is changed (the caller
    drops it on every add and remove).
    """
    if not isinstance(index, faiss.IndexIDMap):
        return None
    size = index.id_map.size()
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    return faiss.rev_swig_ptr(index.id_map.data(), size)


def search(
    index: faiss.Index, queries: np.ndarray, k: int, params: Any, id_map: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's search, with an id map's row -> id step done here in NumPy.

    ``IndexIDMap``/``IndexIDMap2`` map rows to ids in an OpenMP loop; each call then starts
    a parallel region, which costs milliseconds per single query when the other cores are
    busy. Searching the inner index and mapping the rows with FAISS's own id map
    (``id_map``, from :func:`id_map_of`) gives the same ids and scores without it.
    """
    if id_map is None:
        return index.search(queries, k, params=params)
    distances, rows = index.index.search(queries, k, params=params)
    return distances, np.where(rows >= 0, id_map[rows], rows)


def train(index: faiss.Index, factory: str, vectors: np.ndarray, *, train_sample: int, seed: int) -> None:
    """Train an untrained index on at most ``train_sample`` of ``vectors`` (a seeded sample).

    Raises:
        ConfigError: Too few vectors for the IVF lists, or FAISS refuses the training.
    """
    if index.is_trained:
        return
    train_sample = positive_int("train_sample", train_sample)
    sample = vectors
    if len(vectors) > train_sample:
        rows = np.sort(np.random.default_rng(seed).choice(len(vectors), train_sample, replace=False))
        sample = vectors[rows]
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None and len(sample) < ivf.nlist:
        smaller = re.sub(r"IVF\d+", f"IVF{max(1, int(math.sqrt(len(sample))))}", factory, count=1)
        raise ConfigError(
            f"factory {factory!r} has {ivf.nlist} IVF lists but only {len(sample)} vectors to "
            f"train them on; use a smaller nlist, e.g. {smaller!r}"
        )
    try:
        index.train(sample)
    except RuntimeError as exc:
        raise ConfigError(
            f"cannot train {factory!r} on {len(sample)} vectors: {faiss_message(exc)}"
        ) from None


# ---------------------------------------------------------------------- inverted lists on disk

#: At most this many rows are added to one shard of an index filled shard by shard.
SHARD_ROWS = 1_000_000
#: The file of an on-disk index's inverted lists, beside ``index.faiss`` in its folder.
LISTS_FILE = "lists.ivfdata"
#: Flags of every ``read_index`` of a saved index: an on-disk index's lists are found in the
#: folder of its ``index.faiss`` (not at the path recorded when it was written), mapped
#: read-only; other indexes ignore them.
READ_FLAGS = faiss.IO_FLAG_ONDISK_SAME_DIR | faiss.IO_FLAG_READ_ONLY


def on_disk_lists(index: faiss.Index) -> Any:
    """The ``OnDiskInvertedLists`` of an IVF index whose lists live in a file, else None."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        return None
    lists = faiss.downcast_InvertedLists(ivf.invlists)
    return lists if isinstance(lists, faiss.OnDiskInvertedLists) else None


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Drop what FAISS's C++ code prints on stdout meanwhile (its on-disk lists announce
    every resize and every path they update there, which would mix with a command's output)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).fflush(None)  # what C buffered goes to /dev/null too
        os.dup2(saved, 1)
        os.close(saved)


def read_index(path: Path) -> faiss.Index:
    """``faiss.read_index`` of a saved index (with :data:`READ_FLAGS`)."""
    with quiet_stdout():
        return faiss.read_index(str(path), READ_FLAGS)


def merge_on_disk(empty: faiss.Index, shards: Iterable[faiss.Index], data_path: Path) -> faiss.Index:
    """A copy of the trained, empty IVF index ``empty`` holding every filled shard (copies of
    ``empty`` with rows added), in shard order, its inverted lists written to ``data_path``.

    Each shard is written to a file beside ``data_path`` as it comes, so only one shard is
    in memory at a time; the files are mapped, merged into the lists file by FAISS
    (``OnDiskInvertedLists.merge_from_multiple``) and removed.
    """
    folder = data_path.parent
    files: list[Path] = []
    try:
        for number, shard in enumerate(shards):
            files.append(folder / f".shard-{number}.faiss")
            faiss.write_index(shard, str(files[-1]))
            del shard
        readers = [faiss.read_index(str(f), faiss.IO_FLAG_MMAP) for f in files]
        parts = faiss.InvertedListsPtrVector()
        for reader in readers:
            parts.push_back(faiss.extract_index_ivf(reader).invlists)
        index = faiss.clone_index(empty)
        ivf = faiss.extract_index_ivf(index)
        lists = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(data_path))
        with quiet_stdout():
            total = lists.merge_from_multiple(parts.data(), parts.size(), False)
        ivf.replace_invlists(lists, True)
        lists.this.disown()  # the index owns it now
        ivf.ntotal = index.ntotal = total
        del readers, parts
    finally:
        for f in files:
            f.unlink(missing_ok=True)
    return index


def write_index(index: faiss.Index, path: Path) -> list[str]:
    """``faiss.write_index``, plus the lists file of an on-disk index copied beside it.

    Returns:
        The names of the files written into ``path``'s folder besides ``path`` itself.
    """
    lists = on_disk_lists(index)
    if lists is None:
        faiss.write_index(index, str(path))
        return []
    copy = path.parent / LISTS_FILE
    shutil.copyfile(lists.filename, copy)
    recorded = lists.filename
    lists.filename = str(copy)  # what the index file records (found again by READ_FLAGS)
    try:
        faiss.write_index(index, str(path))
    finally:
        lists.filename = recorded
    return [LISTS_FILE]
