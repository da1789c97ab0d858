"""The Ray engine of the index build: the same index as the single-process build, on a local
Ray of 2 CPUs started by these tests; workers killed mid-build; one line for what cannot work."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SMALL, closed_port, index_files, pairs_file, train_text_pairs

import siamese
from siamese import cli
from siamese.errors import EngineError
from siamese.index import Index, build_on_ray

ray = pytest.importorskip("ray", reason='the Ray engine needs the ray extra: pip install "siamese[ray]"')

pytestmark = pytest.mark.slow

WORDS = (
    "man woman child dog cat horse plays runs eats sings rides guitar ball food park house river "
    "red blue green small big old young happy slowly quickly"
).split()


def _corpus(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, int(rng.integers(3, 9)))) for _ in range(n)]


CORPUS = _corpus(3000)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tower_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tower = siamese.text_tower(CORPUS, vocab_size=64, sequence_length=10, embedding_dim=16, units=16, seed=3)
    path = tmp_path_factory.mktemp("run") / "tower.keras"
    tower.save(path)
    return path


@pytest.fixture(scope="module")
def single(tower_file: Path) -> Index:
    return Index.build(siamese.load_tower(tower_file), CORPUS, tower_path=tower_file, progress=False)


def assert_same_results(a: Index, b: Index, queries: np.ndarray, k: int = 10, **options) -> None:
    """The same neighbours, up to exact ties: equal scores, and equal sets of ids above each
    query's k-th score (items tied at the k-th score may be cut in either order)."""
    a_scores, a_ids = a.search_vectors(queries, k, **options)
    b_scores, b_ids = b.search_vectors(queries, k, **options)
    np.testing.assert_allclose(a_scores, b_scores, atol=1e-5)
    for row in range(len(queries)):
        cut = a_scores[row, -1] + 1e-5
        assert set(a_ids[row][a_scores[row] > cut]) == set(b_ids[row][b_scores[row] > cut]), row


def test_the_ray_build_equals_the_single_process_build(local_ray, tower_file, single, tmp_path):
    on_ray = build_on_ray(tower_file, CORPUS, workers=2, block_size=400, progress=False)
    np.testing.assert_array_equal(on_ray.ids, single.ids)
    assert on_ray.payloads == single.payloads == tuple(CORPUS)
    np.testing.assert_allclose(on_ray.vectors, single.vectors, atol=1e-5)
    assert_same_results(on_ray, single, single.vectors[::29])
    assert on_ray.search(["man plays guitar"], k=3) == single.search(["man plays guitar"], k=3)

    on_ray.save(tmp_path / "ray")
    single.save(tmp_path / "single")
    loaded = Index.load(tmp_path / "ray")  # the normal folder: manifest, checksums, tower
    facts = ("dimension", "metric", "factory", "count", "tower_sha256")
    assert {k: loaded.info()[k] for k in facts} == {
        k: Index.load(tmp_path / "single").info()[k] for k in facts
    }
    assert_same_results(loaded, single, single.vectors[::29])


def test_the_ray_ivf_build_fills_shards_and_merges_them_in_row_order(local_ray, tower_file, tmp_path):
    factory = "IVF16,Flat"
    on_ray = build_on_ray(tower_file, CORPUS, factory=factory, workers=2, block_size=700, progress=False)
    # the single-process build over the very same vectors trains the same quantizer
    twin = Index.from_vectors(on_ray.vectors, factory=factory, metric="ip")
    on_ray.save(tmp_path / "ray")
    twin.save(tmp_path / "twin")
    read = [faiss.read_index(str(index_files(tmp_path / name) / "index.faiss")) for name in ("ray", "twin")]
    ivf_ray, ivf_twin = (faiss.extract_index_ivf(index) for index in read)  # (read keeps them alive)
    centroids = [ivf.quantizer.reconstruct_n(0, ivf.nlist) for ivf in (ivf_ray, ivf_twin)]
    np.testing.assert_array_equal(*centroids)
    for i in range(ivf_ray.nlist):  # each list holds the same ids in the same order
        ray_list, twin_list = (
            faiss.rev_swig_ptr(ivf.invlists.get_ids(i), ivf.invlists.list_size(i)).copy()
            for ivf in (ivf_ray, ivf_twin)
        )
        np.testing.assert_array_equal(ray_list, twin_list)
    queries = on_ray.vectors[::31]
    for nprobe in (1, 4):
        assert_same_results(on_ray, twin, queries, nprobe=nprobe)

    # the same shards merged into lists on disk instead
    on_disk = build_on_ray(
        tower_file, CORPUS, factory=factory, workers=2, block_size=700, progress=False, on_disk=True
    )
    assert on_disk.on_disk
    for nprobe in (1, 4):
        assert_same_results(on_disk, on_ray, queries, nprobe=nprobe)


def test_hnsw_is_embedded_on_ray_and_added_in_one_process(local_ray, tower_file, single):
    on_ray = build_on_ray(tower_file, CORPUS, factory="HNSW16", workers=2, block_size=1000, progress=False)
    np.testing.assert_allclose(on_ray.vectors, single.vectors, atol=1e-5)
    twin = Index.from_vectors(on_ray.vectors, factory="HNSW16", metric="ip")
    assert_same_results(on_ray, twin, on_ray.vectors[::37], ef_search=64)


def test_a_worker_killed_once_is_restarted_and_the_build_completes(
    local_ray, tower_file, single, tmp_path, monkeypatch
):
    marker = tmp_path / "killed"
    monkeypatch.setenv("SIAMESE_KILL_AT", "embed")  # an actor kills itself after its first batch
    monkeypatch.setenv("SIAMESE_KILL_ONCE", str(marker))  # the first one to get there only
    on_ray = build_on_ray(tower_file, CORPUS, workers=2, block_size=500, progress=False)
    assert marker.exists()  # a worker died mid-build
    np.testing.assert_allclose(on_ray.vectors, single.vectors, atol=1e-5)
    np.testing.assert_array_equal(on_ray.ids, single.ids)


def test_workers_that_keep_dying_fail_the_build_in_one_line_and_leave_the_previous_index(
    local_ray, tower_file, single, tmp_path, monkeypatch
):
    target = tmp_path / "idx"
    previous = Index.build(siamese.load_tower(tower_file), CORPUS[:50], tower_path=tower_file, progress=False)
    previous.save(target)
    monkeypatch.setenv("SIAMESE_KILL_AT", "embed")  # every actor, restarted or not, dies
    with pytest.raises(EngineError, match="worker") as failure:
        build_on_ray(tower_file, CORPUS, workers=2, block_size=500, progress=False)
    assert "\n" not in str(failure.value)
    kept = Index.load(target)
    assert kept.payloads == tuple(CORPUS[:50])
    np.testing.assert_array_equal(kept.vectors, previous.vectors)


def test_the_cli_ray_build_of_sick_answers_like_the_local_build(local_ray, data_dir, tmp_path):
    run = tmp_path / "run"
    trained = train_text_pairs(
        ["--data", str(pairs_file(tmp_path / "p.tsv")), "--epochs", "1", "--out", str(run), *SMALL]
    )
    assert trained.exit_code == 0, trained.output
    runner = CliRunner()
    for engine in ("local", "ray"):
        built = runner.invoke(
            cli.index,
            [
                "build",
                "--run",
                str(run),
                "--input",
                "sick",
                "--out",
                str(tmp_path / engine),
                "--engine",
                engine,
            ],
        )
        assert built.exit_code == 0, built.output
    local, on_ray = Index.load(tmp_path / "local"), Index.load(tmp_path / "ray")
    assert local.ntotal > 2000
    np.testing.assert_array_equal(on_ray.ids, local.ids)
    assert on_ray.payloads == local.payloads
    assert_same_results(on_ray, local, local.vectors[::97])
    queries = ["A man is playing a guitar", "Two dogs are running on the grass"]
    answers = [
        json.loads(
            runner.invoke(cli.index, ["query", "--index", str(tmp_path / e), q, "-k", "5", "--json"]).output
        )
        for e in ("local", "ray")
        for q in queries
    ]
    assert answers[:2] == answers[2:]


def test_what_cannot_work_is_one_line_and_exit_2(tmp_path, monkeypatch, tower_file):
    run = tmp_path / "run"
    run.mkdir()
    (run / "tower.keras").write_bytes(tower_file.read_bytes())
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS[:20]) + "\n")
    build = ["build", "--run", str(run), "--input", str(corpus), "--out", str(tmp_path / "idx")]
    runner = CliRunner()

    unreachable = runner.invoke(
        cli.index, [*build, "--engine", "ray", "--address", f"127.0.0.1:{closed_port()}"]
    )
    assert unreachable.exit_code == 2 and "cannot reach the Ray cluster" in unreachable.output
    assert len(unreachable.output.strip().splitlines()) == 1

    wrong = runner.invoke(cli.index, [*build, "--workers", "2"])
    assert wrong.exit_code == 2 and "only with --engine ray" in wrong.output

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    missing = runner.invoke(cli.index, [*build, "--engine", "ray"])
    assert missing.exit_code == 2 and 'pip install "siamese[ray]"' in missing.output
    assert not (tmp_path / "idx").exists()
