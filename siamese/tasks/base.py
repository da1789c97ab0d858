"""What a task is, the registry of tasks, and the run skeleton every task shares.

A task is what ``siamese-train --task NAME`` trains. Each is one module that subclasses
:class:`Task` and registers an instance with :func:`register`:

- its own settings, a :class:`~siamese.training.config.TaskOptions` dataclass (defaults in
  its fields, one place), saved in ``config.json`` under the task's section;
- its defaults for the common settings that differ between tasks (:class:`Defaults`), and
  for the settings that suit a named dataset better (:meth:`Task.data_defaults`): a setting
  left ``None`` takes the data's default, else the task's;
- which common settings it reads (:attr:`Task.settings`): the command line offers only
  those, and refuses the others with one line;
- its command-line options (:meth:`Task.cli_options`, click options whose defaults come from
  the options dataclass);
- the steps of a run (:meth:`Task.prepare`, :meth:`Task.fit`, :meth:`Task.score`,
  :meth:`Task.complete`), which :meth:`Task.train` runs in the shared order::

      configure → (reopen on --resume) → prepare → build (or load the checkpoint)
      → create the folder → fit → score → complete → finish (model.keras, tower.keras,
      metrics.json last)

  Everything that can fail on a bad input (reading the data, checking the settings,
  building the model) happens before the folder is made.

Plugins from other packages register through the ``siamese.tasks`` entry-point group (each
entry point names a module or object whose import registers its task).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, ClassVar

import click
import keras

from siamese.errors import ConfigError, EngineError
from siamese.training.config import RunConfig, TaskOptions
from siamese.training.distribute import Distribution
from siamese.training.run_dir import RunDir

logger = logging.getLogger(__name__)

#: The entry-point group through which other packages add tasks.
ENTRY_POINT_GROUP = "siamese.tasks"

#: Common settings of :class:`RunConfig` that a pair task (text or images) reads.
PAIR_SETTINGS = frozenset(
    {
        "data",
        "objective",
        "head",
        "loss",
        "epochs",
        "batch_size",
        "learning_rate",
        "patience",
        "seed",
        "split_seed",
        "head_hidden_units",
        "time_budget",
        "lr_patience",
        "lr_factor",
        "lr_schedule",
        "tensorboard",
    }
)


@dataclass(frozen=True)
class Defaults:
    """A task's defaults for the common settings that differ from task to task."""

    data: str
    epochs: int
    batch_size: int
    learning_rate: float
    patience: int = 3
    lr_patience: int = 0


@dataclass(eq=False)
class Job:
    """What :meth:`Task.prepare` hands to the later steps: the run's settings, resolved, and
    whatever the task read (its data, a starting tower, ...)."""

    config: RunConfig
    data: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Trained:
    """What :meth:`Task.fit` returns: the model saved as ``model.keras``, the tower saved as
    ``tower.keras`` (``None``: none), and the history of the training."""

    model: keras.Model
    tower: keras.Model | None
    history: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


class Task:
    """Base class of a task; see the module docstring."""

    #: The name after ``--task``.
    name: ClassVar[str] = ""
    #: One line for ``siamese-train --help``.
    summary: ClassVar[str] = ""
    #: The help of ``--data``: what the task reads.
    data_help: ClassVar[str] = "Dataset name or path."
    #: The task's options dataclass.
    options_type: ClassVar[type[TaskOptions]] = TaskOptions
    #: The task's defaults of the common settings that differ between tasks.
    defaults: ClassVar[Defaults]
    #: The common settings (fields of :class:`RunConfig`) the task reads.
    settings: ClassVar[frozenset[str]] = PAIR_SETTINGS
    #: Whether ``--resume`` continues a stopped run.
    resumable: ClassVar[bool] = True
    #: Whether the task trains under ``--distribute`` (:mod:`siamese.training.distribute`).
    distributable: ClassVar[bool] = False
    #: Whether ``siamese-eval`` scores its runs.
    evaluable: ClassVar[bool] = True
    #: Keyword options :meth:`evaluate` takes beyond ``data`` and ``split``.
    eval_options: ClassVar[frozenset[str]] = frozenset()
    #: Command-line examples shown under ``siamese-train --task NAME --help``.
    examples: ClassVar[tuple[str, ...]] = ()
    #: Where the task stands in lists (``--help``, errors): lower first.
    rank: ClassVar[int] = 100
    #: The datasets with defaults of their own (:meth:`data_defaults`), for ``--help``.
    preset_data: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------ settings

    def cli_options(self) -> list[click.Option]:
        """The task's own command-line options (see :func:`option`)."""
        return []

    def options_from_cli(self, values: dict[str, Any]) -> TaskOptions:
        """The options dataclass from the values of :meth:`cli_options` (by field name).

        Raises:
            ConfigError: A value cannot be used (with the option's name).
        """
        return self.options_type(**values)

    def data_defaults(self, data: str) -> dict[str, Any]:
        """The settings that ``data`` trains best with, by field name of :class:`RunConfig`
        or of the task's options: :meth:`configure` gives them to the settings left ``None``.

        The base task has none; a task overrides this for the datasets it knows.
        """
        return {}

    def shown_default(self, name: str, general: Any) -> str:
        """The default of setting ``name`` as ``--help`` appends it to the option's help:
        ``general``, then the value of each dataset in :attr:`preset_data` whose own default
        differs (``"  [default: 64; omniglot: 128]"``; flags show on/off)."""

        def shown(value: Any) -> str:
            return ("on" if value else "off") if isinstance(value, bool) else str(value)

        parts = [shown(general)]
        for data in self.preset_data:
            value = self.data_defaults(data).get(name)
            if value is not None and value != general:
                parts.append(f"{data}: {shown(value)}")
        return f"  [default: {'; '.join(parts)}]"

    def configure(self, config: RunConfig) -> RunConfig:
        """``config`` with the defaults filled in (the data's, from :meth:`data_defaults`,
        then the task's) and its options checked.

        Raises:
            ConfigError: The config names another task, or holds another task's options.
        """
        if config.task != self.name:
            raise ConfigError(f"the {self.name} task cannot run a {config.task} config")
        options = config.options if config.options is not None else self.options_type()
        if not isinstance(options, self.options_type):
            raise ConfigError(
                f"{type(options).__name__} are not options of --task {self.name} "
                f"(it takes {self.options_type.__name__})"
            )
        data = config.data if config.data is not None else self.defaults.data
        preset = self.data_defaults(data)
        own = {f.name for f in dataclasses.fields(options)}
        options = dataclasses.replace(
            options,
            **{
                name: value
                for name, value in preset.items()
                if name in own and getattr(options, name) is None
            },
        )
        general = {**dataclasses.asdict(self.defaults), **{k: v for k, v in preset.items() if k not in own}}
        filled = {name: value for name, value in general.items() if getattr(config, name) is None}
        return dataclasses.replace(config, options=options, **filled)

    # ------------------------------------------------------------------ the run

    def train(
        self,
        config: RunConfig,
        out: str | os.PathLike[str],
        *,
        resume: bool = False,
        verbose: Any = "auto",
        distribution: Distribution | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Train a run and write its folder; see the module docstring for the steps.

        Args:
            config: The run's settings (``task`` must be this task's name).
            out: The run folder.
            resume: Continue the run in ``out`` from its last checkpoint.
            verbose: Keras's progress display (``"auto"``, 0, 1 or 2).
            distribution: Train data-parallel under this started strategy
                (:func:`siamese.training.distribute.start`): everything is built in its
                scope, and a worker that is not the chief writes into a temporary folder
                (a copy of ``out`` when resuming) removed at the end.

        Returns:
            The metrics written to ``metrics.json``: split → metric → value.

        Raises:
            ConfigError: A setting cannot be used, or the folder cannot (a bad input is
                reported before any folder is made).
            DataError: The data is missing or malformed.
            EngineError: Distributed training failed inside TensorFlow or Keras.
        """
        if distribution is None:
            return self._train(config, out, resume=resume, verbose=verbose)
        if not self.distributable:
            raise ConfigError(f"--task {self.name} does not train under --distribute")
        scratch = None
        if not distribution.is_chief:  # only the chief writes the run folder
            scratch = tempfile.mkdtemp(prefix="siamese-worker-")
            if resume and os.path.isdir(out):
                shutil.copytree(out, scratch, dirs_exist_ok=True)
        try:
            with distribution.scope():
                return self._train(config, scratch or out, resume=resume, verbose=verbose)
        except ValueError as exc:
            if distribution.name == "multi-worker" and "PerReplica" in str(exc):
                raise EngineError(
                    f"multi-worker training fails inside Keras {keras.__version__}'s fit "
                    "(keras-team/keras#20585: it reduces per-replica values it cannot); "
                    "train with --distribute mirrored on one host"
                ) from None
            raise
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    def _train(
        self, config: RunConfig, out: str | os.PathLike[str], *, resume: bool, verbose: Any
    ) -> dict[str, dict[str, Any]]:
        given_epochs = config.epochs  # on resume, None keeps the run's own
        config = self.configure(config)
        run = RunDir(out)
        if resume:
            if not self.resumable:
                raise ConfigError(f"{self.name} runs have no --resume: start a new run")
            if run.unstarted():
                logger.warning(
                    "nothing to resume in %s (the run stopped before it wrote config.json): starting it", out
                )
                run.clear_unstarted()
                resume = False
            else:
                config = run.reopen(dataclasses.replace(config, epochs=given_epochs))
        return self.run(config, run, resume=resume, verbose=verbose)

    def run(self, config: RunConfig, run: RunDir, *, resume: bool, verbose: Any) -> dict[str, dict[str, Any]]:
        """The steps after the folder is known: prepare, build, fit, score, complete, finish."""
        job = self.prepare(config, resume=resume)
        checkpoint = run.load_checkpoint() if resume else None
        if checkpoint is not None:
            model, state = checkpoint
            logger.info("resuming %s after epoch %d", run.path, state["epoch"])
        else:
            model, state = self.build(job), None
        if not resume:
            run.prepare(job.config, resume=False)
        trained = self.fit(job, run, model=model, state=state, verbose=verbose)
        metrics = self.score(job, trained)
        trained, metrics = self.complete(job, trained, metrics, run, verbose=verbose)
        run.finish(trained.model, trained.tower, metrics)
        return metrics

    def prepare(self, config: RunConfig, *, resume: bool) -> Job:
        """Read the data and check every setting, before any folder is made."""
        raise NotImplementedError

    def build(self, job: Job) -> keras.Model | None:
        """The fresh, compiled model to train (``None``: :meth:`fit` makes its own)."""
        return None

    def fit(
        self, job: Job, run: RunDir, *, model: keras.Model | None, state: dict[str, Any] | None, verbose: Any
    ) -> Trained:
        """Train ``model`` (from :meth:`build`, or the checkpoint's, with the loop ``state``
        to go on from) and return what is saved."""
        raise NotImplementedError

    def score(self, job: Job, trained: Trained) -> dict[str, dict[str, Any]]:
        """The figures of ``metrics.json``."""
        raise NotImplementedError

    def complete(
        self, job: Job, trained: Trained, metrics: dict[str, dict[str, Any]], run: RunDir, *, verbose: Any
    ) -> tuple[Trained, dict[str, dict[str, Any]]]:
        """Anything after scoring (plots, a second training); returns what is saved."""
        return trained, metrics

    def next_steps(self, config: RunConfig, out: str | os.PathLike[str]) -> list[str]:
        """The commands a user runs next with the finished run in ``out`` (shown by
        ``siamese-train`` at the end; none by default)."""
        return []

    # ------------------------------------------------------------------ evaluation

    def evaluate(
        self, run_dir: str | os.PathLike[str], *, data: str | None = None, split: str = "test", **options: Any
    ) -> dict[str, dict[str, Any]]:
        """Score a finished run on a split of its own data (or of ``data``).

        Raises:
            ConfigError: The task's runs are not evaluated this way.
        """
        evaluable = ", ".join(task.name for task in all_tasks() if task.evaluable)
        raise ConfigError(f"{run_dir} is a {self.name} run; siamese-eval scores {evaluable} runs")

    def finished_config(self, run_dir: str | os.PathLike[str]) -> RunConfig:
        """The settings of a finished run of this task in ``run_dir``."""
        return RunDir(run_dir).finished_config(self.name, self.options_type)


def option(options_type: type[TaskOptions], name: str, *decls: str, **kwargs: Any) -> click.Option:
    """A click option for the field ``name`` of ``options_type``, its default the field's.

    Args:
        options_type: The task's options dataclass.
        name: The field the option sets.
        *decls: The option's flags, e.g. ``"--units"``.
        **kwargs: Passed to :class:`click.Option` (``type``, ``help``, ...).
    """
    fields = {f.name: f for f in dataclasses.fields(options_type)}
    if name not in fields:
        raise ValueError(f"{options_type.__name__} has no field {name!r}")
    default = fields[name].default
    if default is dataclasses.MISSING:
        default = fields[name].default_factory()
    kwargs.setdefault("default", default)
    kwargs.setdefault("show_default", default is not None and default is not False)
    return click.Option([*decls, name], **kwargs)


# ---------------------------------------------------------------------- the registry

_TASKS: dict[str, Task] = {}
_plugins_loaded = False


def register(task: Task) -> Task:
    """Add a task under its name (a later one of the same name replaces it)."""
    if not task.name:
        raise ValueError("a task needs a name")
    _TASKS[task.name] = task
    return task


def unregister(name: str) -> None:
    """Remove the task registered under ``name`` (nothing if there is none)."""
    _TASKS.pop(name, None)


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as exc:  # a broken plugin must not break the built-in tasks
            logger.warning("task plugin %s could not be loaded: %s", entry.name, exc)


def get(name: str) -> Task:
    """The task registered under ``name``.

    Raises:
        ConfigError: No task has that name.
    """
    _load_plugins()
    try:
        return _TASKS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown task {name!r}; choose one of {', '.join(names())}") from None


def names() -> list[str]:
    """The registered tasks' names (built-in ones first)."""
    return [task.name for task in all_tasks()]


def all_tasks() -> list[Task]:
    """The registered tasks (built-in ones first, by :attr:`Task.rank`, then by name)."""
    _load_plugins()
    return sorted(_TASKS.values(), key=lambda task: (task.rank, task.name))
