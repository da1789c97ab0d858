"""The learning curves of a run as ``history.png`` (when matplotlib is installed)."""

from __future__ import annotations

import logging
import os

from siamese.io import atomic_save

logger = logging.getLogger(__name__)


def plot_history(history: dict[str, list[float]], path: str | os.PathLike[str], *, metric: str) -> bool:
    """Save loss and ``metric`` per epoch, train vs dev, as a PNG. Returns False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        logger.info("matplotlib is not installed: no history.png (pip install 'siamese[plot]')")
        return False
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", metric), strict=True):
        for prefix, label in (("", "train"), ("val_", "dev")):
            values = history.get(prefix + key)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return True
