"""Readers for the toolkit's datasets, one module per source, and where they are found."""

from __future__ import annotations

from siamese.datasets.locate import ENV_VAR, data_dir, locate

__all__ = ["ENV_VAR", "data_dir", "locate"]
