"""Tests of siamese.encode: raw items (texts, images, image files) to vectors."""

from __future__ import annotations

import keras
import numpy as np

import siamese
from siamese import encode

TEXTS = ["a man plays a guitar", "two dogs run in the park", "a woman slices an onion", "kids"]


def test_lengths_of_counts_tokens_before_trailing_padding():
    ids = np.array([[5, 2, 0, 0], [0, 0, 0, 0], [1, 0, 3, 0], [4, 4, 4, 4]])
    np.testing.assert_array_equal(encode.lengths_of(ids), [2, 0, 3, 4])


def test_embedding_texts_shortest_first_gives_the_towers_own_encodings():
    texts = TEXTS + ["a", "the man is playing a guitar on the stage tonight"]
    tower = siamese.text_tower(texts, units=6, embedding_dim=5, sequence_length=20, seed=3)
    assert encode.trimmable(tower)
    whole = np.asarray(tower(np.asarray(texts, dtype=object), training=False))
    for batch_size in (1, 3, 64):
        np.testing.assert_allclose(siamese.embed(tower, texts, batch_size=batch_size), whole, atol=1e-6)


def test_towers_that_are_not_a_masked_chain_are_not_trimmed():
    image = siamese.image_tower((8, 8, 1), filters=(2,), embedding_dim=3)
    texts = ["a b", "c d e"]
    vectorize = keras.layers.TextVectorization(output_sequence_length=5)
    vectorize.adapt(texts)
    inputs = keras.Input(shape=(), dtype="string")
    unmasked = keras.layers.LSTM(3)(keras.layers.Embedding(10, 4)(vectorize(inputs)))
    tower = keras.Model(inputs, unmasked)
    assert not encode.trimmable(image) and not encode.trimmable(tower)
    whole = np.asarray(tower(np.asarray(texts, dtype=object)))
    np.testing.assert_allclose(siamese.embed(tower, texts), whole, atol=1e-6)


def test_compiled_forwards_do_not_keep_their_tower_alive():
    import gc
    import weakref

    tower = siamese.image_tower((8, 8, 1), filters=(2,), embedding_dim=3)
    images = np.zeros((2, 8, 8, 1), dtype=np.uint8)
    np.testing.assert_allclose(siamese.embed(tower, images), np.asarray(tower(images)), atol=1e-6)
    held = weakref.ref(tower)
    assert held in {weakref.ref(t) for t in encode._FORWARDS.keys()}
    del tower
    gc.collect()
    assert held() is None


def test_image_files_embed_as_their_arrays(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 8, 8, 1), dtype=np.uint8)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image[:, :, 0]).save(paths[-1])
    tower = siamese.image_tower((8, 8, 1), filters=(2,), embedding_dim=3, seed=0)
    from_arrays = siamese.embed(tower, images)
    np.testing.assert_allclose(siamese.embed(tower, paths, batch_size=2), from_arrays, atol=1e-6)
    np.testing.assert_allclose(siamese.embed(tower, [str(p) for p in paths]), from_arrays, atol=1e-6)


def test_a_progress_bar_does_not_change_the_vectors(capsys):
    tower = siamese.text_tower(TEXTS, units=4, embedding_dim=3, seed=1)
    plain = siamese.embed(tower, TEXTS)
    shown = siamese.embed(tower, TEXTS, batch_size=3, progress=True)
    np.testing.assert_allclose(shown, plain, atol=1e-6)
    assert "4/4" in capsys.readouterr().err
