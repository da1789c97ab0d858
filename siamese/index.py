"""The FAISS-backed index: a corpus embedded by a tower, searchable by raw query or by vector.

:class:`Index` keeps three things in step: the FAISS index, one stable ``int64`` id per
vector, and one JSON payload per id (the text, the image path, or anything the caller gives).
Cosine similarity is L2 normalisation plus an inner-product index, done for the caller.

An index folder holds:

- ``index.faiss``: the FAISS index (``faiss.write_index``), ids included;
- ``payloads.jsonl``: one ``{"id": ..., "payload": ...}`` per line, in row order;
- ``vectors.npy``: the vectors as FAISS received them (normalised for cosine), in the same
  row order. They are kept because compressed indexes (PQ, SQ, HNSW graphs) cannot give the
  exact vectors back, and exact vectors are what :func:`recall_at_k` compares against and what
  a rebuild with another factory string needs without re-embedding the corpus;
- ``manifest.json``: format version, dimension, metric, factory string, count, the tower's
  path (relative to the index folder) and sha256, toolkit version, creation time, and the
  size and sha256 of every other file.

Saving is atomic: everything is written and fsynced in a temporary sibling folder, the old
folder is renamed aside (``.NAME.previous``), the new one renamed into place, and the old one
deleted. Between the two renames (a few microseconds) the folder is missing; :meth:`Index.load`
then finds the aside copy and puts it back, so a crash at any moment leaves the old or the new
index loadable. One writer per folder at a time.
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import json
import logging
import math
import os
import re
import secrets
import shutil
import sys
import time
import tokenize
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import faiss
import keras
import numpy as np

from siamese import metrics
from siamese._version import __version__
from siamese.datasets.images import _open_image, _to_array
from siamese.errors import ConfigError, IndexFileError
from siamese.io import fsync_dir, sha256_file
from siamese.models import embed, load_tower

logger = logging.getLogger(__name__)

#: Reads of a folder that another process is replacing, before giving up.
_LOAD_ATTEMPTS = 20

METRICS = ("cosine", "ip", "l2")
FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
PAYLOADS_FILE = "payloads.jsonl"
VECTORS_FILE = "vectors.npy"
MANIFEST_FILE = "manifest.json"
DATA_FILES = (INDEX_FILE, PAYLOADS_FILE, VECTORS_FILE)

_FAISS_METRICS = {
    "cosine": faiss.METRIC_INNER_PRODUCT,
    "ip": faiss.METRIC_INNER_PRODUCT,
    "l2": faiss.METRIC_L2,
}
_MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
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
_FAISS_ERROR_PREFIX = re.compile(r"^Error in .*? at \S+:\d+: (Error: )?")


class Hit(NamedTuple):
    """One search result.

    Attributes:
        id: The item's ``int64`` id.
        score: Cosine similarity (``"cosine"``), inner product (``"ip"``) or Euclidean
            distance (``"l2"``, the square root of FAISS's squared distance).
        payload: The item's JSON payload (text, file path, or what was given).
    """

    id: int
    score: float
    payload: Any


class Index:
    """A FAISS index over embeddings, with stable ids, payloads and an atomic folder format.

    Create one with :meth:`build` (raw items and a tower) or :meth:`from_vectors`, or open a
    saved one with :meth:`load`. Results are best first: highest similarity for ``"cosine"``
    and ``"ip"``, lowest distance for ``"l2"``.
    """

    def __init__(self, faiss_index: faiss.Index, *, dim: int, metric: str, factory: str) -> None:
        """Wrap an empty FAISS index; use :meth:`build`, :meth:`from_vectors` or :meth:`load`."""
        self._faiss = faiss_index
        self._dim = dim
        self._metric = metric
        self._factory = factory
        self._ids = np.zeros(0, dtype=np.int64)
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._payloads: list[Any] = []
        self._rows: dict[int, int] = {}
        self._id_map: np.ndarray | None = None  # FAISS's row -> id map, copied on the first search
        self._tower: keras.Model | None = None
        self._tower_path: Path | None = None
        self._tower_sha256: str | None = None
        self._created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self._folder: Path | None = None
        self._files: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ creating

    @classmethod
    def build(
        cls,
        tower: keras.Model | None,
        items: Sequence[Any] | np.ndarray,
        *,
        ids: Sequence[int] | np.ndarray | None = None,
        payloads: Sequence[Any] | None = None,
        factory: str = "Flat",
        metric: str = "cosine",
        batch_size: int = 256,
        train_sample: int = 100_000,
        seed: int = 0,
        tower_path: str | os.PathLike[str] | None = None,
        progress: bool = True,
    ) -> Index:
        """Embed a corpus with a tower and index it.

        Args:
            tower: The tower that embeds ``items`` (and later the queries). ``None`` loads it
                from ``tower_path`` if given, else takes ``items`` as precomputed vectors.
            items: Strings (text tower); ``(n, H, W, C)`` images or image file paths (image
                tower); ids (categorical tower); or an ``(n, dim)`` array without a tower.
            ids: One non-negative ``int64`` id per item, unique; default ``0..n-1``.
            payloads: One JSON-serialisable payload per item; default the text for strings,
                the path for image files, else ``None``.
            factory: FAISS factory string, e.g. ``"Flat"``, ``"IVF256,Flat"``, ``"HNSW32"``,
                ``"IVF256,PQ16"``.
            metric: ``"cosine"``, ``"ip"`` (inner product) or ``"l2"``.
            batch_size: Items per forward pass of the tower.
            train_sample: At most this many vectors (a seeded sample) train IVF/PQ indexes.
            seed: Seed of that sample.
            tower_path: The file the tower is saved in (``tower.keras``); recorded with its
                sha256 so that :meth:`load` can bring the tower back and detect a changed one.
            progress: Show a progress bar on stderr while embedding.

        Returns:
            The filled index.

        Raises:
            ConfigError: Empty corpus, duplicate or negative ids, mismatched lengths, items the
                tower cannot take, an unknown metric or factory string, or too few vectors to
                train the index.
            DataError: An image file cannot be read.
        """
        if tower is None and tower_path is not None:
            tower = load_tower(tower_path)
        if tower is None:
            return cls.from_vectors(
                items,
                ids=ids,
                payloads=payloads,
                factory=factory,
                metric=metric,
                train_sample=train_sample,
                seed=seed,
            )
        sha256 = None if tower_path is None else _sha256(Path(tower_path), ConfigError)
        items = _as_item_list(items)
        if len(items) == 0:
            raise ConfigError("empty corpus: there are no items to index")
        vectors, default_payloads = _embed_items(tower, items, batch_size=batch_size, progress=progress)
        index = cls.from_vectors(
            vectors,
            ids=ids,
            payloads=default_payloads if payloads is None else payloads,
            factory=factory,
            metric=metric,
            train_sample=train_sample,
            seed=seed,
        )
        index._tower = tower
        index._tower_sha256 = sha256
        index._tower_path = None if tower_path is None else Path(os.path.abspath(tower_path))
        if tower_path is None:
            logger.info("no tower_path given: a loaded copy of this index will need tower= to embed queries")
        return index

    @classmethod
    def from_vectors(
        cls,
        vectors: np.ndarray,
        *,
        ids: Sequence[int] | np.ndarray | None = None,
        payloads: Sequence[Any] | None = None,
        factory: str = "Flat",
        metric: str = "cosine",
        train_sample: int = 100_000,
        seed: int = 0,
    ) -> Index:
        """Index precomputed vectors (no tower: queries must be vectors too).

        Args:
            vectors: Float array of shape ``(n, dim)``.
            ids: One non-negative ``int64`` id per vector, unique; default ``0..n-1``.
            payloads: One JSON-serialisable payload per vector; default ``None`` each.
            factory: FAISS factory string (see :meth:`build`).
            metric: ``"cosine"``, ``"ip"`` or ``"l2"``.
            train_sample: At most this many vectors (a seeded sample) train IVF/PQ indexes.
            seed: Seed of that sample.

        Raises:
            ConfigError: See :meth:`build`.
        """
        if metric not in METRICS:
            raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        array = np.asarray(vectors)
        if array.ndim == 0 or len(array) == 0:
            raise ConfigError("empty corpus: there are no vectors to index")
        array = _as_vectors("vectors", array, None)
        dim = array.shape[1]
        index = cls(_new_faiss_index(dim, factory, metric), dim=dim, metric=metric, factory=factory)
        prepared = index._prepared(array)
        index._train(prepared, train_sample=train_sample, seed=seed)
        index._add_prepared(prepared, ids, payloads)
        logger.info("indexed %d vectors of dimension %d (%s, %s)", len(prepared), index.dim, factory, metric)
        return index

    def _train(self, vectors: np.ndarray, *, train_sample: int, seed: int) -> None:
        if self._faiss.is_trained:
            return
        train_sample = _positive_int("train_sample", train_sample)
        sample = vectors
        if len(vectors) > train_sample:
            rows = np.sort(np.random.default_rng(seed).choice(len(vectors), train_sample, replace=False))
            sample = vectors[rows]
        ivf = faiss.try_extract_index_ivf(self._faiss)
        if ivf is not None and len(sample) < ivf.nlist:
            smaller = re.sub(r"IVF\d+", f"IVF{max(1, int(math.sqrt(len(sample))))}", self._factory, count=1)
            raise ConfigError(
                f"factory {self._factory!r} has {ivf.nlist} IVF lists but only {len(sample)} vectors to "
                f"train them on; use a smaller nlist, e.g. {smaller!r}"
            )
        try:
            self._faiss.train(sample)
        except RuntimeError as exc:
            raise ConfigError(
                f"cannot train {self._factory!r} on {len(sample)} vectors: {_faiss_message(exc)}"
            ) from None

    # ------------------------------------------------------------------ changing

    def add(
        self,
        items_or_vectors: Sequence[Any] | np.ndarray,
        *,
        ids: Sequence[int] | np.ndarray | None = None,
        payloads: Sequence[Any] | None = None,
    ) -> None:
        """Add items (embedded by the tower) or vectors.

        Args:
            items_or_vectors: Raw items for the tower, or a float array ``(n, dim)``.
            ids: New ids, none already in the index; default ``max_id + 1, max_id + 2, ...``.
            payloads: One JSON-serialisable payload per item (defaults as in :meth:`build`).

        Raises:
            ConfigError: An id is already present or repeated, lengths differ, or the input
                does not fit the index.
        """
        vectors, default_payloads = self._vectors_of(items_or_vectors, progress=False)
        self._add_prepared(self._prepared(vectors), ids, default_payloads if payloads is None else payloads)

    def _add_prepared(
        self, vectors: np.ndarray, ids: Sequence[int] | np.ndarray | None, payloads: Sequence[Any] | None
    ) -> None:
        n = len(vectors)
        if ids is None:
            start = int(self._ids.max()) + 1 if len(self._ids) else 0
            ids = np.arange(start, start + n, dtype=np.int64)
        ids = _as_ids(ids)
        if len(ids) != n:
            raise ConfigError(f"got {len(ids)} ids for {n} items")
        unique, counts = np.unique(ids, return_counts=True)
        if len(unique) != n:
            raise ConfigError(f"duplicate ids: {unique[counts > 1][:10].tolist()}")
        clash = [int(i) for i in ids if int(i) in self._rows]
        if clash:
            raise ConfigError(f"ids already in the index: {clash[:10]} ({len(clash)} in all)")
        payloads = [None] * n if payloads is None else list(payloads)
        if len(payloads) != n:
            raise ConfigError(f"got {len(payloads)} payloads for {n} items")
        payloads = [_json_payload(p, i) for i, p in enumerate(payloads)]
        self._faiss.add_with_ids(vectors, ids)
        self._id_map = None
        first = len(self._ids)
        self._ids = np.concatenate([self._ids, ids])
        self._vectors = np.concatenate([self._vectors, vectors])
        self._payloads.extend(payloads)
        self._rows.update((int(i), first + r) for r, i in enumerate(ids))

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        """Remove items by id; ids not in the index are ignored.

        Args:
            ids: The ids to remove.

        Returns:
            How many items were removed.

        Raises:
            ConfigError: The index type cannot remove ids (HNSW, and a few others): rebuild it.
        """
        wanted = np.unique(_as_ids(ids))
        present = np.array([i for i in wanted if int(i) in self._rows], dtype=np.int64)
        if isinstance(_core(self._faiss), faiss.IndexHNSW):
            raise ConfigError(
                f"HNSW indexes cannot remove ids ({self._factory!r}); rebuild the index without them instead"
            )
        if len(present) == 0:
            return 0
        try:
            removed = int(self._faiss.remove_ids(present))
        except RuntimeError as exc:
            raise ConfigError(
                f"a {self._factory!r} index cannot remove ids ({_faiss_message(exc)}); rebuild it instead"
            ) from None
        finally:
            self._id_map = None
        keep = ~np.isin(self._ids, present)
        self._ids = self._ids[keep]
        self._vectors = self._vectors[keep]
        self._payloads = [p for p, kept in zip(self._payloads, keep, strict=True) if kept]
        self._rows = {int(i): r for r, i in enumerate(self._ids)}
        if removed != len(present):
            logger.warning("FAISS removed %d vectors for %d ids", removed, len(present))
        return len(present)

    # ------------------------------------------------------------------ searching

    def search(
        self,
        queries: Sequence[Any] | np.ndarray,
        k: int = 10,
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> list[list[Hit]]:
        """The ``k`` nearest items of each query, best first.

        A 2-D float array whose width is the index dimension is taken as query vectors
        (unless the tower itself takes inputs of that shape); anything else is embedded by
        the tower.

        Args:
            queries: Raw items for the tower, or a float array ``(n, dim)``.
            k: Results per query; fewer come back when the index holds fewer items.
            nprobe: IVF lists visited per query (IVF indexes only); default the index's.
            ef_search: HNSW search breadth (HNSW indexes and HNSW quantizers only).

        Returns:
            One list of :class:`Hit` per query.

        Raises:
            ConfigError: The queries do not fit the index, or ``nprobe``/``ef_search`` do not
                apply to its type.
        """
        vectors, _ = self._vectors_of(queries, progress=False)
        scores, ids = self.search_vectors(vectors, k, nprobe=nprobe, ef_search=ef_search)
        return [
            [
                Hit(int(i), float(s), self._payloads[self._rows[int(i)]])
                for s, i in zip(row_scores, row_ids, strict=True)
                if i >= 0
            ]
            for row_scores, row_ids in zip(scores, ids, strict=True)
        ]

    def search_vectors(
        self, vectors: np.ndarray, k: int, *, nprobe: int | None = None, ef_search: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The fast path: search raw vectors, return ``(scores, ids)`` arrays of shape ``(n, k)``.

        Scores are as in :class:`Hit`; missing results (fewer than ``k`` items) have id -1
        and score NaN.

        Args:
            vectors: Float array ``(n, dim)`` (a single ``(dim,)`` vector is one query).
            k: Results per query.
            nprobe: See :meth:`search`.
            ef_search: See :meth:`search`.

        Raises:
            ConfigError: Wrong shape or type, or a search option that does not apply.
        """
        k = _positive_int("k", k)
        queries = self._prepared(_as_vectors("queries", vectors, self._dim))
        params = self._search_params(nprobe, ef_search)
        distances, ids = self._search_faiss(queries, k, params[0] if params else None)
        scores = np.sqrt(np.maximum(distances, 0.0)) if self._metric == "l2" else distances
        scores = np.where(ids >= 0, scores, np.float32(np.nan))
        return scores, ids.astype(np.int64, copy=False)

    def _search_faiss(self, queries: np.ndarray, k: int, params: Any) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's search, with an id map's row -> id step done here in NumPy.

        ``IndexIDMap``/``IndexIDMap2`` map rows to ids in an OpenMP loop; each call then starts
        a parallel region, which costs milliseconds per single query when the other cores are
        busy. Searching the inner index and mapping the rows with FAISS's own id map gives the
        same ids and scores without it.
        """
        if not isinstance(self._faiss, faiss.IndexIDMap):
            return self._faiss.search(queries, k, params=params)
        distances, rows = self._faiss.index.search(queries, k, params=params)
        if self._id_map is None:
            self._id_map = faiss.vector_to_array(self._faiss.id_map)
        return distances, np.where(rows >= 0, self._id_map[rows], rows)

    def _search_params(self, nprobe: int | None, ef_search: int | None) -> list[Any] | None:
        """FAISS per-query parameters, with every object they point to kept alive in the list."""
        if nprobe is None and ef_search is None:
            return None
        ivf = faiss.try_extract_index_ivf(self._faiss)
        core = _core(self._faiss)
        hnsw = None
        if ef_search is not None:
            quantizer = None if ivf is None else faiss.downcast_index(ivf.quantizer)
            if not isinstance(core, faiss.IndexHNSW) and not isinstance(quantizer, faiss.IndexHNSW):
                raise ConfigError(f"ef_search applies only to HNSW; {self._factory!r} has no HNSW graph")
            hnsw = faiss.SearchParametersHNSW(efSearch=_positive_int("ef_search", ef_search))
        if ivf is None:
            if nprobe is not None:
                raise ConfigError(f"nprobe applies only to IVF indexes; {self._factory!r} has no IVF lists")
            return [hnsw]
        params = faiss.SearchParametersIVF()
        params.nprobe = _positive_int("nprobe", nprobe) if nprobe is not None else ivf.nprobe
        if hnsw is not None:
            params.quantizer_params = hnsw
        return [params, hnsw]

    def _vectors_of(self, items: Any, *, progress: bool) -> tuple[np.ndarray, list[Any] | None]:
        """Float32 vectors of raw items or of given vectors, with the default payloads."""
        if self._tower is None or self._is_vector_array(items):
            if _is_text(items):
                raise ConfigError(
                    f"this index has no tower to embed raw items: load it with tower=, or pass vectors "
                    f"of shape (n, {self._dim})"
                )
            return _as_vectors("input", items, self._dim), None
        tower_input = tuple(self._tower.inputs[0].shape[1:])
        numeric = isinstance(items, np.ndarray) and np.issubdtype(items.dtype, np.number)
        if numeric and items.shape[1:] != tower_input:
            raise ConfigError(
                f"input of shape {items.shape} fits neither the index (vectors of shape (n, {self._dim})) "
                f"nor its tower (items of shape (n, {', '.join(map(str, tower_input))}))"
            )
        vectors, payloads = _embed_items(self._tower, _as_item_list(items), batch_size=256, progress=progress)
        return _as_vectors("embeddings", vectors, self._dim), payloads

    def _is_vector_array(self, items: Any) -> bool:
        return (
            isinstance(items, np.ndarray)
            and items.ndim == 2
            and np.issubdtype(items.dtype, np.floating)
            and items.shape[1] == self._dim
            and tuple(self._tower.inputs[0].shape[1:]) != (self._dim,)
        )

    def _prepared(self, vectors: np.ndarray) -> np.ndarray:
        """The vectors as FAISS gets them: L2-normalised for cosine."""
        if self._metric != "cosine":
            return vectors
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)

    # ------------------------------------------------------------------ describing

    @property
    def ntotal(self) -> int:
        """Number of indexed items."""
        return int(self._faiss.ntotal)

    @property
    def dim(self) -> int:
        """Dimension of the vectors."""
        return self._dim

    @property
    def metric(self) -> str:
        """``"cosine"``, ``"ip"`` or ``"l2"``."""
        return self._metric

    @property
    def factory(self) -> str:
        """The FAISS factory string the index was built with."""
        return self._factory

    @property
    def tower(self) -> keras.Model | None:
        """The tower that embeds raw queries, or ``None``."""
        return self._tower

    def info(self) -> dict[str, Any]:
        """The manifest: what ``manifest.json`` holds (``files`` as of the last save or load)."""
        return self._manifest(self._folder, self._files)

    def __repr__(self) -> str:
        return f"Index({self._factory!r}, metric={self._metric!r}, dim={self._dim}, ntotal={self.ntotal})"

    def _manifest(self, folder: Path | None, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
        tower_path = None
        if self._tower_path is not None:
            tower_path = str(self._tower_path)
            if folder is not None:
                with contextlib.suppress(ValueError):  # another drive (Windows): keep it absolute
                    tower_path = os.path.relpath(self._tower_path, folder)
        return {
            "format_version": FORMAT_VERSION,
            "dimension": self._dim,
            "metric": self._metric,
            "factory": self._factory,
            "count": self.ntotal,
            "tower_path": tower_path,
            "tower_sha256": self._tower_sha256,
            "toolkit_version": __version__,
            "created": self._created,
            "files": files,
        }

    # ------------------------------------------------------------------ saving and loading

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the index folder atomically (see the module docstring).

        Args:
            directory: The index folder; created, or replaced if it holds an index.

        Raises:
            ConfigError: ``directory`` is a file, or a non-empty folder that is not an index.
        """
        target = Path(os.path.abspath(directory))
        if target.exists() and not target.is_dir():
            raise ConfigError(f"cannot save the index to {target}: it is a file")
        if target.is_dir() and not (target / MANIFEST_FILE).is_file() and any(target.iterdir()):
            raise ConfigError(f"refusing to replace {target}: a non-empty folder without {MANIFEST_FILE}")
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(target)
        temp = target.parent / f".{target.name}.saving-{os.getpid()}-{secrets.token_hex(4)}"
        temp.mkdir()
        try:
            files = self._write_files(temp, target)
            _swap_into_place(temp, target)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        self._folder, self._files = target, files
        logger.info("saved %d items to %s", self.ntotal, target)

    def _write_files(self, temp: Path, target: Path) -> dict[str, dict[str, Any]]:
        faiss.write_index(self._faiss, str(temp / INDEX_FILE))
        with open(temp / VECTORS_FILE, "wb") as f:
            np.save(f, self._vectors, allow_pickle=False)
        with open(temp / PAYLOADS_FILE, "w", encoding="utf-8", newline="\n") as f:
            for i, payload in zip(self._ids, self._payloads, strict=True):
                f.write(json.dumps({"id": int(i), "payload": payload}, ensure_ascii=False) + "\n")
        files = {name: _file_record(temp / name) for name in DATA_FILES}
        manifest = self._manifest(target, files)
        with open(temp / MANIFEST_FILE, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        _file_record(temp / MANIFEST_FILE)  # fsync
        fsync_dir(temp)
        return files

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        tower: keras.Model | str | os.PathLike[str] | None = None,
        check_tower: bool = True,
    ) -> Index:
        """Open a saved index folder, checking every file against the manifest.

        Args:
            directory: The index folder.
            tower: The tower to embed queries with: a model, or a ``.keras`` path. Default:
                the tower recorded in the manifest, if any.
            check_tower: Refuse a tower file whose sha256 differs from the one the index was
                built with, and a recorded tower that is missing. ``False`` skips both (a
                missing tower then just leaves the index vector-only).

        Raises:
            IndexFileError: The folder or a file is missing, truncated or corrupt, the
                manifest disagrees with the files, or the tower changed since the build.
        """
        path = Path(os.path.abspath(directory))
        for attempt in range(_LOAD_ATTEMPTS):
            folder = _readable_folder(path)
            if folder is None:
                raise IndexFileError(f"no index folder at {path}")
            before = _identity(folder)
            try:
                return cls._load_from(folder, path, tower=tower, check_tower=check_tower)
            except IndexFileError:
                # Another process swapped or removed the folder while it was read: read the
                # new copy. A folder that did not change is really broken: report it.
                if _identity(folder) == before or attempt + 1 == _LOAD_ATTEMPTS:
                    raise
                logger.debug("index folder %s changed while being read; reading it again", path)
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    @classmethod
    def _load_from(
        cls,
        folder: Path,
        canonical: Path,
        *,
        tower: keras.Model | str | os.PathLike[str] | None,
        check_tower: bool,
    ) -> Index:
        """Read one index folder (``canonical`` is where it is meant to live)."""
        manifest = _read_manifest(folder / MANIFEST_FILE)
        for name in DATA_FILES:
            _verify_file(folder / name, manifest["files"].get(name))
        count, dim = manifest["count"], manifest["dimension"]
        faiss_index = _read_faiss(folder / INDEX_FILE, count, dim)
        vectors = _read_vectors(folder / VECTORS_FILE, count, dim)
        ids, payloads = _read_payloads(folder / PAYLOADS_FILE, count)
        _check_faiss_ids(folder / INDEX_FILE, faiss_index, ids)
        index = cls(faiss_index, dim=dim, metric=manifest["metric"], factory=manifest["factory"])
        index._ids, index._vectors, index._payloads = ids, vectors, payloads
        index._rows = {int(i): r for r, i in enumerate(ids)}
        index._created = manifest["created"]
        index._folder, index._files = canonical, manifest["files"]
        index._tower_sha256 = manifest["tower_sha256"]
        if manifest["tower_path"] is not None:
            index._tower_path = Path(os.path.abspath(folder / manifest["tower_path"]))
        index._tower = _load_index_tower(index, tower, check_tower)
        logger.info("loaded %d items from %s", count, folder)
        return index


def recall_at_k(
    index: Index,
    queries_vectors: np.ndarray,
    k: int = 10,
    *,
    sample: int = 1000,
    seed: int = 0,
    nprobe: int | None = None,
    ef_search: int | None = None,
) -> float:
    """Recall@k of an index against exact search over the same stored vectors.

    The exact neighbours come from a brute-force FAISS ``Flat`` index over the vectors the
    index holds; the found ones from ``index.search_vectors``.

    Args:
        index: The index under test.
        queries_vectors: Query vectors ``(n, dim)`` (or raw items, when the index has a tower).
        k: Neighbours compared; capped at the number of indexed items.
        sample: At most this many queries (a seeded sample) are used.
        seed: Seed of that sample.
        nprobe: IVF lists visited per query (see :meth:`Index.search`).
        ef_search: HNSW search breadth (see :meth:`Index.search`).

    Returns:
        The mean recall in [0, 1].

    Raises:
        ConfigError: The index is empty, or the queries do not fit it.
    """
    if index.ntotal == 0:
        raise ConfigError("recall@k of an empty index is undefined")
    k = min(_positive_int("k", k), index.ntotal)
    queries, _ = index._vectors_of(queries_vectors, progress=False)
    sample = _positive_int("sample", sample)
    if len(queries) > sample:
        queries = queries[np.sort(np.random.default_rng(seed).choice(len(queries), sample, replace=False))]
    exact = faiss.IndexFlat(index.dim, _FAISS_METRICS[index.metric])
    exact.add(index._vectors)
    _, rows = exact.search(index._prepared(queries), k)
    _, found = index.search_vectors(queries, k, nprobe=nprobe, ef_search=ef_search)
    return metrics.recall_at_k(found, index._ids[rows], k)


# ---------------------------------------------------------------------- inputs


def _as_vectors(name: str, values: Any, dim: int | None) -> np.ndarray:
    """The one place vectors become C-contiguous float32 ``(n, dim)``, checked finite."""
    array = np.asarray(values)
    if not (np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating)):
        raise ConfigError(f"{name} must be numeric vectors of shape (n, {dim or 'dim'}), not {array.dtype}")
    if array.ndim == 1 and dim is not None and array.shape[0] == dim:
        array = array[None]
    if array.ndim != 2 or (dim is not None and array.shape[1] != dim) or array.shape[1] == 0:
        raise ConfigError(f"{name} of shape {array.shape} do not fit: expected shape (n, {dim or 'dim'})")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise ConfigError(f"{name} row {row} holds NaN or infinity")
    return array


def _as_ids(values: Any) -> np.ndarray:
    """The one place ids become C-contiguous ``int64``, checked integer and non-negative."""
    array = np.asarray(values)
    if array.ndim == 0:
        array = array[None]
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise ConfigError(f"ids must be a 1-D sequence of integers, not shape {array.shape} {array.dtype}")
    if array.size and int(array.min()) < 0:
        raise ConfigError(f"ids must be non-negative (-1 means 'no result' in FAISS); got {int(array.min())}")
    return np.ascontiguousarray(array, dtype=np.int64)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _json_payload(payload: Any, position: int) -> Any:
    """The payload as it reads back from JSON (NumPy scalars become numbers, tuples lists)."""
    try:
        text = json.dumps(payload, default=_json_default, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"payload of item {position} is not JSON-serialisable: {exc}") from None
    return json.loads(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _is_text(items: Any) -> bool:
    if isinstance(items, str):
        return True
    if isinstance(items, np.ndarray):
        return items.dtype.kind in "USO"
    return isinstance(items, (list, tuple)) and any(isinstance(i, (str, os.PathLike)) for i in items)


def _as_item_list(items: Any) -> Sequence[Any] | np.ndarray:
    if isinstance(items, str):
        raise ConfigError("pass a list of items, not a single string")
    return items if isinstance(items, (np.ndarray, list, tuple)) else list(items)


def _embed_items(
    tower: keras.Model, items: Sequence[Any] | np.ndarray, *, batch_size: int, progress: bool
) -> tuple[np.ndarray, list[Any] | None]:
    """Embed raw items in batches; image file paths are read batch by batch.

    Returns:
        The vectors and the default payloads (the texts, the paths, or ``None``).
    """
    batch_size = _positive_int("batch_size", batch_size)
    spec = tower.inputs[0]
    is_text_tower = spec.dtype == "string"
    reads_files = not is_text_tower and len(spec.shape) == 4 and _is_text(items)
    if is_text_tower:
        payloads = list(items) if all(isinstance(t, str) for t in items) else None
    elif reads_files:
        payloads = [os.fspath(p) for p in items]
    else:
        payloads = None
    bar = keras.utils.Progbar(len(items), unit_name="item") if progress else None
    starts = range(0, len(items), batch_size)
    chunks = []
    # Image files: the next batch is decoded in a thread while the tower embeds this one
    # (TensorFlow releases the GIL while it computes).
    with ThreadPoolExecutor(max_workers=1) as reader:

        def batch_at(start: int) -> Any:
            batch = items[start : start + batch_size]
            return reader.submit(_read_images, batch, tuple(spec.shape[1:])) if reads_files else batch

        pending = batch_at(0) if len(items) else None
        for start in starts:
            batch = pending.result() if reads_files else pending
            if start + batch_size < len(items):
                pending = batch_at(start + batch_size)
            chunks.append(embed(tower, batch, batch_size=batch_size))
            if bar is not None:
                with contextlib.redirect_stdout(sys.stderr):
                    bar.update(min(start + batch_size, len(items)))
    if not chunks:
        return np.zeros((0, int(tower.outputs[0].shape[-1])), dtype=np.float32), payloads
    return np.concatenate(chunks), payloads


def _read_images(paths: Sequence[str | os.PathLike[str]], shape: tuple[int, int, int]) -> np.ndarray:
    """Decode image files to ``uint8`` arrays of the tower's ``(H, W, C)``, resizing if needed."""
    height, width, channels = shape
    if channels not in (1, 3):
        raise ConfigError(f"the tower takes images with {channels} channels; image files give 1 or 3")
    return np.stack(
        [
            _to_array(_open_image(path, path=path, what=os.path.basename(path)), channels, (height, width))
            for path in paths
        ]
    )


# ---------------------------------------------------------------------- FAISS


def _new_faiss_index(dim: int, factory: str, metric: str) -> faiss.Index:
    """An empty FAISS index; wrapped in ``IndexIDMap2`` unless it keeps ids itself (IVF)."""
    if not isinstance(factory, str) or not factory.strip():
        raise ConfigError(f"factory must be a FAISS factory string ('Flat', 'IVF256,Flat'), not {factory!r}")
    try:
        index = faiss.index_factory(dim, factory, _FAISS_METRICS[metric])
    except RuntimeError as exc:
        raise ConfigError(_factory_problem(factory, dim, metric, exc)) from None
    if _keeps_ids(index):
        return index
    return faiss.IndexIDMap2(index)


def _factory_problem(factory: str, dim: int, metric: str, exc: RuntimeError) -> str:
    message = _faiss_message(exc)
    if "could not parse" in message:
        return f"unknown FAISS factory string {factory!r}"
    pq = re.search(r"(?<![O])PQ(\d+)", factory)
    if "subquantizers" in message and pq:
        return f"factory {factory!r}: PQ m={pq.group(1)} must divide the dimension {dim}"
    return f"FAISS factory string {factory!r} fails with dimension {dim}, metric {metric!r}: {message}"


def _faiss_message(exc: BaseException) -> str:
    """A FAISS error without its C++ source location."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return _FAISS_ERROR_PREFIX.sub("", text)


def _keeps_ids(index: faiss.Index) -> bool:
    """Whether ``add_with_ids`` works without an ``IndexIDMap2`` (IVF keeps ids in its lists).

    An IVF index must not be wrapped: ``IndexIDMap2.remove_ids`` assumes the inner index
    renumbers the rows after a removal, as Flat does and IVF does not.
    """
    index = faiss.downcast_index(index)
    while isinstance(index, faiss.IndexPreTransform):
        index = faiss.downcast_index(index.index)
    return isinstance(index, (faiss.IndexIVF, faiss.IndexIDMap))


def _core(index: faiss.Index) -> faiss.Index:
    """The index under the id map and pre-transforms."""
    index = faiss.downcast_index(index)
    while isinstance(index, (faiss.IndexIDMap, faiss.IndexPreTransform)):
        index = faiss.downcast_index(index.index)
    return index


# ---------------------------------------------------------------------- files


def _sha256(path: Path, error: type[Exception] = IndexFileError) -> str:
    """Hex sha256 of a file; an unreadable file raises ``error`` naming it."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None


def _file_record(path: Path) -> dict[str, Any]:
    """Size and sha256 of a file just written, after flushing it to disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    return {"sha256": _sha256(path, OSError), "bytes": path.stat().st_size}


def _aside(target: Path) -> Path:
    return target.parent / f".{target.name}.previous"


def _swap_into_place(temp: Path, target: Path) -> None:
    """Old folder aside, new folder in, old folder deleted; see the module docstring."""
    aside = _aside(target)
    if target.exists():
        if aside.exists():  # left by an earlier save that crashed after its swap
            shutil.rmtree(aside)
        os.rename(target, aside)
        fsync_dir(target.parent)
    # A crash here leaves no target folder but a whole aside copy: load() reads it, the
    # next save replaces it.
    os.rename(temp, target)
    fsync_dir(target.parent)
    shutil.rmtree(aside, ignore_errors=True)


def _remove_stale_temps(target: Path) -> None:
    """Delete temporary folders left by saves whose process is gone."""
    for temp in target.parent.glob(f".{glob.escape(target.name)}.saving-*"):
        match = re.search(r"\.saving-(\d+)-[0-9a-f]+$", temp.name)
        if match and not _process_alive(int(match.group(1))):
            logger.info("removing %s, left by an interrupted save", temp)
            shutil.rmtree(temp, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _readable_folder(path: Path) -> Path | None:
    """The folder to read: ``path``, or, while a save is between its two renames (or was
    killed there), the whole previous copy set aside beside it. Nothing is renamed here:
    readers never move files, so they cannot collide with a writer; the next save tidies up."""
    if path.is_dir():
        return path
    aside = _aside(path)
    if (aside / MANIFEST_FILE).is_file():
        logger.info("%s is missing; reading the previous copy %s (a save was interrupted)", path, aside)
        return aside
    return None


def _identity(folder: Path) -> tuple[int, int] | None:
    """Inode and change time of a folder, or None when it is gone."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_ino, st.st_ctime_ns


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise IndexFileError(f"{path}: missing; the folder is not an index or its save did not finish")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IndexFileError(f"{path}: not a readable JSON manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise IndexFileError(f"{path}: expected a JSON object")
    for key, types in _MANIFEST_TYPES.items():
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


def _verify_file(path: Path, record: Any) -> None:
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
    if _sha256(path) != record["sha256"]:
        raise IndexFileError(f"{path}: corrupt (sha256 differs from the manifest)")


def _read_faiss(path: Path, count: int, dim: int) -> faiss.Index:
    try:
        index = faiss.read_index(str(path))
    except (RuntimeError, MemoryError) as exc:  # MemoryError: a damaged size asked for too much
        raise IndexFileError(f"{path}: not a readable FAISS index ({_faiss_message(exc)})") from None
    if index.ntotal != count or index.d != dim:
        raise IndexFileError(
            f"{path}: holds {index.ntotal} vectors of dimension {index.d}; the manifest says {count} of {dim}"
        )
    return index


def _faiss_ids(index: faiss.Index) -> np.ndarray | None:
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


def _check_faiss_ids(path: Path, index: faiss.Index, ids: np.ndarray) -> None:
    """Refuse a FAISS index whose ids are not exactly those of ``payloads.jsonl``."""
    stored = _faiss_ids(index)
    if stored is None or not np.array_equal(np.sort(stored), np.sort(ids)):
        raise IndexFileError(f"{path}: its ids are not the ids listed in {PAYLOADS_FILE}")


def _read_vectors(path: Path, count: int, dim: int) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise IndexFileError(f"{path}: not a .npy file")
        # Memory-mapped, so that a damaged header declaring a huge shape allocates nothing.
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError, OverflowError, SyntaxError, tokenize.TokenError) as exc:
        raise IndexFileError(f"{path}: not a readable .npy array ({exc})") from None
    if vectors.dtype != np.float32 or vectors.shape != (count, dim):
        raise IndexFileError(
            f"{path}: holds {vectors.dtype} of shape {vectors.shape}, not float32 of shape {(count, dim)}"
        )
    return np.array(vectors, dtype=np.float32, order="C")  # a copy: the file is not kept open


def _read_payloads(path: Path, count: int) -> tuple[np.ndarray, list[Any]]:
    ids: list[int] = []
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
    if len(set(ids)) != len(ids):
        raise IndexFileError(f"{path}: repeated ids")
    return np.asarray(ids, dtype=np.int64).reshape(-1), payloads


def _load_index_tower(
    index: Index, tower: keras.Model | str | os.PathLike[str] | None, check_tower: bool
) -> keras.Model | None:
    """The tower for a loaded index: the one given, or the recorded file, checked by sha256."""
    if isinstance(tower, keras.Model):
        model = tower
    else:
        path = Path(tower) if tower is not None else index._tower_path
        if path is None:
            return None
        try:
            found = path.is_file()
        except OSError:  # e.g. a name too long for the file system
            found = False
        if not found:
            if check_tower:
                raise IndexFileError(
                    f"tower file {path} is missing; pass tower= (a model or .keras path), or "
                    "check_tower=False to load the index for vector queries only"
                )
            logger.warning("tower file %s is missing: the index takes vector queries only", path)
            return None
        if check_tower and index._tower_sha256 is not None and _sha256(path) != index._tower_sha256:
            raise IndexFileError(
                f"{path}: tower changed since the index was built: "
                "rebuild the index or pass check_tower=False"
            )
        try:
            model = load_tower(path)
        except ConfigError as exc:
            raise IndexFileError(str(exc)) from None
    width = model.outputs[0].shape[-1]
    if width != index.dim:
        raise IndexFileError(f"the tower gives vectors of dimension {width}; the index holds {index.dim}")
    return model
