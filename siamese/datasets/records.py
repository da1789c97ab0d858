"""The records the dataset readers return, shared by every reader, split and task.

- :class:`TextPairs`: sentence pairs with a graded score or a binary label each;
- :class:`LabelledImages`: images with a class label each (and, for Omniglot, an alphabet);
- :class:`OneShotRun`: one N-way one-shot trial set (exemplars, queries, answers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from siamese.errors import ConfigError

GRADED = "graded"
BINARY = "binary"
KINDS: tuple[str, ...] = (GRADED, BINARY)


@dataclass
class TextPairs:
    """Sentence pairs with one label each.

    Attributes:
        a: First sentences.
        b: Second sentences, ``b[i]`` paired with ``a[i]``.
        labels: float32 array of shape ``(n,)``: a score for graded data, 0.0 or 1.0 for
            binary data (1.0 = similar / paraphrase / duplicate).
        kind: ``"graded"`` or ``"binary"``.
        scale: ``(low, high)`` of graded scores, e.g. ``(1.0, 5.0)`` for SICK and
            ``(0.0, 5.0)`` for STS-B; ``None`` for binary data.
        name: Where the pairs came from, e.g. ``"sick/train"``.
        extra: Per-pair side information, each value a list of length ``n``. The readers
            fill it as follows: SICK ``pair_id`` and ``entailment`` (ENTAILMENT, NEUTRAL or
            CONTRADICTION); STS-B ``genre``, ``source`` and ``year``; MRPC ``id_a`` and
            ``id_b`` (Microsoft sentence IDs); PAWS ``id``; QQP ``pair_id``. All values are
            strings. Generic CSV files and TFDS data leave it empty.
    """

    a: list[str]
    b: list[str]
    labels: np.ndarray
    kind: str
    scale: tuple[float, float] | None
    name: str
    extra: dict[str, list] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.float32).reshape(-1)
        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {KINDS}, not {self.kind!r}")
        n = len(self.a)
        sizes = [len(self.b), len(self.labels), *(len(v) for v in self.extra.values())]
        if any(size != n for size in sizes):
            raise ConfigError(f"{self.name}: a, b, labels and extra must all have {n} entries")

    def __len__(self) -> int:
        return len(self.a)

    def subset(self, indices: Sequence[int] | np.ndarray, name: str | None = None) -> TextPairs:
        """The pairs at ``indices``, in that order.

        Args:
            indices: Positions of the pairs to keep.
            name: Name of the result; defaults to this object's name.
        """
        idx = [int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
        return TextPairs(
            a=[self.a[i] for i in idx],
            b=[self.b[i] for i in idx],
            labels=self.labels[np.asarray(idx, dtype=np.int64)],
            kind=self.kind,
            scale=self.scale,
            name=self.name if name is None else name,
            extra={key: [values[i] for i in idx] for key, values in self.extra.items()},
        )

    def joined(self, other: TextPairs, name: str | None = None) -> TextPairs:
        """These pairs followed by ``other``'s (same kind and scale), e.g. train + dev.

        Side information is kept where both have it.

        Raises:
            ConfigError: The two differ in kind or scale.
        """
        if (other.kind, other.scale) != (self.kind, self.scale):
            raise ConfigError(f"{self.name} and {other.name} differ in kind or scale; they cannot be joined")
        return TextPairs(
            a=[*self.a, *other.a],
            b=[*self.b, *other.b],
            labels=np.concatenate([self.labels, other.labels]),
            kind=self.kind,
            scale=self.scale,
            name=name or f"{self.name}+{other.name}",
            extra={
                key: [*values, *other.extra[key]] for key, values in self.extra.items() if key in other.extra
            },
        )


@dataclass(eq=False)
class LabelledImages:
    """Images with one class label each.

    Attributes:
        images: ``uint8`` array of shape ``(n, H, W, C)``; ``C`` is 1 for grayscale.
        labels: ``int64`` array of shape ``(n,)``, class indices ``0..k-1``.
        class_names: Name of each class index (e.g. ``"Greek/character01"``).
        groups: ``int64`` array of shape ``(n,)`` with a coarser grouping of the classes (the
            Omniglot alphabet of each image, for harder negatives), or ``None``.
        group_names: Name of each group index, or ``None``.
        name: A short description of where the images came from.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    groups: np.ndarray | None
    group_names: list[str] | None
    name: str

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4 or len(self.labels) != n:
            raise ValueError(
                f"{self.name}: images must be (n, H, W, C) with one label each, got "
                f"images {self.images.shape} and labels {self.labels.shape}"
            )
        if self.groups is not None and len(self.groups) != n:
            raise ValueError(f"{self.name}: groups has {len(self.groups)} entries, not {n}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """Number of class names (every label is below it)."""
        return len(self.class_names)

    def subset(self, indices: np.ndarray, *, name: str, relabel: bool = False) -> LabelledImages:
        """The images at ``indices``, in that order.

        Args:
            indices: Integer positions to keep.
            name: Name of the new set.
            relabel: Renumber the classes present as ``0..m-1`` (in their old order) and keep
                only their names; otherwise labels and class names are unchanged.
        """
        indices = np.asarray(indices, dtype=np.int64)
        labels = self.labels[indices]
        class_names = list(self.class_names)
        if relabel:
            present = np.unique(labels)
            labels = np.searchsorted(present, labels).astype(np.int64)
            class_names = [self.class_names[i] for i in present]
        return LabelledImages(
            images=self.images[indices],
            labels=labels,
            class_names=class_names,
            groups=None if self.groups is None else self.groups[indices],
            group_names=None if self.group_names is None else list(self.group_names),
            name=name,
        )


def with_rotated_classes(images: LabelledImages) -> LabelledImages:
    """``images`` plus their 90°, 180° and 270° rotations, each rotation a class of its own.

    Four times the classes for a one-shot learner (the trick of Vinyals et al. 2016 for
    Omniglot): a rotated character is a new character. Each rotation of a group is a new
    group too, so hard negatives stay within one alphabet at one angle.

    Raises:
        ConfigError: The images are not square.
    """
    height, width = images.images.shape[1:3]
    if height != width:
        raise ConfigError(f"{images.name}: rotated classes need square images, not {height}x{width}")
    angles = range(4)

    def renamed(names: list[str]) -> list[str]:
        return [f"{name}@{90 * k}" if k else name for k in angles for name in names]

    groups, group_names = None, None
    if images.groups is not None and images.group_names is not None:
        groups = np.concatenate([images.groups + k * len(images.group_names) for k in angles])
        group_names = renamed(images.group_names)
    return LabelledImages(
        images=np.concatenate([np.rot90(images.images, k, axes=(1, 2)) for k in angles]),
        labels=np.concatenate([images.labels + k * images.num_classes for k in angles]),
        class_names=renamed(images.class_names),
        groups=groups,
        group_names=group_names,
        name=f"{images.name}+rotations",
    )


@dataclass(eq=False)
class OneShotRun:
    """One 20-way one-shot trial set of Lake et al.'s Omniglot benchmark.

    Attributes:
        name: The run's folder name, e.g. ``"run01"``.
        exemplars: ``uint8`` array ``(k, H, W, 1)``: one image per candidate class.
        queries: ``uint8`` array ``(q, H, W, 1)``: images to classify.
        answers: ``int64`` array ``(q,)``: index into ``exemplars`` of each query's class.
    """

    name: str
    exemplars: np.ndarray
    queries: np.ndarray
    answers: np.ndarray
