"""The fused training path computes the same model as the plain two-call formulation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import siamese
from siamese import encode, losses
from siamese.training import fused

TEXTS_A = ["a man plays a guitar", "two dogs run in the park", "a woman slices an onion", "kids"]
TEXTS_B = [
    "someone is playing guitar",
    "a cat sleeps",
    "an onion is being cut by a woman now",
    "the kids play",
]
TARGETS = np.array([[0.9], [0.1], [0.8], [0.5]], dtype=np.float32)


def _loss_and_gradients(model, inputs, loss):
    with tf.GradientTape() as tape:
        value = loss(TARGETS, model(inputs, training=True))
    gradients = tape.gradient(value, model.trainable_variables)
    return float(value), [np.asarray(tf.convert_to_tensor(g)) for g in gradients]


def _assert_same(plain, fast):
    assert fast[0] == pytest.approx(plain[0], rel=1e-5, abs=1e-7)
    assert len(plain[1]) == len(fast[1])
    for g_plain, g_fast in zip(plain[1], fast[1], strict=True):
        np.testing.assert_allclose(g_fast, g_plain, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "head, rnn, loss_name",
    [
        ("manhattan", "lstm", "mse"),
        ("abs-diff", "bilstm", "mse"),
        ("concat", "lstm", "mse"),
        ("cosine", "bilstm", "cosent"),  # the graded cosine objective
    ],
)
def test_text_fused_path_has_the_same_loss_and_gradients(head, rnn, loss_name):
    tower = siamese.text_tower(
        TEXTS_A + TEXTS_B, units=8, embedding_dim=6, sequence_length=12, rnn=rnn, seed=1
    )
    model = siamese.build_siamese(tower, head)
    loss = losses.get(loss_name)
    plain = _loss_and_gradients(
        model, [np.array(TEXTS_A, dtype=object), np.array(TEXTS_B, dtype=object)], loss
    )
    trainer = fused.fused_trainer(model, token_ids=True)
    assert {id(v) for v in trainer.trainable_variables} == {id(v) for v in model.trainable_variables}
    vectorizer = encode.text_vectorizer(tower)
    ids_a, ids_b = encode.token_ids(vectorizer, TEXTS_A), encode.token_ids(vectorizer, TEXTS_B)
    assert ids_a.shape == (4, 12)
    _assert_same(plain, _loss_and_gradients(trainer, [ids_a, ids_b], loss))
    # cut to the batch's longest sentence: the padding is masked, so nothing changes
    lengths = fused.pair_lengths(ids_a, ids_b)
    (cut_a, cut_b), _ = next(fused.length_batches(ids_a, ids_b, TARGETS, [np.arange(4)], lengths))
    assert cut_a.shape[1] == int(max(encode.lengths_of(ids_a).max(), encode.lengths_of(ids_b).max())) < 12
    _assert_same(plain, _loss_and_gradients(trainer, [cut_a, cut_b], loss))


@pytest.mark.parametrize("head", ["abs-diff", "euclidean"])
def test_image_fused_path_has_the_same_loss_and_gradients(head):
    rng = np.random.default_rng(0)
    images_a = rng.integers(0, 255, size=(4, 10, 10, 1)).astype(np.uint8)
    images_b = rng.integers(0, 255, size=(4, 10, 10, 1)).astype(np.uint8)
    tower = siamese.image_tower((10, 10, 1), filters=(4, 8), embedding_dim=5, seed=2)
    model = siamese.build_siamese(tower, head)
    loss = losses.get("contrastive" if head == "euclidean" else "binary-crossentropy")
    plain = _loss_and_gradients(model, [images_a, images_b], loss)
    trainer = fused.fused_trainer(model)
    _assert_same(plain, _loss_and_gradients(trainer, [images_a, images_b], loss))


@pytest.mark.parametrize("head", ["abs-diff", "euclidean", "concat"])
def test_unique_items_path_has_the_same_loss_and_gradients(head):
    # A batch of 4 pairs over 5 distinct images: image 2 is on both sides of different pairs.
    rng = np.random.default_rng(3)
    pool = rng.integers(0, 255, size=(5, 10, 10, 1)).astype(np.uint8)
    index_a, index_b = np.array([0, 2, 4, 2]), np.array([1, 3, 2, 0])
    tower = siamese.image_tower((10, 10, 1), filters=(4, 8), embedding_dim=5, seed=4)
    model = siamese.build_siamese(tower, head)
    loss = losses.get("contrastive" if head == "euclidean" else "binary-crossentropy")
    plain = _loss_and_gradients(model, [pool[index_a], pool[index_b]], loss)
    distinct, position_a, position_b = (np.asarray(t) for t in fused.unique_items(index_a, index_b))
    np.testing.assert_array_equal(distinct, [0, 2, 4, 1, 3])
    np.testing.assert_array_equal(distinct[position_a], index_a)
    np.testing.assert_array_equal(distinct[position_b], index_b)
    trainer = fused.unique_trainer(model)
    assert {id(v) for v in trainer.trainable_variables} == {id(v) for v in model.trainable_variables}
    with tf.GradientTape() as tape:
        value = loss(TARGETS, trainer([pool[distinct], position_a, position_b], training=True))
    gradients = tape.gradient(value, model.trainable_variables)
    _assert_same(plain, (float(value), [np.asarray(tf.convert_to_tensor(g)) for g in gradients]))


def test_bucketed_batches_cover_every_pair_once_and_cut_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, size=1000)
    order = rng.permutation(1000)
    batches = fused.batch_order(lengths, order, 32, pool_batches=8, rng=np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    plain = fused.batch_order(lengths, order, 32, pool_batches=0, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(np.concatenate(plain), order)
    fixed = fused.padding_share(lengths, plain, width=30)
    assert fused.padding_share(lengths, batches) < fused.padding_share(lengths, plain) < fixed
    assert fused.padding_share(np.array([3, 3]), [np.array([0, 1])]) == 0.0


def test_fused_trainer_refuses_a_non_text_tower_for_token_ids():
    model = siamese.build_siamese(siamese.image_tower((8, 8, 1), filters=(2,), embedding_dim=3), "cosine")
    with pytest.raises(ValueError, match="not a text tower"):
        fused.fused_trainer(model, token_ids=True)
    keras.backend.clear_session()


def test_batch_norm_towers_keep_the_two_call_path():
    plain = siamese.image_tower((8, 8, 1), filters=(2,), embedding_dim=3)
    normed = siamese.image_tower((8, 8, 1), filters=(2,), embedding_dim=3, batch_norm=True)
    assert fused.computes_the_same(plain) and not fused.computes_the_same(normed)


def _embedding_loss_and_gradients(variables, compute, loss, targets):
    with tf.GradientTape() as tape:
        value = loss(targets, compute())
    gradients = tape.gradient(value, variables)
    return float(value), [np.asarray(tf.convert_to_tensor(g)) for g in gradients]


@pytest.mark.parametrize("sides, rnn", [(2, "lstm"), (3, "bilstm")])
def test_text_embedding_trainer_has_the_same_loss_and_gradients(sides, rnn):
    texts = [TEXTS_A, TEXTS_B, list(reversed(TEXTS_B))][:sides]
    tower = siamese.text_tower(
        TEXTS_A + TEXTS_B, units=8, embedding_dim=6, sequence_length=12, rnn=rnn, seed=1
    )
    model = siamese.build_siamese(tower, "cosine")
    loss = losses.get("multiple-negatives", symmetric=True)
    zeros = np.zeros(4, dtype=np.float32)

    def plain_call():  # the tower called once per side, on raw strings
        encodings = [tower(np.array(side, dtype=object), training=True) for side in texts]
        return tf.stack(encodings, axis=1)

    plain = _embedding_loss_and_gradients(tower.trainable_variables, plain_call, loss, zeros)
    trainer = fused.embedding_trainer(model, sides=sides, token_ids=True)
    assert {id(v) for v in trainer.trainable_variables} == {id(v) for v in tower.trainable_variables}
    vectorizer = encode.text_vectorizer(tower)
    ids = [encode.token_ids(vectorizer, side) for side in texts]
    lengths = np.max([encode.lengths_of(i) for i in ids], axis=0)
    ((cut, _),) = fused.side_batches(ids, zeros, [np.arange(4)], lengths)
    assert cut[0].shape[1] < 12
    fast = _embedding_loss_and_gradients(
        trainer.trainable_variables, lambda: trainer(list(cut), training=True), loss, zeros
    )
    _assert_same(plain, fast)


def test_image_embedding_trainer_has_the_same_loss_and_gradients():
    tower = siamese.image_tower((8, 8, 1), filters=(3,), embedding_dim=5, seed=2)
    model = siamese.build_siamese(tower, "cosine")
    rng = np.random.default_rng(0)
    sides = [rng.integers(0, 256, size=(6, 8, 8, 1)).astype(np.uint8) for _ in range(2)]
    loss = losses.get("multiple-negatives")
    zeros = np.zeros(6, dtype=np.float32)
    plain = _embedding_loss_and_gradients(
        tower.trainable_variables,
        lambda: tf.stack([tower(s, training=True) for s in sides], axis=1),
        loss,
        zeros,
    )
    trainer = fused.embedding_trainer(model, sides=2)
    fast = _embedding_loss_and_gradients(
        trainer.trainable_variables, lambda: trainer(sides, training=True), loss, zeros
    )
    _assert_same(plain, fast)


def test_item_trainer_with_batch_hard_triplet_has_the_plain_loss_and_gradients():
    tower = siamese.image_tower((8, 8, 1), filters=(3,), embedding_dim=5, seed=2)
    model = siamese.build_siamese(tower, "euclidean")
    rng = np.random.default_rng(1)
    # four classes of two images each, far apart, so no two distances are near a tie (the
    # hardest positive and negative are then the same pairs on both paths)
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3], dtype=np.float32)
    patterns = rng.integers(0, 200, size=(4, 8, 8, 1))
    items = (patterns[labels.astype(int)] + rng.integers(0, 40, size=(8, 8, 8, 1))).astype(np.uint8)
    loss = losses.get("batch-hard-triplet")
    plain = _embedding_loss_and_gradients(  # the tower called once per item
        tower.trainable_variables,
        lambda: tf.concat([tower(items[i : i + 1], training=True) for i in range(8)], axis=0),
        loss,
        labels,
    )
    trainer = fused.item_trainer(model)
    fast = _embedding_loss_and_gradients(
        trainer.trainable_variables, lambda: trainer(items, training=True), loss, labels
    )
    # a convolution over 8 items and 8 over one item sum in other orders: float32 rounding
    assert fast[0] == pytest.approx(plain[0], rel=1e-4)
    for g_plain, g_fast in zip(plain[1], fast[1], strict=True):
        np.testing.assert_allclose(g_fast, g_plain, rtol=1e-3, atol=1e-4)
