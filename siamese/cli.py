"""Command-line tools: ``siamese-train``, ``siamese-index`` and ``siamese-eval``.

Each command reads its options, calls one library function, and turns the toolkit's own
errors into one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from siamese.errors import SiameseError

TASKS = ("text-pairs", "image-pairs", "basketball")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


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
  siamese-train --task image-pairs --data omniglot --out runs/omniglot
  siamese-train --task basketball --model team-strength
"""
)
@click.option("--task", type=click.Choice(TASKS), required=True, help="What kind of pairs to train on.")
@click.option("--data", default=None, help="Dataset name, file or folder, or tfds:NAME.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Run folder to write.")
@verbose_option
@friendly_errors
def train(task: str, data: str | None, out_dir: str | None, verbose: bool) -> None:
    """Train a Siamese model and write its run folder (model, tower, config, metrics)."""
    _setup_logging(verbose)
    raise SiameseError(f"--task {task} is not available in this version yet")


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


@index.command("build")
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--input", "input_spec", required=True, help="Text file, image folder or dataset name.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@verbose_option
@friendly_errors
def index_build(run_dir: str, input_spec: str, out_dir: str, verbose: bool) -> None:
    """Embed a corpus with a run's tower and save it as an index folder."""
    _setup_logging(verbose)
    raise SiameseError("siamese-index build is not available in this version yet")


@index.command("query")
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.argument("text", required=False)
@click.option("-k", default=10, show_default=True, help="Neighbours to return.")
@verbose_option
@friendly_errors
def index_query(index_dir: str, text: str | None, k: int, verbose: bool) -> None:
    """Print the nearest neighbours of a query."""
    _setup_logging(verbose)
    raise SiameseError("siamese-index query is not available in this version yet")


@index.command("info")
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False), required=True)
@friendly_errors
def index_info(index_dir: str) -> None:
    """Print an index folder's manifest."""
    raise SiameseError("siamese-index info is not available in this version yet")


@click.command(
    epilog="""\b
Examples:
  siamese-eval --run runs/sick
  siamese-eval --run runs/sick --data stsb --split test
"""
)
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--data", default=None, help="Dataset to evaluate on (default: the run's own).")
@click.option("--split", default="test", show_default=True)
@verbose_option
@friendly_errors
def evaluate(run_dir: str, data: str | None, split: str, verbose: bool) -> None:
    """Evaluate a trained run on a dataset split and print its metrics."""
    _setup_logging(verbose)
    raise SiameseError("siamese-eval is not available in this version yet")
