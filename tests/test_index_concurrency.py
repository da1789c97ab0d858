"""One Index serves many threads, and other processes, while it is rebuilt in place."""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import siamese
from siamese.index import Index

THREADS, PER_THREAD = 8, 1000


@pytest.mark.parametrize("factory", ["Flat", "HNSW32", "IVF16,Flat"])
def test_eight_threads_get_exactly_the_sequential_answers(tmp_path, factory):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4000, 32)).astype("float32")
    Index.from_vectors(base, factory=factory, metric="l2").save(tmp_path / "idx")
    index = Index.load(tmp_path / "idx")
    queries = rng.normal(size=(THREADS, PER_THREAD, 32)).astype("float32")
    options = {"nprobe": 4} if factory.startswith("IVF") else {}
    expected = [index.search_vectors(q, 10, **options) for q in queries]

    def work(t):
        # 1,000 queries, ten at a time, so the threads' calls interleave.
        parts = [
            index.search_vectors(queries[t, i : i + 10], 10, **options) for i in range(0, PER_THREAD, 10)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    for (scores, ids), (want_scores, want_ids) in zip(results, expected, strict=True):
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(scores, want_scores)


def test_threads_querying_raw_text_through_the_tower(tmp_path):
    texts = [
        f"sentence number {i} about {w}" for i, w in enumerate("cats dogs guitars rivers trains".split() * 8)
    ]
    tower = siamese.text_tower(texts, units=8, embedding_dim=8, seed=0)
    index = Index.build(tower, texts, progress=False)
    expected = [index.search([t], k=3)[0] for t in texts]
    with ThreadPoolExecutor(THREADS) as pool:
        got = list(pool.map(lambda t: index.search([t], k=3)[0], texts * 4))
    assert [[h.id for h in hits] for hits in got] == [[h.id for h in hits] for hits in expected] * 4


# ----------------------------------------------------------------------------- swaps
#
# Two versions of different sizes are saved over one folder in turn while readers load it in
# a loop. A reader checks each load against the version its size names, vector for vector:
# a missing, half-written or mixed folder is an error. The writer starts only once the reader
# is loading, and goes on until it has made SWAPS saves and the reader has loaded SWAPS times
# since the writer started, so the two overlap for sure.

SWAPS = 200
#: Small versions save fast, so saves and loads interleave densely: with these sizes the
#: folder swap of earlier releases (two renames) fails the process test as well as the
#: threaded one, where larger versions let it pass by luck.
SIZES = (300, 200)
SWAP_TIMEOUT = 240.0


def _swap_versions() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.normal(size=(n, 16)).astype("float32") for n in SIZES]


def _load_and_check(folder: str, versions: list[np.ndarray]) -> None:
    index = Index.load(folder)
    expected = {len(v): v for v in versions}[index.ntotal]
    np.testing.assert_array_equal(index.vectors, expected)
    _, ids = index.search_vectors(expected[:1], 1)
    assert int(ids[0, 0]) == 0


def _reader_loop(folder: str, loads, stop, errors) -> None:
    """Load ``folder`` until ``stop`` is set, counting loads; the first error is kept."""
    versions = _swap_versions()
    try:
        while not stop.is_set():
            _load_and_check(folder, versions)
            with loads.get_lock():
                loads.value += 1
    except BaseException as exc:  # the test reports it
        errors.put(f"{type(exc).__name__}: {exc}")


def _swap_while_loaded(folder, loads, reader_alive, errors_seen) -> int:
    """Wait for the reader to be loading, then save the two versions in turn until SWAPS saves
    and SWAPS loads have overlapped. Returns the number of saves."""
    versions = _swap_versions()
    deadline = time.monotonic() + SWAP_TIMEOUT
    while loads.value < 1:
        assert reader_alive() and not errors_seen(), "the reader stopped before the writer began"
        assert time.monotonic() < deadline, "the reader never loaded"
        time.sleep(0.01)
    first = loads.value
    swaps = 0
    while swaps < SWAPS or loads.value - first < SWAPS:
        assert time.monotonic() < deadline, f"{swaps} swaps, {loads.value - first} loads in {SWAP_TIMEOUT} s"
        if not reader_alive() or errors_seen():
            break
        Index.from_vectors(versions[swaps % 2], metric="l2").save(folder)
        swaps += 1
    assert loads.value - first >= SWAPS or errors_seen() or not reader_alive()
    return swaps


def _assert_tidy(folder) -> None:
    """After a last save with no reader about, the folder holds the pointer and one version."""
    Index.from_vectors(_swap_versions()[0], metric="l2").save(folder)
    entries = sorted(p.name for p in folder.iterdir())
    assert len(entries) == 2 and entries[0] == "CURRENT" and entries[1].startswith("v-"), entries


@pytest.mark.slow
def test_swap_while_another_process_loads(tmp_path):
    folder = tmp_path / "idx"
    Index.from_vectors(_swap_versions()[0], metric="l2").save(folder)
    context = multiprocessing.get_context("spawn")
    loads, stop, errors = context.Value("q", 0), context.Event(), context.Queue()
    reader = context.Process(target=_reader_loop, args=(str(folder), loads, stop, errors))
    reader.start()
    try:
        swaps = _swap_while_loaded(folder, loads, reader.is_alive, lambda: not errors.empty())
    finally:
        stop.set()
        reader.join(timeout=60)
    failures = [] if errors.empty() else [errors.get()]
    assert not failures, failures
    assert reader.exitcode == 0
    assert swaps >= SWAPS and loads.value >= SWAPS
    _assert_tidy(folder)


@pytest.mark.slow
def test_swap_while_threads_of_the_same_process_load(tmp_path):
    folder = tmp_path / "idx"
    Index.from_vectors(_swap_versions()[0], metric="l2").save(folder)
    loads, stop, errors = multiprocessing.Value("q", 0), threading.Event(), queue.Queue()
    readers = [
        threading.Thread(target=_reader_loop, args=(str(folder), loads, stop, errors)) for _ in range(2)
    ]
    for reader in readers:
        reader.start()
    try:
        swaps = _swap_while_loaded(
            folder, loads, lambda: all(r.is_alive() for r in readers), lambda: not errors.empty()
        )
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=60)
    failures = [] if errors.empty() else [errors.get()]
    assert not failures, failures
    assert swaps >= SWAPS and loads.value >= SWAPS
    _assert_tidy(folder)
