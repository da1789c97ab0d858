"""Command-line tools: ``siamese-train``, ``siamese-index`` and ``siamese-eval``.

Each command reads its options, calls one library function, and turns the toolkit's own
errors into one line on stderr and exit code 2. One module per command:
:mod:`siamese.cli.training`, :mod:`siamese.cli.indexing`, :mod:`siamese.cli.evaluation`;
what they share is in :mod:`siamese.cli.common`.
"""

from __future__ import annotations

from siamese.cli.evaluation import evaluate
from siamese.cli.indexing import index
from siamese.cli.training import train

__all__ = ["evaluate", "index", "train"]
