"""Command-line tools: ``siamese-train``, ``siamese-index``, ``siamese-eval`` and ``siamese-export``.

Each command reads its options, calls one library function, and turns the toolkit's own
errors into one line on stderr and exit code 2. One module per command:
:mod:`siamese.cli.training`, :mod:`siamese.cli.indexing`, :mod:`siamese.cli.evaluation`,
:mod:`siamese.cli.exporting`;
what they share is in :mod:`siamese.cli.common`.
"""

from __future__ import annotations

from siamese.cli.evaluation import evaluate
from siamese.cli.exporting import export
from siamese.cli.indexing import index
from siamese.cli.training import train

__all__ = ["evaluate", "export", "index", "train"]
