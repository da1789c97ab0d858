"""What the pair tasks (text pairs, image pairs) share: choosing the objective, head and loss
for the data, building and compiling the pair model on a tower, and what early stopping
watches.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras

from siamese import heads, losses
from siamese.datasets.records import BINARY, GRADED
from siamese.errors import ConfigError
from siamese.metrics.keras_metrics import PearsonCorrelation
from siamese.metrics.retrieval import PAIRS, PRIMARY, RetrievalSet, retrieval_of
from siamese.models import build_siamese, tower_of
from siamese.training.config import CONCAT_HIDDEN, RunConfig
from siamese.training.loop import fit_epochs
from siamese.training.run_dir import RunDir


def resolve_pair_settings(
    config: RunConfig,
    kind: str,
    *,
    retrieval_losses: Sequence[str] = (),
    regression_head: str = "manhattan",
    binary_head: str = "abs-diff",
) -> RunConfig:
    """``config`` with objective, head (and the concat head's hidden units) and loss filled
    in from the data's kind (``graded`` or ``binary``), checked to fit together.

    Args:
        config: The run's settings.
        kind: The data's kind.
        retrieval_losses: The embedding losses the task trains ``--objective retrieval``
            with, its default first (none: the task has no retrieval objective).
        regression_head: The task's head for graded scores when the run names none.
        binary_head: The task's head for binary labels when the run names none.

    Raises:
        ConfigError: The settings do not fit the data or each other.
    """
    if config.objective == "retrieval":
        return _resolve_retrieval(config, retrieval_losses)
    objective = config.objective or ("regression" if kind == GRADED else "binary")
    if objective == "regression" and kind == BINARY:
        raise ConfigError("--objective regression needs graded scores; this dataset has binary labels")
    head = config.head or (regression_head if objective == "regression" else binary_head)
    if head not in heads.HEADS:
        raise ConfigError(f"--head must be one of {', '.join(heads.HEADS)}; got {head!r}")
    default_loss = (
        "contrastive"
        if head in heads.DISTANCE_HEADS
        else ("mse" if objective == "regression" else "binary-crossentropy")
    )
    loss = config.loss or default_loss
    if loss not in losses.LOSSES:
        raise ConfigError(f"--loss must be one of {', '.join(losses.LOSSES)}; got {loss!r}")
    if loss in losses.EMBEDDING_LOSSES:
        raise ConfigError(
            f"--loss {loss} trains the embeddings, not a head's score: use it with --objective retrieval"
        )
    if loss == "cosent" and head != "cosine":
        raise ConfigError("--loss cosent orders cosine similarities: use it with --head cosine")
    if head in heads.DISTANCE_HEADS and (objective != "binary" or loss != "contrastive"):
        raise ConfigError(
            f"the {head} head outputs a distance: use it with binary data and --loss contrastive"
        )
    if loss == "contrastive" and head not in heads.DISTANCE_HEADS:
        raise ConfigError("--loss contrastive works on a distance: use it with --head euclidean")
    if config.head_hidden_units and head != "concat":
        raise ConfigError("--head-hidden applies to the concat head only")
    hidden = config.head_hidden_units
    if hidden is None:
        hidden = CONCAT_HIDDEN if head == "concat" else 0
    return dataclasses.replace(config, objective=objective, head=head, loss=loss, head_hidden_units=hidden)


def _resolve_retrieval(config: RunConfig, retrieval_losses: Sequence[str]) -> RunConfig:
    if not retrieval_losses:
        raise ConfigError(f"--objective retrieval is not available for --task {config.task}")
    head = config.head or "cosine"
    if head != "cosine":
        raise ConfigError(
            "--objective retrieval trains the cosine similarity the index searches: "
            "use --head cosine (the default)"
        )
    loss = config.loss or retrieval_losses[0]
    if loss not in retrieval_losses:
        raise ConfigError(
            f"--objective retrieval trains with --loss {' or '.join(retrieval_losses)}; got {loss!r}"
        )
    if config.head_hidden_units:
        raise ConfigError("--head-hidden applies to the concat head only")
    return dataclasses.replace(config, head=head, loss=loss, head_hidden_units=0)


def index_steps(config: RunConfig, out: str | os.PathLike[str], query: str) -> list[str]:
    """The commands that build an index of the run's data with its tower and query it
    (``query``: the query's arguments, e.g. a quoted sentence or ``--image FILE``)."""
    data = config.data or ""
    if data.startswith("tfds:"):
        return [f"siamese-index build --run {shlex.quote(str(out))} --input ITEMS --out idx/NAME"]
    index = Path("idx") / (Path(data).stem or "index")
    return [
        f"siamese-index build --run {shlex.quote(str(out))} --input {shlex.quote(data)} --out {index}",
        f"siamese-index query --index {index} {query} -k 5",
    ]


def build_pair_model(tower: keras.Model, config: RunConfig) -> keras.Model:
    """The run's pair model on ``tower`` (its head with the run's head options), compiled."""
    head_options = {"hidden_units": config.head_hidden_units} if config.head == "concat" else {}
    model = build_siamese(tower, config.head, **head_options)
    compile_model(model, config)
    return model


def compile_model(
    model: keras.Model,
    config: RunConfig,
    *,
    optimizer: Any = None,
    loss_options: dict[str, Any] | None = None,
) -> None:
    """Compile with Adam (or ``optimizer``), the run's loss (built with ``loss_options``), and
    the per-epoch metric shown."""
    if config.objective == "regression":
        shown: list[Any] = [PearsonCorrelation()]
    elif config.objective == "retrieval":
        shown = []
    elif config.loss == "binary-crossentropy":
        shown = [keras.metrics.BinaryAccuracy(name="accuracy")]
    else:
        shown = []
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(config.learning_rate, clipnorm=1.0),
        loss=losses.get(config.loss, **(loss_options or {})),
        metrics=shown,
    )


def monitored(config: RunConfig, *, retrieval_kind: str = PAIRS) -> tuple[str, str, str]:
    """(history key watched for early stopping, its mode, the metric plotted beside the loss).

    A retrieval run watches the primary figure of retrieval on dev
    (:data:`siamese.metrics.retrieval.PRIMARY`: MRR@10 for pairs, MAP@R for classes).
    """
    if config.objective == "retrieval":
        figure = PRIMARY[retrieval_kind]
        return f"val_{figure}", "max", figure
    if config.objective == "regression":
        return "val_pearson", "max", "pearson"
    if config.loss == "binary-crossentropy":
        return "val_loss", "min", "accuracy"
    return "val_loss", "min", "loss"


def fit_for_retrieval(
    model: keras.Model,
    epoch_data: Callable[[int], tuple[Any, Any]],
    run: RunDir,
    config: RunConfig,
    *,
    dev: RetrievalSet,
    watched: Sequence[str],
    state: dict[str, Any] | None,
    trainer: keras.Model,
    verbose: Any,
) -> dict[str, list[float]]:
    """:func:`~siamese.training.loop.fit_epochs` for a retrieval run: after each epoch the
    tower's index of ``dev`` is searched, the figures ``watched`` are logged (``val_...``) and
    the primary one decides early stopping."""
    tower = tower_of(model)

    def dev_figures() -> dict[str, float]:
        figures = retrieval_of(tower, dev)
        return {name: figures[name] for name in watched}

    monitor, mode, _ = monitored(config, retrieval_kind=dev.kind)
    return fit_epochs(
        model,
        epoch_data,
        None,
        run,
        config,
        monitor=monitor,
        mode=mode,
        state=state,
        trainer=trainer,
        verbose=verbose,
        dev_figures=dev_figures,
    )
