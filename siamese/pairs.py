"""Positive/negative pairs drawn from class labels, for training and evaluating pair models.

A *positive* pair holds two different items of the same class; a *negative* pair holds two
items of different classes. :class:`PairSampler` draws a fresh, balanced set of pairs for each
epoch, reproducibly: the pairs depend only on ``(seed, epoch)``. :func:`fixed_pairs` draws one
such set, e.g. held-out verification pairs.

With ``groups`` (Omniglot's alphabets, say) a share of the negatives can be made *hard*: both
items come from different classes of the same group, which look more alike than two random
classes do.

Every class must hold at least two items (otherwise it could never appear in a positive pair);
a class with a single item is a :class:`~siamese.errors.ConfigError` naming it, rather than
being dropped silently.

Drawing is vectorised NumPy: a few hundred thousand pairs take a few tens of milliseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from siamese.checks import fraction, int_array, non_negative_int, positive_int, same_length
from siamese.errors import ConfigError

logger = logging.getLogger(__name__)

#: Items of each class in a pool (pooled sampling), and classes of one group put together in a
#: pool when hard negatives are asked for.
POOL_ITEMS_PER_CLASS = 4
POOL_CLASSES_PER_GROUP = 4

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(index_a, index_b, label)``: two ``int64`` arrays of item positions and ``float32`` 1/0 labels."""


def _group_of_classes(classes: np.ndarray, groups: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The group of each class (an index into the sorted distinct groups), checking it is unique."""
    _, group_idx = np.unique(groups, return_inverse=True)
    group_idx = group_idx.reshape(-1)
    _, first_item = np.unique(classes, return_index=True)
    class_group = group_idx[first_item]
    mixed = np.flatnonzero(class_group[classes] != group_idx)
    if mixed.size:
        item = int(mixed[0])
        spanned = np.unique(groups[classes == classes[item]])
        raise ConfigError(
            f"class {labels[item]} spans several groups ({', '.join(str(g) for g in spanned[:5])}); "
            "each class must lie in exactly one group"
        )
    return class_group


def _random_sides(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's two items in a random order, so neither side is special."""
    swap = rng.random(len(a)) < 0.5
    return np.where(swap, b, a), np.where(swap, a, b)


def _class_tables(classes: np.ndarray, class_group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(classes, sizes, class_group)`` of a subset of items, renumbered to its own classes."""
    present, local, sizes = np.unique(classes, return_inverse=True, return_counts=True)
    return local.reshape(-1), sizes, class_group[present]


class _Blocks:
    """Items sorted by (group, class), so that every class and every group is one block, and
    the draws of positives and negatives over them (positions into the items given)."""

    def __init__(self, classes: np.ndarray, sizes: np.ndarray, class_group: np.ndarray) -> None:
        item_group = class_group[classes]
        self.order = np.lexsort((classes, item_group))  # item at each sorted position
        class_start = np.zeros(len(sizes), dtype=np.int64)
        by_group = np.lexsort((np.arange(len(sizes)), class_group))  # classes in sorted order
        class_start[by_group] = np.concatenate(([0], np.cumsum(sizes[by_group])[:-1]))
        group_sizes = np.bincount(item_group)
        group_start = np.concatenate(([0], np.cumsum(group_sizes)[:-1]))
        position = np.empty(len(classes), dtype=np.int64)
        position[self.order] = np.arange(len(classes))
        self.n_items = len(classes)
        # Per item: its class block, its rank inside it, and its group block.
        self.class_start = class_start[classes]
        self.class_size = sizes[classes]
        self.rank = position - self.class_start
        self.group_start = group_start[item_group]
        self.group_size = group_sizes[item_group]
        self.hard_anchors = np.flatnonzero(self.group_size > self.class_size)

    def positives(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """An item drawn uniformly, and another item of its class."""
        anchor = rng.integers(0, self.n_items, size=count)
        other = rng.integers(0, self.class_size[anchor] - 1)
        other += other >= self.rank[anchor]  # skip the anchor itself
        return anchor, self.order[self.class_start[anchor] + other]

    def easy_negatives(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """An item drawn uniformly, and an item drawn uniformly from the other classes."""
        anchor = rng.integers(0, self.n_items, size=count)
        zeros = np.zeros(count, dtype=np.int64)
        return anchor, self._outside_class(rng, anchor, zeros, np.full(count, self.n_items))

    def hard_negatives(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """An item of a group holding two classes or more, and an item of another class of it."""
        anchor = np.zeros(0, dtype=np.int64)
        if count:
            anchor = self.hard_anchors[rng.integers(0, len(self.hard_anchors), size=count)]
        return anchor, self._outside_class(rng, anchor, self.group_start[anchor], self.group_size[anchor])

    def _outside_class(
        self, rng: np.random.Generator, anchor: np.ndarray, block_start: np.ndarray, block_size: np.ndarray
    ) -> np.ndarray:
        """A uniform item of the anchor's block (all items, or its group) outside its class."""
        offset = block_start + rng.integers(0, block_size - self.class_size[anchor])
        offset += np.where(offset >= self.class_start[anchor], self.class_size[anchor], 0)
        return self.order[offset]


class PairSampler:
    """Balanced positive/negative pairs from class labels, drawn afresh each epoch.

    Each epoch holds ``pairs_per_epoch`` pairs, of which exactly
    ``round(positive_fraction * pairs_per_epoch)`` are positive, in shuffled order. Pairs are
    drawn with replacement, so an item (or even a pair) may occur more than once.

    - A positive pair: an item drawn uniformly from all items, and a *different* item drawn
      uniformly from its class (so large classes give more positives, as in the data).
    - An easy negative: an item drawn uniformly, and an item drawn uniformly from all items of
      other classes.
    - A hard negative (``round(hard_negative_fraction * negatives)`` of the negatives): an
      item drawn uniformly among the items whose group holds at least two classes, and an item
      drawn uniformly from the other classes of that same group.

    Each pair's two items are then put in a random order, so neither side is special.

    With ``pool_size`` the pairs are *pooled*: each run of ``pool_size`` consecutive pairs (a
    batch, when ``pool_size`` is the batch size) is drawn as above but among one pool of at
    most ``pool_size`` items: a few items (4, or more when there are few classes) of each of
    several classes, the classes drawn in proportion to their size (with hard negatives, in
    clusters of up to 4 classes of one group; a pool whose groups each hold one class gives
    easy negatives in place of its hard ones). A batch of ``pool_size`` pairs then holds about
    half as many distinct items as an independent draw, so a trainer that embeds each distinct
    item once (:func:`siamese.training.fused.unique_trainer`) does half the tower work per pair.

    Args:
        labels: Class of each item, integers of shape ``(n,)``.
        pairs_per_epoch: Pairs per epoch; default ``2 * n``.
        positive_fraction: Share of positive pairs, in [0, 1].
        groups: Optional group of each item, integers of shape ``(n,)`` (e.g.
            :attr:`siamese.datasets.images.LabelledImages.groups`); all items of a class must
            share one group.
        hard_negative_fraction: Share of the negatives drawn within a group, in [0, 1]; needs
            ``groups`` when above 0.
        seed: Non-negative seed; with the epoch number it fixes the pairs.
        pool_size: Pairs drawn from each pool of items (at least 4), or ``None`` for
            independent pairs.

    Raises:
        ConfigError: ``labels`` or ``groups`` is not a non-empty integer vector of the same
            length; fewer than 2 classes; a class has only 1 item; a class spans several
            groups; a fraction is outside [0, 1]; ``hard_negative_fraction`` is above 0 without
            ``groups`` or with no group holding two classes; a count, seed or pool size is not
            valid.
    """

    def __init__(
        self,
        labels: Any,
        *,
        pairs_per_epoch: int | None = None,
        positive_fraction: float = 0.5,
        groups: Any = None,
        hard_negative_fraction: float = 0.0,
        seed: int = 0,
        pool_size: int | None = None,
    ) -> None:
        raw = int_array("labels", labels, 1)
        self.n_items = len(raw)
        if pairs_per_epoch is None:
            pairs_per_epoch = 2 * self.n_items
        self.pairs_per_epoch = positive_int("pairs_per_epoch", pairs_per_epoch)
        self.positive_fraction = fraction("positive_fraction", positive_fraction)
        self.hard_negative_fraction = fraction("hard_negative_fraction", hard_negative_fraction)
        self.seed = non_negative_int("seed", seed)
        names, classes, sizes = np.unique(raw, return_inverse=True, return_counts=True)
        classes = classes.reshape(-1)
        if len(names) < 2:
            raise ConfigError(f"pairs need at least 2 classes, found {len(names)} (label {names[0]})")
        single = np.flatnonzero(sizes < 2)
        if single.size:
            raise ConfigError(
                f"class {names[single[0]]} has only 1 item ({single.size} such classes); a positive "
                "pair needs 2 items of a class"
            )
        if groups is None:
            if self.hard_negative_fraction > 0:
                raise ConfigError(
                    "hard negatives (--hard-negatives, hard_negative_fraction > 0) needs groups "
                    "of classes, as Omniglot's alphabets; this data has none"
                )
            class_group = np.zeros(len(names), dtype=np.int64)
        else:
            group_values = int_array("groups", groups, 1)
            same_length("groups", group_values, "labels", raw)
            class_group = _group_of_classes(classes, group_values, raw)
        self.n_classes = len(names)
        self._blocks = _Blocks(classes, sizes, class_group)
        if self.hard_negative_fraction > 0 and self._blocks.hard_anchors.size == 0:
            raise ConfigError("hard negatives need a group holding at least 2 classes, but each group has 1")
        self.pool_size = None
        if pool_size is not None:
            self.pool_size = positive_int("pool_size", pool_size)
            if self.pool_size < 4:
                raise ConfigError(f"pool_size must be at least 4 (two items of two classes), got {pool_size}")
            self._classes, self._class_sizes, self._class_group = classes, sizes, class_group
            self._class_block = np.zeros(len(sizes), dtype=np.int64)
            self._class_block[classes] = self._blocks.class_start
            self._group_classes = [np.flatnonzero(class_group == g) for g in range(class_group.max() + 1)]

    def _draw(self, rng: np.random.Generator) -> Pairs:
        total = self.pairs_per_epoch
        n_pos = int(round(self.positive_fraction * total))
        n_hard = int(round(self.hard_negative_fraction * (total - n_pos)))
        if self.pool_size is not None:
            return self._draw_pooled(rng, n_pos, n_hard)
        blocks = self._blocks
        n_easy = total - n_pos - n_hard
        pos_a, pos_b = blocks.positives(rng, n_pos)
        easy_a, easy_b = blocks.easy_negatives(rng, n_easy)
        hard_a, hard_b = blocks.hard_negatives(rng, n_hard)
        index_a = np.concatenate((pos_a, easy_a, hard_a))
        index_b = np.concatenate((pos_b, easy_b, hard_b))
        label = np.concatenate((np.ones(n_pos, np.float32), np.zeros(n_easy + n_hard, np.float32)))
        index_a, index_b = _random_sides(rng, index_a, index_b)
        order = rng.permutation(total)
        return index_a[order], index_b[order], label[order]

    def _draw_pooled(self, rng: np.random.Generator, n_pos: int, n_hard: int) -> Pairs:
        """Each run of ``pool_size`` consecutive pairs drawn among one pool of items.

        The kinds (positive, easy, hard) are spread over the epoch exactly as in an
        independent draw; each pool then draws its share of each kind among its own items.
        """
        total, size = self.pairs_per_epoch, self.pool_size
        kinds = np.concatenate(
            (np.zeros(n_pos, np.int8), np.full(n_hard, 2, np.int8), np.ones(total - n_pos - n_hard, np.int8))
        )
        kinds = kinds[rng.permutation(total)]
        index_a = np.empty(total, dtype=np.int64)
        index_b = np.empty(total, dtype=np.int64)
        for start in range(0, total, size):
            kind = kinds[start : start + size]
            items = self._pool(rng)
            blocks = _Blocks(*_class_tables(self._classes[items], self._class_group))
            if not blocks.hard_anchors.size:  # no group of the pool holds two classes
                kind = np.where(kind == 2, 1, kind)
            pool_a = np.empty(len(kind), dtype=np.int64)
            pool_b = np.empty(len(kind), dtype=np.int64)
            for value, draw in (
                (0, blocks.positives),
                (1, blocks.easy_negatives),
                (2, blocks.hard_negatives),
            ):
                where = np.flatnonzero(kind == value)
                pool_a[where], pool_b[where] = draw(rng, len(where))
            pool_a, pool_b = _random_sides(rng, pool_a, pool_b)
            index_a[start : start + size], index_b[start : start + size] = items[pool_a], items[pool_b]
        return index_a, index_b, (kinds == 0).astype(np.float32)

    def _pool(self, rng: np.random.Generator) -> np.ndarray:
        """The items of one pool: a few items of each of several classes drawn by size (with
        ``groups`` and hard negatives, classes come in clusters of one group)."""
        per_class = max(2, min(POOL_ITEMS_PER_CLASS, self.pool_size // 2))
        n_classes = max(2, min(self.n_classes, self.pool_size // per_class))
        per_class = max(2, self.pool_size // n_classes)
        # Weighted order without replacement: sort exponential draws divided by the weights.
        order = np.argsort(rng.exponential(size=self.n_classes) / self._class_sizes, kind="stable")
        if self.hard_negative_fraction > 0:
            order = self._clustered(rng, order, n_classes)
        chosen = order[:n_classes]
        parts = []
        for c in chosen:
            start, count = self._class_block[c], self._class_sizes[c]
            take = rng.choice(count, size=min(per_class, count), replace=False)
            parts.append(self._blocks.order[start + take])
        return np.concatenate(parts)

    def _clustered(self, rng: np.random.Generator, order: np.ndarray, n_classes: int) -> np.ndarray:
        """``order`` rearranged so each class is followed by up to 3 more of its group."""
        taken = np.zeros(self.n_classes, dtype=bool)
        result: list[int] = []
        for lead in order:
            if len(result) >= n_classes:
                break
            if taken[lead]:
                continue
            mates = self._group_classes[self._class_group[lead]]
            mates = mates[~taken[mates] & (mates != lead)]
            cluster = [int(lead), *rng.permutation(mates)[: POOL_CLASSES_PER_GROUP - 1].tolist()]
            taken[cluster] = True
            result.extend(cluster)
        return np.array(result, dtype=np.int64)

    def pools(self, epoch: int, count: int) -> list[np.ndarray]:
        """``count`` pools of items for one epoch: each a few items (4, or more when there are
        few classes) of each of several classes, about ``pool_size`` items in all, as the
        pooled pairs are drawn from (classes drawn by size; with hard negatives, in clusters
        of one group). The batches of a class-labelled embedding loss (batch-hard triplet:
        P classes of K items). The same ``(seed, epoch)`` gives the same pools.

        Raises:
            ConfigError: The sampler was made without ``pool_size``.
        """
        if self.pool_size is None:
            raise ConfigError("pools need a sampler made with pool_size")
        rng = np.random.default_rng([self.seed, non_negative_int("epoch", epoch), 3])
        return [self._pool(rng) for _ in range(positive_int("count", count))]

    def epoch(self, epoch: int) -> Pairs:
        """The pairs of one epoch, shuffled.

        The same ``(seed, epoch)`` always gives the same arrays; another epoch or seed gives an
        independent draw.

        Args:
            epoch: Non-negative epoch number.

        Returns:
            ``(index_a, index_b, label)``: ``int64`` positions into the labels given to the
            sampler, and ``float32`` labels (1 for same class, 0 for different).

        Raises:
            ConfigError: ``epoch`` is not a non-negative integer.
        """
        rng = np.random.default_rng([self.seed, non_negative_int("epoch", epoch)])
        pairs = self._draw(rng)
        logger.debug("epoch %d: %d pairs, %d positive", epoch, len(pairs[2]), int(pairs[2].sum()))
        return pairs


def fixed_pairs(
    labels: Any,
    n_pairs: int,
    *,
    seed: int = 0,
    groups: Any = None,
    hard_negative_fraction: float = 0.0,
) -> Pairs:
    """One balanced set of pairs, e.g. held-out verification pairs for evaluation.

    It equals ``PairSampler(labels, pairs_per_epoch=n_pairs, seed=seed, ...).epoch(0)``: half of
    the pairs (rounded) are positive; see :class:`PairSampler` for how they are drawn.

    Args:
        labels: Class of each item, integers of shape ``(n,)``.
        n_pairs: Number of pairs, at least 1.
        seed: Non-negative seed.
        groups: Optional group of each item (for hard negatives).
        hard_negative_fraction: Share of the negatives drawn within a group, in [0, 1].

    Returns:
        ``(index_a, index_b, label)`` as :meth:`PairSampler.epoch` returns it.

    Raises:
        ConfigError: as :class:`PairSampler`.
    """
    sampler = PairSampler(
        labels,
        pairs_per_epoch=positive_int("n_pairs", n_pairs),
        groups=groups,
        hard_negative_fraction=hard_negative_fraction,
        seed=seed,
    )
    return sampler.epoch(0)


# ---------------------------------------------------------------------- batches of positive pairs


def distinct_batches(
    batches: Sequence[np.ndarray], keys: Sequence[np.ndarray], batch_size: int
) -> list[np.ndarray]:
    """``batches`` of pair positions re-cut so that no item is in a batch twice.

    With in-batch negatives every other positive of a batch is a negative of an anchor; an
    item that appears in two pairs of one batch would be a false negative. The pairs are
    taken in the order of ``batches``; a pair one of whose items (``keys``: for each side, an
    integer key per distinct item) is already in the batch being filled waits for the next
    batch. Every pair is kept; the result depends on the order alone.

    Args:
        batches: Batches of pair positions (e.g. length-bucketed), in training order.
        keys: The item key of each pair's side, one array per side (anchor, positive, and
            any hard negative).
        batch_size: Pairs per batch.
    """
    rows = np.stack([np.asarray(k, dtype=np.int64) for k in keys], axis=1)
    batch_size = positive_int("batch_size", batch_size)
    waiting: list[int] = []
    out: list[np.ndarray] = []
    current: list[int] = []
    seen: set[int] = set()

    def close() -> None:
        nonlocal current, seen
        if current:
            out.append(np.asarray(current, dtype=np.int64))
        current, seen = [], set()

    for position in [int(i) for batch in batches for i in batch]:
        for candidate in [*waiting, position]:
            if len(current) == batch_size:
                close()
            if candidate in waiting:
                waiting.remove(candidate)
            items = set(rows[candidate].tolist())
            if seen & items:
                waiting.append(candidate)
                continue
            current.append(candidate)
            seen |= items
    while waiting:  # what is left: the batches it needs
        close()
        for candidate in list(waiting):
            items = set(rows[candidate].tolist())
            if len(current) < batch_size and not seen & items:
                current.append(candidate)
                seen |= items
                waiting.remove(candidate)
    close()
    return out


def mine_hard_negatives(
    index: Any,
    anchors: np.ndarray,
    known: Sequence[set[int]],
    *,
    ranks: tuple[int, int],
    seed: Sequence[int],
) -> np.ndarray:
    """One hard negative per anchor, found with the toolkit's own index.

    Each anchor (a corpus id) searches the index (whose ids are corpus ids, holding the
    tower's current embeddings of the training corpus); its own id and its known positives
    are left out, and one of the results at ranks ``ranks[0]`` to ``ranks[1] - 1`` (0-based,
    counted after that) is drawn at random. Ranks skip the very nearest items, which are the
    likeliest unlabelled duplicates. An anchor with no result in the window gets a random
    corpus item that is not a known positive.

    Args:
        index: A :class:`siamese.index.Index` of the corpus (ids ``0..n-1``).
        anchors: The corpus id of each training pair's anchor.
        known: For each anchor, the corpus ids that are similar to it (never drawn).
        ranks: ``(first, stop)`` of the window.
        seed: Seed of the draw (e.g. ``(seed, epoch)``).

    Returns:
        ``int64`` corpus ids, one per anchor.
    """
    first, stop = ranks
    if not 0 <= first < stop:
        raise ConfigError(f"mine ranks must be 0 <= first < stop, got {first}:{stop}")
    rng = np.random.default_rng(list(seed))
    n = index.ntotal
    unique, inverse = np.unique(anchors, return_inverse=True)
    depth = min(n, stop + 1 + max(len(k) for k in known))
    _, found = index.search_vectors(index.vectors[unique], depth)  # row r of vectors is id r
    negatives = np.empty(len(anchors), dtype=np.int64)
    for row, (anchor, excluded) in enumerate(zip(anchors, known, strict=True)):
        results = found[inverse[row]]
        kept = [int(i) for i in results if i >= 0 and i != anchor and int(i) not in excluded]
        window = kept[first:stop]
        if window:
            negatives[row] = window[rng.integers(len(window))]
            continue
        if n - 1 - len(excluded - {int(anchor)}) < 1:
            raise ConfigError(f"item {int(anchor)} is similar to every other item: no negative to mine")
        while True:  # some item is neither the anchor nor a positive
            candidate = int(rng.integers(n))
            if candidate != anchor and candidate not in excluded:
                negatives[row] = candidate
                break
    return negatives
