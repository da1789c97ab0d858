"""Building an index on Ray: embedding in a pool of actors, filling index shards in parallel.

:func:`build_on_ray` gives the same index folder as :meth:`siamese.index.Index.build` (the
same manifest, checksums, tower record, and the same atomic save), built this way:

1. the corpus is cut into blocks of ``block_size`` items, in order;
2. a pool of Ray actors embeds them, each actor loading the tower once and using
   ``cpus_per_worker`` threads; the vectors come back in block order and go into the index's
   vector file (:mod:`siamese.index.stored_vectors`), so the driver never holds them all;
3. an index that needs training (IVF, PQ) is trained once, in the driver, on the seeded sample
   of rows the single-process build would take;
4. for Flat and IVF indexes, shards of rows are added to copies of the trained empty index by
   the same actors, in parallel, and the filled shards are merged in row order with FAISS's
   ``merge_from`` (so each IVF list holds its entries in the single-process order); an HNSW
   graph cannot be merged, so its vectors are added in the driver.

With no ``address`` a local Ray is started on this machine's cores and stopped at the end;
``address`` joins a running cluster (``ray start --head`` there, every node with siamese
installed; the tower and the items travel through Ray's object store). An actor that dies is
restarted and its block retried once; a second death fails the build with
:class:`~siamese.errors.EngineError`, and the previous index folder, if any, is left as it
was (nothing is written before the final atomic save).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import faiss
import keras
import numpy as np

from siamese import encode, faults
from siamese.checks import positive_int
from siamese.errors import ConfigError, EngineError, SiameseError
from siamese.index import faiss_helpers
from siamese.index.api import Index, checked_ids, checked_payloads, default_payloads, log_embedded
from siamese.index.stored_vectors import StoredVectors
from siamese.models import load_tower

logger = logging.getLogger(__name__)

#: Items per block sent to an embedding actor.
BLOCK_SIZE = 8192
#: Seconds to wait for a cluster's address to answer before giving up.
CONNECT_TIMEOUT = 10.0
RAY_MISSING = 'the Ray engine needs Ray: pip install "siamese[ray]"'


class EmbedWorker:
    """A Ray actor's state: one tower, loaded once, embedding block after block.

    The tower comes as the bytes of ``tower.keras`` (through Ray's object store), so a node
    of a cluster needs siamese installed but not the driver's files. It is passed with each
    block and loaded at the first one: an actor restarted after a crash then needs nothing
    kept from its first start.
    """

    def __init__(self, threads: int) -> None:
        import tensorflow as tf

        with contextlib.suppress(RuntimeError):  # already set in a reused worker process
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        self.tower: keras.Model | None = None

    def embed(self, tower_bytes: bytes, items: Any, batch_size: int) -> np.ndarray:
        if self.tower is None:
            with tempfile.TemporaryDirectory(prefix="siamese-tower-") as folder:
                path = Path(folder) / "tower.keras"
                path.write_bytes(tower_bytes)
                self.tower = load_tower(path)
        return encode.embed(self.tower, items, batch_size=batch_size, progress=False)

    def fill(self, empty: bytes, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return fill_shard(empty, vectors, ids)


def fill_shard(empty: np.ndarray, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """A Ray task: add one shard's rows to a copy of the trained empty index (serialised)."""
    index = faiss.deserialize_index(empty)
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids))
    return faiss.serialize_index(index)


def build_on_ray(
    tower_path: str | os.PathLike[str],
    items: Sequence[Any] | np.ndarray,
    *,
    ids: Sequence[int] | np.ndarray | None = None,
    payloads: Sequence[Any] | None = None,
    factory: str = "Flat",
    metric: str = "cosine",
    batch_size: int = 256,
    train_sample: int = 100_000,
    seed: int = 0,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    block_size: int = BLOCK_SIZE,
    progress: bool = True,
    on_disk: bool = False,
) -> Index:
    """Embed a corpus on Ray and index it (see the module docstring).

    Args:
        tower_path: The run's ``tower.keras`` (read here; each actor loads its bytes once).
        items, ids, payloads, factory, metric, batch_size, train_sample, seed: As in
            :meth:`siamese.index.Index.build`.
        address: A Ray cluster (``host:port`` of its head, or ``auto``); ``None`` starts a
            local Ray on this machine's cores and stops it afterwards.
        workers: Embedding actors; default as many as the cluster's CPUs allow.
        cpus_per_worker: CPUs each actor claims and uses as TensorFlow threads.
        block_size: Items per block.
        progress: Progress bars on stderr (items embedded, shards filled).
        on_disk: Merge the filled shards of an IVF index into inverted lists on disk
            (``faiss_helpers.merge_on_disk``) instead of in memory.

    Raises:
        EngineError: Ray is not installed or not reachable, or a worker died twice.
        ConfigError: As :meth:`siamese.index.Index.build`.
    """
    ray = _import_ray()
    block_size = positive_int("block_size", block_size)
    batch_size = positive_int("batch_size", batch_size)
    if not cpus_per_worker > 0:
        raise ConfigError(f"cpus_per_worker must be positive, not {cpus_per_worker}")
    if metric not in faiss_helpers.METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(faiss_helpers.METRICS)}")
    tower = load_tower(tower_path)
    items = encode.item_list(items)
    if len(items) == 0:
        raise ConfigError("empty corpus: there are no items to index")
    # what can be refused is refused here, before any worker starts (nothing is embedded here)
    first = items[:1]
    if encode.reads_files(tower, first):
        encode.read_image_files(first, tuple(tower.inputs[0].shape[1:]))
    else:
        encode.as_model_input(first, tower)
    ids = checked_ids(ids, len(items))
    payloads = checked_payloads(default_payloads(tower, items) if payloads is None else payloads, len(items))
    dim = encode.output_width(tower)
    empty = faiss_helpers.new_faiss_index(dim, factory, metric)
    if on_disk and faiss.try_extract_index_ivf(empty) is None:
        raise ConfigError(f"on-disk lists are for IVF indexes; {factory!r} has no IVF lists")
    vectors = StoredVectors(dim)
    lists_folder = None
    with _ray_session(ray, address):
        count = _worker_count(ray, workers, cpus_per_worker)
        logger.info(
            "Ray: %d embedding workers of %g CPU each, blocks of %d items", count, cpus_per_worker, block_size
        )
        with _worker_pool(ray, count, cpus_per_worker) as actors:
            shared = ray.put(Path(tower_path).read_bytes())
            began = time.perf_counter()
            for block in _embedded_blocks(actors, shared, items, batch_size, block_size, progress):
                vectors.append(faiss_helpers.prepare(_as_float32(block, dim), metric))
            log_embedded(len(items), time.perf_counter() - began)
            faiss_helpers.train(empty, factory, vectors.array, train_sample=train_sample, seed=seed)
            if isinstance(faiss_helpers.core_index(empty), faiss.IndexHNSW):
                logger.info(
                    "an HNSW graph cannot be merged: adding the %d vectors in this process", len(vectors)
                )
                filled = empty
                for start in range(0, len(vectors), block_size):
                    rows = slice(start, start + block_size)
                    filled.add_with_ids(np.ascontiguousarray(vectors.array[rows]), ids[rows])
            elif on_disk:
                lists_folder = Path(tempfile.mkdtemp(prefix="siamese-lists-"))
                try:
                    shards = _filled_shards(ray, actors, empty, vectors.array, ids, progress)
                    filled = faiss_helpers.merge_on_disk(
                        empty, shards, lists_folder / faiss_helpers.LISTS_FILE
                    )
                except BaseException:
                    shutil.rmtree(lists_folder, ignore_errors=True)
                    raise
            else:
                filled = None
                for shard in _filled_shards(ray, actors, empty, vectors.array, ids, progress):
                    if filled is None:
                        filled = shard
                    else:
                        filled.merge_from(shard, 0)
    index = Index.assemble(
        filled, vectors, ids=ids, payloads=payloads, metric=metric, factory=factory, lists_folder=lists_folder
    )
    index.attach_tower(tower, tower_path)
    logger.info("indexed %d vectors of dimension %d on Ray (%s, %s)", len(vectors), dim, factory, metric)
    return index


# ---------------------------------------------------------------------- the steps


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EngineError(RAY_MISSING) from None
    return ray


@contextlib.contextmanager
def _ray_session(ray: Any, address: str | None) -> Iterator[None]:
    """Ray for the build: the given cluster, or a local one started here and stopped after."""
    if address is not None:
        _check_reachable(address)
    if ray.is_initialized():
        yield
        return
    if address is None:
        # Ray announces its defaults (token authentication on for a local cluster) as warnings
        ray_logger = logging.getLogger("ray")
        level = ray_logger.level
        ray_logger.setLevel(logging.ERROR)
        try:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        finally:
            ray_logger.setLevel(level)
    else:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EngineError(f"cannot join the Ray cluster at {address}: {_first_line(exc)}") from None
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail in seconds, with one line, when a ``host:port`` address does not answer (Ray's
    own connection attempts go on for much longer)."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon:  # "auto", or a form Ray resolves itself
        return
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot reach the Ray cluster at {address}: {exc}") from None


def _worker_count(ray: Any, workers: int | None, cpus_per_worker: float) -> int:
    cpus = float(ray.cluster_resources().get("CPU", 1))
    if workers is None:
        return max(1, int(cpus // cpus_per_worker))
    workers = positive_int("workers", workers)
    if workers * cpus_per_worker > cpus:
        raise ConfigError(
            f"{workers} workers of {cpus_per_worker:g} CPU need {workers * cpus_per_worker:g} CPUs; "
            f"the Ray cluster has {cpus:g}"
        )
    return workers


@contextlib.contextmanager
def _worker_pool(ray: Any, count: int, cpus_per_worker: float) -> Iterator[list[Any]]:
    """``count`` actors (each restarted once if it dies, its call retried), killed at the end."""
    options: dict[str, Any] = {"num_cpus": cpus_per_worker, "max_restarts": 1, "max_task_retries": 1}
    if hooks := faults.hook_environment():
        options["runtime_env"] = {"env_vars": hooks}
    actor = ray.remote(**options)(EmbedWorker)
    actors = [actor.remote(max(1, int(cpus_per_worker))) for _ in range(count)]
    try:
        yield actors
    finally:
        for a in actors:
            ray.kill(a)


def _embedded_blocks(
    actors: list[Any],
    tower: Any,
    items: Sequence[Any] | np.ndarray,
    batch_size: int,
    block_size: int,
    progress: bool,
) -> Iterator[np.ndarray]:
    """The blocks' embeddings, in block order (``tower``: the object-store reference of the
    tower file's bytes)."""
    from ray.util import ActorPool

    bar = keras.utils.Progbar(len(items), unit_name="item") if progress else None
    done = 0
    results = ActorPool(actors).map(
        lambda a, at: a.embed.remote(tower, items[at : at + block_size], batch_size),
        range(0, len(items), block_size),
    )
    for block in _engine_errors(results, "embedding"):
        done += len(block)
        if bar is not None:
            with contextlib.redirect_stdout(sys.stderr):
                bar.update(done)
        yield block


def _filled_shards(
    ray: Any, actors: list[Any], empty: faiss.Index, vectors: np.ndarray, ids: np.ndarray, progress: bool
) -> Iterator[faiss.Index]:
    """Shards of rows added to copies of the trained empty index by the actors in parallel,
    in row order. Each shard's rows are sliced only when an actor takes it."""
    from ray.util import ActorPool

    serialized = ray.put(faiss.serialize_index(empty))
    shards = max(len(actors), -(-len(vectors) // faiss_helpers.SHARD_ROWS))
    bounds = np.linspace(0, len(vectors), shards + 1).astype(int)
    ranges = [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True) if hi > lo]
    results = ActorPool(actors).map(
        lambda a, r: a.fill.remote(serialized, np.ascontiguousarray(vectors[r[0] : r[1]]), ids[r[0] : r[1]]),
        ranges,
    )
    bar = keras.utils.Progbar(len(ranges), unit_name="shard") if progress else None
    for number, shard in enumerate(_engine_errors(results, "filling"), start=1):
        yield faiss.deserialize_index(shard)
        if bar is not None:
            with contextlib.redirect_stdout(sys.stderr):
                bar.update(number)


def _engine_errors(results: Iterator[Any], stage: str) -> Iterator[Any]:
    """Ray's results, with its failures as one line: a toolkit error raised in a worker as
    itself, a worker that died (twice) as :class:`EngineError`."""
    from ray import exceptions

    try:
        yield from results
    except exceptions.RayTaskError as exc:
        cause = exc.as_instanceof_cause()
        if isinstance(cause, SiameseError):
            raise type(cause)(str(cause).splitlines()[-1]) from None
        raise EngineError(f"the Ray build failed while {stage}: {_first_line(exc)}") from None
    except exceptions.RayError as exc:
        lost = _first_line(exc)
        raise EngineError(f"the Ray build failed while {stage}: a worker was lost ({lost})") from None


def _as_float32(block: Any, dim: int) -> np.ndarray:
    array = np.ascontiguousarray(block, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dim:
        raise EngineError(f"a worker returned embeddings of shape {array.shape}, expected (n, {dim})")
    return array


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
