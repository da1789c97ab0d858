"""Training: a run's settings, its folder, the epoch loop, and the fast pair trainers.

- :mod:`siamese.training.config`: :class:`RunConfig` (common settings + a task's options);
- :mod:`siamese.training.run_dir`: :class:`RunDir`, the files of a run folder;
- :mod:`siamese.training.loop`: :func:`fit_epochs`, checkpoints, early stopping, resume;
- :mod:`siamese.training.fused`: one tower call per step (fused and unique trainers);
- :mod:`siamese.training.distribute`: data-parallel training on ``tf.distribute``;
- :mod:`siamese.training.plots`: ``history.png``.

The tasks that use them live in :mod:`siamese.tasks`.
"""

from __future__ import annotations

from siamese.training.config import RunConfig, TaskOptions
from siamese.training.loop import MIN_LEARNING_RATE, TrainingError, fit_epochs
from siamese.training.run_dir import RunDir

__all__ = ["MIN_LEARNING_RATE", "RunConfig", "RunDir", "TaskOptions", "TrainingError", "fit_epochs"]
