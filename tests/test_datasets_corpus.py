"""What ``siamese-index build --input`` reads for an image tower: dataset names and splits."""

from __future__ import annotations

import numpy as np
import pytest

from siamese.datasets import corpus, images
from siamese.errors import ConfigError


@pytest.mark.parametrize(
    ("spec", "wanted"),
    [
        ("fashion-mnist", ("fashion-mnist", "test")),
        ("fashion-mnist:dev", ("fashion-mnist", "dev")),
        ("omniglot", ("omniglot", "train")),
        ("tfds:mnist", ("tfds:mnist", "test")),
        ("tfds:mnist:train", ("tfds:mnist", "train")),
    ],
)
def test_a_dataset_name_and_its_split_are_read_apart(monkeypatch, spec, wanted):
    asked = []

    def fake_split(name, split, *, size=None):
        asked.append((name, split))
        return images.LabelledImages(
            np.zeros((2, 4, 4, 1), np.uint8), np.array([0, 1]), ["a", "b"], None, None, "fake"
        )

    monkeypatch.setattr(corpus, "load_image_split", fake_split)
    items, payloads = corpus.image_corpus(spec)
    assert asked == [wanted]
    assert items.shape == (2, 4, 4, 1)
    assert [p["label"] for p in payloads] == ["a", "b"] and payloads[0]["split"] == wanted[1]


def test_fashion_mnist_test_split_is_read_without_the_training_files(data_dir, monkeypatch):
    read = []
    real = images.read_fashion_mnist

    def recording(split="train"):
        read.append(split)
        return real(split)

    monkeypatch.setattr(images, "read_fashion_mnist", recording)
    items, payloads = corpus.image_corpus("fashion-mnist")
    assert read == ["test"]
    assert items.shape == (10_000, 28, 28, 1) and len(payloads) == 10_000
    assert payloads[0] == {"split": "test", "index": 0, "label": "Ankle boot"}
    assert np.array_equal(items, images.load_image_dataset("fashion-mnist")["test"].images)


def test_an_unknown_split_names_the_option(data_dir):
    with pytest.raises(ConfigError, match=r"--input 'omniglot:nope'.*no split 'nope'"):
        corpus.image_corpus("omniglot:nope")
