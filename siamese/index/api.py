"""The index: a corpus embedded by a tower, searchable by raw query (or by vector).

:class:`Index` keeps three things in step: the FAISS index, one stable ``int64`` id per
vector, and one JSON payload per id (the text, the image path, or anything the caller gives).
Cosine similarity is L2 normalisation plus an inner-product index, done for the caller.

:meth:`Index.search` takes raw items (what the tower takes: strings, images, image files,
ids) and :meth:`Index.search_vectors` takes vectors; neither guesses which it was given.
The folder format is described in :mod:`siamese.index.folder`; saving commits a new version
of the folder atomically (:func:`siamese.io.atomic_folder`), and a loader reads one whole
version, whatever a writer is doing meanwhile (:func:`siamese.io.reading_folder`).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import faiss
import keras
import numpy as np

from siamese import encode, metrics
from siamese._version import __version__
from siamese.checks import positive_int
from siamese.errors import ConfigError, IndexFileError
from siamese.index import faiss_helpers
from siamese.index.folder import (
    DATA_FILES,
    FORMAT_VERSION,
    MANIFEST_FILE,
    VECTORS_FILE,
    read_folder,
    write_folder,
)
from siamese.index.queries import check_queries, input_type
from siamese.index.stored_vectors import StoredVectors
from siamese.io import (
    VersionError,
    atomic_folder,
    checksum,
    folder_identity,
    holds_only_versions,
    reading_folder,
)
from siamese.models import load_tower

logger = logging.getLogger(__name__)

#: Reads of a folder that another process is replacing, before giving up.
_LOAD_ATTEMPTS = 20

METRICS = faiss_helpers.METRICS

# Bounds on the work one request can ask for (the same from Python and from the CLI); the
# limits on each query are in :mod:`siamese.index.queries`.
#: Queries embedded at a time by :meth:`Index.search`.
QUERY_CHUNK = 1024
#: Result cells (queries × k) FAISS fills at a time: a bound on the search's working memory.
RESULT_CELLS = 1 << 20
#: Stored vectors compared at a time by :func:`recall_at_k`'s exact search.
EXACT_BLOCK = 262_144


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

    def __init__(
        self,
        faiss_index: faiss.Index,
        *,
        dim: int,
        metric: str,
        factory: str,
        vectors_in_memory: bool = False,
    ) -> None:
        """Wrap an empty FAISS index; use :meth:`build`, :meth:`from_vectors` or :meth:`load`."""
        self._faiss = faiss_index
        self._dim = dim
        self._metric = metric
        self._factory = factory
        self._ids = np.zeros(0, dtype=np.int64)
        self._vectors = StoredVectors(dim, in_memory=vectors_in_memory)
        self._payloads: list[Any] = []
        self._lookup: RowLookup | None = None  # id -> row, made on the first need
        self._params: dict[tuple[int | None, int | None], list[Any] | None] = {}
        self._lists_folder: Path | None = None  # the private folder of a built on-disk index's lists
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
        vectors_in_memory: bool = False,
        on_disk: bool = False,
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
            vectors_in_memory: Keep the index's exact copy of the vectors in RAM; by default
                it is a memory-mapped file (:mod:`siamese.index.stored_vectors`), so the
                index holds about what FAISS holds.
            on_disk: Keep an IVF index's inverted lists in a file, memory-mapped, rather
                than in RAM (for indexes larger than memory; IVF factories only). A saved
                on-disk index loads read-only: rebuild it to change it.

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
                vectors_in_memory=vectors_in_memory,
                on_disk=on_disk,
            )
        # hashed before the work: a missing file is reported at once, and the record is of the
        # file that was loaded
        sha256 = None if tower_path is None else checksum(Path(tower_path), ConfigError)
        items = encode.item_list(items)
        if len(items) == 0:
            raise ConfigError("empty corpus: there are no items to index")
        began = time.perf_counter()
        vectors = encode.embed(tower, items, batch_size=batch_size, progress=progress)
        log_embedded(len(items), time.perf_counter() - began)
        index = cls.from_vectors(
            vectors,
            ids=ids,
            payloads=default_payloads(tower, items) if payloads is None else payloads,
            factory=factory,
            metric=metric,
            train_sample=train_sample,
            seed=seed,
            vectors_in_memory=vectors_in_memory,
            on_disk=on_disk,
        )
        index._tower = tower
        if tower_path is not None:
            index.attach_tower(tower, tower_path, sha256)
        else:
            logger.debug("no tower_path given: a loaded copy of this index will need tower= to embed queries")
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
        vectors_in_memory: bool = False,
        on_disk: bool = False,
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
            vectors_in_memory: See :meth:`build`.
            on_disk: See :meth:`build`.

        Raises:
            ConfigError: See :meth:`build`.
        """
        if on_disk:
            return cls._on_disk_from_vectors(
                vectors,
                ids=ids,
                payloads=payloads,
                factory=factory,
                metric=metric,
                train_sample=train_sample,
                seed=seed,
            )
        if metric not in METRICS:
            raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        array = np.asarray(vectors)
        if array.ndim == 0 or len(array) == 0:
            raise ConfigError("empty corpus: there are no vectors to index")
        array = _as_vectors("vectors", array, None)
        dim = array.shape[1]
        index = cls(
            faiss_helpers.new_faiss_index(dim, factory, metric),
            dim=dim,
            metric=metric,
            factory=factory,
            vectors_in_memory=vectors_in_memory,
        )
        prepared = index._prepared(array)
        faiss_helpers.train(index._faiss, factory, prepared, train_sample=train_sample, seed=seed)
        index._add_prepared(prepared, ids, payloads)
        logger.debug("indexed %d vectors of dimension %d (%s, %s)", len(prepared), index.dim, factory, metric)
        return index

    @classmethod
    def _on_disk_from_vectors(
        cls,
        vectors: np.ndarray,
        *,
        ids: Sequence[int] | np.ndarray | None,
        payloads: Sequence[Any] | None,
        factory: str,
        metric: str,
        train_sample: int,
        seed: int,
    ) -> Index:
        """:meth:`from_vectors` for an index larger than memory: the vectors are checked and
        prepared a block at a time into the vector file, the index trained on its sample,
        and filled shard by shard into lists on disk (:func:`faiss_helpers.merge_on_disk`)."""
        if metric not in METRICS:
            raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        array = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
        if array.ndim != 2 or len(array) == 0:
            raise ConfigError(
                f"vectors of shape {array.shape} do not fit: expected a non-empty (n, dim) array"
            )
        n, dim = array.shape
        empty = faiss_helpers.new_faiss_index(dim, factory, metric)
        if faiss.try_extract_index_ivf(empty) is None:
            raise ConfigError(f"on-disk lists are for IVF indexes; {factory!r} has no IVF lists")
        ids = checked_ids(ids, n)
        payloads = checked_payloads(payloads, n)
        stored = StoredVectors(dim)
        for start in range(0, n, EXACT_BLOCK):
            block = _as_vectors("vectors", array[start : start + EXACT_BLOCK], dim)
            stored.append(faiss_helpers.prepare(block, metric))
        faiss_helpers.train(empty, factory, stored.array, train_sample=train_sample, seed=seed)
        folder = Path(tempfile.mkdtemp(prefix="siamese-lists-"))
        try:
            filled = faiss_helpers.merge_on_disk(
                empty, _filled_shards(empty, stored.array, ids), folder / faiss_helpers.LISTS_FILE
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        index = cls.assemble(
            filled, stored, ids=ids, payloads=payloads, metric=metric, factory=factory, lists_folder=folder
        )
        logger.debug("indexed %d vectors of dimension %d on disk (%s, %s)", n, dim, factory, metric)
        return index

    @classmethod
    def assemble(
        cls,
        faiss_index: faiss.Index,
        vectors: StoredVectors,
        *,
        ids: np.ndarray,
        payloads: list[Any],
        metric: str,
        factory: str,
        lists_folder: Path | None = None,
    ) -> Index:
        """An index from parts an engine built elsewhere (:mod:`siamese.index.ray_build`):
        a filled FAISS index, its vectors as FAISS received them, in row order, and the
        rows' ids and payloads (as :func:`checked_ids` and :func:`checked_payloads` give).
        ``lists_folder``: the private folder holding an on-disk index's lists file, which
        the index then owns (removed when the index is).

        Raises:
            ConfigError: The parts disagree (counts, dimension, or the FAISS index's ids).
        """
        n = len(vectors)
        if faiss_index.ntotal != n or faiss_index.d != vectors.dim or len(ids) != n or len(payloads) != n:
            raise ConfigError(
                f"index parts disagree: FAISS holds {faiss_index.ntotal} of dimension {faiss_index.d}, "
                f"{n} vectors of dimension {vectors.dim}, {len(ids)} ids, {len(payloads)} payloads"
            )
        stored = faiss_helpers.faiss_ids(faiss_index)
        if stored is None or not np.array_equal(np.sort(stored), np.sort(ids)):
            raise ConfigError("index parts disagree: the FAISS index does not hold exactly the given ids")
        index = cls(faiss_index, dim=vectors.dim, metric=metric, factory=factory)
        index._vectors, index._ids, index._payloads = vectors, ids, payloads
        if lists_folder is not None:
            index._lists_folder = lists_folder
            weakref.finalize(index, shutil.rmtree, lists_folder, True)
        return index

    def attach_tower(
        self, tower: keras.Model, tower_path: str | os.PathLike[str], sha256: str | None = None
    ) -> None:
        """Record the tower that embedded the index (and embeds its queries), with its file's
        sha256 (computed here unless given), as :meth:`build` does."""
        self._tower = tower
        self._tower_sha256 = sha256 if sha256 is not None else checksum(Path(tower_path), ConfigError)
        self._tower_path = Path(os.path.abspath(tower_path))

    # ------------------------------------------------------------------ changing

    def add(
        self,
        items: Sequence[Any] | np.ndarray,
        *,
        ids: Sequence[int] | np.ndarray | None = None,
        payloads: Sequence[Any] | None = None,
    ) -> None:
        """Add raw items, embedded by the index's tower.

        Args:
            items: Raw items for the tower (as in :meth:`build`).
            ids: New ids, none already in the index; default ``max_id + 1, max_id + 2, ...``.
            payloads: One JSON-serialisable payload per item (defaults as in :meth:`build`).

        Raises:
            ConfigError: The index has no tower, an id is already present or repeated,
                lengths differ, or the items do not fit the tower.
        """
        tower = self._require_tower("add raw items", "add_vectors")
        items = encode.item_list(items)
        vectors = _as_vectors("embeddings", encode.embed(tower, items), self._dim)
        chosen = default_payloads(tower, items) if payloads is None else payloads
        self._add_prepared(self._prepared(vectors), ids, chosen)

    def add_vectors(
        self,
        vectors: np.ndarray,
        *,
        ids: Sequence[int] | np.ndarray | None = None,
        payloads: Sequence[Any] | None = None,
    ) -> None:
        """Add vectors (already embedded).

        Args:
            vectors: Float array ``(n, dim)`` (a single ``(dim,)`` vector is one item).
            ids: As in :meth:`add`.
            payloads: One JSON-serialisable payload per vector; default ``None`` each.

        Raises:
            ConfigError: An id is already present or repeated, lengths differ, or the
                vectors are not ``(n, dim)`` finite numbers.
        """
        self._add_prepared(self._prepared(_as_vectors("vectors", vectors, self._dim)), ids, payloads)

    def _add_prepared(
        self, vectors: np.ndarray, ids: Sequence[int] | np.ndarray | None, payloads: Sequence[Any] | None
    ) -> None:
        self._check_changeable("add to")
        n = len(vectors)
        start = int(self._ids.max()) + 1 if len(self._ids) else 0
        ids = checked_ids(ids, n, start=start)
        if len(ids) and int(ids.min()) < start:  # every id in the index is below start
            clash = ids[self._rows_of(ids) >= 0]
            if len(clash):
                raise ConfigError(f"ids already in the index: {clash[:10].tolist()} ({len(clash)} in all)")
        payloads = checked_payloads(payloads, n)
        with faiss_helpers.quiet_stdout() if self.on_disk else contextlib.nullcontext():
            self._faiss.add_with_ids(vectors, ids)
        self._id_map = None
        self._lookup = None
        self._ids = np.concatenate([self._ids, ids])
        self._vectors.append(vectors)
        self._payloads.extend(payloads)

    def _check_changeable(self, what: str) -> None:
        """Refuse to change an on-disk index whose lists are those of a saved folder."""
        if self._lists_folder is None and faiss_helpers.on_disk_lists(self._faiss) is not None:
            raise ConfigError(
                f"cannot {what} an on-disk index loaded from a folder (its lists are the saved "
                "files, read-only): rebuild it with the changes instead"
            )

    @property
    def on_disk(self) -> bool:
        """Whether the index's inverted lists live in a file (see :meth:`build`)."""
        return faiss_helpers.on_disk_lists(self._faiss) is not None

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The row of each id, -1 for an id not in the index."""
        if self._lookup is None:
            self._lookup = RowLookup(self._ids)
        return self._lookup.rows(ids)

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        """Remove items by id; ids not in the index are ignored.

        Args:
            ids: The ids to remove.

        Returns:
            How many items were removed.

        Raises:
            ConfigError: The index type cannot remove ids (HNSW, and a few others): rebuild it.
        """
        self._check_changeable("remove from")
        wanted = np.unique(_as_ids(ids))
        present = wanted[self._rows_of(wanted) >= 0]
        if isinstance(faiss_helpers.core_index(self._faiss), faiss.IndexHNSW):
            raise ConfigError(
                f"HNSW indexes cannot remove ids ({self._factory!r}); rebuild the index without them instead"
            )
        if len(present) == 0:
            return 0
        try:
            removed = int(self._faiss.remove_ids(present))
        except RuntimeError as exc:
            raise ConfigError(
                f"a {self._factory!r} index cannot remove ids ({faiss_helpers.faiss_message(exc)}); "
                "rebuild it instead"
            ) from None
        finally:
            self._id_map = None
        keep = ~np.isin(self._ids, present)
        self._ids = self._ids[keep]
        self._vectors.keep(keep)
        self._payloads = [p for p, kept in zip(self._payloads, keep, strict=True) if kept]
        self._lookup = None
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

        Args:
            queries: Raw items for the index's tower: strings (text tower), ``(n, H, W, C)``
                images or image file paths (image tower), ids (categorical tower). Vectors go
                to :meth:`search_vectors`.
            k: Results per query; fewer come back when the index holds fewer items (a larger
                ``k`` costs no more than the index's size).
            nprobe: IVF lists visited per query (IVF indexes only); default the index's.
            ef_search: HNSW search breadth (HNSW indexes and HNSW quantizers only).

        Returns:
            One list of :class:`Hit` per query.

        Raises:
            ConfigError: The index has no tower, the queries are not what its tower takes
                (text for an image index, an image for a text index), a query is empty or
                beyond the limits of :mod:`siamese.index.queries`, or ``nprobe`` or
                ``ef_search`` do not apply to its type. Queries are embedded :data:`QUERY_CHUNK` at a time.
        """
        tower = self._require_tower("search raw queries", "search_vectors")
        k = positive_int("k", k)
        queries = encode.item_list(queries)
        check_queries(queries, input_type(tower))
        hits: list[list[Hit]] = []
        for start in range(0, len(queries), QUERY_CHUNK):
            chunk = queries[start : start + QUERY_CHUNK]
            vectors = _as_vectors("embeddings", encode.embed(tower, chunk), self._dim)
            hits.extend(self.hits(*self.search_vectors(vectors, k, nprobe=nprobe, ef_search=ef_search)))
        return hits

    def search_vectors(
        self, vectors: np.ndarray, k: int, *, nprobe: int | None = None, ef_search: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The fast path: search vectors, return ``(scores, ids)`` arrays of shape
        ``(n, min(k, ntotal))``.

        Scores are as in :class:`Hit`; missing results (an IVF search that visits too few
        lists, say) have id -1 and score NaN. :meth:`hits` turns the arrays into :class:`Hit`
        lists. A ``k`` larger than the index costs no more than ``k = ntotal``, and FAISS
        fills at most :data:`RESULT_CELLS` results at a time.

        Args:
            vectors: Float array ``(n, dim)`` (a single ``(dim,)`` vector is one query).
            k: Results per query.
            nprobe: See :meth:`search`.
            ef_search: See :meth:`search`.

        Raises:
            ConfigError: Wrong shape or type, or a search option that does not apply.
        """
        k = min(positive_int("k", k), len(self._ids))  # never more results than items
        queries = self._prepared(_as_vectors("queries", vectors, self._dim))
        key = (nprobe, ef_search)
        if key not in self._params:
            self._params[key] = faiss_helpers.search_params(self._faiss, self._factory, nprobe, ef_search)
        params = self._params[key]
        param = params[0] if params else None
        if self._id_map is None:
            self._id_map = faiss_helpers.id_map_of(self._faiss)
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        rows = max(1, RESULT_CELLS // k)
        if len(queries) <= rows:
            distances, ids = faiss_helpers.search(self._faiss, queries, k, param, self._id_map)
        else:
            parts = [
                faiss_helpers.search(self._faiss, queries[start : start + rows], k, param, self._id_map)
                for start in range(0, len(queries), rows)
            ]
            distances = np.concatenate([d for d, _ in parts])
            ids = np.concatenate([i for _, i in parts])
        if self._metric == "l2":
            distances = np.sqrt(np.maximum(distances, 0.0, out=distances), out=distances)
        # FAISS puts missing results (id -1) last in each row
        if (ids[0, -1] < 0) if len(ids) == 1 else (len(ids) and (ids[:, -1] < 0).any()):
            distances[ids < 0] = np.nan
        return distances, ids

    def hits(self, scores: np.ndarray, ids: np.ndarray) -> list[list[Hit]]:
        """:meth:`search_vectors`'s arrays as one list of :class:`Hit` per query (missing
        results left out)."""
        ids = np.asarray(ids, dtype=np.int64)
        rows = self._rows_of(ids.reshape(-1)).reshape(ids.shape).tolist()
        payloads = self._payloads
        return [
            [Hit(i, s, payloads[r]) for s, i, r in zip(row_scores, row_ids, row_rows, strict=True) if i >= 0]
            for row_scores, row_ids, row_rows in zip(
                np.asarray(scores, dtype=np.float64).tolist(), ids.tolist(), rows, strict=True
            )
        ]

    def _require_tower(self, what: str, instead: str) -> keras.Model:
        if self._tower is None:
            raise ConfigError(
                f"this index has no tower to {what}: load it with tower=, or use {instead} "
                f"with vectors of shape (n, {self._dim})"
            )
        return self._tower

    def _prepared(self, vectors: np.ndarray) -> np.ndarray:
        """The vectors as FAISS gets them: L2-normalised for cosine."""
        return faiss_helpers.prepare(vectors, self._metric)

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
    def input_type(self) -> str | None:
        """What the index's tower embeds: ``"text"``, ``"image"`` or ``"id"`` (``None``
        without a tower)."""
        return None if self._tower is None else input_type(self._tower)

    @property
    def tower(self) -> keras.Model | None:
        """The tower that embeds raw queries, or ``None``."""
        return self._tower

    @property
    def vectors(self) -> np.ndarray:
        """The indexed vectors as FAISS received them (normalised for cosine), in row order;
        a read-only view."""
        return self._vectors.array

    @property
    def payloads(self) -> tuple[Any, ...]:
        """The payloads in row order (the rows of :attr:`ids`)."""
        return tuple(self._payloads)

    @property
    def ids(self) -> np.ndarray:
        """The ids in row order (the rows of :attr:`vectors`); a read-only view."""
        view = self._ids.view()
        view.flags.writeable = False
        return view

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
        if target.is_dir() and not (target / MANIFEST_FILE).is_file() and not holds_only_versions(target):
            raise ConfigError(f"refusing to replace {target}: a non-empty folder that is not an index")
        with atomic_folder(target, legacy_files=(MANIFEST_FILE, *DATA_FILES)) as temp:
            files = write_folder(
                temp,
                self._faiss,
                self._vectors.write_npy,
                self._ids,
                self._payloads,
                lambda f: self._manifest(target, f),
            )
        self._folder, self._files = target, files
        logger.info("saved %d items to %s", self.ntotal, target)

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        tower: keras.Model | str | os.PathLike[str] | None = None,
        check_tower: bool = True,
        vectors_in_memory: bool = False,
        verify: bool = False,
    ) -> Index:
        """Open a saved index folder, checking every file against the manifest.

        Args:
            directory: The index folder.
            tower: The tower to embed queries with: a model, or a ``.keras`` path. Default:
                the tower recorded in the manifest, if any.
            check_tower: Refuse a tower file whose sha256 differs from the one the index was
                built with, and a recorded tower that is missing. ``False`` skips both (a
                missing tower then just leaves the index vector-only).
            vectors_in_memory: Read the exact vectors into RAM; by default ``vectors.npy``
                is memory-mapped.
            verify: Check the sha256 of every file, also of those larger than
                :data:`siamese.index.folder.HASH_LIMIT` (checked by size otherwise).

        Raises:
            IndexFileError: The folder or a file is missing, truncated or corrupt, the
                manifest disagrees with the files, or the tower changed since the build.
        """
        path = Path(os.path.abspath(directory))
        for attempt in range(_LOAD_ATTEMPTS):
            before = folder_identity(path)
            try:
                with reading_folder(path, MANIFEST_FILE) as folder:
                    if folder is None:
                        raise IndexFileError(f"no index folder at {path}")
                    return cls._load_from(
                        folder,
                        path,
                        tower=tower,
                        check_tower=check_tower,
                        in_memory=vectors_in_memory,
                        verify=verify,
                    )
            except VersionError as exc:
                raise IndexFileError(str(exc)) from None
            except IndexFileError:
                # A folder of an earlier release, replaced while it was read: read it again.
                # A folder that did not change is really broken: report it.
                if folder_identity(path) == before or attempt + 1 == _LOAD_ATTEMPTS:
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
        in_memory: bool,
        verify: bool,
    ) -> Index:
        """Read one index folder (``canonical`` is where it is meant to live)."""
        contents = read_folder(folder, verify=verify)
        manifest = contents.manifest
        index = cls(
            contents.faiss_index,
            dim=manifest["dimension"],
            metric=manifest["metric"],
            factory=manifest["factory"],
        )
        index._ids, index._payloads = contents.ids, contents.payloads
        index._vectors = StoredVectors.open_npy(folder / VECTORS_FILE, contents.vectors, in_memory=in_memory)
        index._created = manifest["created"]
        index._folder, index._files = canonical, manifest["files"]
        index._tower_sha256 = manifest["tower_sha256"]
        if manifest["tower_path"] is not None:
            # relative to the index folder (not to the version folder inside it)
            index._tower_path = Path(os.path.abspath(canonical / manifest["tower_path"]))
        index._tower = _load_index_tower(index, tower, check_tower)
        logger.info("loaded %d items from %s", index.ntotal, folder)
        return index


def recall_at_k(
    index: Index,
    query_vectors: np.ndarray,
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
        query_vectors: Query vectors ``(n, dim)`` (embed raw items first with
            :func:`siamese.embed`).
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
    k = min(positive_int("k", k), index.ntotal)
    sample = positive_int("sample", sample)
    queries = np.asarray(query_vectors)  # a memory-mapped array stays mapped: sample, then copy
    if queries.ndim == 2 and len(queries) > sample:
        queries = queries[np.sort(np.random.default_rng(seed).choice(len(queries), sample, replace=False))]
    queries = _as_vectors("query_vectors", queries, index.dim)
    rows = _exact_rows(index.vectors, index._prepared(queries), k, faiss_helpers.FAISS_METRICS[index.metric])
    _, found = index.search_vectors(queries, k, nprobe=nprobe, ef_search=ef_search)
    return metrics.recall_at_k(found, index.ids[rows], k)


def _exact_rows(vectors: np.ndarray, queries: np.ndarray, k: int, metric: int) -> np.ndarray:
    """The rows of the ``k`` nearest of ``vectors`` to each query, by brute force over blocks
    of rows (so a memory-mapped array is read a block at a time, never copied whole)."""
    best = faiss.ResultHeap(len(queries), k, keep_max=metric == faiss.METRIC_INNER_PRODUCT)
    for start in range(0, len(vectors), EXACT_BLOCK):
        block = np.ascontiguousarray(vectors[start : start + EXACT_BLOCK])
        distances, rows = faiss.knn(queries, block, min(k, len(block)), metric=metric)
        best.add_result(distances, rows + start)
    best.finalize()
    return best.I


def _filled_shards(empty: faiss.Index, vectors: np.ndarray, ids: np.ndarray) -> Iterator[faiss.Index]:
    """Copies of the trained empty index, each filled with the next shard of rows."""
    for start in range(0, len(vectors), faiss_helpers.SHARD_ROWS):
        rows = slice(start, start + faiss_helpers.SHARD_ROWS)
        shard = faiss.clone_index(empty)
        shard.add_with_ids(np.ascontiguousarray(vectors[rows]), ids[rows])
        yield shard


class RowLookup:
    """Rows of ids, vectorised: the identity when the ids are ``0..n-1`` in order (the
    default), else a binary search over the sorted ids (two ``int64`` arrays, not a dict of
    Python ints)."""

    def __init__(self, ids: np.ndarray) -> None:
        n = len(ids)
        self._n = n
        self._identity = n == 0 or (ids[0] == 0 and ids[-1] == n - 1 and bool(np.all(np.diff(ids) == 1)))
        if not self._identity:
            self._order = np.argsort(ids, kind="stable")
            self._sorted = ids[self._order]

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The row of each of ``ids``, -1 where it is not in the index."""
        ids = np.asarray(ids, dtype=np.int64)
        if self._identity:
            return np.where((ids >= 0) & (ids < self._n), ids, -1)
        at = np.minimum(np.searchsorted(self._sorted, ids), self._n - 1)
        return np.where(self._sorted[at] == ids, self._order[at], -1)


# ---------------------------------------------------------------------- inputs


def log_embedded(count: int, seconds: float) -> None:
    """The one log line of an embedding stage (what benchmarks/scale.py reads)."""
    logger.info("embedded %d items in %.2f s (%.0f items/s)", count, seconds, count / max(seconds, 1e-9))


def _as_vectors(name: str, values: Any, dim: int | None) -> np.ndarray:
    """The one place vectors become C-contiguous float32 ``(n, dim)``, checked finite."""
    if (
        type(values) is np.ndarray
        and values.dtype == np.float32
        and values.flags.c_contiguous
        and dim is not None
        and values.ndim in (1, 2)
        and values.shape[-1] == dim
    ):  # the common case, checked quickly (a single query's search is tens of microseconds)
        array = values if values.ndim == 2 else values[None]
        if np.isfinite(array).all():
            return array
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


def checked_ids(ids: Sequence[int] | np.ndarray | None, n: int, *, start: int = 0) -> np.ndarray:
    """``n`` ids as ``int64``: given ones checked (integers, non-negative, unique), or by
    default ``start, start + 1, ...``.

    Raises:
        ConfigError: Not integers, negative, repeated, or not ``n`` of them.
    """
    if ids is None:  # new, so unique
        return np.arange(start, start + n, dtype=np.int64)
    ids = _as_ids(ids)
    if len(ids) != n:
        raise ConfigError(f"got {len(ids)} ids for {n} items")
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != n:
        raise ConfigError(f"duplicate ids: {unique[counts > 1][:10].tolist()}")
    return ids


def checked_payloads(payloads: Sequence[Any] | None, n: int) -> list[Any]:
    """``n`` payloads as they read back from JSON (default ``None`` each).

    Raises:
        ConfigError: Not ``n`` of them, or one that JSON cannot hold.
    """
    if payloads is None:
        return [None] * n
    payloads = list(payloads)
    if len(payloads) != n:
        raise ConfigError(f"got {len(payloads)} payloads for {n} items")
    return [_json_payload(p, i) for i, p in enumerate(payloads)]


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
        if (
            check_tower
            and index._tower_sha256 is not None
            and checksum(path, IndexFileError) != index._tower_sha256
        ):
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


def default_payloads(tower: keras.Model, items: Sequence[Any] | np.ndarray) -> list[Any] | None:
    """What an item's payload is when none is given: the text (text tower), the file path
    (image files), else ``None``."""
    if tower.inputs[0].dtype == "string":
        return list(items) if all(isinstance(t, str) for t in items) else None
    if encode.reads_files(tower, items):
        return [os.fspath(p) for p in items]
    return None
