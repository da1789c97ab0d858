"""Tasks are plugins: the registry, each task's own options, and refusing another task's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import click
import keras
import numpy as np
import pytest
from click.testing import CliRunner

import siamese
from siamese import cli, tasks
from siamese.errors import ConfigError
from siamese.tasks.image_pairs import ImageOptions
from siamese.tasks.text_pairs import TextOptions
from siamese.training import RunConfig, TaskOptions


def _train(args: list[str]) -> Any:
    return CliRunner().invoke(cli.train, args)


@pytest.mark.parametrize(
    "task, option, value, owner",
    [
        ("image-pairs", "--members", "3", "text-pairs"),
        ("text-pairs", "--rotated-classes", None, "image-pairs"),
        ("text-pairs", "--tta", "2", "image-pairs"),
        ("basketball", "--head", "concat", "text-pairs, image-pairs"),
        ("basketball", "--resume", None, "text-pairs, image-pairs, text-distill"),
        ("image-pairs", "--season-loss", "mse", "basketball"),
    ],
)
def test_an_option_of_another_task_is_refused_in_one_line(tmp_path, task, option, value, owner):
    out = tmp_path / "X"
    result = _train(["--task", task, option, *([value] if value else []), "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: {option} applies to --task {owner} only"]
    assert not out.exists()


def test_a_tasks_help_lists_its_own_and_the_common_options_only():
    text = _train(["--task", "text-pairs", "--help"])
    image = _train(["--task", "image-pairs", "--help"])
    assert text.exit_code == image.exit_code == 0
    for option in ("--members", "--word-vectors", "--sequence-pooling", "--epochs", "--head", "--resume"):
        assert option in text.output
    for option in ("--rotated-classes", "--tta", "--augment", "--image-size", "--pair-pools", "--model "):
        assert option not in text.output and (option in image.output or option == "--model ")
    assert "--members" not in image.output
    assert "[default: 32" in text.output and "[default: 128" in image.output  # each task's batch size


def test_the_general_help_names_every_task_and_missing_task_is_one_line():
    general = _train(["--help"])
    assert general.exit_code == 0
    for name in tasks.names():
        assert name in general.output
    missing = _train(["--epochs", "3"])
    assert missing.exit_code == 2 and missing.output.strip().splitlines() == [
        "Error: --task is required: choose one of text-pairs, image-pairs, text-distill, basketball"
    ]


def test_another_tasks_options_are_refused_from_python(tmp_path):
    config = RunConfig(task="image-pairs", options=TextOptions(members=3))
    with pytest.raises(ConfigError, match="TextOptions are not options of --task image-pairs"):
        tasks.get("image-pairs").train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="unknown task 'poetry'"):
        tasks.get("poetry")


def test_a_run_config_holds_the_chosen_tasks_section_only():
    config = tasks.get("image-pairs").configure(RunConfig(task="image-pairs"))
    saved = config.to_dict()
    assert "image" in saved and "text" not in saved and "basketball" not in saved
    assert (saved["batch_size"], saved["data"], saved["image"]["filters"]) == (
        128,
        "fashion-mnist",
        (32, 64, 128),
    )
    assert RunConfig.from_dict(json.loads(json.dumps(saved)), ImageOptions) == config


# ---------------------------------------------------------------------- a task of a plugin


@dataclass
class ToyOptions(TaskOptions):
    SECTION: ClassVar[str] = "toy"

    width: int = 2


class ToyTask(tasks.Task):
    """Ten categories, their embeddings pulled towards a fixed target: one module's worth."""

    name = "toy"
    summary = "a test task"
    options_type = ToyOptions
    defaults = tasks.Defaults(data="numbers", epochs=2, batch_size=5, learning_rate=0.1)
    settings = frozenset({"data", "epochs", "batch_size", "learning_rate", "seed"})
    resumable = False
    evaluable = False

    def cli_options(self) -> list[click.Option]:
        return [
            tasks.option(ToyOptions, "width", "--width", type=click.IntRange(min=1), help="Embedding width.")
        ]

    def prepare(self, config: RunConfig, *, resume: bool) -> tasks.Job:
        ids = np.arange(10, dtype=np.int32).reshape(-1, 1)
        return tasks.Job(config, (ids, np.ones((10, config.options.width), dtype=np.float32)))

    def fit(self, job: tasks.Job, run: Any, *, model: Any, state: Any, verbose: Any) -> tasks.Trained:
        keras.utils.set_random_seed(job.config.seed)
        tower = siamese.categorical_tower(10, job.config.options.width, seed=job.config.seed)
        tower.compile(optimizer=keras.optimizers.Adam(job.config.learning_rate), loss="mse")
        ids, target = job.data
        fitted = tower.fit(ids, target, epochs=job.config.epochs, batch_size=job.config.batch_size, verbose=0)
        return tasks.Trained(tower, tower, fitted.history)

    def score(self, job: tasks.Job, trained: tasks.Trained) -> dict:
        ids, target = job.data
        return {"train": {"mse": float(np.mean((np.asarray(trained.model(ids)) - target) ** 2))}}


@pytest.fixture
def toy_task():
    task = tasks.register(ToyTask())
    yield task
    tasks.unregister(task.name)


def test_a_fourth_task_is_one_module_and_a_registration(tmp_path, toy_task):
    assert "toy" in _train(["--help"]).output
    assert "--width" in _train(["--task", "toy", "--help"]).output
    out = tmp_path / "toy"
    result = _train(["--task", "toy", "--width", "3", "--epochs", "30", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["toy"] == {"width": 3} and saved["epochs"] == 30 and "text" not in saved
    assert json.loads((out / "metrics.json").read_text())["train"]["mse"] < 0.05
    assert siamese.load_tower(out / "tower.keras").outputs[0].shape[-1] == 3
    refused = _train(["--task", "text-pairs", "--width", "3", "--out", str(tmp_path / "t")])
    assert refused.exit_code == 2 and "--width applies to --task toy only" in refused.output
    evaluated = CliRunner().invoke(cli.evaluate, ["--run", str(out)])
    assert (
        evaluated.exit_code == 2
        and "siamese-eval scores text-pairs, image-pairs, text-distill runs" in evaluated.output
    )
