"""The embedding losses against NumPy references on fixed batches."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from siamese import losses

RNG = np.random.default_rng(7)


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def mnrl_reference(stacked, scale, symmetric):
    """Loop-free but independent: candidates listed positives first, then negatives by column."""
    batch = stacked.shape[0]
    anchors = _unit(stacked[:, 0].astype(np.float64))
    candidates = [_unit(stacked[:, c].astype(np.float64)) for c in range(1, stacked.shape[1])]
    logits = scale * anchors @ np.concatenate(candidates).T
    loss = -_log_softmax(logits)[np.arange(batch), np.arange(batch)]
    if symmetric:
        back = scale * candidates[0] @ anchors.T
        loss = 0.5 * (loss - _log_softmax(back)[np.arange(batch), np.arange(batch)])
    return loss.mean()


def cosent_reference(scores, cosines, scale):
    terms = [0.0]
    for i in range(len(scores)):
        for j in range(len(scores)):
            if scores[i] > scores[j]:
                terms.append(scale * (cosines[j] - cosines[i]))
    return np.log(np.sum(np.exp(terms)))


def triplet_reference(labels, embeddings, margin):
    unit = _unit(embeddings.astype(np.float64))
    losses_ = []
    for i in range(len(labels)):
        distance = np.linalg.norm(unit - unit[i], axis=1)
        positive = [distance[j] for j in range(len(labels)) if labels[j] == labels[i] and j != i]
        negative = [distance[j] for j in range(len(labels)) if labels[j] != labels[i]]
        losses_.append(max(max(positive) - min(negative) + margin, 0.0) if positive and negative else 0.0)
    return np.mean(losses_)


@pytest.mark.parametrize("hard", [0, 2])
@pytest.mark.parametrize("symmetric", [False, True])
def test_multiple_negatives_ranking_matches_numpy(hard, symmetric):
    stacked = RNG.normal(size=(6, 2 + hard, 5)).astype(np.float32)
    loss = losses.get("multiple-negatives", scale=7.0, symmetric=symmetric)
    got = float(loss(np.zeros(6, dtype=np.float32), stacked))
    assert got == pytest.approx(mnrl_reference(stacked, 7.0, symmetric), rel=1e-5)


def test_cosent_matches_numpy():
    scores = np.array([0.1, 0.9, 0.5, 0.5, 0.3], dtype=np.float32)
    cosines = RNG.uniform(-1, 1, size=(5, 1)).astype(np.float32)
    got = float(losses.get("cosent", scale=20.0)(scores, cosines))
    assert got == pytest.approx(cosent_reference(scores, cosines[:, 0], 20.0), rel=1e-5)
    # Cosines already in the order of the scores cost little; reversed, much.
    ordered = np.array([[-0.9], [0.9], [0.1], [0.1], [-0.5]], dtype=np.float32)
    assert float(losses.get("cosent")(scores, ordered)) < 1e-3 < float(losses.get("cosent")(scores, -ordered))


def test_batch_hard_triplet_matches_numpy():
    labels = np.array([0, 0, 1, 1, 1, 2, 3, 3], dtype=np.float32)  # class 2 has no positive
    embeddings = RNG.normal(size=(8, 4)).astype(np.float32)
    got = float(losses.get("batch-hard-triplet", margin=0.3)(labels, embeddings))
    assert got == pytest.approx(triplet_reference(labels, embeddings, 0.3), rel=1e-5)


def test_embedding_loss_gradients_match_a_numerical_estimate():
    """The losses are differentiable where the references say they should be: a finite
    difference of the NumPy reference agrees with the gradient TensorFlow computes."""
    import tensorflow as tf

    stacked = RNG.normal(size=(4, 3, 3)).astype(np.float64)
    loss = losses.MultipleNegativesRankingLoss(scale=5.0, symmetric=True, dtype="float64")
    variable = tf.Variable(stacked)
    with tf.GradientTape() as tape:
        value = loss(np.zeros(4), variable)
    grad = tape.gradient(value, variable).numpy()
    step = 1e-6
    bumped = stacked.copy()
    bumped[1, 2, 0] += step
    estimate = (mnrl_reference(bumped, 5.0, True) - mnrl_reference(stacked, 5.0, True)) / step
    assert grad[1, 2, 0] == pytest.approx(estimate, rel=1e-3, abs=1e-6)


def test_losses_are_refused_with_bad_parameters():
    with pytest.raises(ValueError, match="scale"):
        losses.MultipleNegativesRankingLoss(scale=0)
    with pytest.raises(ValueError, match="margin"):
        losses.BatchHardTripletLoss(margin=-1)
    assert isinstance(
        keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(losses.CoSENTLoss(scale=5))
        ),
        losses.CoSENTLoss,
    )
