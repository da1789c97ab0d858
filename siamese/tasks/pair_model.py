"""What the pair tasks (text pairs, image pairs) share: choosing the objective, head and loss
for the data, building and compiling the pair model on a tower, and what early stopping
watches.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from siamese import heads, losses
from siamese.datasets.records import BINARY, GRADED
from siamese.errors import ConfigError
from siamese.metrics.keras_metrics import PearsonCorrelation
from siamese.models import build_siamese
from siamese.training.config import RunConfig


def resolve_pair_settings(config: RunConfig, kind: str) -> RunConfig:
    """``config`` with objective, head and loss filled in from the data's kind (``graded`` or
    ``binary``), checked to fit together.

    Raises:
        ConfigError: The settings do not fit the data or each other.
    """
    objective = config.objective or ("regression" if kind == GRADED else "binary")
    if objective == "regression" and kind == BINARY:
        raise ConfigError("--objective regression needs graded scores; this dataset has binary labels")
    head = config.head or ("manhattan" if objective == "regression" else "abs-diff")
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
    if head in heads.DISTANCE_HEADS and (objective != "binary" or loss != "contrastive"):
        raise ConfigError(
            f"the {head} head outputs a distance: use it with binary data and --loss contrastive"
        )
    if loss == "contrastive" and head not in heads.DISTANCE_HEADS:
        raise ConfigError("--loss contrastive works on a distance: use it with --head euclidean")
    if config.head_hidden_units and head != "concat":
        raise ConfigError("--head-hidden applies to the concat head only")
    return dataclasses.replace(config, objective=objective, head=head, loss=loss)


def build_pair_model(tower: keras.Model, config: RunConfig) -> keras.Model:
    """The run's pair model on ``tower`` (its head with the run's head options), compiled."""
    head_options = {"hidden_units": config.head_hidden_units} if config.head == "concat" else {}
    model = build_siamese(tower, config.head, **head_options)
    compile_model(model, config)
    return model


def compile_model(model: keras.Model, config: RunConfig, *, optimizer: Any = None) -> None:
    """Compile with Adam (or ``optimizer``), the run's loss, and the per-epoch metric shown."""
    if config.objective == "regression":
        shown: list[Any] = [PearsonCorrelation()]
    elif config.loss == "binary-crossentropy":
        shown = [keras.metrics.BinaryAccuracy(name="accuracy")]
    else:
        shown = []
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(config.learning_rate, clipnorm=1.0),
        loss=losses.get(config.loss),
        metrics=shown,
    )


def monitored(config: RunConfig) -> tuple[str, str, str]:
    """(history key watched for early stopping, its mode, the metric plotted beside the loss)."""
    if config.objective == "regression":
        return "val_pearson", "max", "pearson"
    if config.loss == "binary-crossentropy":
        return "val_loss", "min", "accuracy"
    return "val_loss", "min", "loss"
