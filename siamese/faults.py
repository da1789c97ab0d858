"""A test hook: a process that kills itself at a named phase of its work.

Fault tests must know where a kill landed. A kill sent from outside after a random delay may
land anywhere, or after the work is over; instead, a test sets ``SIAMESE_KILL_AT`` for the
process it starts, and the process sends itself ``SIGKILL`` when it reaches that phase:

    SIAMESE_KILL_AT=checkpoint-save      the first time the phase is reached
    SIAMESE_KILL_AT=checkpoint-save:3    the third time

The phases (each named where the work reaches it):

=================  ==========================================================================
``run-folder``     a new run's folder made, its ``config.json`` not yet written
``epoch``          training, after the first batch of an epoch (the epoch is under way)
``checkpoint-save`` an epoch's checkpoint written to its temporary file, not yet renamed
``mine``           hard negatives mined, their file written but not yet renamed into place
``final-save``     a finished run's ``model.keras`` written, ``tower.keras`` and the metrics not
``download``       a dataset download, after its first bytes are written to the temporary file
``embed``          an index build, after the first batch of the corpus is embedded
``faiss-write``    an index folder's FAISS file written in the new folder, the folder unfinished
``swap``           a new index folder complete, about to become the current one
``teacher``        teacher embeddings: a chunk written to the cache, the next not begun
=================  ==========================================================================

``SIAMESE_KILL_ONCE=PATH`` makes the kill happen once across processes: only in the process
that creates ``PATH`` first (a restarted worker of an engine then goes past the point).

``SIAMESE_KILL_SIGNAL=INT`` sends ``SIGINT`` instead (what Ctrl-C sends): the process goes on
to handle it as it would a user's Ctrl-C at that point.

It is a test hook, not a feature: unset (always, outside tests) it costs one dictionary
lookup per call. ``SIGKILL`` cannot be caught, so nothing of the process's own clean-up runs:
what is left on disk is what a power cut or the kernel's out-of-memory killer would leave.
Where ``SIGKILL`` does not exist (Windows) the process ends with ``os._exit(137)``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

logger = logging.getLogger(__name__)

ENV = "SIAMESE_KILL_AT"
SIGNAL_ENV = "SIAMESE_KILL_SIGNAL"
ONCE_ENV = "SIAMESE_KILL_ONCE"
PHASES = (
    "run-folder",
    "epoch",
    "checkpoint-save",
    "mine",
    "final-save",
    "download",
    "embed",
    "faiss-write",
    "swap",
    "teacher",
)

_reached: dict[str, int] = {}


def hook_environment() -> dict[str, str]:
    """The hook's variables set in this process, for worker processes an engine starts
    (a Ray actor does not inherit the driver's environment)."""
    return {name: os.environ[name] for name in (ENV, SIGNAL_ENV, ONCE_ENV) if name in os.environ}


def armed(phase: str) -> bool:
    """Whether ``SIAMESE_KILL_AT`` names ``phase`` (to add a hook only where it is wanted)."""
    return os.environ.get(ENV, "").partition(":")[0] == phase


def kill_point(phase: str) -> None:
    """Kill this process here if ``SIAMESE_KILL_AT`` names ``phase`` (and this is the time
    it asks for); otherwise return at once."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, times = wanted.partition(":")
    if name not in PHASES:
        raise ValueError(f"{ENV}={wanted!r}: no such phase (one of {', '.join(PHASES)})")
    if name != phase:
        return
    _reached[phase] = _reached.get(phase, 0) + 1
    if _reached[phase] != (int(times) if times else 1):
        return
    once = os.environ.get(ONCE_ENV)
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # another process was killed here already
    if os.environ.get(SIGNAL_ENV, "KILL").upper() == "INT":
        if threading.current_thread() is not threading.main_thread():
            # only the main thread takes Python's signal handlers: an interrupt sent from
            # here would land wherever the main thread happens to be (maybe a finalizer,
            # which swallows it), so the test would not know the fault happened
            raise RuntimeError(f"{ENV}={wanted}: the {phase!r} hook ran off the main thread")
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            # a shell starts background jobs with SIGINT ignored, and Python keeps it so
            raise RuntimeError(
                f"{ENV}={wanted}: SIGINT is ignored in this process; start it with SIGINT default"
            )
        logger.warning("%s=%s: interrupting this process", ENV, wanted)
        # raise_signal goes through the installed SIGINT handler like a real Ctrl-C, and
        # handles it before returning, so KeyboardInterrupt is raised here, at this point
        signal.raise_signal(signal.SIGINT)
        raise RuntimeError(f"{ENV}={wanted}: SIGINT was sent but not raised (its handler was replaced)")
    logger.warning("%s=%s: killing this process", ENV, wanted)
    logging.shutdown()
    kill = getattr(signal, "SIGKILL", None)
    if kill is not None:
        os.kill(os.getpid(), kill)
    os._exit(137)
