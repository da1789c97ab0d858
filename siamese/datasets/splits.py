"""Seeded train/dev splits: a held-out share of text pairs (per class for binary labels), and
images split per class (stratified), by whole classes, or by whole groups (alphabets).
"""

from __future__ import annotations

import math

import numpy as np

from siamese.datasets.records import BINARY, LabelledImages, TextPairs
from siamese.errors import ConfigError, DataError


def _class_quotas(sizes: list[int], total: int) -> list[int]:
    """Split ``total`` over groups in proportion to ``sizes`` (largest remainder first)."""
    n = sum(sizes)
    exact = [size * total / n for size in sizes]
    quotas = [math.floor(value) for value in exact]
    order = sorted(range(len(sizes)), key=lambda i: quotas[i] - exact[i])
    for i in order[: total - sum(quotas)]:
        quotas[i] += 1
    return quotas


def hold_out_indices(pairs: TextPairs, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions ``(rest, held_out)`` of a seeded hold-out; see :func:`hold_out`."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"dev_fraction must be strictly between 0 and 1, not {fraction!r}")
    n = len(pairs)
    total = min(max(math.floor(n * fraction + 0.5), 1), n - 1)
    if total < 1:
        raise ConfigError(f"{pairs.name} has {n} pairs, too few to hold out dev_fraction={fraction}")
    if pairs.kind == BINARY:
        groups = [np.flatnonzero(pairs.labels == value) for value in (0.0, 1.0)]
        groups = [group for group in groups if len(group)]
    else:
        groups = [np.arange(n)]
    quotas = _class_quotas([len(group) for group in groups], total)
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(group)[:quota] for group, quota in zip(groups, quotas, strict=True)]
    held = np.sort(np.concatenate(chosen)).astype(np.int64)
    return np.setdiff1d(np.arange(n), held), held


def hold_out(pairs: TextPairs, fraction: float, seed: int) -> tuple[TextPairs, TextPairs]:
    """Split off a seeded random ``fraction`` of the pairs.

    Binary data is split per class, so both parts keep the class balance. Both parts keep
    the original order and the original name (rename with :meth:`TextPairs.subset`).

    Args:
        pairs: The pairs to split.
        fraction: Share of pairs to hold out, strictly between 0 and 1.
        seed: Seed of the random choice.

    Returns:
        ``(rest, held_out)``.

    Raises:
        ConfigError: ``fraction`` is not in (0, 1), or there are too few pairs to leave
            both parts non-empty.
    """
    rest, held = hold_out_indices(pairs, fraction, seed)
    return pairs.subset(rest), pairs.subset(held)


def check_fraction(dev_fraction: float) -> float:
    if not 0.0 < float(dev_fraction) < 1.0:
        raise ConfigError(f"dev_fraction must be between 0 and 1 (exclusive), got {dev_fraction!r}")
    return float(dev_fraction)


def stratified_split(
    data: LabelledImages, *, dev_fraction: float = 0.1, seed: int = 0
) -> tuple[LabelledImages, LabelledImages]:
    """Split images into train/dev, taking ``dev_fraction`` of each class (seeded).

    Each class gives ``round(n_c * dev_fraction)`` images to dev, but always leaves at least
    one in train. Both parts keep the original order and class numbering.

    Args:
        data: The images to split.
        dev_fraction: Share of each class that goes to dev, in (0, 1).
        seed: Seed of the random choice.
    """
    fraction = check_fraction(dev_fraction)
    rng = np.random.default_rng(seed)
    dev = []
    for label in np.unique(data.labels):
        members = np.flatnonzero(data.labels == label)
        count = min(int(round(len(members) * fraction)), len(members) - 1)
        dev.append(rng.permutation(members)[:count])
    dev_idx = np.sort(np.concatenate(dev)) if dev else np.empty(0, dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(len(data)), dev_idx)
    return (data.subset(train_idx, name=f"{data.name}:train"), data.subset(dev_idx, name=f"{data.name}:dev"))


def class_split(
    data: LabelledImages, *, dev_fraction: float = 0.1, seed: int = 0
) -> tuple[LabelledImages, LabelledImages]:
    """Split images into train/dev by class: dev holds whole classes never seen in train.

    ``round(k * dev_fraction)`` of the ``k`` classes present (at least 1, at most ``k - 1``)
    are picked at random (seeded). Each part renumbers its classes ``0..m-1``.

    Args:
        data: The images to split; needs at least 2 classes.
        dev_fraction: Share of the classes that go to dev, in (0, 1).
        seed: Seed of the random choice.

    Raises:
        DataError: fewer than 2 classes.
    """
    fraction = check_fraction(dev_fraction)
    present = np.unique(data.labels)
    if len(present) < 2:
        raise DataError(f"{data.name}: a split by class needs at least 2 classes, found {len(present)}")
    count = min(max(int(round(len(present) * fraction)), 1), len(present) - 1)
    dev_classes = np.random.default_rng(seed).permutation(present)[:count]
    in_dev = np.isin(data.labels, dev_classes)
    return (
        data.subset(np.flatnonzero(~in_dev), name=f"{data.name}:train", relabel=True),
        data.subset(np.flatnonzero(in_dev), name=f"{data.name}:dev", relabel=True),
    )


def group_split(
    data: LabelledImages, *, dev_fraction: float = 0.1, seed: int = 0
) -> tuple[LabelledImages, LabelledImages]:
    """Split images into train/dev by group: dev holds whole groups (Omniglot: alphabets).

    Groups are taken in a seeded random order until dev holds at least
    ``round(k * dev_fraction)`` of the ``k`` classes; at least one group stays in train. Dev
    then poses the official one-shot test's question, new characters of an alphabet never
    seen in training. Without groups (or with only one), this is :func:`class_split`.

    Raises:
        DataError: fewer than 2 classes.
    """
    fraction = check_fraction(dev_fraction)
    if data.groups is None or len(np.unique(data.groups)) < 2:
        return class_split(data, dev_fraction=fraction, seed=seed)
    present = np.unique(data.labels)
    wanted = max(int(round(len(present) * fraction)), 1)
    class_group = {int(c): int(g) for c, g in zip(data.labels, data.groups, strict=True)}
    order = np.random.default_rng(seed).permutation(np.unique(data.groups))
    dev_groups: list[int] = []
    for group in order[:-1]:
        dev_groups.append(int(group))
        if sum(class_group[int(c)] in dev_groups for c in present) >= wanted:
            break
    in_dev = np.isin(data.groups, dev_groups)
    return (
        data.subset(np.flatnonzero(~in_dev), name=f"{data.name}:train", relabel=True),
        data.subset(np.flatnonzero(in_dev), name=f"{data.name}:dev", relabel=True),
    )
