"""Losses, picked by name with :func:`get`.

Pair losses score a pair model's output (a head's similarity or distance) against its label.
Embedding losses train the embedding space itself, the space the index searches:

- :class:`MultipleNegativesRankingLoss` (in-batch negatives): each anchor against every
  positive of the batch (and any explicit hard negatives), softmax cross-entropy over their
  scaled cosine similarities;
- :class:`CoSENTLoss`: graded pairs; the cosine of every pair in the batch is pushed above the
  cosine of every pair with a lower gold score (so the index's cosine follows the scores);
- :class:`BatchHardTripletLoss`: class-labelled items; each anchor's farthest same-class item
  against its nearest other-class item, by Euclidean distance between unit vectors.

Label convention everywhere in the toolkit: **1 = similar** (same class, paraphrase),
**0 = dissimilar**. Graded scores (SICK, STS-B) are scaled to [0, 1] before training.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from siamese.registration import register


@register
class ContrastiveLoss(keras.losses.Loss):
    """Contrastive loss on a distance (Hadsell, Chopra & LeCun 2006).

    ``loss = y * d² + (1 - y) * max(margin - d, 0)²`` where ``d`` is the model's output, a
    distance such as the ``euclidean`` head's, and ``y`` is 1 for similar pairs, 0 for
    dissimilar ones. Similar pairs are pulled together; dissimilar ones are pushed at least
    ``margin`` apart. No sigmoid is applied over the distance.

    Args:
        margin: Distance beyond which dissimilar pairs cost nothing.
    """

    def __init__(self, margin: float = 1.0, name: str = "contrastive", **kwargs: Any) -> None:
        if margin <= 0:
            raise ValueError(f"margin must be positive, got {margin!r}")
        super().__init__(name=name, **kwargs)
        self.margin = float(margin)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)), y_pred.dtype)
        similar = y_true * ops.square(y_pred)
        dissimilar = (1.0 - y_true) * ops.square(ops.maximum(self.margin - y_pred, 0.0))
        return ops.mean(similar + dissimilar, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "margin": self.margin}


def gather_replicas(*tensors: Any) -> tuple[list[Any], Any, Any]:
    """Inside a replica of a distributed step (:mod:`siamese.training.distribute`): every
    replica's rows of each tensor, in replica order (the order of the global batch); the
    global row of this replica's first row; and the weight that makes Keras's reduction (the
    mean over this replica's rows, divided by the number of replicas) the mean over the
    global batch when the replicas hold different numbers of rows. Elsewhere: the tensors
    themselves, 0 and 1.

    The gather is differentiable: each replica's loss reaches the encodings of every replica,
    so the summed gradient is the gradient of the whole batch's loss.
    """
    import tensorflow as tf

    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return list(tensors), 0, 1.0
    context = tf.distribute.get_replica_context()
    if context.num_replicas_in_sync == 1:
        return list(tensors), 0, 1.0
    sizes = context.all_gather(tf.shape(tensors[0])[:1], axis=0)
    offset = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
    local, total = tf.cast(sizes[context.replica_id_in_sync_group], tf.float32), tf.reduce_sum(sizes)
    weight = local * context.num_replicas_in_sync / tf.cast(tf.maximum(total, 1), tf.float32)
    return [context.all_gather(t, axis=0) for t in tensors], offset, weight


def _unit(x: Any) -> Any:
    return x / ops.maximum(ops.norm(x, axis=-1, keepdims=True), 1e-12)


@register
class MultipleNegativesRankingLoss(keras.losses.Loss):
    """In-batch negatives (Henderson et al. 2017; sentence-transformers' MNRL).

    ``y_pred`` stacks each example's encodings: ``(batch, 2 + h, dim)``, the anchor, its
    positive, then ``h`` hard negatives (``h`` may be 0). Anchor ``i`` is scored against every
    positive and every hard negative of the batch, ``scale * cos``, and the loss is the
    softmax cross-entropy of picking its own positive. With ``symmetric``, each positive also
    picks its anchor among the batch's anchors, and the two losses are averaged. ``y_true`` is
    not used (give zeros).

    Args:
        scale: The inverse temperature of the cosine similarities.
        symmetric: Add the positive → anchor direction.
    """

    def __init__(
        self, scale: float = 20.0, symmetric: bool = False, name: str = "multiple_negatives", **kwargs: Any
    ) -> None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        super().__init__(name=name, **kwargs)
        self.scale = float(scale)
        self.symmetric = bool(symmetric)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        # Under tf.distribute each replica scores its own anchors against the whole global
        # batch: the candidates (and, for the way back, the anchors) of every replica.
        (everything,), offset, weight = gather_replicas(y_pred)
        anchors = _unit(y_pred[:, 0])
        dim = ops.shape(y_pred)[-1]
        candidates = _unit(ops.reshape(ops.transpose(everything[:, 1:], (1, 0, 2)), (-1, dim)))
        targets = ops.arange(ops.shape(anchors)[0]) + offset
        logits = self.scale * ops.matmul(anchors, ops.transpose(candidates))
        loss = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        if self.symmetric:
            positives = _unit(y_pred[:, 1])
            back = self.scale * ops.matmul(positives, ops.transpose(_unit(everything[:, 0])))
            loss = 0.5 * (
                loss + keras.losses.sparse_categorical_crossentropy(targets, back, from_logits=True)
            )
        return loss * ops.cast(weight, loss.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "symmetric": self.symmetric}


@register
class CoSENTLoss(keras.losses.Loss):
    """CoSENT (Su 2022): ``log(1 + sum over pairs (i, j) with y_i > y_j of
    exp(scale * (cos_j - cos_i)))`` over the batch.

    ``y_pred`` is each pair's cosine similarity (a ``cosine`` head's output), ``y_true`` its
    gold score (any scale: only the order matters). Every example of the batch gets the
    batch's loss, so the mean over the batch is that loss.

    Args:
        scale: The inverse temperature of the cosine differences.
    """

    def __init__(self, scale: float = 20.0, name: str = "cosent", **kwargs: Any) -> None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        super().__init__(name=name, **kwargs)
        self.scale = float(scale)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        local = ops.reshape(y_pred, (-1,))
        # Under tf.distribute: the loss of the whole global batch, on every replica.
        (cosines, scores), _, weight = gather_replicas(
            local, ops.cast(ops.reshape(y_true, (-1,)), local.dtype)
        )
        differences = self.scale * (cosines[None, :] - cosines[:, None])  # [i, j] = cos_j - cos_i
        ordered = scores[:, None] > scores[None, :]  # [i, j]: y_i > y_j
        lowest = ops.cast(-1e12, differences.dtype)
        terms = ops.concatenate(
            [ops.zeros((1,), differences.dtype), ops.reshape(ops.where(ordered, differences, lowest), (-1,))],
            axis=0,
        )
        return ops.broadcast_to(ops.logsumexp(terms) * ops.cast(weight, local.dtype), ops.shape(local))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}


@register
class BatchHardTripletLoss(keras.losses.Loss):
    """Batch-hard triplet loss (Hermans, Beyer & Leibe 2017) on unit vectors.

    ``y_pred`` is the batch's embeddings ``(batch, dim)``, ``y_true`` their class labels.
    Each anchor takes its farthest item of the same class (the hardest positive) and its
    nearest item of another class (the hardest negative), by Euclidean distance between the
    L2-normalised embeddings (the order of cosine similarity), and costs
    ``max(d_positive - d_negative + margin, 0)``. An anchor without a same-class item or
    without an other-class item in the batch costs 0.

    Args:
        margin: How much nearer than the hardest negative the hardest positive must be.
    """

    def __init__(self, margin: float = 0.5, name: str = "batch_hard_triplet", **kwargs: Any) -> None:
        if not margin > 0:
            raise ValueError(f"margin must be positive, got {margin!r}")
        super().__init__(name=name, **kwargs)
        self.margin = float(margin)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        local_labels = ops.reshape(y_true, (-1,))
        # Under tf.distribute each replica's anchors look for their hardest items in the
        # whole global batch.
        (everything, labels), offset, weight = gather_replicas(y_pred, local_labels)
        unit, others = _unit(y_pred), _unit(everything)
        squared = ops.maximum(2.0 - 2.0 * ops.matmul(unit, ops.transpose(others)), 0.0)
        distances = ops.sqrt(squared + 1e-12)
        same = ops.equal(local_labels[:, None], labels[None, :])
        rows = ops.arange(ops.shape(local_labels)[0]) + offset
        itself = ops.equal(rows[:, None], ops.arange(ops.shape(labels)[0])[None, :])
        positive = ops.logical_and(same, ops.logical_not(itself))
        negative = ops.logical_not(same)
        hardest_positive = ops.max(ops.where(positive, distances, 0.0), axis=1)
        hardest_negative = ops.min(ops.where(negative, distances, 4.0), axis=1)
        valid = ops.logical_and(ops.any(positive, axis=1), ops.any(negative, axis=1))
        loss = ops.maximum(hardest_positive - hardest_negative + self.margin, 0.0)
        return ops.where(valid, loss, 0.0) * ops.cast(weight, loss.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "margin": self.margin}


def _bce(**kwargs: Any) -> keras.losses.Loss:
    return keras.losses.BinaryCrossentropy(**kwargs)


def _mse(**kwargs: Any) -> keras.losses.Loss:
    return keras.losses.MeanSquaredError(**kwargs)


def _mae(**kwargs: Any) -> keras.losses.Loss:
    return keras.losses.MeanAbsoluteError(**kwargs)


#: Loss names → factories. CLI flags and ``config.json`` use these names.
LOSSES = {
    "binary-crossentropy": _bce,
    "contrastive": ContrastiveLoss,
    "mse": _mse,
    "mae": _mae,
    "cosent": CoSENTLoss,
    "multiple-negatives": MultipleNegativesRankingLoss,
    "batch-hard-triplet": BatchHardTripletLoss,
}

#: Losses on a batch's embeddings (not on a head's score): the retrieval objective's.
EMBEDDING_LOSSES = frozenset({"multiple-negatives", "batch-hard-triplet"})


def get(name: str, **kwargs: Any) -> keras.losses.Loss:
    """Build the loss registered under ``name``.

    Args:
        name: One of :data:`LOSSES`.
        **kwargs: Passed to the loss (e.g. ``margin=2.0`` for ``contrastive``).

    Raises:
        ValueError: ``name`` is not a registered loss.
    """
    try:
        factory = LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}; got {name!r}") from None
    return factory(**kwargs)
