"""The FAISS-backed Index: exact results, stable ids, the folder format, and every refusal."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import index_files, unversion
from PIL import Image

import siamese
from siamese.errors import ConfigError, IndexFileError
from siamese.index import Hit, Index, recall_at_k

DIM = 16
SENTENCES = [
    "a man is playing a guitar",
    "the cat sleeps on the warm sofa",
    "children are running in the park",
    "a woman slices fresh tomatoes",
    "two dogs chase a red ball",
    "the train leaves the station at noon",
    "rain falls on the quiet city",
    "a chef cooks pasta in a large pot",
    "the boy reads a book under a tree",
    "birds sing loudly at dawn",
    "an old car drives down the road",
    "students write notes during the lecture",
    "a girl paints a blue horse",
    "the river flows past the mill",
    "someone is riding a bicycle uphill",
    "snow covers the mountain village",
    "a pilot lands the plane safely",
    "the baker sells bread every morning",
    "fish swim near the coral reef",
    "a musician tunes an old violin",
]


def brute_force(
    corpus: np.ndarray, queries: np.ndarray, metric: str, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows and scores by plain NumPy, best first."""
    corpus, queries = corpus.astype(np.float64), queries.astype(np.float64)
    if metric == "cosine":
        corpus = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    if metric == "l2":
        scores = np.sqrt(((queries[:, None, :] - corpus[None, :, :]) ** 2).sum(-1))
        order = np.argsort(scores, axis=1)[:, :k]
    else:
        scores = queries @ corpus.T
        order = np.argsort(-scores, axis=1)[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.fixture
def vectors(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(200, DIM)).astype(np.float32)


@pytest.fixture
def odd_ids() -> np.ndarray:
    return np.arange(200, dtype=np.int64) * 7 + 1000


def ids_of(results: list[list[Hit]]) -> list[list[int]]:
    return [[hit.id for hit in hits] for hits in results]


def by_vector(index: Index, vectors: np.ndarray, k: int, **options: Any) -> list[list[Hit]]:
    """Hits of vector queries (``search`` takes raw items only)."""
    return index.hits(*index.search_vectors(vectors, k, **options))


# ---------------------------------------------------------------------- exact results


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_flat_search_matches_numpy_brute_force(
    vectors: np.ndarray, odd_ids: np.ndarray, rng: np.random.Generator, metric: str
) -> None:
    index = Index.from_vectors(vectors, ids=odd_ids, metric=metric)
    queries = rng.normal(size=(15, DIM)).astype(np.float32)
    rows, expected_scores = brute_force(vectors, queries, metric, 5)

    results = by_vector(index, queries, 5)

    assert ids_of(results) == odd_ids[rows].tolist()
    scores = np.array([[hit.score for hit in hits] for hits in results])
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-4, atol=1e-4)
    raw_scores, raw_ids = index.search_vectors(queries, 5)
    assert raw_ids.dtype == np.int64 and raw_ids.tolist() == odd_ids[rows].tolist()
    np.testing.assert_allclose(raw_scores, expected_scores, rtol=1e-4, atol=1e-4)


def test_fewer_items_than_k_gives_short_lists_with_payloads(vectors: np.ndarray) -> None:
    index = Index.from_vectors(vectors[:3], payloads=[{"n": 0}, "one", [2]], metric="l2")
    (hits,) = by_vector(index, vectors[1], 10)  # one vector without its batch axis is one query
    assert [h.id for h in hits][0] == 1 and len(hits) == 3
    assert hits[0].payload == "one" and hits[0].score == pytest.approx(0.0, abs=1e-3)
    assert sorted(h.payload for h in hits if isinstance(h.payload, str)) == ["one"]
    scores, ids = index.search_vectors(vectors[:1], 5)  # never more columns than items
    assert ids.shape == scores.shape == (1, 3) and sorted(ids[0].tolist()) == [0, 1, 2]


def test_ivf_nprobe_and_hnsw_ef_search_apply_per_query(vectors: np.ndarray) -> None:
    ivf = Index.from_vectors(vectors, factory="IVF8,Flat", metric="l2")
    exact_rows, _ = brute_force(vectors, vectors[:20], "l2", 5)
    assert ids_of(by_vector(ivf, vectors[:20], 5, nprobe=8)) == exact_rows.tolist()  # all lists: exact
    hnsw = Index.from_vectors(vectors, factory="HNSW16", metric="l2")
    assert ids_of(by_vector(hnsw, vectors[:20], 5, ef_search=200)) == exact_rows.tolist()
    with pytest.raises(ConfigError, match="nprobe applies only to IVF"):
        hnsw.search_vectors(vectors[:1], 5, nprobe=4)
    with pytest.raises(ConfigError, match="ef_search applies only to HNSW"):
        ivf.search_vectors(vectors[:1], 5, ef_search=4)


# ---------------------------------------------------------------------- saving, loading, changing


@pytest.mark.parametrize("factory", ["Flat", "IVF4,Flat", "HNSW16"])
def test_ids_payloads_and_results_survive_save_and_load(
    tmp_path: Path, vectors: np.ndarray, odd_ids: np.ndarray, factory: str
) -> None:
    payloads = [f"item {i}" for i in odd_ids]
    index = Index.from_vectors(vectors, ids=odd_ids, payloads=payloads, factory=factory)
    before = by_vector(index, vectors[:10], 4)

    index.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx")

    assert by_vector(loaded, vectors[:10], 4) == before
    assert [hits[0].id for hits in before] == odd_ids[:10].tolist()
    assert before[3][0].payload == f"item {odd_ids[3]}"
    info = loaded.info()
    assert (info["count"], info["dimension"], info["factory"], info["metric"]) == (
        200,
        DIM,
        factory,
        "cosine",
    )
    assert info["toolkit_version"] == siamese.__version__
    assert set(info["files"]) == {"index.faiss", "payloads.jsonl", "vectors.npy"}
    faiss_file = index_files(tmp_path / "idx") / "index.faiss"
    assert info["files"]["index.faiss"]["bytes"] == faiss_file.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]  # no temporary or aside folder left
    # the pointer and one version: no temporary folder, no version no reader holds
    assert _entries(tmp_path / "idx") == ["CURRENT", index_files(tmp_path / "idx").name]


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_add_after_load_then_save_and_load_again(
    tmp_path: Path, vectors: np.ndarray, odd_ids: np.ndarray
) -> None:
    Index.from_vectors(vectors[:150], ids=odd_ids[:150], metric="l2").save(tmp_path / "idx")
    index = Index.load(tmp_path / "idx")

    index.add_vectors(vectors[150:], payloads=[f"new {i}" for i in range(50)])
    index.save(tmp_path / "idx")
    again = Index.load(tmp_path / "idx")

    first_new = int(odd_ids[149]) + 1  # new ids default to max + 1, max + 2, ...
    assert again.ntotal == 200
    (hits,) = by_vector(again, vectors[160:161], 1)
    assert hits[0] == Hit(first_new + 10, pytest.approx(0.0, abs=1e-3), "new 10")
    with pytest.raises(ConfigError, match="already in the index"):
        again.add_vectors(vectors[:2], ids=[5, int(odd_ids[0])])
    with pytest.raises(ConfigError, match="duplicate ids"):
        again.add_vectors(vectors[:2], ids=[5, 5])
    assert again.ntotal == 200


@pytest.mark.parametrize("factory", ["Flat", "IVF4,Flat"])
def test_remove_drops_ids_from_results_and_from_the_saved_folder(
    tmp_path: Path, vectors: np.ndarray, odd_ids: np.ndarray, factory: str
) -> None:
    index = Index.from_vectors(vectors, ids=odd_ids, payloads=[int(i) for i in odd_ids], factory=factory)
    gone = odd_ids[[0, 5, 77]]
    nprobe = 4 if factory.startswith("IVF") else None  # all lists: exact results

    assert index.remove(np.append(gone, 999_999)) == 3  # an unknown id is ignored
    index.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx")

    for idx in (index, loaded):
        assert idx.ntotal == 197
        found = {hit.id for hits in by_vector(idx, vectors, 5, nprobe=nprobe) for hit in hits}
        assert not found & set(gone.tolist())
        hits = by_vector(idx, vectors[[6, 150]], 1, nprobe=nprobe)
        assert [h[0].id for h in hits] == odd_ids[[6, 150]].tolist()
        assert [h[0].payload for h in hits] == odd_ids[[6, 150]].tolist()


def test_hnsw_refuses_remove(vectors: np.ndarray) -> None:
    index = Index.from_vectors(vectors, factory="HNSW32")
    with pytest.raises(ConfigError, match="HNSW indexes cannot remove ids.*rebuild"):
        index.remove([1, 2])
    assert index.ntotal == 200


def test_a_folder_of_an_earlier_release_loads_and_its_next_save_versions_it(
    tmp_path: Path, vectors: np.ndarray
) -> None:
    Index.from_vectors(vectors, metric="l2").save(tmp_path / "idx")
    unversion(tmp_path / "idx")  # the files at the top, no CURRENT
    assert Index.load(tmp_path / "idx").ntotal == 200
    # An earlier release's swap, between its two renames: the old folder aside, the new one
    # not yet in.
    os.rename(tmp_path / "idx", tmp_path / ".idx.previous")

    loaded = Index.load(tmp_path / "idx")
    # Readers never move files (a writer may be mid-swap): the copy is read where it is.
    assert loaded.ntotal == 200 and (tmp_path / ".idx.previous" / "manifest.json").is_file()
    assert not (tmp_path / "idx").exists()

    loaded.save(tmp_path / "idx")  # the next save puts things in order
    assert not (tmp_path / ".idx.previous").exists()
    assert _entries(tmp_path / "idx") == ["CURRENT", index_files(tmp_path / "idx").name]
    assert Index.load(tmp_path / "idx").ntotal == 200

    # the same over an unversioned folder in place: its top-level files go after the commit
    shutil.rmtree(tmp_path / "idx")
    Index.from_vectors(vectors, metric="l2").save(tmp_path / "idx")
    unversion(tmp_path / "idx")
    Index.load(tmp_path / "idx").save(tmp_path / "idx")
    assert _entries(tmp_path / "idx") == ["CURRENT", index_files(tmp_path / "idx").name]
    np.testing.assert_array_equal(Index.load(tmp_path / "idx").vectors, vectors)


KILL_SCRIPT = """
import sys
from siamese import load_tower
from siamese.index import Index

tower_file, target, sentences = sys.argv[1], sys.argv[2], sys.argv[3:]
index = Index.build(load_tower(tower_file), sentences, tower_path=tower_file, batch_size=8, progress=False)
index.save(target)
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_a_rebuild_killed_while_embedding_writing_or_swapping_leaves_the_previous_index(
    tmp_path: Path, text_tower_file: Path
) -> None:
    target = tmp_path / "idx"
    previous = Index.build(siamese.load_tower(text_tower_file), SENTENCES[:10], tower_path=text_tower_file)
    previous.save(target)
    script = tmp_path / "rebuild.py"
    script.write_text(textwrap.dedent(KILL_SCRIPT))
    left_behind = {
        # the phase -> what the killed build must have left beside the current version
        "embed": lambda names: names == [],
        "faiss-write": lambda names: len(names) == 1 and names[0].startswith(".saving-"),
        "swap": lambda names: len(names) == 1 and names[0].startswith("v-"),  # whole, not current
    }
    for phase, check in left_behind.items():
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", SIAMESE_KILL_AT=phase)
        proc = subprocess.run(
            [sys.executable, str(script), str(text_tower_file), str(target), *SENTENCES],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == -signal.SIGKILL, (phase, proc.stderr[-2000:])  # it died at the hook
        current = index_files(target).name
        extra = [p.name for p in target.iterdir() if p.name not in ("CURRENT", current)]
        assert check(sorted(extra)), (phase, extra)

        index = Index.load(target)  # the previous index, whole
        assert index.ntotal == 10 and index.payloads == tuple(SENTENCES[:10])
        np.testing.assert_array_equal(index.vectors, previous.vectors)
        assert [hits[0].payload for hits in index.search(SENTENCES[:10], k=1)] == SENTENCES[:10]
    # The next save clears what the killed processes left behind.
    Index.build(siamese.load_tower(text_tower_file), SENTENCES, tower_path=text_tower_file).save(target)
    assert _entries(target) == ["CURRENT", index_files(target).name]
    assert Index.load(target).ntotal == len(SENTENCES)


# ---------------------------------------------------------------------- towers


@pytest.fixture(scope="module")
def text_tower_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tower = siamese.text_tower(
        SENTENCES, vocab_size=200, sequence_length=10, embedding_dim=16, units=16, seed=1
    )
    path = tmp_path_factory.mktemp("run") / "tower.keras"
    tower.save(path)
    return path


def test_text_tower_corpus_finds_each_sentence_itself(
    tmp_path: Path, text_tower_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tower = siamese.load_tower(text_tower_file)
    index = Index.build(tower, SENTENCES, tower_path=text_tower_file, batch_size=8)

    captured = capsys.readouterr()
    assert captured.out == "" and "20/20" in captured.err  # the progress bar goes to stderr
    results = index.search(SENTENCES, k=3)
    assert [hits[0].id for hits in results] == list(range(20))
    assert [hits[0].payload for hits in results] == SENTENCES
    assert all(hits[0].score == pytest.approx(1.0, abs=1e-4) for hits in results)

    index.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx")  # brings the tower back from the manifest
    assert loaded.tower is not None
    assert loaded.info()["tower_path"] == os.path.relpath(text_tower_file, tmp_path / "idx")
    assert ids_of(loaded.search(SENTENCES[:5], k=3)) == ids_of(results[:5])


def test_changed_tower_is_refused_on_load(tmp_path: Path) -> None:
    tower_path = tmp_path / "run" / "tower.keras"
    tower_path.parent.mkdir()
    siamese.text_tower(SENTENCES, vocab_size=200, sequence_length=10, embedding_dim=8, units=8, seed=1).save(
        tower_path
    )
    Index.build(None, SENTENCES, tower_path=tower_path, progress=False).save(tmp_path / "idx")
    assert Index.load(tmp_path / "idx").tower is not None

    siamese.text_tower(SENTENCES, vocab_size=200, sequence_length=10, embedding_dim=8, units=8, seed=2).save(
        tower_path
    )

    with pytest.raises(IndexFileError, match="tower changed since the index was built: rebuild the index"):
        Index.load(tmp_path / "idx")
    assert Index.load(tmp_path / "idx", check_tower=False).ntotal == 20
    tower_path.unlink()
    with pytest.raises(IndexFileError, match="tower file .* is missing"):
        Index.load(tmp_path / "idx")


def test_image_arrays_and_image_files(tmp_path: Path, rng: np.random.Generator) -> None:
    images = rng.integers(0, 256, size=(12, 8, 8, 1), dtype=np.uint8)
    tower = siamese.image_tower((8, 8, 1), filters=(4,), embedding_dim=8, seed=0)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"img{i}.png"))
        Image.fromarray(image[:, :, 0]).save(paths[-1])

    from_arrays = Index.build(tower, images, progress=False)
    from_files = Index.build(tower, paths, progress=False)

    assert [hits[0].id for hits in from_arrays.search(images, k=2)] == list(range(12))
    assert [hits[0].payload for hits in from_files.search(images, k=1)] == paths
    assert ids_of(from_files.search(images, k=4)) == ids_of(from_arrays.search(images, k=4))
    with pytest.raises(ConfigError, match=r"\(8, 8, 1\).*\(3, 9, 9, 1\)"):
        from_arrays.search(np.zeros((3, 9, 9, 1), dtype=np.uint8))


# ---------------------------------------------------------------------- recall


def test_recall_at_k_is_exact_for_flat_and_lower_for_coarse_ivf() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(20, DIM)) * 2
    points = (centers[rng.integers(0, 20, 1200)] + rng.normal(size=(1200, DIM)) * 0.5).astype(np.float32)
    corpus, queries = points[:1000], points[1000:]

    flat = Index.from_vectors(corpus, metric="l2")
    ivf = Index.from_vectors(corpus, factory="IVF16,Flat", metric="l2")

    assert recall_at_k(flat, queries, 10) == 1.0
    coarse = recall_at_k(ivf, queries, 10, nprobe=1)
    assert 0.5 < coarse < 1.0
    assert recall_at_k(ivf, queries, 10, nprobe=16) == 1.0


# ---------------------------------------------------------------------- bad input


def test_query_of_wrong_dimension_or_type(vectors: np.ndarray, text_tower_file: Path) -> None:
    index = Index.from_vectors(vectors)
    with pytest.raises(ConfigError, match=r"\(3, 5\).*\(n, 16\)"):
        index.search_vectors(np.zeros((3, 5), dtype=np.float32), 3)
    with pytest.raises(ConfigError, match="no tower to search raw queries.*search_vectors"):
        index.search(["some text"])
    with pytest.raises(ConfigError, match="no tower to add raw items.*add_vectors"):
        index.add(["some text"])
    with pytest.raises(ConfigError, match="positive integer"):
        index.search_vectors(vectors[:1], k=0)
    text_index = Index.build(siamese.load_tower(text_tower_file), SENTENCES[:4], progress=False)
    with pytest.raises(ConfigError, match=r"\(2, 7\).*\(n, 16\)"):
        text_index.search_vectors(np.zeros((2, 7), dtype=np.float32), 2)
    # search() takes raw items only: vectors, even of the index's width, are not guessed at.
    with pytest.raises(ConfigError, match="strings"):
        text_index.search(vectors[:2], k=2)
    assert len(by_vector(text_index, vectors[:2], 2)) == 2


def test_empty_corpus_duplicate_or_negative_ids_and_bad_options(
    vectors: np.ndarray, text_tower_file: Path
) -> None:
    with pytest.raises(ConfigError, match="empty corpus"):
        Index.from_vectors(np.zeros((0, DIM), dtype=np.float32))
    with pytest.raises(ConfigError, match="empty corpus"):
        Index.build(siamese.load_tower(text_tower_file), [], progress=False)
    with pytest.raises(ConfigError, match=r"duplicate ids: \[3\]"):
        Index.from_vectors(vectors[:4], ids=[1, 3, 3, 4])
    with pytest.raises(ConfigError, match="non-negative"):
        Index.from_vectors(vectors[:2], ids=[-1, 0])
    with pytest.raises(ConfigError, match="2 payloads for 4 items"):
        Index.from_vectors(vectors[:4], payloads=["a", "b"])
    with pytest.raises(ConfigError, match="not JSON-serialisable"):
        Index.from_vectors(vectors[:1], payloads=[object()])
    with pytest.raises(ConfigError, match="unknown metric 'dot'"):
        Index.from_vectors(vectors, metric="dot")


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("Blah,Flat", "unknown FAISS factory string 'Blah,Flat'"),
        ("PQ5", "PQ m=5 must divide the dimension 16"),
        ("IVF512,Flat", "512 IVF lists but only 200 vectors.*smaller nlist, e.g. 'IVF14,Flat'"),
    ],
)
def test_bad_factory_strings(vectors: np.ndarray, factory: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Index.from_vectors(vectors, factory=factory)


def _rewrite_manifest(folder: Path, change) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _tamper(folder: Path, what: str) -> str:
    """Damage the saved folder one way; return the file the error must name."""
    if what.startswith("missing "):
        name = what.split()[1]
        (folder / name).unlink()
        return name
    if what == "truncated index":
        data = (folder / "index.faiss").read_bytes()
        (folder / "index.faiss").write_bytes(data[: len(data) // 2])
        return "index.faiss"
    if what == "flipped byte in vectors":
        data = bytearray((folder / "vectors.npy").read_bytes())
        data[-5] ^= 0xFF
        (folder / "vectors.npy").write_bytes(bytes(data))
        return "vectors.npy"
    if what == "bad JSON manifest":
        (folder / "manifest.json").write_text('{"format_version": 1,')
        return "manifest.json"
    if what == "garbage index with matching checksum":
        (folder / "index.faiss").write_bytes(b"not a faiss index")
        _rewrite_manifest(folder, lambda m: m["files"].update(_record(folder / "index.faiss")))
        return "index.faiss"
    if what == "bad JSON payload line with matching checksum":
        lines = (folder / "payloads.jsonl").read_text().splitlines()
        lines[2] = '{"id": 2, "payload": '
        (folder / "payloads.jsonl").write_text("\n".join(lines) + "\n")
        _rewrite_manifest(folder, lambda m: m["files"].update(_record(folder / "payloads.jsonl")))
        return "payloads.jsonl, line 3"
    if what == "count disagrees with the index":
        _rewrite_manifest(folder, lambda m: m.update(count=7))
        return "index.faiss"
    raise AssertionError(what)


def _record(path: Path) -> dict:
    data = path.read_bytes()
    return {path.name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}}


@pytest.mark.parametrize(
    "what",
    [
        "missing index.faiss",
        "missing payloads.jsonl",
        "missing vectors.npy",
        "missing manifest.json",
        "truncated index",
        "flipped byte in vectors",
        "bad JSON manifest",
        "garbage index with matching checksum",
        "bad JSON payload line with matching checksum",
        "count disagrees with the index",
    ],
)
def test_damaged_folder_raises_index_file_error_naming_the_file(
    tmp_path: Path, vectors: np.ndarray, what: str
) -> None:
    Index.from_vectors(vectors, payloads=[str(i) for i in range(200)]).save(tmp_path / "idx")
    name = _tamper(index_files(tmp_path / "idx"), what)
    with pytest.raises(IndexFileError, match=name.replace(".", r"\.")):
        Index.load(tmp_path / "idx")


def test_missing_folder_and_foreign_folder(tmp_path: Path, vectors: np.ndarray) -> None:
    with pytest.raises(IndexFileError, match="no index folder"):
        Index.load(tmp_path / "nowhere")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="refusing to replace"):
        Index.from_vectors(vectors).save(tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


def test_vectors_and_ids_are_read_only_views(vectors: np.ndarray, odd_ids: np.ndarray) -> None:
    index = Index.from_vectors(vectors, ids=odd_ids, metric="l2")
    np.testing.assert_array_equal(index.vectors, vectors)
    np.testing.assert_array_equal(index.ids, odd_ids)
    with pytest.raises(ValueError, match="read-only"):
        index.vectors[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        index.ids[0] = 1
    index.add_vectors(vectors[:1] + 1.0)
    assert index.vectors.shape == (201, DIM) and index.ids[-1] == odd_ids.max() + 1


def _mapped(array: np.ndarray) -> bool:
    """Whether an array is backed by a memory-mapped file (not by the process's own memory)."""
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = array.base if isinstance(array.base, np.ndarray) else None
    return False


def test_the_exact_vectors_live_in_a_mapped_file_unless_asked_for_in_memory(
    tmp_path: Path, vectors: np.ndarray, odd_ids: np.ndarray
) -> None:
    built = Index.from_vectors(vectors, ids=odd_ids, metric="l2")
    assert _mapped(built.vectors)  # a temporary file, not a second copy in RAM
    built.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx")
    assert _mapped(loaded.vectors)
    np.testing.assert_array_equal(loaded.vectors, vectors)
    in_memory = Index.load(tmp_path / "idx", vectors_in_memory=True)
    assert not _mapped(in_memory.vectors)
    np.testing.assert_array_equal(in_memory.vectors, vectors)
    assert not _mapped(Index.from_vectors(vectors, metric="l2", vectors_in_memory=True).vectors)

    # the loaded index keeps its rows while its folder is replaced (the mapped version folder
    # is deleted by the save): remove, add and save again from the mapping
    mapped_version = set(_entries(tmp_path / "idx")) - {"CURRENT"}
    Index.from_vectors(vectors[:5] + 9.0, metric="l2").save(tmp_path / "idx")
    assert not mapped_version & set(_entries(tmp_path / "idx"))  # gone from the folder
    assert loaded.remove(odd_ids[:50]) == 50
    loaded.add_vectors(vectors[:3] - 1.0, ids=[1, 2, 3])
    expected = np.concatenate([vectors[50:], vectors[:3] - 1.0])
    np.testing.assert_array_equal(loaded.vectors, expected)
    loaded.save(tmp_path / "idx")
    again = Index.load(tmp_path / "idx")
    np.testing.assert_array_equal(again.vectors, expected)
    np.testing.assert_array_equal(again.ids, np.concatenate([odd_ids[50:], [1, 2, 3]]))
    assert ids_of(by_vector(again, expected[-2:], 1)) == [[2], [3]]


def test_recall_at_k_reads_the_stored_vectors_a_block_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    corpus = rng.normal(size=(1000, DIM)).astype(np.float32)
    queries = rng.normal(size=(100, DIM)).astype(np.float32)
    ivf = Index.from_vectors(corpus, factory="IVF16,Flat", metric="cosine")
    whole = recall_at_k(ivf, queries, 10, nprobe=2)
    monkeypatch.setattr(siamese.index.api, "EXACT_BLOCK", 64)  # 16 blocks, the last one short
    assert recall_at_k(ivf, queries, 10, nprobe=2) == whole
    assert recall_at_k(ivf, queries, 10, nprobe=16) == 1.0


def test_an_on_disk_ivf_index_answers_like_the_in_memory_one_and_loads_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(2)
    corpus = rng.normal(size=(3000, DIM)).astype(np.float32)
    queries = rng.normal(size=(40, DIM)).astype(np.float32)
    ids = np.arange(3000, dtype=np.int64) * 3 + 5
    payloads = [f"item {i}" for i in range(3000)]
    monkeypatch.setattr(siamese.index.faiss_helpers, "SHARD_ROWS", 700)  # 5 shards merged on disk
    memory = Index.from_vectors(corpus, ids=ids, payloads=payloads, factory="IVF32,Flat")
    disk = Index.from_vectors(corpus, ids=ids, payloads=payloads, factory="IVF32,Flat", on_disk=True)
    assert disk.on_disk and not memory.on_disk
    for nprobe in (1, 8):
        np.testing.assert_array_equal(
            disk.search_vectors(queries, 10, nprobe=nprobe)[1],
            memory.search_vectors(queries, 10, nprobe=nprobe)[1],
        )

    disk.save(tmp_path / "idx")
    files = index_files(tmp_path / "idx")
    assert (files / "lists.ivfdata").is_file()
    assert "lists.ivfdata" in json.loads((files / "manifest.json").read_text())["files"]
    mapped_version = set(_entries(tmp_path / "idx"))
    loaded = Index.load(tmp_path / "idx")  # the lists are found beside index.faiss, in the version folder
    assert loaded.on_disk and _mapped(loaded.vectors)
    assert by_vector(loaded, queries, 5, nprobe=8) == by_vector(memory, queries, 5, nprobe=8)
    assert capfd.readouterr().out == ""  # nothing of FAISS's own printing on stdout

    with pytest.raises(ConfigError, match="on-disk index loaded from a folder"):
        loaded.add_vectors(corpus[:1], ids=[1])
    with pytest.raises(ConfigError, match="on-disk index loaded from a folder"):
        loaded.remove([5])
    # the loaded index keeps answering after its version is replaced (and removed) by a save
    Index.from_vectors(corpus[:100], factory="IVF4,Flat", on_disk=True).save(tmp_path / "idx")
    assert not (mapped_version - {"CURRENT"}) & set(_entries(tmp_path / "idx"))
    assert by_vector(loaded, queries, 5, nprobe=8) == by_vector(memory, queries, 5, nprobe=8)
    with pytest.raises(ConfigError, match="IVF"):
        Index.from_vectors(corpus, factory="HNSW16", on_disk=True)


def test_large_files_are_checked_by_size_at_load_and_by_sha256_on_request(
    tmp_path: Path, vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    Index.from_vectors(vectors, factory="IVF4,Flat", on_disk=True).save(tmp_path / "idx")
    lists = index_files(tmp_path / "idx") / "lists.ivfdata"
    data = bytearray(lists.read_bytes())
    data[0] ^= 0xFF  # same size, a vector altered (not an id: the ids are checked against the payloads)
    lists.write_bytes(bytes(data))
    with pytest.raises(IndexFileError, match="lists.ivfdata: corrupt"):
        Index.load(tmp_path / "idx")  # small: hashed at every load
    monkeypatch.setattr(siamese.index.folder, "HASH_LIMIT", 1000)  # as if it were over the limit
    assert Index.load(tmp_path / "idx").ntotal == len(vectors)  # checked by size only
    with pytest.raises(IndexFileError, match="lists.ivfdata: corrupt"):
        Index.load(tmp_path / "idx", verify=True)
    lists.write_bytes(bytes(data[:-8]))
    with pytest.raises(IndexFileError, match="truncated"):
        Index.load(tmp_path / "idx")


# ---------------------------------------------------------------------- bounded requests


def test_k_beyond_the_index_returns_every_item_without_allocating_for_k(
    vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from siamese.index import api

    index = Index.from_vectors(vectors[:50], metric="l2")
    scores, ids = index.search_vectors(vectors[:3], 10**12)  # would be terabytes for k
    assert ids.shape == scores.shape == (3, 50)
    assert sorted(ids[0].tolist()) == list(range(50))
    # many queries: searched in bounded chunks (here 4 queries of 50 results at a time),
    # with the same answers as all at once
    whole = index.search_vectors(vectors, 50)
    monkeypatch.setattr(api, "RESULT_CELLS", 200)
    chunked = index.search_vectors(vectors, 50)
    np.testing.assert_array_equal(chunked[1], whole[1])
    np.testing.assert_array_equal(chunked[0], whole[0])
    emptied = Index.from_vectors(vectors[:3], metric="l2")
    emptied.remove([0, 1, 2])
    assert emptied.search_vectors(vectors[:2], 5)[1].shape == (2, 0)


def test_text_index_refuses_images_empty_and_oversized_queries(text_tower_file: Path, tmp_path: Path) -> None:
    index = Index.build(siamese.load_tower(text_tower_file), SENTENCES, progress=False)
    assert index.input_type == "text"
    image = tmp_path / "q.png"
    Image.new("L", (8, 8)).save(image)
    for query, words in [
        (np.zeros((8, 8, 1), np.float32), "takes text"),
        (image, "takes text"),
        ("", "empty"),
        ("\t \n", "empty"),
        ("x" * 10_001, "limit is 10,000"),
    ]:
        with pytest.raises(ConfigError, match=words):
            index.search([SENTENCES[0], query], k=1)
    assert index.search([str(image)], k=1)  # a string is text, even one that names a file


def test_image_index_refuses_text_missing_oversized_and_huge_images(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from siamese.index import queries

    tower = siamese.image_tower((8, 8, 1), filters=(4,), embedding_dim=8, seed=0)
    images = rng.integers(0, 256, size=(6, 8, 8, 1), dtype=np.uint8)
    index = Index.build(tower, images, progress=False)
    assert index.input_type == "image"
    small = tmp_path / "small.png"
    Image.fromarray(images[0, :, :, 0]).save(small)
    bomb = tmp_path / "bomb.png"
    Image.new("L", (10_000, 5_000)).save(bomb)  # a small file of 50 megapixels
    for query, words in [
        ("a man plays a guitar", "takes images"),
        ("", "empty"),
        (str(tmp_path / "missing.png"), "not an image file"),
        (bomb, "10000×5000 pixels"),
    ]:
        with pytest.raises(ConfigError, match=words):
            index.search([query], k=1)
    assert index.search([small], k=1)[0][0].id == 0
    monkeypatch.setattr(queries, "MAX_QUERY_FILE_BYTES", 10)
    with pytest.raises(ConfigError, match="the limit is 10"):
        index.search([small], k=1)


def test_a_first_save_killed_before_its_commit_leaves_a_folder_the_next_save_takes(
    tmp_path: Path, vectors: np.ndarray
) -> None:
    # what a first save killed at "swap" leaves: a whole version, no CURRENT
    Index.from_vectors(vectors, metric="l2").save(tmp_path / "idx")
    (tmp_path / "idx" / "CURRENT").unlink()
    with pytest.raises(IndexFileError):
        Index.load(tmp_path / "idx")
    Index.from_vectors(vectors[:20], metric="l2").save(tmp_path / "idx")
    assert Index.load(tmp_path / "idx").ntotal == 20
    assert _entries(tmp_path / "idx") == ["CURRENT", index_files(tmp_path / "idx").name]
    # a folder holding anything else is not taken
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an index"):
        Index.from_vectors(vectors, metric="l2").save(tmp_path / "other")
