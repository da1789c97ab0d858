"""Pair sampling (siamese.pairs) and affine augmentation (siamese.augment)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from siamese.augment import AffineAugment, border_median, inverse_affine
from siamese.errors import ConfigError
from siamese.pairs import PairSampler, fixed_pairs

# --------------------------------------------------------------------------- helpers


def _labels(rng: np.random.Generator, n_classes: int = 12, per_class: tuple[int, int] = (2, 9)) -> np.ndarray:
    sizes = rng.integers(per_class[0], per_class[1] + 1, size=n_classes)
    return rng.permutation(np.repeat(np.arange(n_classes) * 3 + 5, sizes))  # sparse, non-zero labels


def _check_pairs(
    labels: np.ndarray, pairs: tuple[np.ndarray, np.ndarray, np.ndarray], n: int, n_pos: int
) -> None:
    a, b, y = pairs
    assert a.shape == b.shape == y.shape == (n,)
    assert a.dtype == b.dtype == np.int64 and y.dtype == np.float32
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert int(y.sum()) == n_pos
    assert a.min() >= 0 and b.min() >= 0 and max(a.max(), b.max()) < len(labels)
    pos = y == 1
    assert np.all(labels[a[pos]] == labels[b[pos]])
    assert np.all(a[pos] != b[pos])
    assert np.all(labels[a[~pos]] != labels[b[~pos]])


def _correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each image of x with the same image of y."""
    x = x.reshape(len(x), -1).astype(np.float64)
    y = y.reshape(len(y), -1).astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    return (x * y).sum(axis=1) / np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))


def _glyphs(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Dark thick strokes (rings and bars) on a white background, uint8 (n, size, size, 1)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    images = np.full((n, size, size, 1), 255, dtype=np.uint8)
    for image in images:
        cy, cx = rng.uniform(size * 0.35, size * 0.65, size=2)
        radius = rng.uniform(size * 0.15, size * 0.3)
        ring = np.abs(np.hypot(yy - cy, xx - cx) - radius) < size * 0.07
        row = int(rng.integers(size // 4, 3 * size // 4))
        bar = (np.abs(yy - row) < size * 0.06) & (xx > size * 0.2) & (xx < size * 0.8)
        image[ring | bar] = 0
    return images


# --------------------------------------------------------------------------- PairSampler


@pytest.mark.parametrize(("fraction", "n_pairs"), [(0.5, 400), (0.3, 1001), (0.0, 50), (1.0, 50), (0.5, 1)])
def test_sampler_exact_balance_and_valid_pairs(rng, fraction, n_pairs):
    labels = _labels(rng)
    sampler = PairSampler(labels, pairs_per_epoch=n_pairs, positive_fraction=fraction, seed=3)
    _check_pairs(labels, sampler.epoch(0), n_pairs, int(round(fraction * n_pairs)))


def test_sampler_default_size_is_twice_the_items(rng):
    labels = _labels(rng)
    a, _, y = PairSampler(labels).epoch(0)
    assert len(a) == 2 * len(labels)
    assert int(y.sum()) == len(labels)


def test_sampler_is_shuffled_and_uses_both_sides(rng):
    labels = _labels(rng, n_classes=5, per_class=(3, 4))
    a, b, y = PairSampler(labels, pairs_per_epoch=4000).epoch(0)
    # labels are interleaved, not all positives first
    assert 0.3 < y[:2000].mean() < 0.7 and 0.3 < y[2000:].mean() < 0.7
    # every item shows up on both sides, among positives and among negatives
    for side in (a, b):
        for mask in (y == 1, y == 0):
            assert set(side[mask]) == set(range(len(labels)))


def test_negative_partners_are_roughly_uniform():
    labels = np.array([0] * 2 + [1] * 8 + [2] * 10)
    a, b, y = PairSampler(labels, pairs_per_epoch=60_000, positive_fraction=0.0).epoch(0)
    # Anchors are uniform over the 20 items and partners uniform over the other classes' items.
    # Pairs holding class 0 pair it with class 2 either from a class-0 anchor (2/20 * 10/18)
    # or from a class-2 anchor picking class 0 (10/20 * 2/10); likewise for class 1.
    with_2 = 2 / 20 * 10 / 18 + 10 / 20 * 2 / 10
    with_1 = 2 / 20 * 8 / 18 + 8 / 20 * 2 / 12
    partners = np.concatenate([b[labels[a] == 0], a[labels[b] == 0]])
    counts = np.bincount(labels[partners], minlength=3)
    assert counts[0] == 0
    assert counts.sum() / 60_000 == pytest.approx(with_1 + with_2, abs=0.01)
    assert counts[2] / counts.sum() == pytest.approx(with_2 / (with_1 + with_2), abs=0.015)


def test_sampler_determinism(rng):
    labels = _labels(rng)
    first = PairSampler(labels, seed=11).epoch(4)
    again = PairSampler(labels, seed=11).epoch(4)
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, y)
    other_epoch = PairSampler(labels, seed=11).epoch(5)
    other_seed = PairSampler(labels, seed=12).epoch(4)
    assert not np.array_equal(first[0], other_epoch[0])
    assert not np.array_equal(first[0], other_seed[0])


def test_hard_negatives_share_the_group():
    # 6 groups of 4 classes of 5 items, plus one group holding a single class
    labels = np.repeat(np.arange(25), 5)
    groups = np.concatenate([np.repeat(np.arange(6), 20), np.full(5, 9)])
    sampler = PairSampler(labels, groups=groups, hard_negative_fraction=1.0, seed=1, pairs_per_epoch=3000)
    a, b, y = sampler.epoch(0)
    _check_pairs(labels, (a, b, y), 3000, 1500)
    neg = y == 0
    assert np.all(groups[a[neg]] == groups[b[neg]])
    assert not np.any(groups[a[neg]] == 9)  # a group with one class gives no hard negatives
    assert np.any(groups[a[y == 1]] == 9)  # but its items still form positives


def test_part_of_the_negatives_are_hard():
    labels = np.repeat(np.arange(100), 4)
    groups = labels // 10  # 10 groups of 10 classes
    sampler = PairSampler(labels, groups=groups, hard_negative_fraction=0.4, pairs_per_epoch=20_000)
    a, b, y = sampler.epoch(2)
    same_group = groups[a[y == 0]] == groups[b[y == 0]]
    # 40% hard, plus about 9/99 of the 60% easy ones land in the same group by chance
    assert same_group.mean() == pytest.approx(0.4 + 0.6 * 9 / 99, abs=0.02)


def test_large_draw():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2000, size=200_000)
    groups = labels % 40
    sampler = PairSampler(labels, groups=groups, hard_negative_fraction=0.5)
    pairs = sampler.epoch(0)
    _check_pairs(labels, pairs, 400_000, 200_000)


def test_fixed_pairs_balanced_and_equal_to_epoch_zero(rng):
    labels = _labels(rng)
    pairs = fixed_pairs(labels, 301, seed=4)
    _check_pairs(labels, pairs, 301, 150)
    expected = PairSampler(labels, pairs_per_epoch=301, seed=4).epoch(0)
    for x, y in zip(pairs, expected, strict=True):
        np.testing.assert_array_equal(x, y)


def test_sampler_on_omniglot_alphabets(data_dir):
    from siamese.datasets.images import read_omniglot_background

    data = read_omniglot_background(size=(28, 28))
    a, b, y = fixed_pairs(data.labels, 2000, groups=data.groups, hard_negative_fraction=1.0)
    _check_pairs(data.labels, (a, b, y), 2000, 1000)
    assert np.all(data.groups[a[y == 0]] == data.groups[b[y == 0]])


@pytest.mark.parametrize(("n_pairs", "pool"), [(1000, 64), (1001, 128), (37, 16), (10, 4)])
def test_pooled_pairs_keep_the_balance_and_share_items_within_a_pool(n_pairs, pool):
    rng = np.random.default_rng(8)
    labels = np.repeat(np.arange(40), rng.integers(2, 30, size=40))
    sampler = PairSampler(labels, pairs_per_epoch=n_pairs, pool_size=pool, seed=2)
    a, b, y = sampler.epoch(1)
    _check_pairs(labels, (a, b, y), n_pairs, int(round(0.5 * n_pairs)))
    independent = PairSampler(labels, pairs_per_epoch=n_pairs, seed=2).epoch(1)
    for start in range(0, n_pairs, pool):
        distinct = np.unique(np.concatenate((a[start : start + pool], b[start : start + pool])))
        assert len(distinct) <= pool
    pooled_items = np.mean(
        [len(np.unique(np.r_[a[i : i + pool], b[i : i + pool]])) for i in range(0, n_pairs, pool)]
    )
    free_items = np.mean(
        [
            len(np.unique(np.r_[independent[0][i : i + pool], independent[1][i : i + pool]]))
            for i in range(0, n_pairs, pool)
        ]
    )
    assert pooled_items < 0.75 * free_items
    again = PairSampler(labels, pairs_per_epoch=n_pairs, pool_size=pool, seed=2).epoch(1)
    for x, z in zip((a, b, y), again, strict=True):
        np.testing.assert_array_equal(x, z)
    assert not np.array_equal(a, sampler.epoch(2)[0])


def test_pooled_pairs_with_few_classes_use_every_class():
    labels = np.repeat(np.arange(3), 500)  # fewer classes than a pool would take
    a, b, y = PairSampler(labels, pairs_per_epoch=640, pool_size=64, seed=0).epoch(0)
    _check_pairs(labels, (a, b, y), 640, 320)
    for start in range(0, 640, 64):
        assert set(labels[np.r_[a[start : start + 64], b[start : start + 64]]]) == {0, 1, 2}


def test_pooled_hard_negatives_share_the_group():
    labels = np.repeat(np.arange(60), 6)
    groups = labels // 6  # 10 groups of 6 classes
    sampler = PairSampler(
        labels, groups=groups, hard_negative_fraction=1.0, pairs_per_epoch=2000, pool_size=64, seed=5
    )
    a, b, y = sampler.epoch(0)
    _check_pairs(labels, (a, b, y), 2000, 1000)
    assert np.all(groups[a[y == 0]] == groups[b[y == 0]])


@pytest.mark.parametrize(
    ("labels", "kwargs", "message"),
    [
        ([3, 3, 3], {}, "at least 2 classes, found 1"),
        ([0, 0, 1, 2, 2], {}, "class 1 has only 1 item"),
        ([0, 0, 1, 1], {"positive_fraction": 1.5}, "positive_fraction must be in [0, 1]"),
        ([0, 0, 1, 1], {"positive_fraction": "half"}, "positive_fraction must be a number"),
        ([0, 0, 1, 1], {"hard_negative_fraction": -0.1, "groups": [0, 0, 0, 0]}, "hard_negative_fraction"),
        ([0, 0, 1, 1], {"hard_negative_fraction": 0.5}, "needs groups"),
        ([0, 0, 1, 1], {"groups": [0, 0, 1]}, "groups has 3 items but labels has 4"),
        ([0, 0, 1, 1], {"groups": [0, 1, 1, 1]}, "class 0 spans several groups"),
        ([0, 0, 1, 1], {"groups": [0, 0, 1, 1], "hard_negative_fraction": 0.5}, "each group has 1"),
        ([0, 0, 1, 1], {"pairs_per_epoch": 0}, "pairs_per_epoch must be a positive integer"),
        ([0, 0, 1, 1], {"seed": -1}, "seed must be a non-negative integer"),
        ([0, 0, 1, 1], {"pool_size": 3}, "pool_size must be at least 4"),
        ([0, 0, 1, 1], {"pool_size": 0}, "pool_size must be a positive integer"),
        ([[0, 0], [1, 1]], {}, "labels must be 1-dimensional"),
        ([], {}, "labels is empty"),
        ([0.0, 0.0, 1.0, 1.0], {}, "labels must hold integers"),
        (["a", "a", "b", "b"], {}, "labels must hold numbers"),
    ],
)
def test_sampler_bad_inputs(labels, kwargs, message):
    with pytest.raises(ConfigError) as info:
        PairSampler(labels, **kwargs)
    assert message in str(info.value)


def test_bad_epoch_and_pair_count():
    sampler = PairSampler([0, 0, 1, 1])
    with pytest.raises(ConfigError, match="epoch must be a non-negative integer"):
        sampler.epoch(-1)
    with pytest.raises(ConfigError, match="n_pairs must be a positive integer"):
        fixed_pairs([0, 0, 1, 1], 0)


# --------------------------------------------------------------------------- AffineAugment


@pytest.mark.parametrize("shape", [(6, 20, 24, 1), (6, 20, 24, 3), (20, 24, 3)])
def test_augment_keeps_shape_and_dtype(rng, shape):
    images = rng.integers(0, 256, size=shape).astype(np.uint8)
    out = AffineAugment(seed=1)(images, step=0)
    assert isinstance(out, np.ndarray)
    assert out.shape == shape and out.dtype == np.uint8
    floats = AffineAugment(seed=1)(tf.constant(images, tf.float32) / 255.0)
    assert isinstance(floats, tf.Tensor)
    assert tuple(floats.shape) == shape and floats.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(floats)) and float(tf.reduce_max(floats)) <= 1.0


def test_augment_is_deterministic():
    images = _glyphs(8)
    first = AffineAugment(seed=3)(images, step=7)
    np.testing.assert_array_equal(first, AffineAugment(seed=3)(images, step=7))
    assert not np.array_equal(first, AffineAugment(seed=3)(images, step=8))
    assert not np.array_equal(first, AffineAugment(seed=4)(images, step=7))


def test_augment_identity_when_ranges_are_zero(rng):
    images = rng.integers(0, 256, size=(5, 17, 13, 3)).astype(np.uint8)
    neutral = AffineAugment(rotation=0, shear=0, scale=(1, 1), translation=0, component_probability=1)
    np.testing.assert_array_equal(neutral(images, step=3), images)
    never = AffineAugment(component_probability=0.0)
    np.testing.assert_array_equal(never(images, step=3), images)


def test_augment_changes_images_but_keeps_their_content():
    images = _glyphs(64)
    out = AffineAugment(seed=2)(images, step=0)
    changed = np.any(out != images, axis=(1, 2, 3))
    assert changed.mean() > 0.9
    same = _correlation(images, out)
    assert same.mean() > 0.5
    assert same.mean() > _correlation(np.roll(images, 1, axis=0), out).mean() + 0.3
    # Koch et al.'s ranges never move content far: every image still correlates
    strong = AffineAugment(component_probability=1.0, seed=2)(images, step=0)
    assert _correlation(images, strong).min() > 0.2


def test_augment_on_real_images_keeps_content(data_dir):
    from siamese.datasets.images import read_fashion_mnist, read_omniglot_runs

    for images in (read_fashion_mnist("test").images[:300], read_omniglot_runs()[0].queries):
        out = AffineAugment(seed=9)(images, step=1)
        assert _correlation(images, out).mean() > 0.5
        # the background is kept: 0 for Fashion-MNIST's corners, 255 for Omniglot's
        corners = out[:, [0, 0, -1, -1], [0, -1, 0, -1]]
        np.testing.assert_array_equal(
            np.median(corners), np.median(images[:, [0, 0, -1, -1], [0, -1, 0, -1]])
        )


@pytest.mark.parametrize("background", [0, 255])
def test_border_fill_uses_the_background(background):
    images = np.full((4, 16, 16, 1), background, dtype=np.uint8)
    images[:, 5:11, 5:11] = 128
    shift = AffineAugment(
        rotation=0, shear=0, scale=(0.7, 0.7), translation=0, component_probability=1, interpolation="nearest"
    )
    out = shift(images)
    assert np.all(out[:, 0] == background) and np.all(out[:, :, -1] == background)
    assert np.sum(out == 128) < np.sum(images == 128)  # shrunk, not just copied
    filled = AffineAugment(
        rotation=0, shear=0, scale=(0.7, 0.7), translation=0, component_probability=1, fill=7.0
    )(images)
    assert np.all(filled[:, 0] == 7)


def test_border_median_per_image_and_channel():
    images = np.zeros((2, 5, 6, 2), np.float32)
    images[0, ..., 1] = 9.0
    images[1, 0, :, 0] = 4.0  # one edge of 6 out of 18 border pixels: the median stays 0
    medians = border_median(tf.constant(images)).numpy()
    assert medians.shape == (2, 1, 1, 2)
    np.testing.assert_array_equal(medians[:, 0, 0], [[0.0, 9.0], [0.0, 0.0]])


def test_inverse_affine_geometry():
    image = np.arange(7 * 7, dtype=np.float32).reshape(1, 7, 7, 1)

    def warp(params):
        transforms = inverse_affine(tf.constant([params], tf.float32), 7, 7)
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=image,
            transforms=transforms,
            output_shape=[7, 7],
            fill_value=-1.0,
            interpolation="BILINEAR",
        )
        return out.numpy()

    clockwise = np.rot90(image, k=-1, axes=(1, 2))
    np.testing.assert_allclose(warp([np.pi / 2, 0, 0, 1, 1, 0, 0]), clockwise, atol=1e-3)
    right = warp([0, 0, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(right[:, :, 1:], image[:, :, :-1])
    assert np.all(right[:, :, 0] == -1.0)
    down = warp([0, 0, 0, 1, 1, 0, 2])
    np.testing.assert_array_equal(down[:, 2:], image[:, :-2])
    assert np.array_equal(warp([0, 0, 0, 1, 1, 0, 0]), image)


def test_augment_inside_tf_data_matches_eager():
    images = _glyphs(10, size=20)
    augment = AffineAugment(seed=5, component_probability=1.0)

    def distort(step, batch):
        return augment(batch, step=step)

    dataset = tf.data.Dataset.from_tensor_slices(images).batch(4).enumerate().map(distort)
    out = np.concatenate([batch.numpy() for batch in dataset])
    expected = np.concatenate([augment(images[0:4], 0), augment(images[4:8], 1), augment(images[8:], 2)])
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rotation": 200}, "rotation must be at least 0 and below 180"),
        ({"shear": 1.0}, "shear must be at least 0 and below 1"),
        ({"scale": (1.2, 0.8)}, "scale must satisfy 0 < low <= high"),
        ({"scale": (0, 1)}, "scale must satisfy 0 < low <= high"),
        ({"scale": 1.0}, "scale must be a pair"),
        ({"translation": -1}, "translation must be at least 0"),
        ({"component_probability": 2}, "component_probability must be in [0, 1]"),
        ({"fill": "white"}, "fill must be 'border' or a number"),
        ({"fill": float("nan")}, "fill must be finite"),
        ({"interpolation": "cubic"}, "interpolation must be one of"),
        ({"seed": "x"}, "seed must be an integer"),
    ],
)
def test_augment_bad_options(kwargs, message):
    with pytest.raises(ConfigError) as info:
        AffineAugment(**kwargs)
    assert message in str(info.value)


def test_augment_bad_images():
    augment = AffineAugment()
    with pytest.raises(ConfigError, match="must be \\(n, H, W, C\\) or \\(H, W, C\\)"):
        augment(np.zeros((4, 4), np.uint8))
    with pytest.raises(ConfigError, match="must be uint8 or float, got dtype int32"):
        augment(np.zeros((1, 4, 4, 1), np.int32))
    with pytest.raises(ConfigError, match="does not fit uint8"):
        AffineAugment(fill=300)(np.zeros((1, 4, 4, 1), np.uint8))


# ---------------------------------------------------------------------- batches of positive pairs


def test_distinct_batches_keep_every_pair_once_and_no_item_twice_in_a_batch():
    from siamese.pairs import distinct_batches

    rng = np.random.default_rng(3)
    keys_a = rng.integers(0, 40, size=300)  # many repeated items: each in several pairs
    keys_b = rng.integers(40, 90, size=300)
    order = rng.permutation(300)
    batches = distinct_batches([order[i : i + 32] for i in range(0, 300, 32)], [keys_a, keys_b], 32)
    assert sorted(np.concatenate(batches).tolist()) == list(range(300))
    for batch in batches:
        items = np.concatenate([keys_a[batch], keys_b[batch]])
        assert len(batch) <= 32 and len(set(items.tolist())) == len(items)
    again = distinct_batches([order[i : i + 32] for i in range(0, 300, 32)], [keys_a, keys_b], 32)
    assert [b.tolist() for b in again] == [b.tolist() for b in batches]


def test_mined_negatives_are_near_but_never_known_positives():
    import siamese
    from siamese.pairs import mine_hard_negatives

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(60, 4)).astype(np.float32)
    index = siamese.Index.from_vectors(vectors, metric="cosine")
    anchors = np.arange(0, 60, 3)
    known = [{int(a) + 1, int(a) + 2} for a in anchors]
    found = mine_hard_negatives(index, anchors, known, ranks=(0, 3), seed=(0, 0))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for anchor, wanted, negative in zip(anchors, known, found, strict=True):
        assert negative != anchor and negative not in wanted
        order = [int(i) for i in np.argsort(-unit @ unit[anchor]) if i != anchor and int(i) not in wanted]
        assert negative in order[:3]  # among the three nearest that are not known positives
    assert mine_hard_negatives(index, anchors, known, ranks=(0, 3), seed=(0, 0)).tolist() == found.tolist()
    with pytest.raises(ConfigError, match="0 <= first < stop"):
        mine_hard_negatives(index, anchors, known, ranks=(5, 5), seed=(0,))


def test_pools_hold_a_few_items_of_each_of_several_classes():
    labels = np.repeat(np.arange(30), 10)
    sampler = PairSampler(labels, seed=4, pool_size=32)
    pools = sampler.pools(0, 5)
    assert len(pools) == 5
    for pool in pools:
        _, counts = np.unique(labels[pool], return_counts=True)
        assert len(pool) == len(set(pool.tolist())) <= 32 and counts.min() >= 2 and len(counts) >= 4
    assert [p.tolist() for p in sampler.pools(0, 5)] == [p.tolist() for p in pools]
    assert [p.tolist() for p in sampler.pools(1, 5)] != [p.tolist() for p in pools]
    with pytest.raises(ConfigError, match="pool_size"):
        PairSampler(labels).pools(0, 1)
