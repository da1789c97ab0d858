"""siamese-index build / query / info, end to end from a trained run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SMALL, index_files
from PIL import Image

import siamese
from siamese import cli
from siamese.index import Index

WORDS = "man woman dog cat plays runs eats guitar ball food park house red blue small big".split()


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text-run")
    rng = np.random.default_rng(0)
    rows = ["sentence1\tsentence2\tlabel"]
    for _ in range(80):
        a, b = " ".join(rng.choice(WORDS, 5)), " ".join(rng.choice(WORDS, 5))
        rows.append(f"{a}\t{b}\t{rng.uniform(1, 5):.2f}")
    data = folder / "pairs.tsv"
    data.write_text("\n".join(rows) + "\n")
    run = folder / "run"
    args = ["--task", "text-pairs", "--data", str(data), "--epochs", "1", "--out", str(run), *SMALL]
    result = CliRunner().invoke(cli.train, args)
    assert result.exit_code == 0, result.output
    return run, data


def _index(args):
    return CliRunner().invoke(cli.index, args)


def test_build_query_info(text_run, tmp_path):
    run, data = text_run
    corpus = tmp_path / "corpus.txt"
    sentences = ["a man plays the guitar", "two dogs run in the park", "a woman eats red food"]
    corpus.write_text("\n".join(sentences) + "\n")
    out = tmp_path / "idx"
    built = _index(["build", "--run", str(run), "--input", str(corpus), "--out", str(out), "--check-recall"])
    assert built.exit_code == 0, built.output
    assert "3 items" in built.output and "recall@10 against exact search: 1.0000" in built.output
    query = _index(["query", "--index", str(out), "two dogs run in the park", "-k", "2", "--json"])
    assert query.exit_code == 0, query.output
    hits = json.loads(query.output)
    assert len(hits) == 2
    assert hits[0]["payload"] == "two dogs run in the park"
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    plain = _index(["query", "--index", str(out), "a man plays the guitar", "-k", "1"])
    assert plain.exit_code == 0 and "a man plays the guitar" in plain.output
    info = _index(["info", "--index", str(out)])
    manifest = json.loads(info.output)
    assert manifest["count"] == 3 and manifest["metric"] == "cosine"


def test_an_on_disk_build_queries_like_the_in_memory_one_and_info_verifies_it(text_run, tmp_path):
    run, data = text_run
    outputs = {}
    for name, extra in (("memory", []), ("disk", ["--on-disk"])):
        out = tmp_path / name
        built = _index(
            [
                "build",
                "--run",
                str(run),
                "--input",
                str(data),
                "--out",
                str(out),
                "--factory",
                "IVF4,Flat",
                *extra,
            ]
        )
        assert built.exit_code == 0, built.output
        query = _index(["query", "--index", str(out), "a man plays the guitar", "-k", "5", "--json"])
        assert query.exit_code == 0, query.output
        outputs[name] = json.loads(query.output)  # stdout holds the JSON alone
    assert outputs["disk"] == outputs["memory"]
    assert (index_files(tmp_path / "disk") / "lists.ivfdata").is_file()
    verified = _index(["info", "--index", str(tmp_path / "disk"), "--verify"])
    assert verified.exit_code == 0 and "verified" in verified.output
    flat = _index(
        ["build", "--run", str(run), "--input", str(data), "--out", str(tmp_path / "f"), "--on-disk"]
    )
    assert flat.exit_code == 2 and "IVF" in flat.output


def test_pairs_file_input_indexes_distinct_sentences(text_run, tmp_path):
    run, data = text_run
    out = tmp_path / "idx"
    result = _index(
        ["build", "--run", str(run), "--input", str(data), "--out", str(out), "--factory", "HNSW32"]
    )
    assert result.exit_code == 0, result.output
    lines = data.read_text().splitlines()[1:]
    distinct = {part for line in lines for part in line.split("\t")[:2]}
    assert f"{len(distinct)} items" in result.output


def test_stale_tower_and_bad_queries_are_one_line(text_run, tmp_path):
    run, _ = text_run
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one sentence\nanother sentence\n")
    out = tmp_path / "idx"
    assert _index(["build", "--run", str(run), "--input", str(corpus), "--out", str(out)]).exit_code == 0
    neither = _index(["query", "--index", str(out)])
    assert neither.exit_code == 2 and "either a TEXT query or --image" in neither.output
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    nothing = _index(["build", "--run", str(run), "--input", str(empty), "--out", str(tmp_path / "e")])
    assert nothing.exit_code == 2 and "empty" in nothing.output
    (index_files(out) / "payloads.jsonl").write_text("truncated")
    corrupt = _index(["query", "--index", str(out), "one sentence"])
    assert corrupt.exit_code == 2 and "payloads.jsonl" in corrupt.output
    assert "Traceback" not in corrupt.output


@pytest.mark.slow
def test_real_sick_index_returns_the_sentence_itself(tmp_path, data_dir):
    run = tmp_path / "t"
    trained = CliRunner().invoke(
        cli.train, ["--task", "text-pairs", "--epochs", "1", "--units", "16", "--out", str(run)]
    )
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "idx"
    built = _index(["build", "--run", str(run), "--input", "sick", "--out", str(out)])
    assert built.exit_code == 0, built.output
    result = _index(["query", "--index", str(out), "A man is playing a guitar", "-k", "5", "--json"])
    hits = json.loads(result.output)
    # Its own entry is the top hit (texts that differ only in case or punctuation embed the
    # same and may tie with it, in any order).
    tied = [h["payload"] for h in hits if h["score"] >= hits[0]["score"] - 1e-6]
    assert "A man is playing a guitar" in tied
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    from siamese.index import Index

    loaded = Index.load(out)
    again = loaded.search(["A man is playing a guitar"], k=5)[0]
    assert [h.id for h in again] == [h["id"] for h in hits]


@pytest.fixture(scope="module")
def image_index(tmp_path_factory):
    """An image index of 12 small PNGs, with its tower saved beside it; a query image file."""
    folder = tmp_path_factory.mktemp("image-index")
    rng = np.random.default_rng(0)
    tower = siamese.image_tower((8, 8, 1), filters=(4,), embedding_dim=8, seed=0)
    tower.save(folder / "tower.keras")
    paths = []
    for i, image in enumerate(rng.integers(0, 256, size=(12, 8, 8), dtype=np.uint8)):
        paths.append(str(folder / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    Index.build(tower, paths, tower_path=folder / "tower.keras", progress=False).save(folder / "idx")
    return folder / "idx", paths[3]


def test_a_huge_k_returns_the_whole_index_and_no_more(text_run, tmp_path):
    run, data = text_run
    out = tmp_path / "idx"
    assert _index(["build", "--run", str(run), "--input", str(data), "--out", str(out)]).exit_code == 0
    ntotal = Index.load(out).ntotal
    result = _index(["query", "--index", str(out), "man plays guitar", "-k", "1000000000", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == ntotal


def test_queries_of_the_wrong_kind_empty_or_too_large_are_one_line(text_run, image_index, tmp_path):
    run, data = text_run
    text_idx = tmp_path / "idx"
    assert _index(["build", "--run", str(run), "--input", str(data), "--out", str(text_idx)]).exit_code == 0
    image_idx, image_file = image_index
    cases = [
        (["--index", str(text_idx), "--image", image_file], "takes text"),
        (["--index", str(image_idx), "a man plays a guitar"], "takes images"),
        (["--index", str(text_idx), ""], "empty"),
        (["--index", str(text_idx), "   "], "empty"),
        (["--index", str(text_idx), "word " * 2001], "limit is 10,000"),
    ]
    for args, words in cases:
        result = _index(["query", *args])
        assert result.exit_code == 2, (args[:3], result.output)
        assert len(result.output.strip().splitlines()) == 1 and words in result.output, result.output
        assert "Traceback" not in result.output
    found = _index(["query", "--index", str(image_idx), "--image", image_file, "-k", "1", "--json"])
    assert found.exit_code == 0 and json.loads(found.output)[0]["payload"] == image_file
