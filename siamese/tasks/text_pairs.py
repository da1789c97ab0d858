"""``siamese-train --task text-pairs``: a text tower trained on sentence pairs.

Graded data (SICK, STS-B) is learned as regression on scores scaled to [0, 1] (default head
``manhattan``, exp(-‖u - v‖₁) as in MaLSTM, with MSE); binary data (MRPC, PAWS, QQP) as
classification (default head ``abs-diff`` with binary cross-entropy). Final metrics are on
each dataset's own scale: Pearson, Spearman and MSE for graded data; accuracy and F1 at the
threshold chosen on dev, ROC-AUC and average precision for binary data.

Training goes through the fused trainer on token ids (:mod:`siamese.training.fused`): the
text is turned into ids once, pairs of similar length are batched together and each batch is
cut to its longest sentence.

With ``--members N`` the run trains N models alike (seeds ``seed`` … ``seed + N - 1``), each a
run of its own in ``members/K``, and keeps them as one pair model (:mod:`siamese.ensemble`):
the mean of their scores, a tower whose encoding is their encodings concatenated. With
``--refit`` (graded data), once early stopping on dev has picked the epoch count, a second
model is trained from the same start on train + dev for that many epochs in ``refit/``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import click
import keras
import numpy as np
import tensorflow as tf

from siamese import encode, ensemble
from siamese.datasets.records import GRADED, TextPairs
from siamese.datasets.text import load_text_dataset
from siamese.errors import ConfigError
from siamese.faults import kill_point
from siamese.index import Index
from siamese.io import atomic_save, atomic_write_json, read_json
from siamese.metrics import evaluators
from siamese.metrics.retrieval import pair_retrieval_set, retrieval_of
from siamese.models import load_model, load_tower, tower_of
from siamese.pairs import distinct_batches, mine_hard_negatives
from siamese.tasks.base import Defaults, Job, Task, Trained, option, register
from siamese.tasks.pair_model import (
    build_pair_model,
    compile_model,
    fit_for_retrieval,
    index_steps,
    monitored,
    resolve_pair_settings,
)
from siamese.towers import RNN_KINDS, SEQUENCE_POOLINGS, text_tower
from siamese.training import fused
from siamese.training.config import RunConfig, TaskOptions
from siamese.training.loop import epoch_permutation, fit_epochs
from siamese.training.plots import plot_history
from siamese.training.run_dir import RunDir
from siamese.vectors import load_word_vectors

logger = logging.getLogger(__name__)

NAME = "text-pairs"
#: Sub-folder of a run that holds the second training of ``--refit``.
REFIT_FOLDER = "refit"
#: Sub-folder of an ensemble run (``--members``) whose ``K/`` holds member K's run.
MEMBERS_FOLDER = "members"
#: What a binary run's decision threshold is chosen to maximise on dev.
THRESHOLD_METRICS = ("accuracy", "f1")
#: Heads whose output changes when the two inputs are swapped.
ASYMMETRIC_HEADS = frozenset({"concat"})
#: The losses of ``--objective retrieval`` (the default first).
RETRIEVAL_LOSSES = ("multiple-negatives",)
#: The dev figures a retrieval run watches and logs each epoch.
DEV_RETRIEVAL = ("retrieval_mrr@10", "retrieval_recall@10")


#: The word vectors of a text tower unless the run says otherwise (they ship with the package).
DEFAULT_WORD_VECTORS = "glove-6b-50d"
#: The word embedding's width when a tower has no pretrained vectors and the run names none.
PLAIN_EMBEDDING_DIM = 128


@dataclass
class TextTowerOptions(TaskOptions):
    """Settings of a new text tower (:func:`siamese.towers.text_tower`), shared by the text
    tasks."""

    vocab_size: int = 20000
    sequence_length: int = 30
    # None: the word vectors' width, or PLAIN_EMBEDDING_DIM without vectors.
    embedding_dim: int | None = None
    units: int = 128
    rnn: str = "bilstm"
    sequence_pooling: str = "max"
    dropout: float = 0.0
    # Pretrained word vectors ("glove-6b-50d" ships with the package; None or "none": none).
    word_vectors: str | None = DEFAULT_WORD_VECTORS
    train_embeddings: bool = True
    # Words with pretrained vectors added to the vocabulary beyond the training text's
    # (the most frequent first), so unseen words keep their vector (0: none).
    vectors_vocabulary: int = 100000

    def __post_init__(self) -> None:
        if isinstance(self.word_vectors, str) and self.word_vectors.lower() == "none":
            self.word_vectors = None


@dataclass
class TextOptions(TextTowerOptions):
    """Settings of the text tower, of reading a CSV/TSV of pairs, and of a text run."""

    SECTION: ClassVar[str] = "text"

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
    # order, still cut). See siamese.training.fused.
    bucket_pool: int = 16
    # Graded data: once early stopping on dev has picked the epoch count, train again from
    # the start on train + dev for that many epochs; that model is the run's.
    refit: bool = False
    # Train this many models alike (seeds seed, seed + 1, ...) and keep them as one: the
    # mean of their scores, the concatenation of their towers' encodings (siamese.ensemble).
    members: int = 1
    # Binary data: the decision threshold is the one with the best value of this metric on
    # dev, "accuracy" or "f1".
    threshold_metric: str = "accuracy"
    # Graded data: pairs scoring at least this (on the data's own scale) are the similar
    # pairs of retrieval: its queries and their answers, and the retrieval objective's
    # training pairs.
    positive_threshold: float = 4.0
    # --objective retrieval: mine one hard negative per training pair with the index of the
    # current tower, before training and every this many epochs (None: in-batch negatives only).
    mine_every: int | None = None
    # ... drawn among each anchor's nearest items at these ranks (from, to), after its own
    # copy and its known positives are left out.
    mine_ranks: tuple[int, int] = (10, 50)
    # --objective retrieval: each positive also picks its anchor among the batch's anchors
    # (the in-batch loss both ways).
    symmetric_loss: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.members, bool) or not isinstance(self.members, int) or self.members <= 0:
            raise ConfigError(f"members must be a positive integer, got {self.members!r}")


def tower_cli_options(o: type[TextTowerOptions], *, more_vectors: str = "") -> list[click.Option]:
    """The command-line options of the settings of a new text tower (:class:`TextTowerOptions`);
    ``more_vectors`` names what else a task's ``--word-vectors`` takes."""
    return [
        option(
            o,
            "word_vectors",
            "--word-vectors",
            help="Pretrained vectors: glove-6b-50d (installed with the package), a GloVe/word2vec "
            f"text file, .npy, {more_vectors}or none.",
        ),
        option(
            o,
            "train_embeddings",
            "--freeze-embeddings",
            flag_value=False,
            show_default=False,
            help="Keep pretrained word vectors fixed.",
        ),
        option(
            o,
            "vectors_vocabulary",
            "--vectors-vocabulary",
            type=click.IntRange(min=0),
            help="Also put this many of the vectors' most frequent words in the vocabulary.",
        ),
        option(o, "units", "--units", type=click.IntRange(min=1), help="LSTM units."),
        option(
            o,
            "embedding_dim",
            "--embedding-dim",
            type=click.IntRange(min=1),
            show_default=f"the word vectors' width; {PLAIN_EMBEDDING_DIM} with --word-vectors none",
            help="Word embedding width.",
        ),
        option(o, "rnn", "--rnn", type=click.Choice(RNN_KINDS)),
        option(
            o,
            "sequence_pooling",
            "--sequence-pooling",
            type=click.Choice(SEQUENCE_POOLINGS),
            help="The LSTM's last state, or the mean or maximum of its states over the tokens.",
        ),
        option(o, "sequence_length", "--sequence-length", type=click.IntRange(min=1)),
        option(o, "vocab_size", "--vocab-size", type=click.IntRange(min=3)),
    ]


class _Ranks(click.ParamType):
    """``FROM:TO`` → ``(FROM, TO)`` with ``0 <= FROM < TO``."""

    name = "FROM:TO"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        try:
            first, stop = (int(v) for v in str(value).split(":"))
        except ValueError:
            self.fail(f"{value!r}: expected FROM:TO, e.g. 10:50", param, ctx)
        if not 0 <= first < stop:
            self.fail(f"{value!r}: expected 0 <= FROM < TO", param, ctx)
        return first, stop


class TextPairsTask(Task):
    """Sentence pairs → a text tower (see the module docstring)."""

    name = NAME
    summary = "a text tower (TextVectorization, Embedding, LSTM) trained on sentence pairs"
    data_help = "sick, stsb, mrpc, paws, qqp, a CSV/TSV path or tfds:NAME."
    rank = 0
    distributable = True
    options_type = TextOptions
    defaults = Defaults(data="sick", epochs=30, batch_size=32, learning_rate=1e-3, patience=4)
    eval_options = frozenset({"retrieval"})
    examples = (
        "siamese-train --task text-pairs --out runs/sick",
        "siamese-train --task text-pairs --data stsb --out runs/stsb",
        "siamese-train --task text-pairs --word-vectors none --rnn lstm --embedding-dim 64 --out runs/plain",
        "siamese-train --task text-pairs --data mrpc --init-tower runs/sick --out runs/mrpc",
        "siamese-train --task text-pairs --data sick --members 3 --out runs/sick3",
        "siamese-train --task text-pairs --data pairs.tsv --text-a-col q1 --text-b-col q2 --label-col dup",
        "siamese-train --task text-pairs --out runs/sick --resume --epochs 20",
        "siamese-train --task text-pairs --data qqp --objective retrieval --mine-every 2 --out runs/q",
        "siamese-train --task text-pairs --distribute mirrored --batch-size 256 --out runs/sick-gpus",
    )

    def cli_options(self) -> list[click.Option]:
        o = TextOptions
        return [
            *tower_cli_options(o),
            option(
                o,
                "init_tower",
                "--init-tower",
                type=click.Path(),
                help="Start from the tower of an earlier run (its folder or tower.keras) under a fresh head; "
                "the tower keeps its own vocabulary and layers, so the tower options (--units, --rnn, "
                "--word-vectors, ...) are not used.",
            ),
            option(
                o,
                "refit",
                "--refit",
                is_flag=True,
                help="Graded data: once early stopping on dev has picked the epoch count, train again "
                "from the start on train + dev for that many epochs and keep that model (metrics.json "
                "keeps the first model's dev figures).",
            ),
            option(
                o,
                "members",
                "--members",
                type=click.IntRange(min=1),
                help="Train N models alike (seeds SEED, SEED+1, ...; model K in the run's members/K) and "
                "keep them as one: their scores averaged, their towers' encodings concatenated. With an "
                "ensemble run as --init-tower, model K starts from its model K.",
            ),
            option(
                o,
                "threshold_metric",
                "--threshold-metric",
                type=click.Choice(THRESHOLD_METRICS),
                help="Binary data: choose the decision threshold with the best accuracy, or the best F1, "
                "on dev.",
            ),
            option(
                o,
                "positive_threshold",
                "--positive-threshold",
                type=float,
                help="Graded data: the score from which a pair counts as similar (retrieval's queries and, "
                "with --objective retrieval, its training pairs).",
            ),
            option(
                o,
                "mine_every",
                "--mine-every",
                type=click.IntRange(min=1),
                help="--objective retrieval: mine a hard negative per training pair with the index of the "
                "current tower, before training and every N epochs.",
            ),
            option(
                o,
                "mine_ranks",
                "--mine-ranks",
                type=_Ranks(),
                default="10:50",
                help="Draw each mined negative among the anchor's nearest items at ranks FROM to TO-1 "
                "(its own copy and its known positives left out).",
            ),
            option(
                o,
                "symmetric_loss",
                "--symmetric-loss",
                is_flag=True,
                help="--objective retrieval: also train each positive to pick its anchor among the batch's.",
            ),
            option(o, "text_a_col", "--text-a-col", help="CSV/TSV: first text column."),
            option(o, "text_b_col", "--text-b-col", help="CSV/TSV: second text column."),
            option(o, "label_col", "--label-col", help="CSV/TSV: label column."),
            option(o, "sep", "--sep", help="CSV/TSV separator (default: from the file extension)."),
        ]

    # ------------------------------------------------------------------ the run

    def run(self, config: RunConfig, run: RunDir, *, resume: bool, verbose: Any) -> dict:
        if config.options.members > 1:
            return _train_members(self, config, run, resume, verbose)
        return super().run(config, run, resume=resume, verbose=verbose)

    def next_steps(self, config: RunConfig, out: str | os.PathLike[str]) -> list[str]:
        return index_steps(config, out, '"A man is playing a guitar"')

    def prepare(self, config: RunConfig, *, resume: bool) -> Job:
        splits = load_splits(config)
        config = resolve(config, splits["train"].kind)
        options = config.options
        word_vectors = None
        if options.word_vectors and not resume and not options.init_tower:
            config, word_vectors = with_word_vectors(config)
        initial = load_text_tower(options.init_tower) if options.init_tower and not resume else None
        if config.objective == "retrieval":
            _check_retrieval_data(config, splits)
        logger.info(
            "text pairs %s: train %d, dev %d%s; objective %s, head %s, loss %s",
            config.data,
            len(splits["train"]),
            len(splits["dev"]),
            f", test {len(splits['test'])}" if "test" in splits else "",
            config.objective,
            config.head,
            config.loss,
        )
        return Job(config, splits, {"word_vectors": word_vectors, "initial": initial})

    def build(self, job: Job) -> keras.Model:
        return build_model(job.config, job.data["train"], job.extra["word_vectors"], job.extra["initial"])

    def fit(self, job: Job, run: RunDir, *, model: keras.Model, state: dict | None, verbose: Any) -> Trained:
        splits = job.data
        train = _fit_retrieval if job.config.objective == "retrieval" else _fit
        history = train(model, state, job.config, run, splits["train"], splits["dev"], verbose)
        return Trained(model, tower_of(model), history)

    def score(self, job: Job, trained: Trained) -> dict:
        return score_splits(trained.model, job.data, job.config, retrieval=list(job.data))

    def complete(self, job: Job, trained: Trained, metrics: dict, run: RunDir, *, verbose: Any) -> tuple:
        config = job.config
        plot_history(trained.history, run.path / "history.png", metric=monitored(config)[2])
        if config.options.refit:
            model = _refit(config, run, job.data, job.extra["word_vectors"], verbose)
            metrics = {
                **score_splits(model, job.data, config, retrieval=list(job.data)),
                "dev": metrics["dev"],
            }
            trained = Trained(model, tower_of(model), trained.history)
        return trained, metrics

    def evaluate(
        self,
        run_dir: str | os.PathLike[str],
        *,
        data: str | None = None,
        split: str = "test",
        retrieval: bool = False,
        **options: Any,
    ) -> dict:
        """Evaluate a finished text-pairs run on a split of its own data (or of ``data``).

        With ``retrieval``, also the retrieval figures of the tower's index of the split
        (:func:`retrieval_figures`).

        Returns:
            ``{split: {metric: value}}``; for binary data the threshold is chosen on the dev split.

        Raises:
            ConfigError: The folder is not a finished text-pairs run, or the split does not exist.
        """
        run = RunDir(run_dir)
        config = self.finished_config(run_dir)
        splits = load_splits(config, data)
        if split not in splits:
            raise ConfigError(f"split {split!r} does not exist here; available: {', '.join(splits)}")
        wanted = {split: splits[split]}
        if splits[split].kind != GRADED:  # the threshold is chosen on dev, whatever the objective
            wanted.setdefault("dev" if "dev" in splits else "train", splits.get("dev", splits["train"]))
        if config.options.refit and split == "dev":
            logger.warning(
                "%s was refit on train + dev: these dev figures are not held out "
                "(metrics.json keeps those of the model chosen on dev)",
                run.path,
            )
        model = load_model(run.model)
        return {split: score_splits(model, wanted, config, retrieval=[split] if retrieval else [])[split]}


TASK = register(TextPairsTask())


# ---------------------------------------------------------------------- data and settings


def load_splits(config: RunConfig, data: str | None = None) -> dict[str, TextPairs]:
    """Read the run's dataset (or ``data``) as train/dev/test pairs."""
    options = config.options
    return load_text_dataset(
        data or config.data,
        text_a_col=options.text_a_col,
        text_b_col=options.text_b_col,
        label_col=options.label_col,
        sep=options.sep,
        seed=config.data_seed,
        dev_fraction=config.dev_fraction,
    )


def resolve(config: RunConfig, kind: str) -> RunConfig:
    """Fill in objective, head and loss from the data's kind, and check the text options fit."""
    config = resolve_pair_settings(config, kind, retrieval_losses=RETRIEVAL_LOSSES, regression_head="concat")
    options = config.options
    if options.embedding_dim is None and not options.word_vectors and not options.init_tower:
        options = dataclasses.replace(options, embedding_dim=PLAIN_EMBEDDING_DIM)
        config = dataclasses.replace(config, options=options)
    if options.symmetric_loss and config.objective != "retrieval":
        raise ConfigError("--symmetric-loss applies to --objective retrieval")
    if options.mine_every is not None:
        if config.objective != "retrieval":
            raise ConfigError("--mine-every applies to --objective retrieval")
        if (
            isinstance(options.mine_every, bool)
            or not isinstance(options.mine_every, int)
            or options.mine_every < 1
        ):
            raise ConfigError(f"--mine-every must be a positive number of epochs, got {options.mine_every!r}")
    first, stop = options.mine_ranks
    if not 0 <= first < stop:
        raise ConfigError(f"--mine-ranks {first}:{stop}: expected FROM:TO with 0 <= FROM < TO")
    if config.options.threshold_metric not in THRESHOLD_METRICS:
        raise ConfigError(
            f"--threshold-metric must be one of {', '.join(THRESHOLD_METRICS)}; "
            f"got {config.options.threshold_metric!r}"
        )
    if config.options.refit and config.objective != "regression":
        raise ConfigError(
            "--refit needs graded data (--objective regression): a binary run's threshold is chosen on dev"
        )
    return config


def with_word_vectors(config: RunConfig) -> tuple[RunConfig, Any]:
    """The run's pretrained vectors, and the config with the embedding width set to theirs."""
    name = config.options.word_vectors
    word_vectors = load_word_vectors(name)
    logger.info("word vectors: %s (%d words, %d dimensions)", name, len(word_vectors.words), word_vectors.dim)
    if config.options.embedding_dim is None:
        config = dataclasses.replace(
            config, options=dataclasses.replace(config.options, embedding_dim=word_vectors.dim)
        )
    elif config.options.embedding_dim != word_vectors.dim:
        raise ConfigError(
            f"--embedding-dim {config.options.embedding_dim} disagrees with the {word_vectors.dim} "
            f"dimensions of --word-vectors {name}: leave it out, or use --word-vectors none"
        )
    return config, word_vectors


def _targets(pairs: TextPairs, config: RunConfig) -> np.ndarray:
    if config.objective == "regression":
        return evaluators.from_scale(pairs.labels, pairs.scale)
    return pairs.labels.astype(np.float32)


def _inputs(pairs: TextPairs) -> list[np.ndarray]:
    return [np.asarray(pairs.a, dtype=object), np.asarray(pairs.b, dtype=object)]


# ---------------------------------------------------------------------- the model


def build_model(
    config: RunConfig, train: TextPairs, word_vectors: Any = None, tower: keras.Model | None = None
) -> keras.Model:
    """A fresh, compiled pair model whose tower's vocabulary is adapted on the training text,
    or which starts from ``tower`` (loaded from ``config.options.init_tower`` if not given)."""
    keras.utils.set_random_seed(config.seed)  # the head's initial weights, too, follow the seed
    options = config.options
    if tower is None and options.init_tower:
        tower = load_text_tower(options.init_tower)
    if tower is not None:
        for layer in tower.layers:
            if isinstance(layer, keras.layers.Embedding):
                layer.trainable = options.train_embeddings
    else:
        tower = new_text_tower(options, [*train.a, *train.b], word_vectors, seed=config.seed)
    return build_pair_model(tower, config)


def load_text_tower(path: str | os.PathLike[str]) -> keras.Model:
    """The text tower saved at ``path`` (a run folder or a ``tower.keras`` file).

    Raises:
        ConfigError: There is no loadable tower there, or it is not a text tower.
    """
    try:
        tower = load_tower(path)
    except ConfigError as exc:
        raise ConfigError(f"--init-tower: {exc}") from None
    if not encode.trimmable(tower):
        members = Path(path) / MEMBERS_FOLDER
        if members.is_dir():
            raise ConfigError(
                f"--init-tower: {path} is an ensemble run: start from one of its members "
                f"({members / '0'}, ...), or train an ensemble with --members"
            )
        raise ConfigError(f"--init-tower: {path} is not a text tower")
    logger.info("tower initialised from %s", path)
    return tower


def new_text_tower(
    options: TextTowerOptions,
    texts: Sequence[str],
    word_vectors: Any,
    *,
    seed: int,
    projection: int | None = None,
) -> keras.Model:
    """A fresh text tower of ``options`` whose vocabulary is adapted on ``texts`` (and the
    word vectors' most frequent words), its embedding started from ``word_vectors``."""
    return text_tower(
        texts,
        vocab_size=options.vocab_size,
        sequence_length=options.sequence_length,
        embedding_dim=options.embedding_dim,
        units=options.units,
        rnn=options.rnn,
        sequence_pooling=options.sequence_pooling,
        dropout=options.dropout,
        word_vectors=word_vectors,
        train_embeddings=options.train_embeddings,
        seed=seed,
        extra_vocabulary=word_vectors.words[: options.vectors_vocabulary] if word_vectors else (),
        projection=projection,
    )


# ---------------------------------------------------------------------- training


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
    vectorizer = encode.text_vectorizer(tower_of(model))
    ids_a, ids_b = (encode.token_ids(vectorizer, side) for side in _inputs(train_pairs))
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
            pool_batches=config.options.bucket_pool,
            rng=np.random.default_rng([config.seed, epoch, 1]),
        )
        if epoch == (state or {}).get("epoch", 0):
            logger.info(
                "padding: %.0f%% of token slots at a fixed length of %d, %.0f%% in these batches",
                100 * fused.padding_share(lengths, batches, width=ids_a.shape[1]),
                ids_a.shape[1],
                100 * fused.padding_share(lengths, batches),
            )
        return fused.id_dataset([ids_a, ids_b], y_train, batches, lengths), None

    dev_data = None
    if dev_pairs is not None:
        dev_a, dev_b = (encode.token_ids(vectorizer, side) for side in _inputs(dev_pairs))
        dev_lengths = fused.pair_lengths(dev_a, dev_b)
        dev_batches = fused.batch_order(
            dev_lengths, np.argsort(dev_lengths, kind="stable"), config.batch_size, pool_batches=0, rng=None
        )
        dev_data = fused.id_dataset([dev_a, dev_b], _targets(dev_pairs, config), dev_batches, dev_lengths)
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


def _check_retrieval_data(config: RunConfig, splits: dict[str, TextPairs]) -> None:
    """Refuse retrieval training data without positive pairs, or mining ranks the corpus
    cannot fill."""
    for name in ("train", "dev"):
        if not positives(splits[name], config).any():
            what = (
                "label 1"
                if splits[name].kind != GRADED
                else f"a score >= {config.options.positive_threshold}"
            )
            raise ConfigError(f"--objective retrieval: the {name} split has no similar pair ({what})")
    corpus = len(set(splits["train"].a) | set(splits["train"].b))
    if config.options.mine_every is not None and config.options.mine_ranks[1] > corpus - 2:
        raise ConfigError(
            f"--mine-ranks {config.options.mine_ranks[0]}:{config.options.mine_ranks[1]} goes beyond the "
            f"{corpus} training sentences"
        )


def _fit_retrieval(
    model: keras.Model,
    state: dict | None,
    config: RunConfig,
    run: RunDir,
    train_pairs: TextPairs,
    dev_pairs: TextPairs,
    verbose: Any,
) -> dict[str, list[float]]:
    """Train the tower's embedding space on the positive pairs with in-batch negatives (and
    mined hard negatives), one tower call per step on token ids, early-stopping on retrieval
    through an index of dev (:data:`DEV_RETRIEVAL`)."""
    chosen = np.flatnonzero(positives(train_pairs, config))
    corpus = list(dict.fromkeys([*train_pairs.a, *train_pairs.b]))
    key = {text: i for i, text in enumerate(corpus)}
    keys_a = np.array([key[train_pairs.a[i]] for i in chosen], dtype=np.int64)
    keys_b = np.array([key[train_pairs.b[i]] for i in chosen], dtype=np.int64)
    tower = tower_of(model)
    corpus_ids = encode.token_ids(encode.text_vectorizer(tower), corpus)
    corpus_lengths = encode.lengths_of(corpus_ids)
    mining = config.options.mine_every is not None
    trainer = fused.embedding_trainer(model, sides=3 if mining else 2, token_ids=True)
    compile_model(
        trainer, config, optimizer=model.optimizer, loss_options={"symmetric": config.options.symmetric_loss}
    )
    miner = _Miner(run, config, tower, corpus, keys_a, keys_b) if mining else None
    logger.info(
        "retrieval training: %d similar pairs over %d sentences, %s",
        len(chosen),
        len(corpus),
        "in-batch negatives"
        if miner is None
        else f"in-batch and mined negatives (ranks {config.options.mine_ranks})",
    )

    def epoch_data(epoch: int) -> tuple[tf.data.Dataset, None]:
        sides = [keys_a, keys_b] if miner is None else [keys_a, keys_b, miner.negatives(epoch)]
        lengths = np.max([corpus_lengths[keys] for keys in sides], axis=0)
        order = epoch_permutation(len(keys_a), config.seed, epoch)
        bucketed = fused.batch_order(
            lengths,
            order,
            config.batch_size,
            pool_batches=config.options.bucket_pool,
            rng=np.random.default_rng([config.seed, epoch, 1]),
        )
        batches = distinct_batches(bucketed, sides, config.batch_size)
        targets = np.zeros(len(keys_a), dtype=np.float32)  # the in-batch losses need none
        return fused.id_dataset([corpus_ids[keys] for keys in sides], targets, batches, lengths), None

    dev_set = pair_retrieval_set(dev_pairs.a, dev_pairs.b, positives(dev_pairs, config))
    return fit_for_retrieval(
        model,
        epoch_data,
        run,
        config,
        dev=dev_set,
        watched=DEV_RETRIEVAL,
        state=state,
        trainer=trainer,
        verbose=verbose,
    )


class _Miner:
    """The hard negatives of a retrieval run, mined with the index of the current tower
    before epochs ``0, N, 2N, ...`` and kept beside the checkpoints (``negatives-EPOCH.npy``),
    so a resumed run trains on the negatives the uninterrupted run drew."""

    def __init__(
        self,
        run: RunDir,
        config: RunConfig,
        tower: keras.Model,
        corpus: list[str],
        keys_a: np.ndarray,
        keys_b: np.ndarray,
    ) -> None:
        self.run, self.config, self.tower, self.corpus = run, config, tower, corpus
        self.anchors = keys_a
        similar: dict[int, set[int]] = {}
        for x, y in zip(keys_a.tolist(), keys_b.tolist(), strict=True):
            similar.setdefault(x, set()).add(y)
            similar.setdefault(y, set()).add(x)
        self.known = [similar[int(x)] for x in keys_a]

    def path(self, epoch: int) -> Path:
        return self.run.checkpoints / f"negatives-{epoch:04d}.npy"

    def negatives(self, epoch: int) -> np.ndarray:
        mined_at = epoch - epoch % self.config.options.mine_every
        path = self.path(mined_at)
        if path.is_file():
            return np.load(path)
        if mined_at != epoch:
            logger.warning("the negatives of epoch %d are missing: mining them again now", mined_at + 1)
        began = time.perf_counter()
        vectors = encode.embed(self.tower, self.corpus)
        index = Index.from_vectors(vectors, metric="cosine")
        found = mine_hard_negatives(
            index,
            self.anchors,
            self.known,
            ranks=tuple(self.config.options.mine_ranks),
            seed=(self.config.seed, mined_at, 7),
        )
        atomic_save(path, lambda tmp: (np.save(tmp, found, allow_pickle=False), kill_point("mine")))
        for old in self.run.checkpoints.glob("negatives-*.npy"):
            if old != path:
                old.unlink(missing_ok=True)
        logger.info(
            "mined %d hard negatives (ranks %d-%d) over %d sentences in %.1f s",
            len(found),
            *self.config.options.mine_ranks,
            len(self.corpus),
            time.perf_counter() - began,
        )
        return found


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
        options=dataclasses.replace(config.options, refit=False),
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
        options = config.options
        if word_vectors is None and options.word_vectors and not options.init_tower:
            config, word_vectors = with_word_vectors(config)
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


# ---------------------------------------------------------------------- scoring


def score_splits(
    model: keras.Model,
    splits: dict[str, TextPairs],
    config: RunConfig,
    *,
    batch_size: int = 512,
    retrieval: Sequence[str] = (),
) -> dict[str, dict[str, float]]:
    """Metrics of every split on the data's own scale (binary: threshold chosen on dev), and
    for the splits named in ``retrieval``, the retrieval figures of the tower's index
    (:func:`retrieval_figures`)."""
    outputs = {
        name: evaluators.pair_outputs(model, p.a, p.b, batch_size=batch_size) for name, p in splits.items()
    }
    result: dict[str, dict[str, float]] = {}
    if next(iter(splits.values())).kind == GRADED:
        for name, pairs in splits.items():
            result[name] = evaluators.graded_metrics(
                evaluators.to_scale(outputs[name], pairs.scale), pairs.labels
            )
    else:
        scores = {name: evaluators.similarity(out, config.head) for name, out in outputs.items()}
        reference = "dev" if "dev" in splits else "train"
        threshold = evaluators.choose_threshold(
            scores[reference], splits[reference].labels, config.options.threshold_metric
        )
        for name, pairs in splits.items():
            result[name] = evaluators.binary_metrics(scores[name], pairs.labels, threshold)
    for name in retrieval:
        result[name].update(retrieval_figures(tower_of(model), splits[name], config))
        if splits[name].kind == GRADED:
            result[name].update(cosine_figures(tower_of(model), splits[name]))
    return result


def cosine_figures(tower: keras.Model, pairs: TextPairs) -> dict[str, float]:
    """How well the cosine of the tower's two encodings (what a cosine index ranks by)
    follows the gold scores: ``cosine_pearson`` and ``cosine_spearman``."""
    u, v = encode.embed(tower, list(pairs.a)), encode.embed(tower, list(pairs.b))
    u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    figures = evaluators.graded_metrics(np.sum(u * v, axis=1), pairs.labels)
    return {"cosine_pearson": figures["pearson"], "cosine_spearman": figures["spearman"]}


def positives(pairs: TextPairs, config: RunConfig) -> np.ndarray:
    """Which pairs are similar: label 1 (binary data), or a score of at least
    ``positive_threshold`` (graded data)."""
    if pairs.kind == GRADED:
        return pairs.labels >= config.options.positive_threshold
    return pairs.labels == 1.0


def retrieval_figures(tower: keras.Model, pairs: TextPairs, config: RunConfig) -> dict[str, float]:
    """The tower's index of the split's distinct sentences, queried with the first sentence of
    each positive pair (:mod:`siamese.metrics.retrieval`); nothing for a split without one."""
    chosen = positives(pairs, config)
    if not chosen.any():
        logger.info("%s has no positive pair: no retrieval figures", pairs.name)
        return {}
    return retrieval_of(tower, pair_retrieval_set(pairs.a, pairs.b, chosen))


# ---------------------------------------------------------------------- ensembles


def _train_members(task: TextPairsTask, config: RunConfig, run: RunDir, resume: bool, verbose: Any) -> dict:
    """Train (or, on resume, finish) each member's run in ``members/K``, then save them as
    one ensemble model. With ``--refit`` the dev figures are the mean of the members' own
    (each chosen on dev before its refit), since dev is in every member's training data."""
    splits = load_splits(config)
    config = resolve(config, splits["train"].kind)
    if not resume:  # a bad start is reported before any folder is made, as for one model
        start = _member_config(config, 0, 0.0).options.init_tower
        if start:
            load_text_tower(start)
        elif config.options.word_vectors:
            config, _ = with_word_vectors(config)
        run.prepare(config, resume=False)
    began = time.monotonic()
    count = config.options.members
    folders = [RunDir(run.path / MEMBERS_FOLDER / str(k)) for k in range(count)]
    for k, member in enumerate(folders):
        if member.is_complete():
            continue
        member_config = _member_config(config, k, time.monotonic() - began)
        again = member.read_state() is not None
        if member.path.exists() and not again:  # stopped before its first epoch ended
            shutil.rmtree(member.path)
        logger.info("member %d of %d (seed %d) in %s", k + 1, count, member_config.seed, member.path)
        task.train(member_config, member.path, resume=again, verbose=verbose)
    model = ensemble.ensemble_model([load_model(member.model) for member in folders])
    metrics = score_splits(model, splits, config, retrieval=list(splits))
    if config.options.refit:
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
    """Member ``k``'s settings: seed ``seed + k`` (but the ensemble's dev split), the time
    budget left, and the tower to start from (member ``k``'s of an ensemble ``--init-tower``,
    by turns if it has fewer)."""
    start = config.options.init_tower
    if start and (Path(start) / MEMBERS_FOLDER).is_dir():
        try:
            count = TASK.finished_config(start).options.members
        except ConfigError as exc:
            raise ConfigError(f"--init-tower: {exc}") from None
        start = str(Path(start) / MEMBERS_FOLDER / str(k % count))
    budget = None if config.time_budget is None else max(config.time_budget - spent, 1.0)
    return dataclasses.replace(
        config,
        seed=config.seed + k,
        split_seed=config.data_seed,
        time_budget=budget,
        options=dataclasses.replace(config.options, members=1, init_tower=start),
    )
