"""The files of one run folder.

A run folder holds::

    config.json      every setting of the run (RunConfig), enough to repeat it
    history.json     loss and metrics per epoch, train and dev
    checkpoints/     state.json (the resume point; also each epoch's seconds in ``fit``)
                     + the model of the last completed epoch
                     + best.weights.h5 (the best epoch on dev, restored at the end)
    model.keras      the whole pair model        ┐ written at the end; metrics.json last,
    tower.keras      the encoder alone           │ so a folder without metrics.json is an
    metrics.json     split → metric → value      ┘ unfinished run
    history.png      the learning curves (when matplotlib is installed)

A text run may also hold ``refit/`` (``--refit``: the second training, a run folder of its
own) and ``members/K/`` (``--members``: member K's whole run; the ensemble run's own
``history.json`` then holds each member's curves under ``member_K/`` keys).

Every file is written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras

from siamese.errors import ConfigError
from siamese.faults import kill_point
from siamese.io import atomic_save, atomic_write_json, read_json, remove_stale_temporaries
from siamese.training.config import RunConfig, TaskOptions

STATE_FILE = "state.json"
BEST_WEIGHTS = "best.weights.h5"


class RunDir:
    """The files of one run folder (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    config = property(lambda self: self.path / "config.json")
    model = property(lambda self: self.path / "model.keras")
    tower = property(lambda self: self.path / "tower.keras")
    metrics = property(lambda self: self.path / "metrics.json")
    history = property(lambda self: self.path / "history.json")
    checkpoints = property(lambda self: self.path / "checkpoints")
    state = property(lambda self: self.path / "checkpoints" / STATE_FILE)

    def is_complete(self) -> bool:
        """A finished run has its metrics; they are written last."""
        return self.metrics.is_file()

    def prepare(self, config: RunConfig, *, resume: bool) -> RunConfig:
        """Create the folder for a new run, or check and read it for ``--resume``.

        Returns:
            The config to use: the given one for a new run, the saved one on resume (with
            ``epochs`` taken from the given config where it sets them, so a finished run can
            be extended).

        Raises:
            ConfigError: A new run would overwrite a run folder, or there is nothing to resume.
        """
        if resume:
            if not self.config.is_file():
                raise ConfigError(f"nothing to resume in {self.path}: it has no config.json")
            saved = RunConfig.from_dict(read_json(self.config), type(config.options))
            if saved.task != config.task:
                raise ConfigError(f"{self.path} is a {saved.task} run, not {config.task}")
            if config.epochs is not None:
                saved.epochs = config.epochs
            atomic_write_json(self.config, saved.to_dict())
            return saved
        if self.path.exists() and any(self.path.iterdir()):
            raise ConfigError(
                f"run folder {self.path} already holds a run: pass --resume to continue it, "
                "or choose another --out"
            )
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        kill_point("run-folder")
        atomic_write_json(self.config, config.to_dict())
        return config

    def unstarted(self) -> bool:
        """Whether there is nothing to resume: no folder, or one a run killed before it wrote
        ``config.json`` left (an empty ``checkpoints/`` and temporaries at most)."""
        if not self.path.exists():
            return True
        if self.config.exists() or not self.path.is_dir():
            return False
        for entry in self.path.iterdir():
            if entry.name.startswith(".tmp-"):
                continue
            if entry == self.checkpoints and entry.is_dir() and not any(entry.iterdir()):
                continue
            return False
        return True

    def clear_unstarted(self) -> None:
        """Remove what an :meth:`unstarted` run left, so the run can begin afresh here."""
        if self.path.is_dir():
            remove_stale_temporaries(self.path)
            if self.checkpoints.is_dir():
                self.checkpoints.rmdir()

    def reopen(self, config: RunConfig) -> RunConfig:
        """:meth:`prepare` for ``--resume``, first clearing the temporaries of a killed save."""
        config = self.prepare(config, resume=True)
        for folder in (self.path, self.checkpoints):
            remove_stale_temporaries(folder)
        return config

    def task(self) -> str:
        """The task named in ``config.json``.

        Raises:
            ConfigError: The folder holds no run.
        """
        if not self.config.is_file():
            raise ConfigError(f"{self.path} is not a run folder (no config.json)")
        values = read_json(self.config)
        if not isinstance(values, dict) or not isinstance(values.get("task"), str):
            raise ConfigError(f"{self.config} does not name a task")
        return values["task"]

    def finished_config(self, task: str, options_type: type[TaskOptions]) -> RunConfig:
        """The settings of a finished run of ``task`` (whose options are ``options_type``).

        Raises:
            ConfigError: The folder is not a finished run, or is a run of another task.
        """
        if not self.config.is_file() or not self.model.is_file():
            raise ConfigError(f"{self.path} is not a finished run (no config.json or model.keras)")
        config = RunConfig.from_dict(read_json(self.config), options_type)
        if config.task != task:
            raise ConfigError(f"{self.path} is a {config.task} run, not {task}")
        return config

    def read_state(self) -> dict[str, Any] | None:
        """The resume point, or ``None`` when no epoch has completed."""
        if not self.state.is_file():
            return None
        return read_json(self.state)

    def load_checkpoint(self) -> tuple[keras.Model, dict[str, Any]] | None:
        """The model of the last completed epoch (with its optimizer state), and the loop state."""
        state = self.read_state()
        if state is None:
            return None
        model = keras.saving.load_model(self.checkpoints / state["model_file"])
        return model, state

    def save_checkpoint(self, model: keras.Model, state: dict[str, Any]) -> None:
        """Save the model, then point ``state.json`` at it: the pointer is the commit."""
        name = f"epoch-{state['epoch']:04d}.keras"
        atomic_save(self.checkpoints / name, lambda tmp: (model.save(tmp), kill_point("checkpoint-save")))
        previous = self.read_state()
        atomic_write_json(self.state, {**state, "model_file": name})
        if previous and previous.get("model_file") not in (None, name):
            (self.checkpoints / previous["model_file"]).unlink(missing_ok=True)

    def finish(self, model: keras.Model, tower: keras.Model | None, metrics: dict[str, Any]) -> None:
        """Write the final model and tower, then the metrics (the mark of a finished run)."""
        atomic_save(self.model, model.save)
        kill_point("final-save")
        if tower is not None:
            atomic_save(self.tower, tower.save)
        atomic_write_json(self.metrics, metrics)
