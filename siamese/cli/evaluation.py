"""``siamese-eval``: score a finished run on a split, in a fresh process."""

from __future__ import annotations

from typing import Any

import click

from siamese import tasks
from siamese.cli.common import OneLineCommand, echo_metrics, friendly_errors, setup_logging, verbose_option
from siamese.errors import SiameseError
from siamese.training.run_dir import RunDir


@click.command(
    cls=OneLineCommand,
    epilog="""\b
Examples:
  siamese-eval --run runs/sick
  siamese-eval --run runs/sick --data stsb --split test
  siamese-eval --run runs/o          # Omniglot: 20-way one-shot over the 20 official runs
  siamese-eval --run runs/o --tta 8  # the same, each image embedded with 8 small distortions
  siamese-eval --run runs/f --split dev
  siamese-eval --run runs/q --retrieval   # also recall@k / MRR@10 / nDCG@10 through an index
""",
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
@click.option(
    "--retrieval",
    is_flag=True,
    help="Also search the split through an index of the tower: recall@k, MRR@10, nDCG@10 (pairs).",
)
@verbose_option
@friendly_errors
def evaluate(
    run_dir: str, data: str | None, split: str, tta: int | None, retrieval: bool, verbose: bool
) -> None:
    """Evaluate a trained run on a dataset split and print its metrics."""
    setup_logging(verbose)
    task = tasks.get(RunDir(run_dir).task())
    extra: dict[str, Any] = {}
    if tta is not None:
        extra["test_time_augment"] = tta
    if retrieval:
        extra["retrieval"] = True
    flags = {"test_time_augment": "--tta", "retrieval": "--retrieval"}
    for name in extra:
        if name not in task.eval_options:
            owners = ", ".join(t.name for t in tasks.all_tasks() if name in t.eval_options)
            raise SiameseError(f"{flags[name]} applies to {owners} runs; {run_dir} is a {task.name} run")
    echo_metrics(task.evaluate(run_dir, data=data, split=split, **extra))
