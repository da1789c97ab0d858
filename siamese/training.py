"""One training run: its settings, its folder on disk, and the epoch loop with checkpoints.

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

Every file is written atomically. The loop seeds each epoch from ``(seed, epoch)``, so a run
resumed from its checkpoint draws the same shuffles and dropout masks as one that never
stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from siamese._version import __version__
from siamese.errors import ConfigError, SiameseError
from siamese.io import atomic_save, atomic_write_json, read_json, remove_stale_temporaries

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
BEST_WEIGHTS = "best.weights.h5"
# The floor of the learning rate when it is lowered on a plateau (RunConfig.lr_patience).
MIN_LEARNING_RATE = 1e-6


class TrainingError(SiameseError):
    """Training could not go on (a NaN loss, an interruption); the last checkpoint is kept."""


@dataclass
class TextOptions:
    """Settings of the text tower and of reading a CSV/TSV of pairs."""

    vocab_size: int = 20000
    sequence_length: int = 30
    embedding_dim: int | None = 128
    units: int = 128
    rnn: str = "lstm"
    sequence_pooling: str = "last"
    dropout: float = 0.0
    word_vectors: str | None = None
    train_embeddings: bool = True
    # Words with pretrained vectors added to the vocabulary beyond the training text's
    # (the most frequent first), so unseen words keep their vector (0: none).
    vectors_vocabulary: int = 0
    # Start from the tower of an earlier text run (its folder or its tower.keras): its
    # vocabulary, layers and weights, under a fresh head (transfer from related pair data).
    # The tower settings above then describe nothing (train_embeddings still applies).
    init_tower: str | None = None
    text_a_col: str = "sentence1"
    text_b_col: str = "sentence2"
    label_col: str = "label"
    sep: str | None = None
    # Training batches: pairs of similar length are batched together within pools of this
    # many batches, and each batch is cut to its longest sentence (0: batches in shuffled
    # order, still cut). See siamese.fused.
    bucket_pool: int = 16
    # Graded data: once early stopping on dev has picked the epoch count, train again from
    # the start on train + dev for that many epochs; that model is the run's (see
    # siamese.tasks.text_pairs).
    refit: bool = False
    # Train this many models alike (seeds seed, seed + 1, ...) and keep them as one: the
    # mean of their scores, the concatenation of their towers' encodings (see
    # siamese.ensemble and siamese.tasks.text_pairs).
    members: int = 1
    # Binary data: the decision threshold is the one with the best value of this metric on
    # dev, "accuracy" or "f1".
    threshold_metric: str = "accuracy"


@dataclass
class ImageOptions:
    """Settings of the image tower and pair sampling.

    ``global_pooling``, ``batch_norm``, ``convs_per_block`` and ``dropout`` are passed to
    :func:`siamese.towers.image_tower`.
    """

    image_size: tuple[int, int] | None = None
    filters: tuple[int, ...] = (32, 64, 128)
    embedding_dim: int = 64
    pairs_per_epoch: int | None = None
    hard_negative_fraction: float = 0.0
    augment: bool = False
    # Add each training image's 90/180/270-degree rotations as new classes (square images).
    rotated_classes: bool = False
    # Draw each batch's pairs among a pool of about batch-size images, each embedded once per
    # step (half the tower work per pair of independent pairs); see PairSampler's pool_size.
    pair_pools: bool = True
    global_pooling: str = "flatten"
    batch_norm: bool = False
    convs_per_block: int = 1
    dropout: float = 0.0
    # Test-time augmentation: embed each image, for the embedding-based figures (one-shot by
    # embedding distance, k-NN), as the mean of its own embedding and those of this many fixed
    # small distortions of it (0: the image alone).
    test_time_augment: int = 0


@dataclass
class BasketballOptions:
    """Settings of the basketball example."""

    model: str = "team-strength"
    pred: str = "ours"
    # Loss of the season model, "mae" or "mse"; None: MAE when the season model is the run's
    # model (the course's), squared error when it only supplies the tournament models' pred
    # (a better pred for them on dev: tournament train rows, season folds).
    season_loss: str | None = None
    # The tournament models learn from 3,168 rows: small batches and many epochs (with early
    # stopping on a held-out tenth of those rows). ``epochs``/``batch_size`` of the run apply
    # to the season model.
    tourney_epochs: int = 1000
    tourney_batch_size: int = 128
    tourney_patience: int = 25


@dataclass
class RunConfig:
    """Every setting of one run; saved as ``config.json`` so the run can be repeated.

    Attributes:
        task: ``text-pairs``, ``image-pairs`` or ``basketball``.
        data: Dataset name, path, or ``tfds:NAME``.
        objective: ``regression`` (graded scores) or ``binary``; ``None`` follows the data.
        head: Similarity head name; ``None`` picks the task's default.
        loss: Loss name; ``None`` picks the default for the head and objective.
        epochs: Largest number of epochs.
        batch_size: Pairs per training step.
        learning_rate: Adam's learning rate.
        patience: Epochs without improvement on dev before stopping early (0: never).
        seed: Seed of weights, splits, shuffles and dropout.
        dev_fraction: Share held out as dev where the data has no dev split.
        head_hidden_units: Hidden ReLU layer of the ``concat`` head (0: none).
        swap_pairs: Train on both orders (a, b) and (b, a) of each pair when the head is
            not symmetric (``concat``), so the model does not depend on the order.
        time_budget: Seconds of training allowed; no epoch is started that would, at the
            pace of the last one, end past it (``None``: no limit).
        lr_patience: Epochs without improvement on dev before the learning rate is multiplied
            by ``lr_factor`` (0: never; the rate does not go below ``MIN_LEARNING_RATE``).
        lr_factor: What the learning rate is multiplied by on such a plateau, in (0, 1).
    """

    task: str
    data: str
    objective: str | None = None
    head: str | None = None
    loss: str | None = None
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 3
    seed: int = 0
    dev_fraction: float = 0.1
    head_hidden_units: int = 0
    swap_pairs: bool = True
    time_budget: float | None = None
    lr_patience: int = 0
    lr_factor: float = 0.5
    text: TextOptions = field(default_factory=TextOptions)
    image: ImageOptions = field(default_factory=ImageOptions)
    basketball: BasketballOptions = field(default_factory=BasketballOptions)
    version: str = __version__

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if self.patience < 0:
            raise ConfigError(f"patience must be 0 or more, got {self.patience!r}")
        if self.lr_patience < 0:
            raise ConfigError(f"lr_patience must be 0 or more, got {self.lr_patience!r}")
        if not 0 < self.lr_factor < 1:
            raise ConfigError(f"lr_factor must be between 0 and 1, got {self.lr_factor!r}")
        if not isinstance(self.text.members, int) or self.text.members <= 0:
            raise ConfigError(f"members must be a positive integer, got {self.text.members!r}")
        if self.objective not in (None, "regression", "binary"):
            raise ConfigError(f"objective must be regression or binary, got {self.objective!r}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Rebuild a config from :meth:`to_dict`'s output (unknown keys are an error)."""
        values = dict(values)
        sections = {"text": TextOptions, "image": ImageOptions, "basketball": BasketballOptions}
        try:
            for key, section in sections.items():
                part = dict(values.get(key) or {})
                for name, value in part.items():
                    if isinstance(value, list):
                        part[name] = tuple(value)
                values[key] = section(**part)
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"config.json does not describe a run of this toolkit: {exc}") from None


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
            ``epochs`` taken from the given config, so a finished run can be extended).

        Raises:
            ConfigError: A new run would overwrite a run folder, or there is nothing to resume.
        """
        if resume:
            if not self.config.is_file():
                raise ConfigError(f"nothing to resume in {self.path}: it has no config.json")
            saved = RunConfig.from_dict(read_json(self.config))
            if saved.task != config.task:
                raise ConfigError(f"{self.path} is a {saved.task} run, not {config.task}")
            saved.epochs = config.epochs
            atomic_write_json(self.config, saved.to_dict())
            return saved
        if self.path.exists() and any(self.path.iterdir()):
            raise ConfigError(
                f"run folder {self.path} already holds a run: pass --resume to continue it, "
                "or choose another --out"
            )
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.config, config.to_dict())
        return config

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
        return RunConfig.from_dict(read_json(self.config)).task

    def finished_config(self, task: str) -> RunConfig:
        """The settings of a finished run of ``task``.

        Raises:
            ConfigError: The folder is not a finished run, or is a run of another task.
        """
        if not self.config.is_file() or not self.model.is_file():
            raise ConfigError(f"{self.path} is not a finished run (no config.json or model.keras)")
        config = RunConfig.from_dict(read_json(self.config))
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
        atomic_save(self.checkpoints / name, model.save)
        previous = self.read_state()
        atomic_write_json(self.state, {**state, "model_file": name})
        if previous and previous.get("model_file") not in (None, name):
            (self.checkpoints / previous["model_file"]).unlink(missing_ok=True)

    def finish(self, model: keras.Model, tower: keras.Model | None, metrics: dict[str, Any]) -> None:
        """Write the final model and tower, then the metrics (the mark of a finished run)."""
        atomic_save(self.model, model.save)
        if tower is not None:
            atomic_save(self.tower, tower.save)
        atomic_write_json(self.metrics, metrics)


class _StopAfterOneEpoch(keras.callbacks.Callback):
    """Ends ``fit`` after the epoch it started: the loop above draws each epoch's data itself."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.model.stop_training = True


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value > best if mode == "max" else value < best


def _lower_on_plateau(optimizer: Any, state: dict[str, Any], config: RunConfig, epoch: int) -> None:
    """Multiply the learning rate by ``config.lr_factor`` once dev has not improved for
    ``config.lr_patience`` epochs (then count afresh). The rate is an optimizer variable, so
    the checkpoint keeps it and a resumed run goes on at the rate it had reached."""
    rate = float(optimizer.learning_rate)
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
            in its place (e.g. :func:`siamese.fused.fused_trainer`); ``model`` is still what
            is checkpointed, so its optimizer must be the trainer's.
        verbose: Passed to ``model.fit`` (``"auto"`` shows a progress bar).

    Returns:
        The history: metric name → one value per completed epoch.

    Raises:
        TrainingError: The loss became NaN or infinite (the last good checkpoint is kept), or
            the run was interrupted.
    """
    state = dict(state or {"epoch": 0, "history": {}, "best": None, "best_epoch": None, "wait": 0})
    history: dict[str, list[float]] = {k: list(v) for k, v in state["history"].items()}
    best_path = run.checkpoints / BEST_WEIGHTS
    start = state["epoch"]
    watched = dev_data is not None
    if start >= config.epochs:
        logger.info("run already has %d epochs (of %d asked for)", start, config.epochs)
    if watched and config.patience and state["wait"] >= config.patience:
        logger.info("run had stopped early at epoch %d; nothing left to do", start)
        start = config.epochs
    fitted_model = trainer or model
    if fitted_model.optimizer is not None and not fitted_model.optimizer.built:
        # Built lazily, the optimizer would create its slots inside the first traced step,
        # and TensorFlow traces a function that creates variables twice: ~0.4 s of the first
        # SICK epoch. The same zero slots, made before.
        fitted_model.optimizer.build(fitted_model.trainable_variables)
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
                callbacks=[keras.callbacks.TerminateOnNaN(), _StopAfterOneEpoch()],
                verbose=verbose,
            )
        except KeyboardInterrupt:
            raise TrainingError(
                f"interrupted during epoch {epoch + 1}; the checkpoint of epoch {epoch} is kept: "
                f"continue with --resume --out {run.path}"
            ) from None
        last_epoch_seconds = time.perf_counter() - epoch_began
        logs = {k: float(v[-1]) for k, v in fitted.history.items()}
        if not all(math.isfinite(v) for k, v in logs.items() if k.endswith("loss")):
            raise TrainingError(
                f"the loss became {logs.get('loss')} in epoch {epoch + 1}; stopped, and the checkpoint "
                f"of epoch {epoch} is kept in {run.checkpoints} (try a lower --learning-rate)"
            )
        if config.lr_patience and watched:
            logs["learning_rate"] = float(fitted_model.optimizer.learning_rate)
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
            if config.lr_patience:
                _lower_on_plateau(fitted_model.optimizer, state, config, epoch + 1)
        state.update(epoch=epoch + 1, history=history)
        state["seconds"] = [*state.get("seconds", []), round(last_epoch_seconds, 3)]
        run.save_checkpoint(model, state)
        atomic_write_json(run.history, history)
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


def plot_history(history: dict[str, list[float]], path: str | os.PathLike[str], *, metric: str) -> bool:
    """Save loss and ``metric`` per epoch, train vs dev, as a PNG. Returns False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        logger.info("matplotlib is not installed: no history.png (pip install 'siamese[plot]')")
        return False
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", metric), strict=True):
        for prefix, label in (("", "train"), ("val_", "dev")):
            values = history.get(prefix + key)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return True
