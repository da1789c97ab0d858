"""Each seed pattern really shares its weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from siamese.examples import patterns


def _inputs(model, rng):
    out = []
    for spec in model.inputs:
        shape = [2] + [d if d is not None else 5 for d in spec.shape[1:]]
        if "int" in str(spec.dtype):
            # The same ids on every integer input, so an embedding row updated through one
            # input is a row the other input reads.
            out.append((np.arange(int(np.prod(shape))) % 9 + 1).reshape(shape).astype("int32"))
        else:
            out.append(rng.normal(size=shape).astype("float32"))
    return out


def _outputs(model, x):
    out = model(x if len(x) > 1 else x[0])
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def _step_through(model, x, path, shared):
    """One SGD step on the shared weights using only output ``path``."""
    with tf.GradientTape() as tape:
        out = model(x if len(x) > 1 else x[0])
        out = out if isinstance(out, (list, tuple)) else [out]
        loss = tf.reduce_sum(tf.square(out[path]))
    grads = tape.gradient(loss, shared.trainable_weights)
    assert all(g is not None for g in grads), "the path does not reach the shared weights"
    for var, grad in zip(shared.trainable_weights, grads, strict=True):
        var.assign_sub(0.5 * tf.convert_to_tensor(grad))


@pytest.mark.parametrize("name", sorted(patterns.PATTERNS))
def test_pattern_shares_its_weights(name):
    rng = np.random.default_rng(0)
    pattern = patterns.PATTERNS[name]()
    model, shared = pattern.model, pattern.shared
    models = [model, *pattern.others]
    for m in models:
        ids = [id(w) for w in m.weights]
        assert len(ids) == len(set(ids)), "a weight is counted twice"
        for w in shared.weights:  # the very same variable objects
            assert sum(v is w for v in m.weights) == 1
        assert m.count_params() == sum(int(np.prod(w.shape)) for w in m.weights)

    watch = pattern.others[0] if pattern.others else model
    watch_x = _inputs(watch, rng)
    watched_path = pattern.paths[1]
    x = _inputs(model, rng)
    before = _outputs(watch, watch_x)[watched_path]
    _step_through(model, x, pattern.paths[0], shared)
    after = _outputs(watch, watch_x)[watched_path]
    assert not np.allclose(before, after), "updating one path did not change the other"


def test_shared_dense_gives_equal_outputs_for_equal_inputs():
    pattern = patterns.shared_dense()
    x = np.ones((1, 4), dtype="float32")
    a, b = _outputs(pattern.model, [x, x])
    np.testing.assert_allclose(a, b)


def test_merge_layers_by_hand():
    pattern = patterns.merge_layers()
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 4)).astype("float32"), rng.normal(size=(2, 4)).astype("float32")
    u, v, added, subtracted, multiplied, concatenated = _outputs(pattern.model, [a, b])
    np.testing.assert_allclose(added, u + v, rtol=1e-6)
    np.testing.assert_allclose(subtracted, u - v, rtol=1e-6)
    np.testing.assert_allclose(multiplied, u * v, rtol=1e-6)
    np.testing.assert_allclose(concatenated, np.concatenate([u, v], axis=1), rtol=1e-6)


def test_encoder_decoder_uses_one_lstm_twice():
    pattern = patterns.lstm_encoder_decoder()
    lstms = [layer for layer in pattern.model.layers if type(layer).__name__ == "LSTM"]
    assert lstms == [pattern.shared]
    assert len(pattern.shared._inbound_nodes) == 2


def test_three_input_model_looks_up_one_strength_for_both_teams():
    pattern = patterns.three_input_model(n_teams=4)
    team = np.array([[2], [2]], dtype="int32")
    s1, s2, _ = _outputs(pattern.model, [team, team, np.zeros((2, 1), "float32")])
    np.testing.assert_allclose(s1, s2)


def test_two_output_model_trains_with_two_losses():
    pattern = patterns.two_output_model()
    model = pattern.model
    model.compile(optimizer="adam", loss=["mae", "mae"])
    x = np.random.default_rng(0).normal(size=(16, 2)).astype("float32")
    history = model.fit(x, [x[:, :1], x[:, 1:]], epochs=2, verbose=0)
    assert {"score_1_loss", "score_2_loss"} <= set(history.history)


def test_a_copy_by_constraint_is_not_sharing():
    rng = np.random.default_rng(0)
    model, first, copy = patterns.copied_by_constraint()
    shared = patterns.shared_dense()
    # two sets of weights: twice the parameters of the shared layer
    assert first.kernel is not copy.kernel
    assert model.count_params() == 2 * shared.model.count_params()
    # the copies agree only after an optimizer step has run the constraint
    assert not np.allclose(first.kernel.numpy(), copy.kernel.numpy())
    x = [rng.normal(size=(8, 4)).astype("float32") for _ in range(2)]
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    kernel = first.kernel.numpy()
    with tf.GradientTape() as tape:
        out_a, out_b = model(x)
        loss = tf.reduce_sum(tf.square(out_a)) + tf.reduce_sum(tf.square(out_b))
    grads = tape.gradient(loss, model.trainable_weights)
    by_name = {v.path: g for v, g in zip(model.trainable_weights, grads, strict=True)}
    optimizer.apply_gradients(zip(grads, model.trainable_weights, strict=True))
    np.testing.assert_allclose(copy.kernel.numpy(), first.kernel.numpy())
    # the first path's gradient alone moved the weights: the copy's gradient was discarded,
    # where a shared layer would have moved by the sum of both
    np.testing.assert_allclose(first.kernel.numpy(), kernel - 0.1 * by_name[first.kernel.path], rtol=1e-5)
    both = kernel - 0.1 * (by_name[first.kernel.path] + by_name[copy.kernel.path])
    assert not np.allclose(first.kernel.numpy(), both, atol=1e-4)
