"""The epoch loop: one ``fit`` per epoch, a checkpoint after each, early stopping on dev,
the learning rate lowered on plateaus, and resume.

The loop seeds each epoch from ``(seed, epoch)``, so a run resumed from its checkpoint draws
the same shuffles and dropout masks as one that never stopped.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from siamese import faults
from siamese.errors import ConfigError, Interrupted, SiameseError
from siamese.io import atomic_save, atomic_write_json
from siamese.training import summaries
from siamese.training.config import RunConfig
from siamese.training.run_dir import BEST_WEIGHTS, RunDir

logger = logging.getLogger(__name__)

# The floor of the learning rate when it is lowered on a plateau (RunConfig.lr_patience).
MIN_LEARNING_RATE = 1e-6


class TrainingError(SiameseError):
    """Training could not go on (a NaN loss); the last checkpoint is kept."""


class _StopAfterOneEpoch(keras.callbacks.Callback):
    """Ends ``fit`` after the epoch it started: the loop above draws each epoch's data itself."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.model.stop_training = True


class _KillPoint(keras.callbacks.Callback):
    """The ``epoch`` test hook (:mod:`siamese.faults`): reached after an epoch's first batch."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if batch == 0:
            faults.kill_point("epoch")


class _CosineRate(keras.callbacks.Callback):
    """``RunConfig.lr_schedule == "cosine"``: before each step, the rate of that step,
    ``base * (1 + cos(pi * done)) / 2``, ``done`` the share of the run's steps already taken
    (an epoch of unknown length counts as one step)."""

    def __init__(self, optimizer: Any, base: float, epochs: int) -> None:
        super().__init__()
        self.optimizer, self.base, self.epochs = optimizer, float(base), epochs
        self.epoch, self.steps = 0, 1

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch, self.steps = epoch, max(int(self.params.get("steps") or 1), 1)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        done = (self.epoch + min(batch, self.steps - 1) / self.steps) / self.epochs
        self.optimizer.learning_rate.assign(cosine_rate(self.base, done))


def cosine_rate(base: float, done: float) -> float:
    """The cosine schedule's rate once ``done`` (0 to 1) of the run's steps are taken."""
    return base * 0.5 * (1.0 + math.cos(math.pi * min(max(done, 0.0), 1.0)))


def learning_rate_of(optimizer: Any) -> float:
    """The optimizer's current learning rate (also of a mirrored variable, under tf.distribute,
    which ``float`` refuses)."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value > best if mode == "max" else value < best


def _lower_on_plateau(optimizer: Any, state: dict[str, Any], config: RunConfig, epoch: int) -> None:
    """Multiply the learning rate by ``config.lr_factor`` once dev has not improved for
    ``config.lr_patience`` epochs (then count afresh). The rate is an optimizer variable, so
    the checkpoint keeps it and a resumed run goes on at the rate it had reached."""
    rate = learning_rate_of(optimizer)
    if state["lr_wait"] >= config.lr_patience and rate > MIN_LEARNING_RATE:
        lowered = max(rate * config.lr_factor, MIN_LEARNING_RATE)
        optimizer.learning_rate.assign(lowered)
        logger.info(
            "epoch %d: no better on dev for %d epochs; learning rate %.3g -> %.3g",
            epoch,
            state["lr_wait"],
            rate,
            lowered,
        )
        state["lr_wait"] = 0


def fit_epochs(
    model: keras.Model,
    epoch_data: Callable[[int], tuple[Any, Any]],
    dev_data: Any,
    run: RunDir,
    config: RunConfig,
    *,
    monitor: str,
    mode: str,
    state: dict[str, Any] | None = None,
    trainer: keras.Model | None = None,
    verbose: int | str = "auto",
    dev_figures: Callable[[], dict[str, float]] | None = None,
) -> dict[str, list[float]]:
    """Train epoch by epoch with a checkpoint after each, early stopping on dev, and resume.

    Args:
        model: A compiled model (fresh, or loaded from the checkpoint).
        epoch_data: ``epoch -> (x, y)``, the (already shuffled) training data of that epoch;
            ``x`` may instead be a ``tf.data.Dataset`` (or ``keras.utils.PyDataset``) of
            ``(inputs, targets)`` batches, with ``y`` ``None`` (``batch_size`` is then unused).
        dev_data: ``(x, y)`` or such a dataset, validated on after each epoch, or ``None``:
            then every epoch runs, nothing is watched, and the last epoch's weights stay
            (``config.patience`` and ``config.lr_patience`` are not used).
        run: The run folder.
        config: The run's settings (epochs, batch size, patience, seed).
        monitor: History key watched for early stopping, e.g. ``"val_pearson"``.
        mode: ``"max"`` or ``"min"``.
        state: The loop state read from the checkpoint, when resuming.
        trainer: A compiled model that shares ``model``'s weights and optimizer and is fitted
            in its place (e.g. :func:`siamese.training.fused.fused_trainer`); ``model`` is still what
            is checkpointed, so its optimizer must be the trainer's.
        verbose: Passed to ``model.fit`` (``"auto"`` shows a progress bar).
        dev_figures: Called after each epoch for figures on dev that ``fit`` does not give
            (e.g. retrieval through an index); each is logged as ``val_NAME`` and can be the
            ``monitor``. With it, dev is watched even when ``dev_data`` is ``None``.

    Returns:
        The history: metric name → one value per completed epoch.

    Raises:
        TrainingError: The loss became NaN or infinite (the last good checkpoint is kept).
        Interrupted: Ctrl-C during an epoch (the checkpoint of the epoch before is kept).
    """
    state = dict(state or {"epoch": 0, "history": {}, "best": None, "best_epoch": None, "wait": 0})
    history: dict[str, list[float]] = {k: list(v) for k, v in state["history"].items()}
    best_path = run.checkpoints / BEST_WEIGHTS
    start = state["epoch"]
    watched = dev_data is not None or dev_figures is not None
    if start >= config.epochs:
        logger.info("run already has %d epochs (of %d asked for)", start, config.epochs)
    if watched and config.patience and state["wait"] >= config.patience:
        logger.info("run had stopped early at epoch %d; nothing left to do", start)
        start = config.epochs
    logs_folder = run.path / summaries.LOGS_FOLDER
    if config.tensorboard and summaries.catch_up(logs_folder, history):
        logger.info("TensorBoard logs: wrote the epochs the checkpoint had that %s lacked", logs_folder)
    fitted_model = trainer or model
    if fitted_model.optimizer is not None and not fitted_model.optimizer.built:
        # Built lazily, the optimizer would create its slots inside the first traced step,
        # and TensorFlow traces a function that creates variables twice: ~0.4 s of the first
        # SICK epoch. The same zero slots, made before.
        fitted_model.optimizer.build(fitted_model.trainable_variables)
    callbacks = [keras.callbacks.TerminateOnNaN(), _StopAfterOneEpoch()]
    cosine = config.lr_schedule == "cosine" and fitted_model.optimizer is not None
    if cosine:
        # The rate the schedule starts from: the run's, else the optimizer's at the start
        # (kept in the checkpoint's state, as the optimizer's own is lowered by then).
        if config.learning_rate is not None:
            state["lr_base"] = float(config.learning_rate)
        base = state.setdefault("lr_base", learning_rate_of(fitted_model.optimizer))
        callbacks.append(_CosineRate(fitted_model.optimizer, base, config.epochs))
        if config.lr_patience:
            logger.info(
                "the cosine schedule sets the learning rate; --lr-patience %d is not used", config.lr_patience
            )
    if faults.armed("epoch"):
        callbacks.append(_KillPoint())
    began, last_epoch_seconds = time.perf_counter(), 0.0
    for epoch in range(start, config.epochs):
        elapsed = time.perf_counter() - began
        if config.time_budget is not None and elapsed + last_epoch_seconds > config.time_budget:
            logger.info("time budget of %.0f s reached after %d epochs", config.time_budget, epoch)
            break
        epoch_began = time.perf_counter()
        seed_epoch(config.seed * 100_003 + epoch, backend=epoch == start)
        reseed_layers(model, config.seed * 100_003 + epoch)
        x, y = epoch_data(epoch)
        try:
            fitted = fitted_model.fit(
                x,
                y,
                batch_size=config.batch_size,
                epochs=config.epochs,  # so the progress display reads "Epoch k/N"
                initial_epoch=epoch,
                shuffle=False,
                validation_data=dev_data,
                callbacks=callbacks,
                verbose=verbose,
            )
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted during epoch {epoch + 1}; the checkpoint of epoch {epoch} is kept: "
                f"continue with --resume --out {run.path}"
            ) from None
        logs = {k: float(v[-1]) for k, v in fitted.history.items()}
        if dev_figures is not None:
            logs.update({f"val_{k}": float(v) for k, v in dev_figures().items()})
        last_epoch_seconds = time.perf_counter() - epoch_began
        if not all(math.isfinite(v) for k, v in logs.items() if k.endswith("loss")):
            raise TrainingError(
                f"the loss became {logs.get('loss')} in epoch {epoch + 1}; stopped, and the checkpoint "
                f"of epoch {epoch} is kept in {run.checkpoints} (try a lower --learning-rate)"
            )
        if (config.lr_patience and watched) or cosine:
            logs["learning_rate"] = learning_rate_of(fitted_model.optimizer)
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        if watched:
            value = logs.get(monitor)
            if value is None:
                raise ConfigError(f"early stopping watches {monitor!r}, which training does not report")
            if _is_better(value, state["best"], mode):
                state.update(best=value, best_epoch=epoch + 1, wait=0, lr_wait=0)
                atomic_save(best_path, model.save_weights)
            else:
                state["wait"] += 1
                state["lr_wait"] = state.get("lr_wait", 0) + 1
            if config.lr_patience and not cosine:
                _lower_on_plateau(fitted_model.optimizer, state, config, epoch + 1)
        state.update(epoch=epoch + 1, history=history)
        state["seconds"] = [*state.get("seconds", []), round(last_epoch_seconds, 3)]
        run.save_checkpoint(model, state)
        atomic_write_json(run.history, history)
        if config.tensorboard:
            rate = learning_rate_of(fitted_model.optimizer) if fitted_model.optimizer is not None else None
            summaries.log_epoch(
                logs_folder, epoch, {**logs, **({"learning_rate": rate} if rate is not None else {})}
            )
        if watched and config.patience and state["wait"] >= config.patience:
            logger.info(
                "early stop after epoch %d: %s has not improved for %d epochs (best %.4f at epoch %d)",
                epoch + 1,
                monitor,
                state["wait"],
                state["best"],
                state["best_epoch"],
            )
            break
    if watched and best_path.is_file():
        model.load_weights(best_path)
        logger.info(
            "restored the best epoch on dev: %s = %.4f at epoch %s",
            monitor,
            state["best"],
            state["best_epoch"],
        )
    return history


def seed_epoch(seed: int, *, backend: bool) -> None:
    """Seed an epoch: Python's and NumPy's global generators each time, and with ``backend``
    (the first epoch a process trains) everything :func:`keras.utils.set_random_seed` seeds.

    ``tf.random.set_seed`` also clears TensorFlow's kernel caches, so each compiled function
    is instantiated again on its next call: about 0.35 s per epoch for a text trainer on a
    2-core CPU, a quarter of a SICK epoch. The training steps do not read TensorFlow's global
    seed (layers draw from their own seeded generators, augmentation from stateless ops with
    explicit seeds), so setting it once per process leaves every result as it was.
    """
    if backend:
        keras.utils.set_random_seed(seed)
    else:
        random.seed(seed)
        np.random.seed(seed)


def without_autotune(dataset: Any) -> Any:
    """``dataset`` (a ``tf.data.Dataset``) with tf.data's autotuning turned off.

    The toolkit's input pipelines fix their own parallelism and prefetch depth, so the
    autotuner has nothing to tune; left on, its background thread holds up the teardown of
    each epoch's iterator: 0.25-0.3 s at the end of about half the epochs on SICK, where an
    epoch of training takes about 1 s.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


#: Name Keras gives the state variable of a layer's own random generator (dropout masks).
SEED_STATE = "seed_generator_state"


def reseed_layers(model: keras.Model, seed: int) -> int:
    """Set the state of every random generator of ``model``'s layers (dropout, say) from
    ``seed`` and its position, so an epoch's masks depend on ``(seed, epoch)`` alone.

    Keras keeps these states as variables that advance with each step but are not saved with
    the weights: without this, a run resumed from its checkpoint would start them over and
    draw other masks than the run that never stopped. Returns how many were set.
    """
    states = [v for v in model.variables if v.path.split("/")[-1] == SEED_STATE]
    for position, state in enumerate(states):
        state.assign(np.asarray([(seed * 1_000_003 + position) % 2**31, 0], dtype=state.dtype))
    return len(states)


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffle of epoch ``epoch``: a function of ``(seed, epoch)`` alone, so resume repeats it."""
    return np.random.default_rng([seed, epoch]).permutation(n)
