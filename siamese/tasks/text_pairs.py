"""``siamese-train --task text-pairs``: a text tower trained on sentence pairs.

Graded data (SICK, STS-B) is learned as regression on scores scaled to [0, 1] (default head
``manhattan``, exp(-‖u - v‖₁) as in MaLSTM, with MSE); binary data (MRPC, PAWS, QQP) as
classification (default head ``abs-diff`` with binary cross-entropy). Final metrics are on
each dataset's own scale: Pearson, Spearman and MSE for graded data; accuracy and F1 at the
threshold chosen on dev, ROC-AUC and average precision for binary data.

With ``--members N`` the run trains N models alike (seeds ``seed`` … ``seed + N - 1``), each a
run of its own in ``members/K``, and keeps them as one pair model (:mod:`siamese.ensemble`):
the mean of their scores, a tower whose encoding is their encodings concatenated.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from siamese import ensemble, evaluation, fused, heads, losses
from siamese.datasets.text import BINARY, GRADED, TextPairs, load_text_dataset
from siamese.errors import ConfigError
from siamese.io import atomic_write_json, read_json
from siamese.keras_metrics import PearsonCorrelation
from siamese.models import build_siamese, load_model, load_tower, tower_of
from siamese.towers import text_tower
from siamese.training import (
    RunConfig,
    RunDir,
    epoch_permutation,
    fit_epochs,
    plot_history,
    without_autotune,
)
from siamese.vectors import load_word_vectors

logger = logging.getLogger(__name__)

TASK = "text-pairs"
#: Sub-folder of a run that holds the second training of ``--refit``.
REFIT_FOLDER = "refit"
#: Sub-folder of an ensemble run (``--members``) whose ``K/`` holds member K's run.
MEMBERS_FOLDER = "members"
#: What a binary run's decision threshold is chosen to maximise on dev.
THRESHOLD_METRICS = ("accuracy", "f1")
#: Heads whose output changes when the two inputs are swapped.
ASYMMETRIC_HEADS = frozenset({"concat"})


def load_splits(config: RunConfig, data: str | None = None) -> dict[str, TextPairs]:
    """Read the run's dataset (or ``data``) as train/dev/test pairs."""
    options = config.text
    return load_text_dataset(
        data or config.data,
        text_a_col=options.text_a_col,
        text_b_col=options.text_b_col,
        label_col=options.label_col,
        sep=options.sep,
        seed=config.seed,
        dev_fraction=config.dev_fraction,
    )


def resolve_defaults(config: RunConfig, kind: str) -> RunConfig:
    """Fill in objective, head and loss from the data's kind, and check they fit together."""
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
    if config.text.threshold_metric not in THRESHOLD_METRICS:
        raise ConfigError(
            f"--threshold-metric must be one of {', '.join(THRESHOLD_METRICS)}; "
            f"got {config.text.threshold_metric!r}"
        )
    if config.text.refit and objective != "regression":
        raise ConfigError(
            "--refit needs graded data (--objective regression): a binary run's threshold is chosen on dev"
        )
    config.objective, config.head, config.loss = objective, head, loss
    return config


def _targets(pairs: TextPairs, config: RunConfig) -> np.ndarray:
    if config.objective == "regression":
        return evaluation.from_scale(pairs.labels, pairs.scale)
    return pairs.labels.astype(np.float32)


def _inputs(pairs: TextPairs) -> list[np.ndarray]:
    return [np.asarray(pairs.a, dtype=object), np.asarray(pairs.b, dtype=object)]


def build_model(
    config: RunConfig, train: TextPairs, word_vectors: Any = None, tower: keras.Model | None = None
) -> keras.Model:
    """A fresh, compiled pair model whose tower's vocabulary is adapted on the training text,
    or which starts from ``tower`` (loaded from ``config.text.init_tower`` if not given)."""
    keras.utils.set_random_seed(config.seed)  # the head's initial weights, too, follow the seed
    options = config.text
    if tower is None and options.init_tower:
        tower = load_text_tower(options.init_tower)
    if tower is not None:
        for layer in tower.layers:
            if isinstance(layer, keras.layers.Embedding):
                layer.trainable = options.train_embeddings
    else:
        tower = _new_tower(config, train, word_vectors)
    head_options = {"hidden_units": config.head_hidden_units} if config.head == "concat" else {}
    if config.head_hidden_units and config.head != "concat":
        raise ConfigError("--head-hidden applies to the concat head only")
    model = build_siamese(tower, config.head, **head_options)
    compile_model(model, config)
    return model


def load_text_tower(path: str | os.PathLike[str]) -> keras.Model:
    """The text tower saved at ``path`` (a run folder or a ``tower.keras`` file).

    Raises:
        ConfigError: There is no loadable tower there, or it is not a text tower.
    """
    try:
        tower = load_tower(path)
    except ConfigError as exc:
        raise ConfigError(f"--init-tower: {exc}") from None
    if not fused.trimmable(tower):
        members = Path(path) / MEMBERS_FOLDER
        if members.is_dir():
            raise ConfigError(
                f"--init-tower: {path} is an ensemble run: start from one of its members "
                f"({members / '0'}, ...), or train an ensemble with --members"
            )
        raise ConfigError(f"--init-tower: {path} is not a text tower")
    logger.info("tower initialised from %s", path)
    return tower


def _new_tower(config: RunConfig, train: TextPairs, word_vectors: Any) -> keras.Model:
    options = config.text
    return text_tower(
        list(train.a) + list(train.b),
        vocab_size=options.vocab_size,
        sequence_length=options.sequence_length,
        embedding_dim=options.embedding_dim,
        units=options.units,
        rnn=options.rnn,
        sequence_pooling=options.sequence_pooling,
        dropout=options.dropout,
        word_vectors=word_vectors,
        train_embeddings=options.train_embeddings,
        seed=config.seed,
        extra_vocabulary=word_vectors.words[: options.vectors_vocabulary] if word_vectors else (),
    )


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


def score_splits(
    model: keras.Model, splits: dict[str, TextPairs], config: RunConfig, *, batch_size: int = 512
) -> dict[str, dict[str, float]]:
    """Metrics of every split on the data's own scale (binary: threshold chosen on dev)."""
    outputs = {
        name: evaluation.pair_outputs(model, p.a, p.b, batch_size=batch_size) for name, p in splits.items()
    }
    result: dict[str, dict[str, float]] = {}
    if config.objective == "regression":
        for name, pairs in splits.items():
            result[name] = evaluation.graded_metrics(
                evaluation.to_scale(outputs[name], pairs.scale), pairs.labels
            )
        return result
    scores = {name: evaluation.similarity(out, config.head) for name, out in outputs.items()}
    reference = "dev" if "dev" in splits else "train"
    threshold = evaluation.choose_threshold(
        scores[reference], splits[reference].labels, config.text.threshold_metric
    )
    for name, pairs in splits.items():
        result[name] = evaluation.binary_metrics(scores[name], pairs.labels, threshold)
    return result


def train(
    config: RunConfig, out: str | os.PathLike[str], *, resume: bool = False, verbose: Any = "auto"
) -> dict:
    """Train a text tower on pairs and write the run folder.

    With ``config.text.members`` above 1, each member is such a run of its own in
    ``members/K`` and the run keeps them as one ensemble model (see :func:`_train_members`).

    With ``config.text.refit`` (graded data), once early stopping on dev has picked the
    epoch count, a second model is trained from the same start on train + dev for that many
    epochs (in the run's ``refit/`` folder, with its own checkpoints) and becomes the run's
    model and tower. ``metrics.json`` then holds the first model's dev figures (dev is in the
    second one's training data) and the second one's train and test figures.

    Args:
        config: The run's settings (``task`` must be ``text-pairs``).
        out: The run folder.
        resume: Continue the run in ``out`` from its last checkpoint.
        verbose: Keras's progress display (``"auto"``, 0, 1 or 2).

    Returns:
        The metrics written to ``metrics.json``: split → metric → value.
    """
    run = RunDir(out)
    if resume:
        config = run.reopen(config)
    if config.text.members > 1:
        return _train_members(config, run, resume, verbose)
    splits = load_splits(config)
    train_pairs, dev_pairs = splits["train"], splits["dev"]
    config = resolve_defaults(config, train_pairs.kind)
    word_vectors = None
    if config.text.word_vectors and not resume and not config.text.init_tower:
        word_vectors = _word_vectors(config)
    checkpoint = run.load_checkpoint() if resume else None
    initial = load_text_tower(config.text.init_tower) if config.text.init_tower and not resume else None
    if not resume:
        run.prepare(config, resume=False)
    logger.info(
        "text pairs %s: train %d, dev %d%s; objective %s, head %s, loss %s",
        config.data,
        len(train_pairs),
        len(dev_pairs),
        f", test {len(splits['test'])}" if "test" in splits else "",
        config.objective,
        config.head,
        config.loss,
    )
    if checkpoint is not None:
        model, state = checkpoint
        logger.info("resuming %s after epoch %d", run.path, state["epoch"])
    else:
        model, state = build_model(config, train_pairs, word_vectors, initial), None
    history = _fit(model, state, config, run, train_pairs, dev_pairs, verbose)
    metrics = score_splits(model, splits, config)
    plot_history(history, run.path / "history.png", metric=monitored(config)[2])
    if config.text.refit:
        model = _refit(config, run, splits, word_vectors, verbose)
        metrics = {**score_splits(model, splits, config), "dev": metrics["dev"]}
    run.finish(model, tower_of(model), metrics)
    return metrics


def _train_members(config: RunConfig, run: RunDir, resume: bool, verbose: Any) -> dict:
    """Train (or, on resume, finish) each member's run in ``members/K``, then save them as
    one ensemble model. With ``--refit`` the dev figures are the mean of the members' own
    (each chosen on dev before its refit), since dev is in every member's training data."""
    splits = load_splits(config)
    config = resolve_defaults(config, splits["train"].kind)
    if not resume:  # a bad start is reported before any folder is made, as for one model
        start = _member_config(config, 0, 0.0).text.init_tower
        if start:
            load_text_tower(start)
        elif config.text.word_vectors:
            _word_vectors(config)
        run.prepare(config, resume=False)
    began = time.monotonic()
    count = config.text.members
    folders = [RunDir(run.path / MEMBERS_FOLDER / str(k)) for k in range(count)]
    for k, member in enumerate(folders):
        if member.is_complete():
            continue
        member_config = _member_config(config, k, time.monotonic() - began)
        again = member.read_state() is not None
        if member.path.exists() and not again:  # stopped before its first epoch ended
            shutil.rmtree(member.path)
        logger.info("member %d of %d (seed %d) in %s", k + 1, count, member_config.seed, member.path)
        train(member_config, member.path, resume=again, verbose=verbose)
    model = ensemble.ensemble_model([load_model(member.model) for member in folders])
    metrics = score_splits(model, splits, config)
    if config.text.refit:
        devs = [read_json(member.metrics)["dev"] for member in folders]
        metrics["dev"] = {name: float(np.mean([dev[name] for dev in devs])) for name in devs[0]}
        metrics["dev"]["n"] = devs[0]["n"]
    history = {
        f"member_{k}/{name}": values
        for k, member in enumerate(folders)
        for name, values in read_json(member.history).items()
    }
    atomic_write_json(run.history, history)
    run.finish(model, tower_of(model), metrics)
    logger.info("ensemble of %d members saved in %s", count, run.path)
    return metrics


def _member_config(config: RunConfig, k: int, spent: float) -> RunConfig:
    """Member ``k``'s settings: seed ``seed + k``, the time budget left, and the tower to
    start from (member ``k``'s of an ensemble ``--init-tower``, by turns if it has fewer)."""
    start = config.text.init_tower
    if start and (Path(start) / MEMBERS_FOLDER).is_dir():
        try:
            count = RunDir(start).finished_config(TASK).text.members
        except ConfigError as exc:
            raise ConfigError(f"--init-tower: {exc}") from None
        start = str(Path(start) / MEMBERS_FOLDER / str(k % count))
    budget = None if config.time_budget is None else max(config.time_budget - spent, 1.0)
    return dataclasses.replace(
        config,
        seed=config.seed + k,
        time_budget=budget,
        text=dataclasses.replace(config.text, members=1, init_tower=start),
    )


def _word_vectors(config: RunConfig) -> Any:
    """The run's pretrained vectors (the embedding width follows them)."""
    word_vectors = load_word_vectors(config.text.word_vectors)
    if config.text.embedding_dim != word_vectors.dim:
        logger.info("embedding width set to the word vectors' %d", word_vectors.dim)
        config.text.embedding_dim = word_vectors.dim
    return word_vectors


def _fit(
    model: keras.Model,
    state: dict | None,
    config: RunConfig,
    run: RunDir,
    train_pairs: TextPairs,
    dev_pairs: TextPairs | None,
    verbose: Any,
) -> dict[str, list[float]]:
    """Train ``model`` through its fused trainer on token ids, in length-bucketed batches,
    early-stopping on ``dev_pairs`` (``None``: every epoch of ``config.epochs``, none watched)."""
    trainer = fused.fused_trainer(model, token_ids=True)
    compile_model(trainer, config, optimizer=model.optimizer)
    vectorizer = fused.text_vectorizer(tower_of(model))
    ids_a, ids_b = (fused.token_ids(vectorizer, side) for side in _inputs(train_pairs))
    y_train = _targets(train_pairs, config)
    if config.swap_pairs and config.head in ASYMMETRIC_HEADS:
        ids_a, ids_b = np.concatenate([ids_a, ids_b]), np.concatenate([ids_b, ids_a])
        y_train = np.concatenate([y_train, y_train])
    lengths = fused.pair_lengths(ids_a, ids_b)

    def epoch_data(epoch: int) -> tuple[tf.data.Dataset, None]:
        order = epoch_permutation(len(y_train), config.seed, epoch)
        batches = fused.batch_order(
            lengths,
            order,
            config.batch_size,
            pool_batches=config.text.bucket_pool,
            rng=np.random.default_rng([config.seed, epoch, 1]),
        )
        if epoch == (state or {}).get("epoch", 0):
            logger.info(
                "padding: %.0f%% of token slots at a fixed length of %d, %.0f%% in these batches",
                100 * fused.padding_share(lengths, batches, width=ids_a.shape[1]),
                ids_a.shape[1],
                100 * fused.padding_share(lengths, batches),
            )
        return _id_dataset(ids_a, ids_b, y_train, batches, lengths), None

    dev_data = None
    if dev_pairs is not None:
        dev_a, dev_b = (fused.token_ids(vectorizer, side) for side in _inputs(dev_pairs))
        dev_lengths = fused.pair_lengths(dev_a, dev_b)
        dev_batches = fused.batch_order(
            dev_lengths, np.argsort(dev_lengths, kind="stable"), config.batch_size, pool_batches=0, rng=None
        )
        dev_data = _id_dataset(dev_a, dev_b, _targets(dev_pairs, config), dev_batches, dev_lengths)
    monitor, mode, _ = monitored(config)
    return fit_epochs(
        model,
        epoch_data,
        dev_data,
        run,
        config,
        monitor=monitor,
        mode=mode,
        state=state,
        trainer=trainer,
        verbose=verbose,
    )


def _refit(
    config: RunConfig,
    run: RunDir,
    splits: dict[str, TextPairs],
    word_vectors: Any,
    verbose: Any,
) -> keras.Model:
    """The model trained again from the start on train + dev for the best epoch count on dev
    (the one early stopping restored, from ``run``'s loop state), in ``run``'s ``refit/``
    folder, resumed from its checkpoint if it has one."""
    epochs = run.read_state()["best_epoch"]
    refit_config = dataclasses.replace(
        config,
        epochs=epochs,
        patience=0,
        lr_patience=0,
        text=dataclasses.replace(config.text, refit=False),
    )
    pooled = splits["train"].joined(splits["dev"])
    sub = RunDir(run.path / REFIT_FOLDER)
    checkpoint = sub.load_checkpoint() if sub.state.is_file() else None
    if checkpoint is not None:
        sub.reopen(refit_config)
        model, state = checkpoint
        logger.info("resuming the refit after epoch %d", state["epoch"])
    else:
        if sub.config.is_file():  # stopped before its first epoch ended: start it again
            shutil.rmtree(sub.path)
        sub.prepare(refit_config, resume=False)
        options = config.text
        if word_vectors is None and options.word_vectors and not options.init_tower:
            word_vectors = _word_vectors(config)
        tower = load_text_tower(options.init_tower) if options.init_tower else None
        model, state = build_model(refit_config, pooled, word_vectors, tower), None
    logger.info(
        "refit: %d epoch%s (the best on dev) on train + dev, %d pairs",
        epochs,
        "" if epochs == 1 else "s",
        len(pooled),
    )
    _fit(model, state, refit_config, sub, pooled, None, verbose)
    return model


def _id_dataset(
    ids_a: np.ndarray,
    ids_b: np.ndarray,
    targets: np.ndarray,
    batches: list[np.ndarray],
    lengths: np.ndarray,
) -> tf.data.Dataset:
    """The batches of token ids (each cut to its longest sentence) as a ``tf.data.Dataset``."""
    target_shape = (None, *targets.shape[1:])
    dataset = tf.data.Dataset.from_generator(
        lambda: fused.length_batches(ids_a, ids_b, targets, batches, lengths),
        output_signature=(
            (tf.TensorSpec((None, None), tf.int64), tf.TensorSpec((None, None), tf.int64)),
            tf.TensorSpec(target_shape, tf.as_dtype(targets.dtype)),
        ),
    )
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2)
    return without_autotune(dataset)


def evaluate(run_dir: str | os.PathLike[str], *, data: str | None = None, split: str = "test") -> dict:
    """Evaluate a finished text-pairs run on a split of its own data (or of ``data``).

    Returns:
        ``{split: {metric: value}}``; for binary data the threshold is chosen on the dev split.

    Raises:
        ConfigError: The folder is not a finished text-pairs run, or the split does not exist.
    """
    run = RunDir(run_dir)
    config = run.finished_config(TASK)
    splits = load_splits(config, data)
    if split not in splits:
        raise ConfigError(f"split {split!r} does not exist here; available: {', '.join(splits)}")
    wanted = {split: splits[split]}
    if config.objective == "binary":
        wanted.setdefault("dev" if "dev" in splits else "train", splits.get("dev", splits["train"]))
    if config.text.refit and split == "dev":
        logger.warning(
            "%s was refit on train + dev: these dev figures are not held out "
            "(metrics.json keeps those of the model chosen on dev)",
            run.path,
        )
    model = load_model(run.model)
    return {split: score_splits(model, wanted, config)[split]}
