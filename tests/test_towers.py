from __future__ import annotations

import numpy as np
import pytest

import siamese
from siamese.vectors import WordVectors

TEXTS = ["a man is playing a guitar", "a woman is slicing an onion", "two dogs run on the grass"]


def test_text_tower_maps_raw_strings_to_vectors():
    tower = siamese.text_tower(TEXTS, units=5, embedding_dim=4, sequence_length=8)
    out = siamese.embed(tower, ["a man is playing", "dogs"])
    assert tower.name == "text_tower"
    assert out.shape == (2, 5)
    assert out.dtype == np.float32


def test_bilstm_tower_doubles_the_width():
    tower = siamese.text_tower(TEXTS, units=5, embedding_dim=4, rnn="bilstm")
    assert siamese.embed(tower, ["a man"]).shape == (1, 10)


def test_text_tower_masks_padding():
    # A sentence padded to a longer length must embed the same as at its own length.
    short = siamese.text_tower(TEXTS, units=3, embedding_dim=4, sequence_length=4, seed=7)
    long = siamese.text_tower(TEXTS, units=3, embedding_dim=4, sequence_length=12, seed=7)
    long.set_weights(short.get_weights())
    np.testing.assert_allclose(
        siamese.embed(short, ["two dogs"]), siamese.embed(long, ["two dogs"]), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("pooling", ["mean", "max"])
@pytest.mark.parametrize("rnn", ["lstm", "bilstm"])
def test_pooled_text_tower_ignores_padding(pooling, rnn):
    # The pooled encoding of a sentence is the same at any padded length, and is the mean or
    # maximum of the LSTM's states over its real tokens only.
    short = siamese.text_tower(
        TEXTS, units=3, embedding_dim=4, sequence_length=4, seed=7, rnn=rnn, sequence_pooling=pooling
    )
    long = siamese.text_tower(
        TEXTS, units=3, embedding_dim=4, sequence_length=12, seed=7, rnn=rnn, sequence_pooling=pooling
    )
    long.set_weights(short.get_weights())
    texts = ["two dogs", "a man is playing"]
    pooled = siamese.embed(long, texts)
    np.testing.assert_allclose(siamese.embed(short, texts), pooled, rtol=1e-5, atol=1e-6)
    # The states themselves, from a sequence-returning copy of the same layers.
    ids = np.asarray(long.get_layer("vectorize")(np.asarray(texts, dtype=object)))
    states = long.layers[3](long.get_layer("embedding")(ids))
    states = np.asarray(states)
    for row, n in enumerate([2, 4]):
        real = states[row, :n]
        expected = real.mean(axis=0) if pooling == "mean" else real.max(axis=0)
        np.testing.assert_allclose(pooled[row], expected, rtol=1e-5, atol=1e-6)
    assert pooled.shape == (2, 6 if rnn == "bilstm" else 3)


def test_masked_max_pooling_of_an_all_padding_row_is_zero():
    layer = siamese.towers.MaskedMaxPooling1D()
    values = -np.ones((2, 3, 2), dtype=np.float32)
    mask = np.array([[True, False, False], [False, False, False]])
    np.testing.assert_array_equal(np.asarray(layer(values, mask=mask)), [[-1, -1], [0, 0]])
    with pytest.raises(ValueError, match="sequence_pooling"):
        siamese.text_tower(TEXTS, sequence_pooling="median")


def test_word_vectors_initialise_known_rows_and_can_be_frozen():
    vectors = WordVectors(["guitar", "onion", "zebra"], np.arange(12, dtype=np.float32).reshape(3, 4))
    tower = siamese.text_tower(
        TEXTS, embedding_dim=None, units=3, word_vectors=vectors, train_embeddings=False
    )
    embedding = tower.get_layer("embedding")
    vocab = tower.get_layer("vectorize").get_vocabulary()
    matrix = embedding.get_weights()[0]
    np.testing.assert_array_equal(matrix[vocab.index("guitar")], [0, 1, 2, 3])
    np.testing.assert_array_equal(matrix[vocab.index("onion")], [4, 5, 6, 7])
    assert not embedding.trainable
    assert all(w is not embedding.weights[0] for w in tower.trainable_weights)


def test_image_tower_any_shape():
    tower = siamese.image_tower((20, 16, 3), filters=(4, 8), embedding_dim=6)
    images = np.random.default_rng(0).integers(0, 256, (3, 20, 16, 3), dtype=np.uint8)
    assert siamese.embed(tower, images).shape == (3, 6)


def test_categorical_tower_is_one_number_per_team():
    tower = siamese.categorical_tower(7)
    assert tower.count_params() == 7
    out = siamese.embed(tower, np.array([[0], [6]]))
    np.testing.assert_allclose(out[:, 0], tower.get_layer("embedding").get_weights()[0][[0, 6], 0])


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: siamese.text_tower(TEXTS, vocab_size=0), ["vocab_size", "positive integer"]),
        (lambda: siamese.text_tower(TEXTS, units=-3), ["units", "positive integer"]),
        (lambda: siamese.text_tower(TEXTS, sequence_length=0), ["sequence_length"]),
        (lambda: siamese.text_tower([], units=3), ["texts", "non-empty"]),
        (lambda: siamese.text_tower(["", "  "], units=3), ["texts"]),
        (lambda: siamese.text_tower(TEXTS, rnn="gru"), ["rnn", "lstm, bilstm", "'gru'"]),
        (lambda: siamese.image_tower((28, 28)), ["input_shape", "(height, width, channels)"]),
        (lambda: siamese.image_tower((28, 28, 1, 1)), ["input_shape"]),
        (lambda: siamese.image_tower((28, 0, 1)), ["input_shape", "positive integer"]),
        (lambda: siamese.image_tower((28, 28, 1), embedding_dim=0), ["embedding_dim"]),
        (lambda: siamese.image_tower((28, 28, 1), pooling="median"), ["pooling", "max, avg"]),
        (lambda: siamese.categorical_tower(0), ["n_categories", "positive integer"]),
        (lambda: siamese.categorical_tower(5, dim=-1), ["dim"]),
        (
            lambda: siamese.build_siamese(siamese.categorical_tower(3), head="nope"),
            ["head", "abs-diff", "manhattan", "cosine", "euclidean", "concat", "'nope'"],
        ),
        (lambda: siamese.losses.get("hinge"), ["loss", "contrastive", "'hinge'"]),
    ],
)
def test_bad_arguments_name_the_argument_and_accepted_values(call, words):
    with pytest.raises(ValueError) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_embed_rejects_items_of_the_wrong_kind():
    tower = siamese.image_tower((8, 8, 1), filters=(2,), embedding_dim=2)
    with pytest.raises(siamese.ConfigError, match="shape"):
        siamese.embed(tower, np.zeros((2, 9, 8, 1)))
    text = siamese.text_tower(TEXTS, units=2, embedding_dim=2)
    with pytest.raises(siamese.ConfigError, match="list of strings"):
        siamese.embed(text, "a single string")


def test_extra_vocabulary_gives_unseen_words_their_vectors():
    vectors = WordVectors(["zebra", "guitar", "violin"], np.eye(3, dtype=np.float32) * 2)
    tower = siamese.text_tower(
        TEXTS, embedding_dim=None, units=3, word_vectors=vectors, extra_vocabulary=vectors.words
    )
    vocab = tower.get_layer("vectorize").get_vocabulary()
    assert "zebra" in vocab and "violin" in vocab  # never in TEXTS
    assert vocab.count("guitar") == 1  # already adapted from TEXTS, not added twice
    matrix = tower.get_layer("embedding").get_weights()[0]
    np.testing.assert_array_equal(matrix[vocab.index("violin")], [0, 0, 2])
    small = siamese.text_tower(TEXTS, units=2, embedding_dim=3, vocab_size=8, extra_vocabulary=["zebra"] * 9)
    assert len(small.get_layer("vectorize").get_vocabulary()) <= 8


def test_vocabulary_words_are_the_words_a_tower_adapts_to():
    from siamese.towers import vocabulary_words

    texts = ["The cat sat.", "the dog sat down", "A cat, a dog!", "birds fly"]
    tower = siamese.text_tower(texts, vocab_size=6, embedding_dim=4, units=4)
    words = vocabulary_words(texts, vocab_size=6)
    assert words == tower.get_layer("vectorize").get_vocabulary()[2:]
    assert len(words) == 4 and all(w == w.lower() and w.isalpha() for w in words)
    with pytest.raises(ValueError, match="non-empty"):
        vocabulary_words(["", "  "])
