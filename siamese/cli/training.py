"""``siamese-train --task NAME``: the options common to every task, plus the chosen task's own.

The command reads ``--task`` first and offers only the options that task takes: the common
settings it reads (:attr:`siamese.tasks.Task.settings`) and its own options
(:meth:`siamese.tasks.Task.cli_options`). ``--task NAME --help`` lists exactly those; an
option of another task is refused with one line naming the task it belongs to, before any
folder is made.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from siamese import tasks
from siamese.cli.common import UsageLikeError, echo_metrics, friendly_errors, setup_logging
from siamese.errors import SiameseError
from siamese.io import read_json
from siamese.training.config import CONCAT_HIDDEN, LR_SCHEDULES, OBJECTIVES, RunConfig
from siamese.training.distribute import STRATEGIES, start

_TASK_KEY = "siamese.task"
_RUN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}


def _common_options(task: tasks.Task) -> list[click.Option]:
    """The options of the common settings, with the task's defaults where they differ."""
    d = task.defaults
    defined: dict[str, click.Option] = {
        "data": click.Option(["--data"], default=d.data, show_default=True, help=task.data_help),
        "objective": click.Option(
            ["--objective"],
            type=click.Choice(list(OBJECTIVES)),
            default=None,
            help="regression (graded scores) or binary (0/1 labels): a head scores pairs; retrieval: train "
            "the embedding space the index searches [regression for graded scores, binary for 0/1 labels].",
        ),
        "head": click.Option(
            ["--head"], default=None, help="Similarity head: abs-diff, manhattan, cosine, euclidean, concat."
        ),
        "head_hidden_units": click.Option(
            ["--head-hidden", "head_hidden_units"],
            type=click.IntRange(min=0),
            default=None,
            help=f"Hidden ReLU units in the concat head (0: none).  [default: {CONCAT_HIDDEN}]",
        ),
        "loss": click.Option(
            ["--loss"], default=None, help="Loss: mse, binary-crossentropy, contrastive, mae."
        ),
        "epochs": click.Option(
            ["--epochs"],
            type=click.IntRange(min=1),
            default=None,
            help="Most epochs." + task.shown_default("epochs", d.epochs),
        ),
        "batch_size": click.Option(
            ["--batch-size"],
            type=click.IntRange(min=1),
            default=None,
            help="Pairs per training step." + task.shown_default("batch_size", d.batch_size),
        ),
        "learning_rate": click.Option(
            ["--learning-rate"],
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Adam's learning rate." + task.shown_default("learning_rate", d.learning_rate),
        ),
        "patience": click.Option(
            ["--patience"],
            type=click.IntRange(min=0),
            default=None,
            help="Stop after this many epochs without improvement on dev (0: never)."
            + task.shown_default("patience", d.patience),
        ),
        "lr_patience": click.Option(
            ["--lr-patience"],
            type=click.IntRange(min=0),
            default=None,
            help="Lower the learning rate after this many epochs without improvement on dev (0: never)."
            + task.shown_default("lr_patience", d.lr_patience),
        ),
        "lr_factor": click.Option(
            ["--lr-factor"],
            type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
            default=_RUN_DEFAULTS["lr_factor"],
            show_default=True,
            help="What --lr-patience multiplies the learning rate by.",
        ),
        "lr_schedule": click.Option(
            ["--lr-schedule"],
            type=click.Choice(list(LR_SCHEDULES)),
            default=_RUN_DEFAULTS["lr_schedule"],
            show_default=True,
            help="cosine: lower the learning rate step by step from --learning-rate to 0 over --epochs "
            "(--lr-patience is then not used).",
        ),
        "seed": click.Option(
            ["--seed"],
            type=int,
            default=_RUN_DEFAULTS["seed"],
            show_default=True,
            help="Seed of the weights, shuffles and dropout; also of the data unless --split-seed is given.",
        ),
        "split_seed": click.Option(
            ["--split-seed"],
            type=int,
            default=None,
            help="Seed of the data: the dev hold-out (text-distill: also the sentence order and the "
            "augmentation variants).  [default: --seed] Give it to vary --seed alone on the same data.",
        ),
        "tensorboard": click.Option(
            ["--tensorboard/--no-tensorboard"],
            default=True,
            show_default=True,
            help="Write TensorBoard logs in the run's logs/ folder (tensorboard --logdir RUN/logs).",
        ),
        "time_budget": click.Option(
            ["--time-budget"],
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Seconds of training allowed; stops before an epoch that would overrun it.",
        ),
    }
    options = [_task_option(), *(option for name, option in defined.items() if name in task.settings)]
    options.append(
        click.Option(
            ["--out", "out_dir"],
            type=click.Path(file_okay=False),
            default=None,
            help="Run folder to write (default: runs/TASK-DATA).",
        )
    )
    if task.resumable:
        options.append(
            click.Option(
                ["--resume"], is_flag=True, help="Continue the run in --out from its last checkpoint."
            )
        )
    if task.distributable:
        options.append(
            click.Option(
                ["--distribute"],
                type=click.Choice(list(STRATEGIES)),
                default=None,
                help="Data-parallel training on tf.distribute: mirrored (this host's GPUs, or "
                "--cpu-replicas) or multi-worker (the processes named by TF_CONFIG; the chief writes "
                "the run). --batch-size is the global batch.",
            )
        )
        options.append(
            click.Option(
                ["--cpu-replicas"],
                type=click.IntRange(min=1),
                default=None,
                help="With --distribute mirrored on a host without GPUs: split the CPU into this many "
                "devices, one replica each.",
            )
        )
    options.append(click.Option(["-v", "--verbose"], is_flag=True, help="Log debug messages."))
    return options


def _task_option() -> click.Option:
    return click.Option(
        ["--task"], type=click.Choice(tasks.names()), required=True, help="What to train (see below)."
    )


def _peek_task(args: list[str]) -> str | None:
    """The value of ``--task`` in the raw arguments, if any."""
    for i, arg in enumerate(args):
        if arg == "--task" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--task="):
            return arg.split("=", 1)[1]
    return None


def _owners(flag: str) -> list[str]:
    """The tasks that take the option ``flag``."""
    found = []
    for task in tasks.all_tasks():
        params = [*_common_options(task), *task.cli_options()]
        if any(flag in (*p.opts, *p.secondary_opts) for p in params):
            found.append(task.name)
    return found


class TrainCommand(click.Command):
    """A click command whose options are those of the task named by ``--task``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        name = _peek_task(args)
        if name is not None and name not in tasks.names():
            raise UsageLikeError(f"--task {name!r} is not a task; choose one of {', '.join(tasks.names())}")
        if name is None and not any(arg in self.get_help_option_names(ctx) for arg in args):
            raise UsageLikeError(f"--task is required: choose one of {', '.join(tasks.names())}")
        ctx.meta[_TASK_KEY] = name
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            owners = _owners(exc.option_name)
            if name is not None and owners:
                raise UsageLikeError(
                    f"{exc.option_name} applies to --task {', '.join(owners)} only"
                ) from None
            raise UsageLikeError(exc.format_message()) from None
        except click.UsageError as exc:  # a bad value, say: one line, like the toolkit's own errors
            raise UsageLikeError(exc.format_message()) from None

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        name = ctx.meta.get(_TASK_KEY)
        params: list[click.Parameter] = [_task_option()]
        if name is not None:
            task = tasks.get(name)
            params = [*_common_options(task), *task.cli_options()]
        help_option = self.get_help_option(ctx)
        return params if help_option is None else [*params, help_option]

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        name = ctx.meta.get(_TASK_KEY)
        chosen = [tasks.get(name)] if name is not None else tasks.all_tasks()
        if name is None:
            with formatter.section("Tasks (each takes options of its own: siamese-train --task NAME --help)"):
                formatter.write_dl([(task.name, task.summary) for task in chosen])
        examples = [example for task in chosen for example in task.examples]
        if examples:
            formatter.write_paragraph()
            formatter.write_text("Examples:")
            for example in examples:  # not wrapped: each is one command to copy
                formatter.write(f"{'':>{formatter.current_indent + 2}}{example}\n")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        name = ctx.meta.get(_TASK_KEY)
        if name is None:
            super().format_options(ctx, formatter)
            return
        own = {param.name for param in tasks.get(name).cli_options()}
        sections = {"Options": [], f"Options of --task {name}": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections[f"Options of --task {name}" if param.name in own else "Options"].append(record)
        for title, records in sections.items():
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


def _given_on_the_command_line() -> dict[str, str]:
    """The parameters the user wrote on the command line (not defaults): name → option."""
    ctx = click.get_current_context()
    return {
        param.name: param.opts[0]
        for param in ctx.command.get_params(ctx)
        if param.name and ctx.get_parameter_source(param.name) == click.core.ParameterSource.COMMANDLINE
    }


def _refuse_changed_settings(task: tasks.Task, config: RunConfig, out: Path, given: dict[str, str]) -> None:
    """``--resume`` goes on with the run's saved settings (only ``--epochs`` may change): a
    setting given on the command line that differs from the saved one is refused, not ignored."""
    if not (out / "config.json").is_file():
        return  # the task says there is nothing to resume
    saved = read_json(out / "config.json")
    now = task.configure(config).to_dict()
    section = task.options_type.SECTION
    for name, flag in sorted(given.items()):
        if name == "epochs":
            continue
        if name in saved:
            before, after = saved[name], now.get(name)
        elif name in saved.get(section, {}):
            before, after = saved[section][name], now.get(section, {}).get(name)
        else:
            continue
        if json.loads(json.dumps(after)) != before:
            raise SiameseError(
                f"--resume goes on with the settings {out} was started with: {flag} is {after!r} here, "
                f"{before!r} there (only --epochs can change; start a new run with --out elsewhere)"
            )


@click.command(cls=TrainCommand)
@friendly_errors
def train(**values: Any) -> None:
    """Train a Siamese model and write its run folder (model, tower, config, metrics)."""
    setup_logging(values.pop("verbose"))
    task = tasks.get(values.pop("task"))
    out_dir, resume = values.pop("out_dir"), values.pop("resume", False)
    distribute, cpu_replicas = values.pop("distribute", None), values.pop("cpu_replicas", None)
    if cpu_replicas is not None and distribute != "mirrored":
        raise SiameseError("--cpu-replicas goes with --distribute mirrored")
    option_names = [param.name for param in task.cli_options()]
    options = task.options_from_cli({name: values.pop(name) for name in option_names})
    config = RunConfig(task=task.name, options=options, **values)
    task.configure(config)  # a bad setting is one line before the folder is chosen
    if out_dir is None:
        if resume:
            raise SiameseError("--resume needs --out, the run folder to continue")
        stem = Path(config.data or task.defaults.data).stem.replace(":", "-").replace("/", "-")
        out_dir = str(Path("runs") / f"{task.name}-{stem}")
    if resume:
        _refuse_changed_settings(task, config, Path(out_dir), given=_given_on_the_command_line())
    distribution = start(distribute, cpu_replicas=cpu_replicas) if distribute else None
    metrics = task.train(config, out_dir, resume=resume, distribution=distribution)
    click.echo(f"run folder: {out_dir}")
    echo_metrics(metrics)
    if resume:  # the run's own settings, not the command line's (which may leave them out)
        config = RunConfig.from_dict(read_json(Path(out_dir) / "config.json"), task.options_type)
    steps = task.next_steps(task.configure(config), out_dir)
    if steps:
        click.echo("next: search with the run's tower:")
        for step in steps:
            click.echo(f"  {step}")
