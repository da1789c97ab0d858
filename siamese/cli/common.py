"""What every command shares: logging, the one-line errors, ``--verbose``, printing metrics."""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from typing import Any

import click

from siamese._version import __version__
from siamese.errors import Interrupted, SiameseError


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


#: Exit code of a command the user interrupted (Ctrl-C), as shells report SIGINT.
INTERRUPTED_EXIT = 130
#: Exit code of an unexpected failure (a bug): the traceback goes to a file.
UNEXPECTED_EXIT = 1


def _traceback_file(exc: BaseException) -> str:
    """Write the traceback of ``exc`` to a new file in the temporary folder; its path."""
    fd, path = tempfile.mkstemp(prefix="siamese-error-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"siamese {__version__}, {' '.join(sys.argv)}\n")
        handle.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return path


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """One line, never a traceback: the toolkit's errors and bad values exit 2; Ctrl-C exits
    130; anything unexpected exits 1 and names the file its traceback was written to (with
    ``--verbose`` the traceback is shown instead)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (KeyboardInterrupt, Interrupted) as exc:
            detail = f" {exc}" if isinstance(exc, Interrupted) else ""
            click.echo(
                f"Interrupted:{detail or ' files written so far are whole (every save is atomic).'}", err=True
            )
            sys.exit(INTERRUPTED_EXIT)
        except SiameseError as exc:
            raise UsageLikeError(str(exc)) from None
        except (ValueError, OSError) as exc:
            raise UsageLikeError(f"{type(exc).__name__}: {exc}") from None
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except Exception as exc:
            if kwargs.get("verbose"):
                raise
            path = _traceback_file(exc)
            message = str(exc).splitlines()[0] if str(exc) else ""
            click.echo(
                f"Error: unexpected {type(exc).__name__}: {message[:300]} "
                f"(the full traceback is in {path}; -v shows it)",
                err=True,
            )
            sys.exit(UNEXPECTED_EXIT)

    return wrapper


def verbose_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Shared ``--verbose`` flag."""
    return click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")(func)


def echo_metrics(metrics: dict[str, dict[str, Any]]) -> None:
    """Print ``split: metric value, ...`` lines."""
    for split, values in metrics.items():
        shown = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
        click.echo(f"{split}: {shown}")
