"""One Index serves many threads, and other processes, while it is rebuilt in place."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
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


def test_another_process_queries_while_the_index_is_rebuilt_in_place(tmp_path):
    folder = tmp_path / "idx"
    rng = np.random.default_rng(1)
    versions = [rng.normal(size=(3000, 16)).astype("float32") for _ in range(2)]
    Index.from_vectors(versions[0], metric="l2").save(folder)
    reader = textwrap.dedent(
        f"""
        import sys, time
        import numpy as np
        from siamese.index import Index
        query = np.ones((1, 16), dtype="float32")
        deadline = time.monotonic() + 25
        loads = 0
        while time.monotonic() < deadline and loads < 60:
            index = Index.load({str(folder)!r})
            scores, ids = index.search_vectors(query, 5)
            assert index.ntotal == 3000 and ids.shape == (1, 5) and (ids >= 0).all()
            loads += 1
        print(loads)
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-c", reader], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    rebuilds = 0
    while proc.poll() is None and rebuilds < 200:
        Index.from_vectors(versions[rebuilds % 2], metric="l2").save(folder)
        rebuilds += 1
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert int(out.strip().splitlines()[-1]) > 0 and rebuilds > 1
