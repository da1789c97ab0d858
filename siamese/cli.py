"""Command-line tools: ``siamese-train``, ``siamese-index`` and ``siamese-eval``.

Each command reads its options, calls one library function, and turns the toolkit's own
errors into one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from siamese.errors import SiameseError

TASKS = ("text-pairs", "image-pairs", "basketball")
TASK_DEFAULTS = {
    "text-pairs": {"data": "sick", "epochs": 10, "batch_size": 64, "learning_rate": 1e-3},
    "image-pairs": {"data": "fashion-mnist", "epochs": 10, "batch_size": 128, "learning_rate": 1e-3},
    "basketball": {"data": "real", "epochs": 40, "batch_size": 2048, "learning_rate": 0.05},
}


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        logging.getLogger("faiss").setLevel(logging.WARNING)


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Show the toolkit's errors (and bad values) as one line and exit 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SiameseError as exc:
            raise UsageLikeError(str(exc)) from None
        except (ValueError, OSError) as exc:
            raise UsageLikeError(f"{type(exc).__name__}: {exc}") from None
        except KeyboardInterrupt:
            click.echo("Interrupted: files written so far are whole (every save is atomic).", err=True)
            sys.exit(130)

    return wrapper


class UsageLikeError(click.ClickException):
    """A one-line error with exit code 2 (bad input or options)."""

    exit_code = 2


def verbose_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Shared ``--verbose`` flag."""
    return click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")(func)


@click.command(
    epilog="""\b
Examples:
  siamese-train --task text-pairs --data sick --epochs 10 --out runs/sick
  siamese-train --task text-pairs --data stsb --word-vectors glove-6b-50d --out runs/stsb
  siamese-train --task text-pairs --data mrpc --init-tower runs/sick --out runs/mrpc
  siamese-train --task text-pairs --data sick --members 3 --out runs/sick3
  siamese-train --task text-pairs --data pairs.tsv --text-a-col q1 --text-b-col q2 --label-col dup
  siamese-train --task text-pairs --out runs/sick --resume --epochs 20
  siamese-train --task image-pairs --data fashion-mnist --epochs 5 --out runs/f
  siamese-train --task image-pairs --data omniglot --head euclidean --loss contrastive \\
      --augment --batch-norm --hard-negatives 0.5 --embedding-dim 128 --out runs/o
  siamese-train --task image-pairs --data photos/ --image-size 64x64 --out runs/photos
  siamese-train --task basketball --model team-strength
  siamese-train --task basketball --model regressor-classifier --pred course
  siamese-train --task basketball --model team-strength --data simulated
"""
)
@click.option("--task", type=click.Choice(TASKS), required=True, help="What kind of pairs to train on.")
@click.option(
    "--data",
    default=None,
    help="Text: sick, stsb, mrpc, paws, qqp, a CSV/TSV path or tfds:NAME [sick]. Images: "
    "fashion-mnist, omniglot, a folder of class sub-folders or tfds:NAME [fashion-mnist].",
)
@click.option(
    "--objective",
    type=click.Choice(["regression", "binary"]),
    default=None,
    help="Default: regression for graded scores, binary for 0/1 labels.",
)
@click.option("--head", default=None, help="Similarity head: abs-diff, manhattan, cosine, euclidean, concat.")
@click.option(
    "--head-hidden",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Hidden ReLU units in the concat head (0: none).",
)
@click.option("--loss", default=None, help="Loss: mse, binary-crossentropy, contrastive, mae.")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Most epochs [text: 10, images: 10, basketball: 40].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="[text: 64, images: 128, basketball: 2048].",
)
@click.option(
    "--learning-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Adam's rate [text: 0.001, images: 0.001, basketball: 0.05].",
)
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Stop after this many epochs without improvement on dev (0: never).",
)
@click.option(
    "--lr-patience",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Lower the learning rate after this many epochs without improvement on dev (0: never).",
)
@click.option(
    "--lr-factor",
    type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
    help="What --lr-patience multiplies the learning rate by.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--time-budget",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds of training allowed; stops before an epoch that would overrun it.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Run folder to write (default: runs/TASK-DATA).",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option(
    "--word-vectors",
    default=None,
    help="Pretrained vectors: glove-6b-50d (the glove extra), a GloVe/word2vec text file, or .npy.",
)
@click.option("--freeze-embeddings", is_flag=True, help="Keep pretrained word vectors fixed.")
@click.option(
    "--vectors-vocabulary",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also put this many of the vectors' most frequent words in the vocabulary.",
)
@click.option("--units", type=click.IntRange(min=1), default=128, show_default=True, help="LSTM units.")
@click.option(
    "--embedding-dim",
    type=click.IntRange(min=1),
    default=None,
    help="Text: word embedding width [128]. Images: the tower's output width [64].",
)
@click.option("--rnn", type=click.Choice(["lstm", "bilstm"]), default="lstm", show_default=True)
@click.option(
    "--init-tower",
    type=click.Path(),
    default=None,
    help="Text: start from the tower of an earlier run (its folder or tower.keras) under a fresh head; "
    "the tower keeps its own vocabulary and layers, so the tower options (--units, --rnn, "
    "--word-vectors, ...) are not used.",
)
@click.option(
    "--refit",
    is_flag=True,
    help="Text, graded data: once early stopping on dev has picked the epoch count, train again "
    "from the start on train + dev for that many epochs and keep that model (metrics.json keeps "
    "the first model's dev figures).",
)
@click.option(
    "--members",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Text: train N models alike (seeds SEED, SEED+1, ...; model K in the run's members/K) and "
    "keep them as one: their scores averaged, their towers' encodings concatenated. With an "
    "ensemble run as --init-tower, model K starts from its model K.",
)
@click.option(
    "--threshold-metric",
    type=click.Choice(["accuracy", "f1"]),
    default="accuracy",
    show_default=True,
    help="Text, binary data: choose the decision threshold with the best accuracy, or the best F1, on dev.",
)
@click.option(
    "--sequence-pooling",
    type=click.Choice(["last", "mean", "max"]),
    default="last",
    show_default=True,
    help="Text: the LSTM's last state, or the mean or maximum of its states over the tokens.",
)
@click.option("--sequence-length", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--vocab-size", type=click.IntRange(min=3), default=20000, show_default=True)
@click.option("--text-a-col", default="sentence1", show_default=True, help="CSV/TSV: first text column.")
@click.option("--text-b-col", default="sentence2", show_default=True, help="CSV/TSV: second text column.")
@click.option("--label-col", default="label", show_default=True, help="CSV/TSV: label column.")
@click.option("--sep", default=None, help="CSV/TSV separator (default: from the file extension).")
@click.option(
    "--image-size",
    default=None,
    metavar="HxW",
    help="Images: resize to this size (default: native; Omniglot 28x28).",
)
@click.option(
    "--filters",
    default="32,64,128",
    show_default=True,
    help="Images: filters of each Conv2D block, comma-separated.",
)
@click.option(
    "--pairs-per-epoch",
    type=click.IntRange(min=2),
    default=None,
    help="Images: pairs drawn afresh each epoch (default: one per training image).",
)
@click.option(
    "--hard-negatives",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Images: share of negative pairs taken from the same group (Omniglot: same alphabet).",
)
@click.option("--augment", is_flag=True, help="Images: small random affine distortions (Koch et al.).")
@click.option("--batch-norm", is_flag=True, help="Images: batch normalisation after each convolution.")
@click.option(
    "--pair-pools/--independent-pairs",
    default=True,
    show_default=True,
    help="Images: draw each batch's pairs among a pool of about batch-size images, each embedded "
    "once per step (about twice the pairs/s), or draw every pair independently.",
)
@click.option(
    "--rotated-classes",
    is_flag=True,
    help="Images: add each training image's 90/180/270-degree turns as new classes.",
)
@click.option(
    "--tta",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Images: one-shot and k-NN figures embed each image as the mean over it and N small distortions.",
)
@click.option(
    "--model",
    "bb_model",
    type=click.Choice(["team-strength", "three-input", "stacked", "two-output", "regressor-classifier"]),
    default="team-strength",
    show_default=True,
    help="Basketball: which model to train.",
)
@click.option(
    "--pred",
    type=click.Choice(["ours", "course"]),
    default="ours",
    show_default=True,
    help="Basketball tournament models: the season prediction used as a feature.",
)
@click.option(
    "--season-loss",
    type=click.Choice(["mae", "mse"]),
    default=None,
    help="Basketball: the season model's loss [mae for the season models, as the course; "
    "mse where it only makes --pred ours].",
)
@verbose_option
@friendly_errors
def train(
    task: str, data: str | None, out_dir: str | None, resume: bool, verbose: bool, **options: Any
) -> None:
    """Train a Siamese model and write its run folder (model, tower, config, metrics)."""
    _setup_logging(verbose)
    from siamese.training import BasketballOptions, RunConfig, TextOptions

    defaults = TASK_DEFAULTS[task]
    data = data or defaults["data"]
    if out_dir is None:
        if resume:
            raise SiameseError("--resume needs --out, the run folder to continue")
        out_dir = str(Path("runs") / f"{task}-{Path(data).stem.replace(':', '-').replace('/', '-')}")
    config = RunConfig(
        task=task,
        data=data,
        objective=options["objective"],
        head=options["head"],
        loss=options["loss"],
        epochs=options["epochs"] or defaults["epochs"],
        batch_size=options["batch_size"] or defaults["batch_size"],
        learning_rate=options["learning_rate"] or defaults["learning_rate"],
        patience=options["patience"],
        lr_patience=options["lr_patience"],
        lr_factor=options["lr_factor"],
        seed=options["seed"],
        head_hidden_units=options["head_hidden"],
        time_budget=options["time_budget"],
        text=TextOptions(
            vocab_size=options["vocab_size"],
            sequence_length=options["sequence_length"],
            embedding_dim=options["embedding_dim"] or 128,
            units=options["units"],
            rnn=options["rnn"],
            sequence_pooling=options["sequence_pooling"],
            word_vectors=options["word_vectors"],
            train_embeddings=not options["freeze_embeddings"],
            vectors_vocabulary=options["vectors_vocabulary"],
            init_tower=options["init_tower"],
            refit=options["refit"],
            members=options["members"],
            threshold_metric=options["threshold_metric"],
            text_a_col=options["text_a_col"],
            text_b_col=options["text_b_col"],
            label_col=options["label_col"],
            sep=options["sep"],
        ),
        image=_image_options(options),
        basketball=BasketballOptions(
            model=options["bb_model"], pred=options["pred"], season_loss=options["season_loss"]
        ),
    )
    if task == "text-pairs":
        from siamese.tasks import text_pairs

        metrics = text_pairs.train(config, out_dir, resume=resume)
    elif task == "basketball":
        if resume:
            raise SiameseError("basketball runs train in seconds and have no --resume: start a new run")
        from siamese.tasks import basketball

        metrics, model = basketball.train(config, out_dir)
        model.summary(line_length=100, print_fn=lambda line, **_: click.echo(line))
    else:
        from siamese.tasks import image_pairs

        metrics = image_pairs.train(config, out_dir, resume=resume)
    click.echo(f"run folder: {out_dir}")
    _echo_metrics(metrics)


def _image_options(options: dict[str, Any]) -> Any:
    """The image options of ``siamese-train``, checked."""
    from siamese.training import ImageOptions

    size = None
    if options["image_size"]:
        try:
            height, width = (int(v) for v in options["image_size"].lower().split("x"))
        except ValueError:
            raise SiameseError(f"--image-size {options['image_size']!r}: expected HxW, e.g. 64x64") from None
        if height < 1 or width < 1:
            raise SiameseError(f"--image-size {options['image_size']!r}: sides must be positive")
        size = (height, width)
    try:
        filters = tuple(int(v) for v in options["filters"].split(","))
    except ValueError:
        raise SiameseError(f"--filters {options['filters']!r}: expected integers, e.g. 32,64,128") from None
    if not filters or min(filters) < 1:
        raise SiameseError(f"--filters {options['filters']!r}: each block needs at least one filter")
    return ImageOptions(
        image_size=size,
        filters=filters,
        embedding_dim=options["embedding_dim"] or 64,
        pairs_per_epoch=options["pairs_per_epoch"],
        hard_negative_fraction=options["hard_negatives"],
        augment=options["augment"],
        batch_norm=options["batch_norm"],
        rotated_classes=options["rotated_classes"],
        pair_pools=options["pair_pools"],
        test_time_augment=options["tta"],
    )


def _echo_metrics(metrics: dict[str, dict[str, float]]) -> None:
    for split, values in metrics.items():
        shown = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
        click.echo(f"{split}: {shown}")


@click.group(
    epilog="""\b
Examples:
  siamese-index build --run runs/sick --input sick --out idx/sick
  siamese-index query --index idx/sick "A man is playing a guitar" -k 5
  siamese-index info --index idx/sick
"""
)
def index() -> None:
    """Build, query and inspect FAISS indexes of a trained tower's embeddings."""


@index.command(
    "build",
    epilog="""\b
Examples:
  siamese-index build --run runs/sick --input sick --out idx/sick
  siamese-index build --run runs/sick --input sentences.txt --out idx/mine --factory HNSW32
  siamese-index build --run runs/fmnist --input fashion-mnist --out idx/fmnist --check-recall
""",
)
@click.option(
    "--run",
    "run_dir",
    type=click.Path(exists=True, file_okay=False),
    required=True,
    help="A run folder (its tower.keras embeds the corpus).",
)
@click.option(
    "--input",
    "input_spec",
    required=True,
    help="Dataset name, .txt file (one item per line), CSV/TSV of pairs, or image folder.",
)
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Index folder to write."
)
@click.option(
    "--factory",
    default="Flat",
    show_default=True,
    help="FAISS index type: Flat, HNSW32, IVF256,Flat, IVF256,PQ16, ...",
)
@click.option("--metric", type=click.Choice(["cosine", "ip", "l2"]), default="cosine", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--check-recall", is_flag=True, help="Measure recall@10 against exact search on a sample.")
@verbose_option
@friendly_errors
def index_build(
    run_dir: str,
    input_spec: str,
    out_dir: str,
    factory: str,
    metric: str,
    batch_size: int,
    check_recall: bool,
    verbose: bool,
) -> None:
    """Embed a corpus with a run's tower and save it as an index folder."""
    _setup_logging(verbose)
    from siamese.datasets.corpus import read_corpus
    from siamese.index import Index, recall_at_k
    from siamese.models import load_tower

    tower_path = Path(run_dir) / "tower.keras"
    tower = load_tower(tower_path)
    items, payloads = read_corpus(input_spec, tower)
    built = Index.build(
        tower,
        items,
        payloads=payloads,
        factory=factory,
        metric=metric,
        batch_size=batch_size,
        tower_path=tower_path,
    )
    built.save(out_dir)
    click.echo(f"index {out_dir}: {built.ntotal} items, dimension {built.dim}, {factory}, {metric}")
    if check_recall:
        recall = recall_at_k(built, built._vectors, k=10)
        click.echo(f"recall@10 against exact search: {recall:.4f}")


@index.command(
    "query",
    epilog="""\b
Examples:
  siamese-index query --index idx/sick "A man is playing a guitar" -k 5
  siamese-index query --index idx/fmnist --image shoe.png --json
""",
)
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.argument("text", required=False)
@click.option(
    "--image",
    "image_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Query with an image file (image indexes).",
)
@click.option("-k", type=click.IntRange(min=1), default=10, show_default=True, help="Neighbours to return.")
@click.option("--nprobe", type=click.IntRange(min=1), default=None, help="IVF lists searched per query.")
@click.option("--ef-search", type=click.IntRange(min=1), default=None, help="HNSW search breadth.")
@click.option("--json", "as_json", is_flag=True, help="Print the hits as JSON.")
@verbose_option
@friendly_errors
def index_query(
    index_dir: str,
    text: str | None,
    image_path: str | None,
    k: int,
    nprobe: int | None,
    ef_search: int | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Print the nearest neighbours of a query, best first."""
    _setup_logging(verbose)
    from siamese.index import Index

    if (text is None) == (image_path is None):
        raise SiameseError("give either a TEXT query or --image PATH")
    loaded = Index.load(index_dir)
    hits = loaded.search([text if text is not None else image_path], k=k, nprobe=nprobe, ef_search=ef_search)[
        0
    ]
    if as_json:
        click.echo(json.dumps([hit._asdict() for hit in hits], indent=2))
        return
    for rank, hit in enumerate(hits, start=1):
        click.echo(f"{rank:>3}  {hit.score:8.4f}  {hit.id:>8}  {hit.payload}")


@index.command("info", epilog="\b\nExample:\n  siamese-index info --index idx/sick\n")
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False), required=True)
@friendly_errors
def index_info(index_dir: str) -> None:
    """Print an index folder's manifest (dimension, metric, factory, count, tower)."""
    from siamese.index import Index

    click.echo(json.dumps(Index.load(index_dir, check_tower=False).info(), indent=2))


@click.command(
    epilog="""\b
Examples:
  siamese-eval --run runs/sick
  siamese-eval --run runs/sick --data stsb --split test
  siamese-eval --run runs/o          # Omniglot: 20-way one-shot over the 20 official runs
  siamese-eval --run runs/o --tta 8  # the same, each image embedded with 8 small distortions
  siamese-eval --run runs/f --split dev
"""
)
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--data", default=None, help="Dataset to evaluate on (default: the run's own).")
@click.option("--split", default="test", show_default=True)
@click.option(
    "--tta",
    type=click.IntRange(min=0),
    default=None,
    help="Image runs: test-time augmentation with N distortions per image [the run's own setting].",
)
@verbose_option
@friendly_errors
def evaluate(run_dir: str, data: str | None, split: str, tta: int | None, verbose: bool) -> None:
    """Evaluate a trained run on a dataset split and print its metrics."""
    _setup_logging(verbose)
    from siamese.tasks import image_pairs, text_pairs
    from siamese.training import RunDir

    task = RunDir(run_dir).task()
    if tta is not None and task != image_pairs.TASK:
        raise SiameseError(f"--tta applies to image-pairs runs; {run_dir} is a {task} run")
    if task == image_pairs.TASK:
        _echo_metrics(image_pairs.evaluate(run_dir, data=data, split=split, test_time_augment=tta))
    elif task == text_pairs.TASK:
        _echo_metrics(text_pairs.evaluate(run_dir, data=data, split=split))
    else:
        raise SiameseError(f"{run_dir} is a {task} run; siamese-eval scores text-pairs and image-pairs runs")
