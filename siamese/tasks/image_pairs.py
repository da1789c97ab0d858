"""``siamese-train --task image-pairs``: Conv2D twins trained on image pairs (Koch et al. 2015).

The data is ``fashion-mnist``, ``omniglot``, ``tfds:NAME`` or a folder of class sub-folders, read
by :func:`siamese.datasets.images.load_image_dataset`. Each epoch draws fresh balanced pairs from
the training images with :class:`siamese.pairs.PairSampler`: the draw depends only on the seed
and the epoch, so a resumed run repeats it. By default (``pair_pools``) each batch's pairs are
drawn among a pool of about batch-size images and each distinct image of a batch is embedded
once (:func:`siamese.training.fused.unique_trainer`), half the tower work of independent pairs. Batches
gather their images by index from one in-memory array (an epoch never holds a copy of every
pair), and the optional affine distortions of :class:`siamese.augment.AffineAugment` are
applied per batch, seeded by the batch's number.

The default head is ``abs-diff`` with binary cross-entropy; ``--head euclidean --loss
contrastive`` (and the other heads) work too, with the same rules as text pairs.

Image size: native unless ``image_size`` is set, except Omniglot (105x105), which is resized to
:data:`OMNIGLOT_SIZE` (28x28, as in most one-shot work since Vinyals et al. 2016) because the
native size is slow on a CPU. Images of different sizes in a folder are an error unless
``image_size`` is given.

Final metrics (``metrics.json``, split → metric → value):

- every split: verification on :data:`VERIFICATION_PAIRS` fixed balanced pairs (drawn with
  seeds other than training's): accuracy and F1 at the threshold chosen on the dev pairs,
  ROC-AUC and average precision;
- a split of the training classes (Fashion-MNIST dev and test): k-NN accuracy (k = 1, 5) of its
  tower embeddings against the training embeddings (``knn1_accuracy``, ``knn5_accuracy``);
- a split of new classes (Omniglot's dev alphabet): 20-way within-alphabet one-shot trials
  built from it by :func:`build_one_shot_runs`;
- Omniglot ``test``: Lake et al.'s 20 official runs (400 trials of 20-way within-alphabet
  one-shot classification), scored by the pair model's similarity (``one_shot_pair``) and by
  the distance between tower embeddings (``one_shot_embedding``).

One-shot trials are scored both ways, because the two can differ by many points. With
``test_time_augment`` N (``--tta N``), the embedding-based figures (``one_shot_embedding`` and
k-NN) embed each image as the mean of its embedding and those of N fixed small distortions
of it (:func:`siamese.encode.encoder`); ``one_shot_pair`` and the pair figures are unchanged.
``neighbours.png`` shows a few test queries with their nearest neighbours by embedding.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import click
import keras
import numpy as np
import tensorflow as tf

from siamese import metrics
from siamese.augment import AffineAugment
from siamese.datasets.images import load_image_dataset, read_omniglot_runs
from siamese.datasets.records import BINARY, LabelledImages, OneShotRun, with_rotated_classes
from siamese.encode import embed, encoder
from siamese.errors import ConfigError, DataError
from siamese.io import atomic_save
from siamese.metrics import evaluators
from siamese.metrics.retrieval import CLASSES, class_retrieval_set, retrieval_of
from siamese.models import load_model, tower_of
from siamese.pairs import Pairs, PairSampler, fixed_pairs
from siamese.tasks.base import Defaults, Job, Task, Trained, option, register
from siamese.tasks.pair_model import (
    build_pair_model,
    compile_model,
    fit_for_retrieval,
    index_steps,
    monitored,
    resolve_pair_settings,
)
from siamese.towers import image_tower
from siamese.training import fused
from siamese.training.config import RunConfig, TaskOptions
from siamese.training.loop import fit_epochs, without_autotune
from siamese.training.plots import plot_history
from siamese.training.run_dir import RunDir

logger = logging.getLogger(__name__)

NAME = "image-pairs"
#: The losses of ``--objective retrieval`` (the default first).
RETRIEVAL_LOSSES = ("batch-hard-triplet", "multiple-negatives")
#: Data names read as Omniglot, resized to :data:`OMNIGLOT_SIZE` unless ``image_size`` is set.
OMNIGLOT_NAMES = ("omniglot", "tfds:omniglot")
OMNIGLOT_SIZE = (28, 28)
#: Fixed verification pairs per split.
VERIFICATION_PAIRS = 4000
KNN_K = (1, 5)
N_WAY = 20
#: One-shot runs built from a split of new classes (each holds ``N_WAY`` trials).
BUILT_RUNS = 20
#: A split's fixed pairs and built runs are drawn with seed ``10 * seed + this``, never training's seed.
_EVAL_SEEDS = {"train": 1, "dev": 2, "test": 3}
NEIGHBOUR_QUERIES = 8
NEIGHBOURS = 5

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(queries, exemplars) -> (n_queries, n_exemplars)`` similarities, higher = more alike."""


@dataclass(eq=False)
class ImageData:
    """The splits of an image dataset, and Omniglot's official one-shot runs where they apply.

    Attributes:
        splits: ``train``, ``dev`` and maybe ``test`` images.
        runs: Lake et al.'s 20 runs (the ``test`` of ``omniglot``), else ``None``.
    """

    splits: dict[str, LabelledImages]
    runs: list[OneShotRun] | None = None

    def names(self) -> list[str]:
        """The splits that can be scored (``test`` also when it is only the one-shot runs)."""
        extra = ["test"] if self.runs is not None and "test" not in self.splits else []
        return [*self.splits, *extra]


# --------------------------------------------------------------------------- data and pairs


def resolve_image_size(config: RunConfig) -> RunConfig:
    """Set Omniglot's default image size (:data:`OMNIGLOT_SIZE`) when none is given."""
    if config.options.image_size is None and config.data in OMNIGLOT_NAMES:
        logger.info("omniglot images resized to %dx%d (set image_size to change)", *OMNIGLOT_SIZE)
        return dataclasses.replace(
            config, options=dataclasses.replace(config.options, image_size=OMNIGLOT_SIZE)
        )
    return config


def load_data(config: RunConfig, data: str | None = None, *, size: Sequence[int] | None = None) -> ImageData:
    """Read the run's dataset (or ``data``) as splits, with Omniglot's one-shot runs.

    Args:
        config: The run's settings (seed, dev fraction, image size).
        data: Another dataset to read instead of ``config.data``.
        size: ``(height, width)`` to resize to; default ``config.options.image_size``.

    Raises:
        DataError: A file is missing or bad (corrupt image, sizes differ, a class with fewer
            than 2 images, a zip not in Omniglot's layout).
        ConfigError: The dataset name or an option is not valid.
    """
    spec = data or config.data
    size = size or config.options.image_size
    splits = load_image_dataset(spec, size=size, seed=config.data_seed, dev_fraction=config.dev_fraction)
    runs = None
    if spec == "omniglot":
        runs = read_omniglot_runs(size=splits["train"].images.shape[1:3])
    return ImageData(splits, runs)


def _eval_seed(config: RunConfig, split: str) -> int:
    return config.seed * 10 + _EVAL_SEEDS.get(split, 4)


def verification_pairs(images: LabelledImages, n_pairs: int, seed: int) -> Pairs:
    """Fixed balanced pairs from the classes of ``images`` that hold at least 2 images.

    Returns:
        ``(index_a, index_b, label)`` into ``images`` (see :func:`siamese.pairs.fixed_pairs`).

    Raises:
        DataError: Fewer than 2 classes hold 2 or more images.
    """
    _, inverse, counts = np.unique(images.labels, return_inverse=True, return_counts=True)
    usable = np.flatnonzero(counts[inverse.reshape(-1)] >= 2)
    if len(np.unique(images.labels[usable])) < 2:
        raise DataError(
            f"{images.name}: verification pairs need at least 2 classes with 2 or more images each; "
            "add images or raise dev_fraction"
        )
    index_a, index_b, labels = fixed_pairs(images.labels[usable], n_pairs, seed=seed)
    return usable[index_a], usable[index_b], labels


def pair_batches(
    images: tf.Tensor,
    pairs: Pairs,
    batch_size: int,
    *,
    augment: AffineAugment | None = None,
    first_step: int = 0,
    unique: bool = False,
) -> tf.data.Dataset:
    """Batches ``((images_a, images_b), labels)`` gathered by index from one image tensor.

    With ``unique``, batches are ``((items, index_a, index_b), labels)`` for
    :func:`siamese.training.fused.unique_trainer`: each distinct image of the batch once, and where
    each pair's sides sit among them.

    Args:
        images: All images, ``(n, H, W, C)`` (an array or a tensor), kept once in memory.
        pairs: ``(index_a, index_b, label)`` into ``images``.
        batch_size: Pairs per batch.
        augment: Optional distortions; batch ``i`` uses steps ``2 * (first_step + i)`` (side a)
            and ``2 * (first_step + i) + 1`` (side b), so the same batch is always distorted alike.
        first_step: Number of the first batch (e.g. ``epoch * batches_per_epoch``). With
            ``unique`` the distinct images of batch ``i`` are distorted once, by step
            ``2 * (first_step + i)``.
        unique: Gather each distinct image once (see above).

    Returns:
        A ``tf.data.Dataset`` of image batches in the pairs' order (the images' own dtype;
        float32 when distorted).
    """
    index_a, index_b, labels = pairs

    def gather(step: tf.Tensor, batch: tuple[tf.Tensor, ...]) -> tuple[tuple[tf.Tensor, ...], tf.Tensor]:
        a, b, y = batch
        number = 2 * (tf.cast(step, tf.int64) + first_step)
        if unique:
            distinct, position_a, position_b = fused.unique_items(a, b)
            items = tf.gather(images, distinct)
            if augment is not None:
                items = augment(tf.cast(items, tf.float32), step=number)
            return (items, position_a, position_b), y
        side_a, side_b = tf.gather(images, a), tf.gather(images, b)
        if augment is not None:
            side_a = augment(tf.cast(side_a, tf.float32), step=number)
            side_b = augment(tf.cast(side_b, tf.float32), step=number + 1)
        return (side_a, side_b), y

    dataset = tf.data.Dataset.from_tensor_slices((index_a, index_b, labels)).batch(batch_size)
    dataset = dataset.enumerate().map(gather, num_parallel_calls=2, deterministic=True).prefetch(2)
    return without_autotune(dataset)


# --------------------------------------------------------------------------- one-shot trials


def build_one_shot_runs(
    images: LabelledImages, *, n_way: int = N_WAY, n_runs: int = BUILT_RUNS, seed: int = 0
) -> list[OneShotRun]:
    """One-shot runs in the manner of Lake et al., built from labelled images of new classes.

    Each run takes ``n_way`` classes (within one group, e.g. one alphabet, when some group holds
    that many classes of 2+ images; otherwise from all such classes) and two different images
    of each: one is the class's exemplar, the other a query. A run thus holds ``n_way`` trials.
    ``n_way`` is lowered to the number of usable classes when there are fewer.

    Args:
        images: The images; classes with a single image are not used.
        n_way: Candidates per trial.
        n_runs: Number of runs.
        seed: Seed of the draw.

    Raises:
        DataError: Fewer than 2 classes hold 2 or more images.
    """
    classes, counts = np.unique(images.labels, return_counts=True)
    usable = classes[counts >= 2]
    if len(usable) < 2:
        raise DataError(f"{images.name}: one-shot trials need at least 2 classes with 2 or more images each")
    way = min(n_way, len(usable))
    pools = []
    if images.groups is not None:
        first = np.array([np.flatnonzero(images.labels == c)[0] for c in usable])
        class_groups = images.groups[first]
        pools = [usable[class_groups == g] for g in np.unique(class_groups)]
        pools = [pool for pool in pools if len(pool) >= way]
    if not pools:
        logger.info("%s: no group holds %d classes; one-shot candidates span all classes", images.name, way)
        pools = [usable]
    rng = np.random.default_rng([seed, way])
    runs = []
    for number in range(n_runs):
        chosen = rng.choice(pools[rng.integers(len(pools))], size=way, replace=False)
        picks = np.array([rng.choice(np.flatnonzero(images.labels == c), 2, replace=False) for c in chosen])
        order = rng.permutation(way)  # exemplar positions; query i belongs to class chosen[i]
        runs.append(
            OneShotRun(
                name=f"{images.name}:run{number + 1:02d}",
                exemplars=images.images[picks[order, 0]],
                queries=images.images[picks[:, 1]],
                answers=np.argsort(order).astype(np.int64),
            )
        )
    return runs


def pair_scorer(model: keras.Model, head: str) -> Scorer:
    """Score trials by the pair model's output on (query, exemplar) (distances negated)."""

    def score(queries: np.ndarray, exemplars: np.ndarray) -> np.ndarray:
        n_queries, n_exemplars = len(queries), len(exemplars)
        outputs = evaluators.pair_outputs(
            model, np.repeat(queries, n_exemplars, axis=0), np.tile(exemplars, (n_queries, 1, 1, 1))
        )
        return evaluators.similarity(outputs, head).reshape(n_queries, n_exemplars)

    return score


def embedding_scorer(encode: Callable[[np.ndarray], np.ndarray]) -> Scorer:
    """Score trials by minus the Euclidean distance between ``encode``'s vectors.

    ``encode`` maps images ``(n, H, W, C)`` to vectors ``(n, d)``: a tower's
    :func:`~siamese.encode.embed`, or the raw pixels for the nearest-neighbour baseline.
    """

    def score(queries: np.ndarray, exemplars: np.ndarray) -> np.ndarray:
        q = np.asarray(encode(queries), dtype=np.float64)
        e = np.asarray(encode(exemplars), dtype=np.float64)
        squared = (q * q).sum(1)[:, None] + (e * e).sum(1)[None, :] - 2.0 * q @ e.T
        return -np.sqrt(np.maximum(squared, 0.0))

    return score


def one_shot_score(runs: Sequence[OneShotRun], scorer: Scorer) -> float:
    """Accuracy over every trial of ``runs`` (ties share the credit; see ``one_shot_accuracy``)."""
    similarity = np.concatenate([scorer(run.queries, run.exemplars) for run in runs])
    return metrics.one_shot_accuracy(similarity, np.concatenate([run.answers for run in runs]))


def one_shot_figures(
    model: keras.Model, runs: Sequence[OneShotRun], head: str, *, test_time_augment: int = 0
) -> dict[str, float]:
    """One-shot accuracy scored by the pair model and by tower-embedding distance."""
    tower = tower_of(model)
    return {
        "one_shot_pair": one_shot_score(runs, pair_scorer(model, head)),
        "one_shot_embedding": one_shot_score(runs, embedding_scorer(encoder(tower, test_time_augment))),
        "one_shot_trials": int(sum(len(run.answers) for run in runs)),
        "one_shot_way": int(len(runs[0].exemplars)),
    }


# --------------------------------------------------------------------------- the model


def build_model(config: RunConfig, input_shape: Sequence[int]) -> keras.Model:
    """A fresh, compiled pair model on an image tower of the run's settings.

    Every initial weight, the head's included, is a function of ``config.seed``.
    """
    options = config.options
    keras.utils.set_random_seed(config.seed)
    try:
        tower = image_tower(
            tuple(int(v) for v in input_shape),
            filters=options.filters,
            embedding_dim=options.embedding_dim,
            global_pooling=options.global_pooling,
            batch_norm=options.batch_norm,
            convs_per_block=options.convs_per_block,
            dropout=options.dropout,
            seed=config.seed,
        )
    except ValueError as exc:
        raise ConfigError(f"image tower: {exc}") from None
    return build_pair_model(tower, config)


# --------------------------------------------------------------------------- scoring


class _Embeddings:
    """Tower embeddings of whole splits, computed once."""

    def __init__(
        self, tower: keras.Model, splits: dict[str, LabelledImages], test_time_augment: int = 0
    ) -> None:
        self.encode, self.splits, self.done = encoder(tower, test_time_augment), splits, {}

    def __call__(self, name: str) -> np.ndarray:
        if name not in self.done:
            self.done[name] = self.encode(self.splits[name].images)
        return self.done[name]


def _shares_train_classes(data: ImageData, name: str) -> bool:
    return data.splits[name].class_names == data.splits["train"].class_names


def _class_figures(
    model: keras.Model, data: ImageData, config: RunConfig, name: str, embeddings: _Embeddings
) -> dict[str, float]:
    """k-NN accuracy against train (same classes), or built one-shot trials (new classes)."""
    split = data.splits[name]
    if not _shares_train_classes(data, name):
        runs = build_one_shot_runs(split, seed=_eval_seed(config, name))
        return one_shot_figures(model, runs, config.head, test_time_augment=config.options.test_time_augment)
    reference = data.splits["train"]
    return {
        f"knn{k}_accuracy": metrics.knn_accuracy(
            embeddings(name), split.labels, embeddings("train"), reference.labels, k=k
        )
        for k in KNN_K
        if k <= len(reference)
    }


def score_splits(
    model: keras.Model,
    data: ImageData,
    config: RunConfig,
    *,
    names: Sequence[str] | None = None,
    embeddings: _Embeddings | None = None,
    retrieval: bool = True,
) -> dict[str, dict[str, float]]:
    """The final metrics of the splits ``names`` (default: all); see the module docstring.

    The verification threshold is chosen on the dev pairs (train's where there is no dev).
    With ``retrieval``, every labelled split but train is also searched through an index of
    the tower, each image querying the others of its class (:func:`retrieval_figures`).
    """
    names = list(names or data.names())
    embeddings = embeddings or _Embeddings(tower_of(model), data.splits, config.options.test_time_augment)
    reference = "dev" if "dev" in data.splits else "train"
    scored: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in dict.fromkeys([reference, *names]):
        if name in data.splits:
            images = data.splits[name].images
            index_a, index_b, labels = verification_pairs(
                data.splits[name], VERIFICATION_PAIRS, _eval_seed(config, name)
            )
            outputs = evaluators.pair_outputs(model, images[index_a], images[index_b])
            scored[name] = (evaluators.similarity(outputs, config.head), labels)
    threshold = evaluators.choose_threshold(*scored[reference])
    result: dict[str, dict[str, float]] = {}
    for name in names:
        figures: dict[str, float] = {}
        if name in scored:
            figures.update(evaluators.binary_metrics(*scored[name], threshold))
        if name in data.splits and name != "train":
            figures.update(_class_figures(model, data, config, name, embeddings))
            if retrieval:
                figures.update(retrieval_figures(tower_of(model), data.splits[name]))
        if name == "test" and data.runs is not None:
            figures.update(
                one_shot_figures(
                    model, data.runs, config.head, test_time_augment=config.options.test_time_augment
                )
            )
        result[name] = figures
    return result


def retrieval_figures(tower: keras.Model, images: LabelledImages) -> dict[str, float]:
    """The tower's index of a split's images, each image querying the other images of its
    class (precision@k, recall@k, MAP@R; :mod:`siamese.metrics.retrieval`); nothing for a
    split where no class holds two images."""
    _, counts = np.unique(images.labels, return_counts=True)
    if counts.max() < 2:
        logger.info("%s: no class holds two images: no retrieval figures", images.name)
        return {}
    return retrieval_of(tower, class_retrieval_set(images.images, images.labels))


# --------------------------------------------------------------------------- neighbours.png

NeighbourRow = tuple[np.ndarray, str, list[tuple[np.ndarray, bool]]]
"""A query image, its caption, and its nearest images each with "same class?"."""


def _rows_from_runs(runs: Sequence[OneShotRun], tower: keras.Model, k: int) -> list[NeighbourRow]:
    rows = []
    for run in runs[:NEIGHBOUR_QUERIES]:
        similarity = embedding_scorer(lambda x: embed(tower, x))(run.queries[:1], run.exemplars)[0]
        nearest = np.argsort(-similarity, kind="stable")[:k]
        found = [(run.exemplars[j], bool(j == run.answers[0])) for j in nearest]
        rows.append((run.queries[0], run.name, found))
    return rows


def neighbour_rows(
    model: keras.Model,
    data: ImageData,
    config: RunConfig,
    *,
    k: int = NEIGHBOURS,
    embeddings: _Embeddings | None = None,
) -> list[NeighbourRow]:
    """A few test queries (dev where there is no test) with their ``k`` nearest images.

    The neighbours are found by tower-embedding distance: among the training images for a
    split of the training classes, among a one-shot run's exemplars otherwise (Omniglot).
    """
    tower = tower_of(model)
    if data.runs is not None:
        return _rows_from_runs(data.runs, tower, k)
    name = "test" if "test" in data.splits else "dev"
    split = data.splits[name]
    if not _shares_train_classes(data, name):
        return _rows_from_runs(build_one_shot_runs(split, seed=_eval_seed(config, name)), tower, k)
    embeddings = embeddings or _Embeddings(tower, data.splits, config.options.test_time_augment)
    train = data.splits["train"]
    rng = np.random.default_rng([config.seed, 8])
    classes = rng.permutation(np.unique(split.labels))[:NEIGHBOUR_QUERIES]
    queries = np.array([rng.choice(np.flatnonzero(split.labels == c)) for c in classes])
    refs = embeddings("train").astype(np.float64)
    found = embeddings(name)[queries].astype(np.float64)
    nearest = metrics.nearest(found, refs, np.einsum("ij,ij->i", refs, refs), min(k, len(refs)))
    return [
        (
            split.images[q],
            split.class_names[split.labels[q]],
            [(train.images[j], bool(train.labels[j] == split.labels[q])) for j in row],
        )
        for q, row in zip(queries, nearest, strict=True)
    ]


def plot_neighbours(rows: Sequence[NeighbourRow], path: str | os.PathLike[str]) -> bool:
    """Save a grid: each query, then its neighbours framed green (same class) or red.

    Returns:
        False (with a log line) when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib is not installed: no neighbours.png (pip install 'siamese[plot]')")
        return False
    columns = 1 + max(len(found) for _, _, found in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.4 * columns, 1.5 * len(rows)), squeeze=False)
    for r, (query, caption, found) in enumerate(rows):
        cells = [(query, "#404040")] + [(image, "#1a9641" if same else "#d7191c") for image, same in found]
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(cells):
                ax.axis("off")
                continue
            image, colour = cells[c]
            shown = image[:, :, 0] if image.shape[-1] == 1 else image
            ax.imshow(shown, cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=255)
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(1.5 if c == 0 else 4)
        axes[r][0].set_ylabel(caption, fontsize=7, rotation=0, ha="right", va="center")
    axes[0][0].set_title("query", fontsize=8)
    for c in range(1, columns):
        axes[0][c].set_title(f"#{c}", fontsize=8)
    fig.suptitle("nearest by tower embedding (green: same class, red: other)", fontsize=9)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- the task


class _Size(click.ParamType):
    """``HxW`` → ``(height, width)``."""

    name = "HxW"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, int] | None:
        if value is None or isinstance(value, tuple):
            return value
        try:
            height, width = (int(v) for v in str(value).lower().split("x"))
        except ValueError:
            self.fail(f"{value!r}: expected HxW, e.g. 64x64", param, ctx)
        if height < 1 or width < 1:
            self.fail(f"{value!r}: sides must be positive", param, ctx)
        return height, width


class _IntList(click.ParamType):
    """``32,64,128`` → ``(32, 64, 128)``, each at least 1."""

    name = "N,N,..."

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            numbers = tuple(int(v) for v in str(value).split(","))
        except ValueError:
            self.fail(f"{value!r}: expected integers, e.g. 32,64,128", param, ctx)
        if not numbers or min(numbers) < 1:
            self.fail(f"{value!r}: each block needs at least one filter", param, ctx)
        return numbers


@dataclass
class ImageOptions(TaskOptions):
    """Settings of the image tower and pair sampling.

    ``global_pooling``, ``batch_norm``, ``convs_per_block`` and ``dropout`` are passed to
    :func:`siamese.towers.image_tower`.
    """

    SECTION: ClassVar[str] = "image"

    # The fields that default to None take the data's default (IMAGE_DEFAULTS, DATA_DEFAULTS)
    # when the task configures the run.
    image_size: tuple[int, int] | None = None
    filters: tuple[int, ...] = (32, 64, 128)
    embedding_dim: int | None = None
    pairs_per_epoch: int | None = None
    hard_negative_fraction: float | None = None
    augment: bool | None = None
    # Add each training image's 90/180/270-degree rotations as new classes (square images).
    rotated_classes: bool | None = None
    # Draw each batch's pairs among a pool of about batch-size images, each embedded once per
    # step (half the tower work per pair of independent pairs); see PairSampler's pool_size.
    pair_pools: bool | None = None
    global_pooling: str = "flatten"
    batch_norm: bool | None = None
    convs_per_block: int = 1
    dropout: float = 0.0
    # Test-time augmentation: embed each image, for the embedding-based figures (one-shot by
    # embedding distance, k-NN), as the mean of its own embedding and those of this many fixed
    # small distortions of it (0: the image alone).
    test_time_augment: int = 0


#: The image options a run leaves None take these values, unless its data has its own.
IMAGE_DEFAULTS: dict[str, Any] = {
    "embedding_dim": 64,
    "hard_negative_fraction": 0.0,
    "augment": False,
    "batch_norm": False,
    "rotated_classes": False,
    "pair_pools": True,
}

#: The settings each named dataset trains best with in a few minutes on a 2-core CPU
#: (scaled down from benchmarks/image_pairs.py, whose comments give the dev figures that
#: chose them); a setting the run gives is kept.
DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "fashion-mnist": {"epochs": 12, "patience": 5, "pairs_per_epoch": 54000},
    "omniglot": {
        "epochs": 40,
        "patience": 30,
        "lr_patience": 5,
        "head": "euclidean",
        "loss": "contrastive",
        "embedding_dim": 128,
        "pairs_per_epoch": 20000,
        "hard_negative_fraction": 0.5,
        "augment": True,
        "batch_norm": True,
        "rotated_classes": True,
    },
}


class ImagePairsTask(Task):
    """Labelled images → an image tower trained on pairs (see the module docstring)."""

    name = NAME
    summary = "a Conv2D tower trained on pairs of labelled images"
    data_help = "fashion-mnist, omniglot, a folder of class sub-folders or tfds:NAME."
    rank = 1
    distributable = True
    options_type = ImageOptions
    defaults = Defaults(data="fashion-mnist", epochs=10, batch_size=128, learning_rate=1e-3)
    preset_data = tuple(DATA_DEFAULTS)
    eval_options = frozenset({"test_time_augment", "retrieval"})
    examples = (
        "siamese-train --task image-pairs --data fashion-mnist --out runs/f",
        "siamese-train --task image-pairs --data omniglot --out runs/o",
        "siamese-train --task image-pairs --data omniglot --epochs 150 --no-rotated-classes --out runs/o2",
        "siamese-train --task image-pairs --data photos/ --image-size 64x64 --out runs/photos",
        "TF_CONFIG='{...}' siamese-train --task image-pairs --distribute multi-worker --out /shared/runs/f",
    )

    def data_defaults(self, data: str) -> dict[str, Any]:
        return {**IMAGE_DEFAULTS, **DATA_DEFAULTS.get(data, {})}

    def cli_options(self) -> list[click.Option]:
        o = ImageOptions
        return [
            option(
                o,
                "image_size",
                "--image-size",
                type=_Size(),
                help="Resize to this size (default: native; Omniglot 28x28).",
            ),
            option(
                o,
                "filters",
                "--filters",
                type=_IntList(),
                default="32,64,128",
                help="Filters of each Conv2D block, comma-separated.",
            ),
            option(
                o,
                "embedding_dim",
                "--embedding-dim",
                type=click.IntRange(min=1),
                help="The tower's output width."
                + self.shown_default("embedding_dim", IMAGE_DEFAULTS["embedding_dim"]),
            ),
            option(
                o,
                "pairs_per_epoch",
                "--pairs-per-epoch",
                type=click.IntRange(min=2),
                help="Pairs drawn afresh each epoch (default: two per training image; fashion-mnist: "
                f"{DATA_DEFAULTS['fashion-mnist']['pairs_per_epoch']}; omniglot: "
                f"{DATA_DEFAULTS['omniglot']['pairs_per_epoch']}).",
            ),
            option(
                o,
                "hard_negative_fraction",
                "--hard-negatives",
                type=click.FloatRange(0, 1),
                help="Share of negative pairs taken from the same group (Omniglot: same alphabet)."
                + self.shown_default("hard_negative_fraction", IMAGE_DEFAULTS["hard_negative_fraction"]),
            ),
            option(
                o,
                "augment",
                "--augment/--no-augment",
                help="Small random affine distortions (Koch et al.)."
                + self.shown_default("augment", IMAGE_DEFAULTS["augment"]),
            ),
            option(
                o,
                "batch_norm",
                "--batch-norm/--no-batch-norm",
                help="Batch normalisation after each convolution."
                + self.shown_default("batch_norm", IMAGE_DEFAULTS["batch_norm"]),
            ),
            option(
                o,
                "pair_pools",
                "--pair-pools/--independent-pairs",
                help="Draw each batch's pairs among a pool of about batch-size images, each embedded "
                "once per step (about twice the pairs/s), or draw every pair independently."
                + self.shown_default("pair_pools", IMAGE_DEFAULTS["pair_pools"]),
            ),
            option(
                o,
                "rotated_classes",
                "--rotated-classes/--no-rotated-classes",
                help="Add each training image's 90/180/270-degree turns as new classes."
                + self.shown_default("rotated_classes", IMAGE_DEFAULTS["rotated_classes"]),
            ),
            option(
                o,
                "test_time_augment",
                "--tta",
                type=click.IntRange(min=0),
                help="One-shot and k-NN figures embed each image as the mean over it and N small "
                "distortions.",
            ),
        ]

    def next_steps(self, config: RunConfig, out: str | os.PathLike[str]) -> list[str]:
        return index_steps(config, out, "--image IMAGE.png")

    def prepare(self, config: RunConfig, *, resume: bool) -> Job:
        config = resolve_image_size(config)
        data = load_data(config)
        config = resolve_pair_settings(config, BINARY, retrieval_losses=RETRIEVAL_LOSSES)
        train_set, dev_set = data.splits["train"], data.splits["dev"]
        if config.options.rotated_classes:
            train_set = with_rotated_classes(train_set)
        hard = config.options.hard_negative_fraction
        sampler = PairSampler(
            train_set.labels,
            pairs_per_epoch=config.options.pairs_per_epoch,
            groups=train_set.groups if hard else None,
            hard_negative_fraction=hard,
            seed=config.seed,
            pool_size=config.batch_size
            if config.options.pair_pools or config.objective == "retrieval"
            else None,
        )
        dev_pairs = verification_pairs(dev_set, VERIFICATION_PAIRS, _eval_seed(config, "dev"))
        if config.objective == "retrieval":
            _, counts = np.unique(dev_set.labels, return_counts=True)
            if counts.max() < 2:
                raise ConfigError("--objective retrieval: no dev class holds two images to query with")
        return Job(config, data, {"train": train_set, "sampler": sampler, "dev_pairs": dev_pairs})

    def build(self, job: Job) -> keras.Model:
        return build_model(job.config, job.extra["train"].images.shape[1:])

    def fit(self, job: Job, run: RunDir, *, model: keras.Model, state: dict | None, verbose: Any) -> Trained:
        if job.config.objective == "retrieval":
            history = _fit_retrieval(job, run, model, state, verbose)
            embeddings = _Embeddings(tower_of(model), job.data.splits, job.config.options.test_time_augment)
            return Trained(model, tower_of(model), history, {"embeddings": embeddings})
        config, data = job.config, job.data
        train_set, sampler = job.extra["train"], job.extra["sampler"]
        dev_set = data.splits["dev"]
        logger.info(
            "image pairs %s: train %d images (%d classes), dev %d; %d pairs per epoch; head %s, loss %s",
            config.data,
            len(train_set),
            len(np.unique(train_set.labels)),
            len(dev_set),
            sampler.pairs_per_epoch,
            config.head,
            config.loss,
        )
        images = tf.constant(train_set.images)
        augment = AffineAugment(seed=config.seed) if config.options.augment else None
        batches_per_epoch = math.ceil(sampler.pairs_per_epoch / config.batch_size)

        # Each distinct image of a batch is embedded once (the same model, unless the tower has
        # batch normalisation: its statistics are then over the distinct images of the batch).
        unique = config.options.pair_pools or fused.computes_the_same(tower_of(model))
        if unique and tf.distribute.get_strategy().num_replicas_in_sync > 1:
            # Its inputs (the batch's distinct images, the pairs' positions among them) differ
            # in length and cannot be split across replicas.
            logger.info("distributed: each pair's two images go through the tower (no unique-image trainer)")
            unique = False
        trainer = None
        if unique:
            trainer = fused.unique_trainer(model)
            compile_model(trainer, config, optimizer=model.optimizer)

        def epoch_data(epoch: int) -> tuple[tf.data.Dataset, None]:
            batches = pair_batches(
                images,
                sampler.epoch(epoch),
                config.batch_size,
                augment=augment,
                first_step=epoch * batches_per_epoch,
                unique=unique,
            )
            return batches, None

        monitor, mode, _ = monitored(config)
        history = fit_epochs(
            model,
            epoch_data,
            pair_batches(
                tf.constant(dev_set.images), job.extra["dev_pairs"], config.batch_size, unique=unique
            ),
            run,
            config,
            monitor=monitor,
            mode=mode,
            state=state,
            trainer=trainer,
            verbose=verbose,
        )
        embeddings = _Embeddings(tower_of(model), data.splits, config.options.test_time_augment)
        return Trained(model, tower_of(model), history, {"embeddings": embeddings})

    def score(self, job: Job, trained: Trained) -> dict:
        return score_splits(trained.model, job.data, job.config, embeddings=trained.extra["embeddings"])

    def complete(self, job: Job, trained: Trained, metrics: dict, run: RunDir, *, verbose: Any) -> tuple:
        config = job.config
        plot_history(
            trained.history, run.path / "history.png", metric=monitored(config, retrieval_kind=CLASSES)[2]
        )
        rows = neighbour_rows(trained.model, job.data, config, embeddings=trained.extra["embeddings"])
        plot_neighbours(rows, run.path / "neighbours.png")
        return trained, metrics

    def evaluate(
        self,
        run_dir: str | os.PathLike[str],
        *,
        data: str | None = None,
        split: str = "test",
        test_time_augment: int | None = None,
        retrieval: bool = False,
        **options: Any,
    ) -> dict:
        """Evaluate a finished image-pairs run on a split of its own data (or of ``data``).

        ``data`` is read at the size the tower takes. For Omniglot, ``test`` is the 20 official
        one-shot runs. ``test_time_augment`` replaces the run's own setting (see
        :func:`siamese.encode.encoder`).

        Returns:
            ``{split: {metric: value}}``, as in ``metrics.json``.

        Raises:
            ConfigError: The folder is not a finished image-pairs run, or the split does not exist.
            DataError: The data is missing or bad.
        """
        run = RunDir(run_dir)
        config = self.finished_config(run_dir)
        if test_time_augment is not None:
            config = dataclasses.replace(
                config, options=dataclasses.replace(config.options, test_time_augment=test_time_augment)
            )
        model = load_model(run.model)
        loaded = load_data(config, data, size=tuple(tower_of(model).inputs[0].shape[1:3]))
        if split not in loaded.names():
            raise ConfigError(f"split {split!r} does not exist here; available: {', '.join(loaded.names())}")
        return {split: score_splits(model, loaded, config, names=[split], retrieval=retrieval)[split]}


TASK = register(ImagePairsTask())


def _fit_retrieval(job: Job, run: RunDir, model: keras.Model, state: dict | None, verbose: Any) -> dict:
    """Train the tower's embedding space on class-labelled images: batch-hard triplets over
    pools of P classes of K images (each image embedded once), or in-batch negatives over one
    positive pair per class of each pool; early-stopping on MAP@R through an index of dev."""
    config, data = job.config, job.data
    train_set, sampler = job.extra["train"], job.extra["sampler"]
    images = tf.constant(train_set.images)
    labels = train_set.labels
    augment = AffineAugment(seed=config.seed) if config.options.augment else None
    count = math.ceil((config.options.pairs_per_epoch or len(labels)) / config.batch_size)
    triplet = config.loss == "batch-hard-triplet"
    trainer = fused.item_trainer(model) if triplet else fused.embedding_trainer(model, sides=2)
    compile_model(trainer, config, optimizer=model.optimizer)
    logger.info(
        "retrieval training on %d images of %d classes: %d batches of about %d images per epoch, loss %s",
        len(labels),
        len(np.unique(labels)),
        count,
        config.batch_size,
        config.loss,
    )

    def epoch_data(epoch: int) -> tuple[tf.data.Dataset, None]:
        pools = sampler.pools(epoch, count)
        rng = np.random.default_rng([config.seed, epoch, 4])
        steps = np.arange(count, dtype=np.int64) + epoch * count
        if triplet:
            parts = (tf.ragged.constant([p.tolist() for p in pools], dtype=tf.int64), steps)

            def batch(items: tf.Tensor, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                chosen = tf.gather(images, items)
                if augment is not None:
                    chosen = augment(tf.cast(chosen, tf.float32), step=2 * step)
                return chosen, tf.gather(labels, items)

        else:
            sides = [_class_pairs(pool, labels, rng) for pool in pools]
            parts = (
                tf.ragged.constant([a.tolist() for a, _ in sides], dtype=tf.int64),
                tf.ragged.constant([b.tolist() for _, b in sides], dtype=tf.int64),
                steps,
            )

            def batch(index_a: tf.Tensor, index_b: tf.Tensor, step: tf.Tensor) -> tuple:
                side_a, side_b = tf.gather(images, index_a), tf.gather(images, index_b)
                if augment is not None:
                    side_a = augment(tf.cast(side_a, tf.float32), step=2 * step)
                    side_b = augment(tf.cast(side_b, tf.float32), step=2 * step + 1)
                return (side_a, side_b), tf.zeros(tf.shape(index_a)[0])

        dataset = tf.data.Dataset.from_tensor_slices(parts).map(
            batch, num_parallel_calls=2, deterministic=True
        )
        return without_autotune(dataset.prefetch(2)), None

    dev = data.splits["dev"]
    return fit_for_retrieval(
        model,
        epoch_data,
        run,
        config,
        dev=class_retrieval_set(dev.images, dev.labels),
        watched=("retrieval_map@r", "retrieval_precision@1"),
        state=state,
        trainer=trainer,
        verbose=verbose,
    )


def _class_pairs(
    pool: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One positive pair (two different images) of each class of ``pool``: no two pairs of a
    batch share a class, so no in-batch negative is of the anchor's class."""
    side_a, side_b = [], []
    for label in np.unique(labels[pool]):
        members = pool[labels[pool] == label]
        if len(members) >= 2:
            a, b = rng.choice(members, size=2, replace=False)
            side_a.append(a)
            side_b.append(b)
    return np.asarray(side_a, dtype=np.int64), np.asarray(side_b, dtype=np.int64)
