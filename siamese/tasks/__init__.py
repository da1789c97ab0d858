"""The tasks of ``siamese-train --task NAME``, behind one registry.

A task is one module that subclasses :class:`Task` and registers an instance (see
:mod:`siamese.tasks.base`); the built-in ones are imported here so that they are registered:
``text-pairs`` (:mod:`siamese.tasks.text_pairs`), ``text-distill``
(:mod:`siamese.tasks.text_distill`), ``image-pairs``
(:mod:`siamese.tasks.image_pairs`) and ``basketball`` (:mod:`siamese.basketball.task`).
"""

from __future__ import annotations

from siamese.basketball import task as basketball_task
from siamese.tasks import image_pairs, text_distill, text_pairs
from siamese.tasks.base import (
    Defaults,
    Job,
    Task,
    Trained,
    all_tasks,
    get,
    names,
    option,
    register,
    unregister,
)

__all__ = [
    "Defaults",
    "Job",
    "Task",
    "Trained",
    "all_tasks",
    "basketball_task",
    "get",
    "image_pairs",
    "names",
    "option",
    "register",
    "text_distill",
    "text_pairs",
    "unregister",
]
