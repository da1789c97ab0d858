"""TensorBoard logs of a run: ``RUN/logs/train`` and ``RUN/logs/validation``.

After each epoch's checkpoint, the epoch's figures are written as TensorBoard scalars at step
``epoch`` (0-based, as Keras's own ``TensorBoard`` callback numbers them, and under the same
names: ``epoch_loss``, ``epoch_pearson``, ...): the training figures and the learning rate
under ``train/``, the dev figures (``val_*``, the retrieval figures included) under
``validation/``. Watch a run with ``tensorboard --logdir RUN/logs`` (or a folder of runs).

Each epoch is one event file of its own, written under a temporary name and renamed into
place (``events.out.tfevents.epoch-000003.siamese.v2``), so a file is whole or absent and its
name says which epoch it holds. A resumed run writes the epochs its checkpoint has that have
no file yet (from the run's history) and goes on from there: the logs never hold an epoch
twice, nor miss one the checkpoint holds.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

#: The run folder's logs folder.
LOGS_FOLDER = "logs"
#: The two runs TensorBoard shows for one training run.
SPLITS = ("train", "validation")
_NAME = "events.out.tfevents.epoch-{epoch:06d}.siamese.v2"
_PATTERN = re.compile(r"^events\.out\.tfevents\.epoch-(\d{6})\.siamese\.v2$")


def logged_epochs(logs: Path) -> set[int]:
    """The epochs (0-based) whose figures are in ``logs``: those with a file in ``train/``."""
    folder = logs / SPLITS[0]
    if not folder.is_dir():
        return set()
    return {int(m[1]) for m in map(_PATTERN.match, os.listdir(folder)) if m}


def split_figures(figures: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """An epoch's figures (Keras's history keys) by TensorBoard run: ``val_NAME`` under
    ``validation`` as ``epoch_NAME``, the others under ``train``."""
    out: dict[str, dict[str, float]] = {split: {} for split in SPLITS}
    for key, value in figures.items():
        if key.startswith("val_"):
            out["validation"][f"epoch_{key[4:]}"] = float(value)
        else:
            out["train"][f"epoch_{key}"] = float(value)
    return out


def log_epoch(logs: Path, epoch: int, figures: Mapping[str, float]) -> None:
    """Write one epoch's figures (see :func:`split_figures`) as scalars at step ``epoch``;
    each split's file appears whole (written aside, then renamed)."""
    import tensorflow as tf

    for split, values in split_figures(figures).items():
        folder = logs / split
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".tmp-", dir=folder) as aside:
            writer = tf.summary.create_file_writer(aside)
            with writer.as_default():
                for name, value in sorted(values.items()):
                    tf.summary.scalar(name, value, step=epoch)
            writer.close()
            (written,) = Path(aside).iterdir()
            os.replace(written, folder / _NAME.format(epoch=epoch))


def catch_up(logs: Path, history: Mapping[str, Sequence[float]]) -> int:
    """Write the epochs of ``history`` (a run's, by metric) that ``logs`` lacks; returns how
    many were written."""
    epochs = max((len(values) for values in history.values()), default=0)
    missing = sorted(set(range(epochs)) - logged_epochs(logs))
    for epoch in missing:
        log_epoch(logs, epoch, {k: v[epoch] for k, v in history.items() if len(v) > epoch})
    return len(missing)
