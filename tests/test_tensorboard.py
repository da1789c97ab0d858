"""TensorBoard logs of a run (``RUN/logs``) and the Embedding Projector's files of an index."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL, pairs_file, train_killed_at, train_text_pairs
from google.protobuf import text_format
from PIL import Image
from tensorboard.plugins import projector

from siamese import cli
from siamese.index import Index, write_projector
from siamese.training import summaries


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the event files in ``folder``: tag -> [(step, value)], in step order."""
    import tensorflow as tf

    found: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("*tfevents*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                number = (
                    float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                )
                found.setdefault(value.tag, []).append((int(event.step), number))
    return {tag: sorted(points) for tag, points in found.items()}


def _args(data, out, *extra):
    return ["--data", str(data), *SMALL, "--epochs", "3", "--patience", "0", "--out", str(out), *extra]


def test_each_epoch_is_logged_once_with_the_history_figures(tmp_path):
    data = pairs_file(tmp_path / "p.tsv", n=60)
    out = tmp_path / "run"
    result = train_text_pairs(_args(data, out))
    assert result.exit_code == 0, result.output
    history = json.loads((out / "history.json").read_text())
    train = read_scalars(out / "logs" / "train")
    validation = read_scalars(out / "logs" / "validation")
    assert [step for step, _ in train["epoch_loss"]] == [0, 1, 2]
    np.testing.assert_allclose([v for _, v in train["epoch_loss"]], history["loss"], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in validation["epoch_loss"]], history["val_loss"], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in validation["epoch_pearson"]], history["val_pearson"], rtol=1e-6)
    assert [step for step, _ in train["epoch_learning_rate"]] == [0, 1, 2]
    assert not list((out / "logs").rglob(".tmp-*"))


def test_no_tensorboard_writes_no_logs(tmp_path):
    data = pairs_file(tmp_path / "p.tsv", n=40)
    out = tmp_path / "run"
    result = train_text_pairs(_args(data, out, "--no-tensorboard"))
    assert result.exit_code == 0, result.output
    assert not (out / "logs").exists()
    assert json.loads((out / "config.json").read_text())["tensorboard"] is False


def test_a_resumed_run_fills_in_what_its_logs_lack_and_never_repeats_a_step(tmp_path):
    """The epochs a checkpoint holds but the logs lack (a process killed between the two
    writes) are written from the history on resume; every step appears once."""
    data = pairs_file(tmp_path / "p.tsv", n=60)
    out = tmp_path / "run"
    result = train_text_pairs(_args(data, out, "--epochs", "2"))
    assert result.exit_code == 0, result.output
    for split in summaries.SPLITS:  # as if killed after epoch 2's checkpoint, before its logs
        (out / "logs" / split / "events.out.tfevents.epoch-000001.siamese.v2").unlink()
    assert summaries.logged_epochs(out / "logs") == {0}
    result = train_text_pairs([*_args(data, out, "--epochs", "3"), "--resume"])
    assert result.exit_code == 0, result.output
    history = json.loads((out / "history.json").read_text())
    train = read_scalars(out / "logs" / "train")
    assert [step for step, _ in train["epoch_loss"]] == [0, 1, 2]
    np.testing.assert_allclose([v for _, v in train["epoch_loss"]], history["loss"], rtol=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_a_run_killed_mid_epoch_resumes_its_logs_without_a_repeated_step(tmp_path):
    data = pairs_file(tmp_path / "p.tsv", n=60)
    out = tmp_path / "run"
    train_killed_at("epoch:2", ["--task", "text-pairs", *_args(data, out)])
    assert summaries.logged_epochs(out / "logs") == {0}
    result = train_text_pairs([*_args(data, out), "--resume"])
    assert result.exit_code == 0, result.output
    for split in summaries.SPLITS:
        steps = [step for step, _ in read_scalars(out / "logs" / split)["epoch_loss"]]
        assert steps == [0, 1, 2], (split, steps)


# ---------------------------------------------------------------------- the Embedding Projector


def _config(folder: Path) -> projector.ProjectorConfig:
    return text_format.Parse((folder / "projector_config.pbtxt").read_text(), projector.ProjectorConfig())


def test_projector_files_of_a_text_index_load_with_tensorboards_protos(tmp_path, rng):
    vectors = rng.normal(size=(50, 6)).astype(np.float32)
    texts = [f"sentence {i}\twith a tab" if i == 3 else f"sentence {i}" for i in range(50)]
    index = Index.from_vectors(vectors, ids=np.arange(100, 150), payloads=texts, metric="cosine")
    written = write_projector(index, tmp_path / "proj", limit=40)
    assert written == {"rows": 40, "dim": 6, "sprite": None}
    config = _config(tmp_path / "proj")
    (embedding,) = config.embeddings
    assert list(embedding.tensor_shape) == [40, 6] and not embedding.sprite.image_path
    loaded = np.loadtxt(tmp_path / "proj" / embedding.tensor_path, delimiter="\t", dtype=np.float32)
    np.testing.assert_allclose(loaded, index.vectors[:40], rtol=1e-6)
    lines = (tmp_path / "proj" / embedding.metadata_path).read_text().splitlines()
    assert lines[0] == "id\tpayload" and len(lines) == 41
    assert lines[1] == "100\tsentence 0" and lines[4] == "103\tsentence 3 with a tab"


def test_projector_of_an_image_index_writes_a_sprite_and_labels(tmp_path, rng):
    paths = []
    for label in ("cat", "dog"):
        (tmp_path / "img" / label).mkdir(parents=True)
        for i in range(5):
            path = tmp_path / "img" / label / f"{i}.png"
            Image.fromarray(rng.integers(0, 255, size=(12, 12), dtype=np.uint8)).save(path)
            paths.append(os.fspath(path))
    index = Index.from_vectors(rng.normal(size=(10, 4)).astype(np.float32), payloads=paths)
    written = write_projector(index, tmp_path / "proj")
    (embedding,) = _config(tmp_path / "proj").embeddings
    side = written["sprite"]
    assert list(embedding.sprite.single_image_dim) == [side, side] and list(embedding.tensor_shape) == [10, 4]
    with Image.open(tmp_path / "proj" / embedding.sprite.image_path) as sprite:
        assert sprite.size == (4 * side, 3 * side)  # 10 thumbnails on a grid of 4 columns
    rows = [line.split("\t") for line in (tmp_path / "proj" / "metadata.tsv").read_text().splitlines()]
    assert rows[0] == ["id", "payload", "label"] and rows[1][2] == "cat" and rows[-1][2] == "dog"


def test_projector_command_and_its_one_line_errors(tmp_path, rng):
    from click.testing import CliRunner

    index = Index.from_vectors(
        rng.normal(size=(20, 3)).astype(np.float32), payloads=[f"t{i}" for i in range(20)]
    )
    index.save(tmp_path / "idx")
    result = CliRunner().invoke(
        cli.index, ["projector", "--index", str(tmp_path / "idx"), "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 20 vectors of dimension 3" in result.output and "tensorboard --logdir" in result.output
    assert list(_config(tmp_path / "p").embeddings[0].tensor_shape) == [20, 3]
    bad = CliRunner().invoke(
        cli.index, ["projector", "--index", str(tmp_path / "p"), "--out", str(tmp_path / "q")]
    )
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1, bad.output
