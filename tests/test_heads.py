from __future__ import annotations

import keras
import numpy as np
import pytest

import siamese
from siamese import heads, losses

U = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]], dtype=np.float32)
V = np.array([[1.0, 0.0, 1.0], [0.0, 4.0, 0.0]], dtype=np.float32)


def _value(layer):
    return np.asarray(layer([U, V]))


def test_manhattan_is_exp_minus_l1():
    out = _value(heads.get("manhattan"))
    np.testing.assert_allclose(out, [[np.exp(-3.0)], [np.exp(-7.0)]], rtol=1e-6)


def test_cosine_by_hand():
    out = _value(heads.get("cosine"))
    np.testing.assert_allclose(out, [[1 / (np.sqrt(5) * np.sqrt(2))], [0.0]], atol=1e-6)


def test_euclidean_by_hand_and_finite_gradient_at_zero():
    out = _value(heads.get("euclidean"))
    np.testing.assert_allclose(out, [[np.sqrt(5.0)], [5.0]], rtol=1e-6)
    import tensorflow as tf

    u = tf.Variable(U)
    with tf.GradientTape() as tape:
        d = heads.get("euclidean")([u, tf.constant(U)])
    grad = tape.gradient(d, u)
    assert np.all(np.isfinite(grad.numpy()))


def test_abs_diff_is_dense_of_absolute_difference():
    head = heads.get("abs-diff")
    out = _value(head)
    kernel, bias = head.dense.get_weights()
    expected = 1 / (1 + np.exp(-(np.abs(U - V) @ kernel + bias)))
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_concat_head_feeds_u_v_absdiff_product():
    head = heads.get("concat", activation=None)
    out = _value(head)
    kernel, bias = head.dense.get_weights()
    features = np.concatenate([U, V, np.abs(U - V), U * V], axis=1)
    assert kernel.shape == (12, 1)
    np.testing.assert_allclose(out, features @ kernel + bias, rtol=1e-5)


def test_contrastive_loss_by_hand():
    loss = losses.ContrastiveLoss(margin=1.0, reduction=None)
    d = np.array([[0.5], [0.25], [2.0]], dtype=np.float32)
    y = np.array([[1.0], [0.0], [0.0]], dtype=np.float32)
    np.testing.assert_allclose(np.asarray(loss(y, d)), [0.25, 0.5625, 0.0], rtol=1e-6)


@pytest.mark.parametrize("name", sorted(heads.HEADS))
def test_head_config_round_trip(name):
    head = heads.get(name)
    clone = type(head).from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    if head.weights or name in ("abs-diff", "concat"):
        head([U, V])
        clone([U, V])
        clone.set_weights(head.get_weights())
    np.testing.assert_allclose(_value(clone), _value(head), rtol=1e-6)
    assert heads.name_of(head) == name


def test_loss_config_round_trip_and_safe_load(tmp_path):
    loss = losses.get("contrastive", margin=2.0)
    clone = losses.ContrastiveLoss.from_config(loss.get_config())
    assert clone.margin == 2.0
    tower = siamese.categorical_tower(4)
    model = siamese.build_siamese(tower, "euclidean")
    model.compile(optimizer="adam", loss=loss)
    model.fit([np.array([[0], [1]]), np.array([[2], [3]])], np.array([1.0, 0.0]), verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    assert isinstance(again.loss, losses.ContrastiveLoss)
    assert again.loss.margin == 2.0
