"""What every benchmark script shares: its command line, the header of its table, markdown
tables, and writing the table to ``benchmarks/results/``.

A script's ``main`` reads its arguments with :func:`parser`, notes how it was started with
:func:`invocation` (before any work, so that the load average is the one at the start), and
ends with ``write_result(NAME, header(TITLE, run, notes) + table, args.out)``. The
header holds the exact command that writes the table again (built from the script's actual
arguments), the machine, the date, the time the run took and the load average at its start
and end.

Scripts are run as ``python benchmarks/NAME.py`` from the checkout's root, so this folder is
first on ``sys.path`` and they ``import common``. Importing this module does not import
TensorFlow: ``--help`` and the scripts' worker processes start fast.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: This folder, and the folder of the tables.
BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results"
#: ``SIAMESE_DATA_DIR`` in the commands written into the headers, as seen from the checkout's root.
DATA_DIR = "../shared/datasets"

#: (name shown, module, distributions that may provide it) of the versions in the machine line.
_PACKAGES = (
    ("TensorFlow", "tensorflow", ("tensorflow", "tensorflow-cpu")),
    ("Keras", "keras", ("keras",)),
    ("FAISS", "faiss", ("faiss-cpu", "faiss-gpu", "faiss")),
    ("NumPy", "numpy", ("numpy",)),
)


# ---------------------------------------------------------------------- the command line


def parser(description: str | None, name: str, *, only: Sequence[str] = ()) -> argparse.ArgumentParser:
    """An argument parser whose help is the script's docstring (``description``), with
    ``--out`` (where the table goes; default ``results/NAME.md``, see :func:`result_path`) and,
    when the script has several parts (``only``), ``--only PART ...`` (default: all, in order)."""
    made = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    made.add_argument(
        "--out", type=Path, default=None, help=f"Where to write the table (default: results/{name}.md)."
    )
    if only:
        made.add_argument(
            "--only", nargs="+", choices=list(only), default=list(only), help="Run only these, in order."
        )
    return made


@dataclass(frozen=True)
class Invocation:
    """One run of a benchmark script: the command that repeats it, and the clock, the load
    average and the date as it started."""

    command: str
    began: float
    load: float
    date: str

    def seconds(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.began


def invocation(name: str, argv: Sequence[str] | None = None) -> Invocation:
    """Note the start of ``benchmarks/NAME.py`` run with ``argv`` (default: this process's
    arguments): ``SIAMESE_DATA_DIR=../shared/datasets python benchmarks/NAME.py ARGS``."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(
        [f"SIAMESE_DATA_DIR={DATA_DIR}", "python", f"benchmarks/{name}.py", *map(shlex.quote, arguments)]
    )
    return Invocation(
        command=command,
        began=time.perf_counter(),
        load=os.getloadavg()[0],
        date=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    )


# ---------------------------------------------------------------------- the header


def cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``unknown CPU`` where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as lines:
            for line in lines:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _version(module: str, distributions: Sequence[str]) -> str:
    loaded = sys.modules.get(module)
    if getattr(loaded, "__version__", None):
        return str(loaded.__version__)
    for distribution in distributions:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def machine() -> str:
    """Cores, CPU model, and the versions of Python and of the libraries that set the speed."""
    versions = ", ".join(f"{shown} {_version(module, dists)}" for shown, module, dists in _PACKAGES)
    return f"{cores()} cores (nproc), {cpu_model()}; Python {platform.python_version()}, {versions}"


def header(title: str, run: Invocation, notes: str | Sequence[str] = ()) -> str:
    """The top of a table's file, made when the run ends: ``# title``, the command that repeats
    the run, the machine, the date, the time taken and the load average at the start and the
    end, then ``notes`` (paragraphs: how the figures were taken), each followed by a blank line."""
    paragraphs = [
        f"# {title}",
        f"Command: `{run.command}`",
        f"Machine: {machine()}.",
        f"Run: started {run.date}, {run.seconds():.0f} s in all; 1-minute load average "
        f"{run.load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end.",
        *([notes] if isinstance(notes, str) else notes),
    ]
    return "\n\n".join(paragraphs) + "\n\n"


# ---------------------------------------------------------------------- tables and files


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table (no trailing newline); each row has one cell per header.

    Raises:
        ValueError: A row has another number of cells.
    """
    lines = [_row(headers), "|" + "---|" * len(headers)]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"a row of {len(row)} cells under {len(headers)} headers: {row!r}")
        lines.append(_row(row))
    return "\n".join(lines)


def result_path(name: str, out: Path | None = None) -> Path:
    """Where the table goes: ``out``, or ``benchmarks/results/NAME.md``."""
    return RESULTS / f"{name}.md" if out is None else Path(out)


def echo(text: str) -> None:
    """Show a table on stdout."""
    sys.stdout.write(text)
    sys.stdout.flush()


def write_result(name: str, text: str, out: Path | None = None) -> Path:
    """Write the table to :func:`result_path` atomically (a killed run leaves the old table
    whole), ending in a newline, show it on stdout, and return the path."""
    from siamese.io import atomic_write_text  # imports TensorFlow: not at the module's import

    text = text if text.endswith("\n") else text + "\n"
    path = result_path(name, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    echo(text)
    return path


# ---------------------------------------------------------------------- runs in fresh processes


def siamese_train(
    out: Path, *args: str, what: str = "training", task: str = "text-pairs", log: Path | None = None
) -> Path:
    """``siamese-train --task TASK ARGS --out OUT`` in a fresh process (its own TensorFlow, as
    a user runs it); returns ``OUT``, or ends the benchmark with its stderr. ``log``: where
    to keep its stderr (the log lines)."""
    import subprocess

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from siamese.cli import train; train()",
            "--task",
            task,
            *args,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    if log is not None:
        log.write_text(proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed:\n{proc.stderr[-3000:]}")
    return out
