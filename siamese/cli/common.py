"""What every command shares: logging, the one-line errors, ``--verbose``, printing metrics."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from siamese.errors import SiameseError


def setup_logging(verbose: bool) -> None:
    """Log to stderr: INFO (DEBUG with ``--verbose``), FAISS's own chatter at WARNING."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        logging.getLogger("faiss").setLevel(logging.WARNING)


class UsageLikeError(click.ClickException):
    """A one-line error with exit code 2 (bad input or options)."""

    exit_code = 2


class OneLineUsage:
    """Mixin for a click command or group: a usage error (a bad value, an unknown option, a
    missing argument) is one line and exit code 2, like the toolkit's own errors."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except click.UsageError as exc:
            raise UsageLikeError(exc.format_message()) from None


class OneLineCommand(OneLineUsage, click.Command):
    """A click command whose usage errors are one line."""


class OneLineGroup(OneLineUsage, click.Group):
    """A click group whose usage errors, and its commands', are one line."""

    command_class = OneLineCommand

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise UsageLikeError(exc.format_message()) from None


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


def verbose_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Shared ``--verbose`` flag."""
    return click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")(func)


def echo_metrics(metrics: dict[str, dict[str, Any]]) -> None:
    """Print ``split: metric value, ...`` lines."""
    for split, values in metrics.items():
        shown = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
        click.echo(f"{split}: {shown}")
