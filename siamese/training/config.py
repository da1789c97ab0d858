"""The settings of one run: the settings every task shares, plus the chosen task's own.

:class:`RunConfig` is saved as the run folder's ``config.json``: the common settings at the
top level and the task's options (a :class:`TaskOptions` dataclass of the task module) under
the task's section name (``"text"``, ``"image"``, ``"basketball"``, ...). Folders written by
toolkit versions that saved every task's section still load: the other sections are ignored.

Settings whose default depends on the task or on its data (``data``, ``epochs``,
``batch_size``, ``learning_rate``, ``patience``, ``lr_patience``, ``options``) are ``None``
here until the task fills them in (:meth:`siamese.tasks.Task.configure`), so each default
lives in one place; ``head_hidden_units`` is filled in with the head.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from siamese._version import __version__
from siamese.errors import ConfigError

#: Sections of ``config.json`` written by earlier versions for every task at once.
LEGACY_SECTIONS = ("text", "image", "basketball")
OBJECTIVES = ("regression", "binary", "retrieval")
#: How the learning rate moves during a run: ``constant`` (changed only by ``lr_patience``)
#: or ``cosine`` (from the rate given down to 0 over the run's epochs, step by step).
LR_SCHEDULES = ("constant", "cosine")
#: Hidden ReLU units of the concat head when the run does not say.
CONCAT_HIDDEN = 128


@dataclass
class TaskOptions:
    """Base of a task's own settings: a dataclass whose fields are the task's options.

    A subclass names its section of ``config.json`` in :attr:`SECTION`.
    """

    SECTION: ClassVar[str] = ""


@dataclass
class RunConfig:
    """Every setting of one run; saved as ``config.json`` so the run can be repeated.

    Attributes:
        task: The task's name, e.g. ``text-pairs``, ``image-pairs`` or ``basketball``.
        data: Dataset name, path, or ``tfds:NAME``; ``None``: the task's default.
        objective: ``regression`` (graded scores), ``binary``, or ``retrieval`` (train the
            embedding space the index searches); ``None`` follows the data.
        head: Similarity head name; ``None`` picks the task's default.
        loss: Loss name; ``None`` picks the default for the head and objective.
        epochs: Largest number of epochs; ``None``: the task's default.
        batch_size: Pairs per training step; ``None``: the task's default.
        learning_rate: Adam's learning rate; ``None``: the task's default.
        patience: Epochs without improvement on dev before stopping early (0: never);
            ``None``: the task's default for the data.
        seed: Seed of weights, shuffles and dropout, and of the dev hold-out unless
            ``split_seed`` is given.
        dev_fraction: Share held out as dev where the data has no dev split.
        split_seed: Seed of that dev hold-out (``None``: ``seed``). The members of an
            ensemble train with seeds ``seed + k`` but share the ensemble's split, so that no
            member trains on the pairs the ensemble is chosen and scored on.
        head_hidden_units: Hidden ReLU layer of the ``concat`` head (0: none); ``None``:
            :data:`CONCAT_HIDDEN` for the concat head, 0 for the others.
        swap_pairs: Train on both orders (a, b) and (b, a) of each pair when the head is
            not symmetric (``concat``), so the model does not depend on the order.
        time_budget: Seconds of training allowed; no epoch is started that would, at the
            pace of the last one, end past it (``None``: no limit).
        lr_patience: Epochs without improvement on dev before the learning rate is multiplied
            by ``lr_factor`` (0: never; the rate does not go below the loop's floor);
            ``None``: the task's default for the data.
        lr_factor: What the learning rate is multiplied by on such a plateau, in (0, 1).
        lr_schedule: One of :data:`LR_SCHEDULES`. ``cosine`` sets the rate at every step,
            ``learning_rate * (1 + cos(pi * done)) / 2`` with ``done`` the share of the
            ``epochs`` steps already taken, so it depends on the step alone (a resumed run
            goes on where it was) and ``lr_patience`` is not used.
        tensorboard: Write TensorBoard logs of each epoch in the run's ``logs/`` folder
            (:mod:`siamese.training.summaries`).
        options: The task's own settings (its :class:`TaskOptions`); ``None``: its defaults.
        version: The toolkit version that wrote the config.
    """

    task: str
    data: str | None = None
    objective: str | None = None
    head: str | None = None
    loss: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    patience: int | None = None
    seed: int = 0
    dev_fraction: float = 0.1
    split_seed: int | None = None
    head_hidden_units: int | None = None
    swap_pairs: bool = True
    time_budget: float | None = None
    lr_patience: int | None = None
    lr_factor: float = 0.5
    lr_schedule: str = "constant"
    tensorboard: bool = True
    options: Any = None
    version: str = __version__

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate!r}")
        for name in ("patience", "lr_patience", "head_hidden_units"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"{name} must be 0 or more, got {value!r}")
        if not 0 < self.lr_factor < 1:
            raise ConfigError(f"lr_factor must be between 0 and 1, got {self.lr_factor!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if self.objective not in (None, *OBJECTIVES):
            raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.options is not None and not isinstance(self.options, TaskOptions):
            raise ConfigError(
                f"options must be a task's options dataclass, got {type(self.options).__name__}"
            )

    @property
    def data_seed(self) -> int:
        """The seed of the dev hold-out: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON-ready values (the options under their section)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "options"}
        if self.options is not None:
            values[self.options.SECTION] = dataclasses.asdict(self.options)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], options_type: type[TaskOptions]) -> RunConfig:
        """Rebuild a config from :meth:`to_dict`'s output (unknown keys are an error).

        Args:
            values: The saved settings.
            options_type: The task's options class; its section holds the options.
        """
        values = dict(values)
        part = dict(values.pop(options_type.SECTION, None) or {})
        for section in LEGACY_SECTIONS:
            values.pop(section, None)
        for name, value in part.items():
            if isinstance(value, list):
                part[name] = tuple(value)
        try:
            return cls(**values, options=options_type(**part))
        except TypeError as exc:
            raise ConfigError(f"config.json does not describe a run of this toolkit: {exc}") from None
