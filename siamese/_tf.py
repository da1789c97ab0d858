"""Import TensorFlow once, without its start-up chatter on the terminal.

TensorFlow's C++ runtime writes informational lines (oneDNN, CUDA probing on a machine with
no GPU, CPU features) straight to file descriptor 2 when it is imported and when it first
looks for devices; ``TF_CPP_MIN_LOG_LEVEL`` no longer silences all of them. Here that output
is captured, the known informational lines are dropped, and anything else is passed on to
stderr unchanged. Set ``SIAMESE_TF_LOGS=1`` to see everything.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog|[IW]\d{4} |"
    r"E\d{4} .*(cuInit|cuda|CUDA|oneDNN supports)|To enable the following instructions|"
    r"This TensorFlow binary is optimized)"
)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and probe its devices with the start-up chatter filtered out."""
    if "tensorflow" in sys.modules or os.environ.get("SIAMESE_TF_LOGS") == "1":
        import tensorflow  # noqa: F401

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): import plainly
        import tensorflow  # noqa: F401

        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        kept = [
            line
            for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True)
            if not _NOISE.match(line)
        ]
    if kept:
        sys.stderr.write("".join(kept))
