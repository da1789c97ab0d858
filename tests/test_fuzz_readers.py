"""Fuzzed readers: random and damaged files give a correct parse or the toolkit's own error.

Every reader is fed a small valid file of its format (made up here, never copied from a dataset)
and then mutated copies of it: bytes inserted, deleted, replaced or bit-flipped, lines duplicated,
dropped or swapped, fields emptied, tabs, quotes, CR, NUL, bad UTF-8 and very long lines
injected, files truncated. The only outcomes allowed are

1. a parse that is correct: as many records as the file has data lines (no silent truncation),
   with the values found in those lines; or
2. the toolkit's own error type (``DataError`` for data files, ``IndexFileError`` for index
   folders) naming the file,

never another exception type and never a hang: each example runs under a time limit, and
Hypothesis's own per-example deadline fails slow ones. Hypothesis runs derandomized, so CI
runs are reproducible.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import struct
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import index_files
from hypothesis import event, given, settings
from hypothesis import strategies as st
from PIL import Image

from siamese.basketball import data as basketball
from siamese.datasets import images, text
from siamese.errors import DataError, IndexFileError, SiameseError
from siamese.index import Index, recall_at_k

#: ``SIAMESE_FUZZ=long``: the exploring profile, new examples each run
#: (``SIAMESE_FUZZ_EXAMPLES`` per test, default 1,000); otherwise CI's bounded, derandomized one.
LONG = os.environ.get("SIAMESE_FUZZ") == "long"
#: Settings of every fuzz test: an example slower than 5 s is a failure.
FUZZ = settings(
    max_examples=int(os.environ.get("SIAMESE_FUZZ_EXAMPLES", "1000")) if LONG else 40,
    deadline=timedelta(seconds=5),
    derandomize=not LONG,
    database=None,
)
#: An example still running after this many seconds is stopped and reported as a hang.
HANG_SECONDS = 20

# ---------------------------------------------------------------------------------- harness


class ReaderHung(AssertionError):
    """A reader ran past the time limit on one input."""


@contextlib.contextmanager
def time_limit(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Raise :class:`ReaderHung` in the main thread if the body runs longer than ``seconds``."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise ReaderHung(f"reader still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcome(
    error: type[SiameseError], where: Path, read: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """What ``read`` returns, or None when it raised ``error`` naming ``where``.

    Any other exception (KeyError, UnicodeDecodeError, zipfile.BadZipFile, ...) propagates and
    fails the test, as does a ``SiameseError`` of another type or one that does not name the file.
    """
    with time_limit():
        try:
            result = read(*args, **kwargs)
        except SiameseError as exc:
            assert type(exc) is error, f"expected {error.__name__}, got {type(exc).__name__}: {exc}"
            if error is DataError:
                assert str(where) in str(exc), f"the error does not name {where}: {exc}"
            event(f"outcome: {error.__name__}")
            return None
    event("outcome: parsed")
    return result


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@contextlib.contextmanager
def fresh_dir(scratch: Path) -> Iterator[Path]:
    """An empty folder for one example, removed afterwards."""
    folder = Path(tempfile.mkdtemp(dir=scratch))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------- mutations

#: Byte strings that break text formats in interesting ways.
TOKENS = (
    b"\t",
    b'"',
    b"\r",
    b"\r\n",
    b"\n",
    b"\n\n",
    b"\x00",
    b"\xff",
    b"\xc3\x28",  # invalid UTF-8 sequence
    b"\xe2\x80",  # truncated UTF-8 sequence
    codecs.BOM_UTF8,
    b",",
    b" ",
    b"x" * 20_000,
    b"nan",
    b"inf",
    b"-1e999",
    b"9" * 30,
    "\u2028".encode(),
    b"\x0b\x0c\x1c",
)
OPS = (
    "insert",
    "delete",
    "replace",
    "flip",
    "replace_near_end",  # zip directories and end records live at the end of the file
    "truncate",
    "dup_line",
    "drop_line",
    "swap_lines",
    "clear_field",
)
Op = tuple[str, int, int, bytes]


def mutations(tokens: tuple[bytes, ...] = TOKENS) -> st.SearchStrategy[list[Op]]:
    """One to four edits: (kind, position, second position, bytes to insert)."""
    inserts = (
        st.one_of(st.sampled_from(tokens), st.binary(min_size=1, max_size=8))
        if tokens
        else st.binary(min_size=1, max_size=8)
    )
    op = st.tuples(st.sampled_from(OPS), st.integers(0, 1 << 16), st.integers(0, 1 << 16), inserts)
    return st.lists(op, min_size=1, max_size=4)


def mutate(data: bytes, ops: list[Op] | None, sep: bytes = b"\t") -> bytes:
    """Apply the edits of :func:`mutations` to ``data`` (None: no edits); ``sep`` separates fields."""
    out = bytearray(data)
    for kind, p, q, insert in ops or ():
        at = p % (len(out) + 1)
        if kind == "insert":
            out[at:at] = insert
        elif kind == "truncate":
            del out[at:]
        elif kind == "replace_near_end" and out:
            out[len(out) - 1 - p % min(len(out), 256)] = insert[0]
        elif kind in ("delete", "replace", "flip") and out:
            at %= len(out)
            if kind == "delete":
                del out[at : at + 1 + q % 8]
            elif kind == "replace":
                out[at] = insert[0]
            else:
                out[at] ^= 1 << (q % 8)
        elif kind in ("dup_line", "drop_line", "swap_lines", "clear_field"):
            lines = bytes(out).split(b"\n")
            i, j = p % len(lines), q % len(lines)
            if kind == "dup_line":
                lines.insert(i, lines[i])
            elif kind == "drop_line" and len(lines) > 1:
                del lines[i]
            elif kind == "swap_lines":
                lines[i], lines[j] = lines[j], lines[i]
            elif kind == "clear_field":
                fields = lines[i].split(sep)
                fields[q % len(fields)] = b""
                lines[i] = sep.join(fields)
            out = bytearray(b"\n".join(lines))
    return bytes(out)


# ---------------------------------------------------------------------------------- text pairs

SICK = (
    b"pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
    b"1\tA brown dog runs across a meadow\tA dog is running across a field\t4.6\tENTAILMENT\n"
    b"2\tTwo girls are baking bread\tA man is fixing a red bicycle\t1.1\tNEUTRAL\n"
    b"3\tNobody is swimming in the lake\tA woman is swimming in the lake\t3.4\tCONTRADICTION\n"
)
STSB = (
    b"main-captions\tMSRvid\t2012test\t0001\t5.000\tA heron stands in water.\tA heron is standing in water.\n"
    b'main-news\theadlines\t2014\t0007\t1.250\tMarkets "rally" again\tRain expected on Friday\n'
    b"main-forums\tanswers-forums\t2015\t0012\t0.000\tWhy is ice slippery?\tI like green tea.\tsrc\tlicence\n"
)
MRPC = (
    codecs.BOM_UTF8 + b"Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n"
    b'1\t100201\t100202\tThe council said "no" to the plan.\tThe plan was rejected by the council.\r\n'
    b"0\t100305\t100306\tSales rose 4% in May.\tThe bridge opened in 1932.\r\n"
)
PAWS = (
    b"id\tsentence1\tsentence2\tlabel\r\n"
    b"1\tThe mill stands on the north bank .\tThe north bank stands on the mill .\t0\r\n"
    b"2\tShe moved to Lyon in 1990 .\tIn 1990 , she moved to Lyon .\t1\r\n"
)
QQP = (
    b"1\tHow do I start learning the violin ?\tWhat is the best way to begin violin lessons ?\t501\n"
    b"0\tWhy do cats purr ?\tHow far away is the Moon ?\t502\n"
)
PAIRS_TSV = (
    b"sentence1\tsentence2\tlabel\nA kite flies\tA kite is flying\t0.8\nBoats sail\tA dog barks\t0.1\n"
)
PAIRS_CSV = b'sentence1,sentence2,label\n"Hello, world",Hi there,1\nA "quiet" room,Loud music,0\n'


def read_pairs(path: Path, sep: str) -> text.TextPairs:
    return text.read_pairs_csv(
        path, text_a_col="sentence1", text_b_col="sentence2", label_col="label", sep=sep
    )


@dataclass(frozen=True)
class TextFormat:
    """A text-pair format: its reader, a valid sample, and where the values are on each line."""

    read: Callable[[Path], text.TextPairs]
    sample: bytes
    header: bool
    columns: tuple[int, int, int] | None  # a, b, label; None: found by name in the header
    sep: str = "\t"


FORMATS = {
    "sick": TextFormat(text.read_sick, SICK, True, (1, 2, 3)),
    "stsb": TextFormat(text.read_stsb, STSB, False, (5, 6, 4)),
    "mrpc": TextFormat(text.read_mrpc, MRPC, True, (3, 4, 0)),
    "paws": TextFormat(text.read_paws, PAWS, True, (1, 2, 3)),
    "qqp": TextFormat(text.read_qqp, QQP, False, (1, 2, 0)),
    "pairs-tsv": TextFormat(lambda p: read_pairs(p, "\t"), PAIRS_TSV, True, None),
    "pairs-csv": TextFormat(lambda p: read_pairs(p, ","), PAIRS_CSV, True, None, sep=","),
}


def data_lines(data: bytes) -> list[str]:
    """Non-empty lines (BOM, ``\\r`` at line ends removed), counted independently of the readers."""
    lines = [line.rstrip(b"\r") for line in data.removeprefix(codecs.BOM_UTF8).split(b"\n")]
    return [line.decode("utf-8") for line in lines if line]


def check_pairs(pairs: text.TextPairs, data: bytes, fmt: TextFormat) -> None:
    """The parse has one pair per data line, with that line's sentences and label.

    Tab-separated lines are split on tabs; comma-separated ones with :mod:`csv` one line at a
    time, so this holds only for files where no quoted field spans lines.
    """
    lines = data_lines(data)
    rows = [line.split("\t") for line in lines] if fmt.sep == "\t" else list(csv.reader(lines))
    if fmt.header:
        header, rows = [name.strip() for name in rows[0]], rows[1:]
    if fmt.columns is None:
        columns = tuple(header.index(name) for name in ("sentence1", "sentence2", "label"))
    else:
        columns = fmt.columns
    assert len(pairs) == len(rows), f"{len(rows)} data lines but {len(pairs)} pairs"
    a, b, label = columns
    assert pairs.a == [row[a].strip() for row in rows]
    assert pairs.b == [row[b].strip() for row in rows]
    np.testing.assert_array_equal(pairs.labels, np.array([float(row[label]) for row in rows], np.float32))


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_text_samples_are_valid(name: str, tmp_path: Path) -> None:
    fmt = FORMATS[name]
    pairs = fmt.read(write(tmp_path / f"{name}.txt", fmt.sample))
    check_pairs(pairs, fmt.sample, fmt)
    assert len(pairs) == len(data_lines(fmt.sample)) - fmt.header >= 2


@pytest.mark.parametrize("name", sorted(FORMATS))
@FUZZ
@given(ops=mutations())
def test_mutated_text_files(name: str, ops: list[Op], scratch: Path) -> None:
    fmt = FORMATS[name]
    data = mutate(fmt.sample, ops, fmt.sep.encode())
    path = write(scratch / f"{name}.txt", data)
    pairs = outcome(DataError, path, fmt.read, path)
    # With CSV quoting a record may span lines: count lines only for quote-free CSV.
    if pairs is not None and (fmt.sep == "\t" or b'"' not in data):
        check_pairs(pairs, data, fmt)


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_as_text_files(data: bytes, scratch: Path) -> None:
    path = write(scratch / "random.txt", data)
    for fmt in FORMATS.values():
        pairs = outcome(DataError, path, fmt.read, path)
        if pairs is not None and (fmt.sep == "\t" or b'"' not in data):
            check_pairs(pairs, data, fmt)


# ---------------------------------------------------------------------------------- idx files


@st.composite
def idx_files(draw: st.DrawFn) -> tuple[bytes, tuple[int, ...], bytes]:
    """A valid idx file: (bytes, shape, pixel bytes)."""
    labels = draw(st.booleans())
    n = draw(st.integers(0, 4))
    shape = (n,) if labels else (n, draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    body = draw(st.binary(min_size=math.prod(shape), max_size=math.prod(shape)))
    header = struct.pack(">I", 2049 if labels else 2051) + b"".join(struct.pack(">I", d) for d in shape)
    return header + body, shape, body


def idx_content(data: bytes) -> tuple[tuple[int, ...], bytes]:
    """Shape and pixel bytes of an idx file, parsed here (call only on a file read_idx accepted)."""
    raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    ndim = {2049: 1, 2051: 3}[struct.unpack(">I", raw[:4])[0]]
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return shape, raw[4 + 4 * ndim :]


@FUZZ
@given(idx=idx_files(), compress=st.booleans(), ops=st.none() | mutations(tokens=()))
def test_mutated_idx_files(
    idx: tuple[bytes, tuple[int, ...], bytes], compress: bool, ops: list[Op] | None, scratch: Path
) -> None:
    data, shape, body = idx
    data = mutate(gzip.compress(data, mtime=0) if compress else data, ops)
    path = write(scratch / "x.idx", data)
    array = outcome(DataError, path, images.read_idx, path)
    if ops is None:
        assert array is not None and array.shape == shape and array.tobytes() == body
    if array is not None:
        found_shape, found_body = idx_content(data)
        assert array.dtype == np.uint8 and array.shape == found_shape
        assert array.tobytes() == found_body


def test_idx_header_whose_size_overflows_int64_is_a_data_error(tmp_path: Path) -> None:
    # 2**31 * 2**31 * 4 == 2**64: an int64 product wraps to 0 and matched the empty body.
    path = tmp_path / "overflow.idx"
    path.write_bytes(struct.pack(">IIII", 2051, 2**31, 2**31, 4))
    with pytest.raises(DataError, match="size mismatch"):
        images.read_idx(path)


# ---------------------------------------------------------------------------------- image files

SIDE = (5, 6)  # height, width of every generated image


def pixels(seed: int, mode: str) -> np.ndarray:
    """A small known image: (H, W) for L and 1, (H, W, 3) for RGB, (H, W, 4) for RGBA."""
    rng = np.random.default_rng(seed)
    if mode == "1":
        return rng.integers(0, 2, size=SIDE, dtype=np.uint8) * 255
    channels = {"L": (), "RGB": (3,), "RGBA": (4,)}[mode]
    return rng.integers(0, 256, size=SIDE + channels, dtype=np.uint8)


def png(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(array)
    (image.convert("1") if mode == "1" else image).save(buffer, format="PNG")
    return buffer.getvalue()


def as_channels(array: np.ndarray, channels: int) -> np.ndarray:
    """What a reader should give for a known image in ``channels`` channels (alpha dropped)."""
    if array.ndim == 2:
        return array[:, :, None] if channels == 1 else np.repeat(array[:, :, None], 3, axis=2)
    assert channels == 3
    return array[:, :, :3]


IMAGE = st.tuples(
    st.sampled_from(["L", "RGB", "RGBA", "1"]),  # mode
    st.integers(0, 1000),  # seed of the pixels
    st.none() | mutations(tokens=()),  # damage to the PNG bytes, if any
)


@FUZZ
@given(classes=st.lists(st.lists(IMAGE, min_size=2, max_size=3), min_size=1, max_size=3))
def test_image_folders_with_damaged_files(
    classes: list[list[tuple[str, int, list[Op] | None]]], scratch: Path
) -> None:
    with fresh_dir(scratch) as root:
        for c, files in enumerate(classes):
            (root / f"class{c}").mkdir()
            for f, (mode, seed, ops) in enumerate(files):
                data = png(pixels(seed, mode), mode)
                (root / f"class{c}" / f"img{f}.png").write_bytes(mutate(data, ops))
        result = outcome(DataError, root, images.read_image_folder, root)
        damaged = any(ops is not None for files in classes for _, _, ops in files)
        if not damaged:
            assert result is not None
        if result is None:
            return
        expected_labels = [c for c, files in enumerate(classes) for _ in files]
        assert len(result) == len(expected_labels)
        np.testing.assert_array_equal(result.labels, expected_labels)
        assert result.class_names == [f"class{c}" for c in range(len(classes))]
        channels = result.images.shape[3]
        assert result.images.shape == (len(expected_labels), *SIDE, channels)
        files = [spec for specs in classes for spec in specs]
        if not damaged:
            gray = all(mode in ("L", "1") for mode, _, _ in files)
            assert channels == (1 if gray else 3)
        for i, (mode, seed, ops) in enumerate(files):
            if ops is None:
                np.testing.assert_array_equal(result.images[i], as_channels(pixels(seed, mode), channels))


# ---------------------------------------------------------------------------------- Omniglot

JUNK = ("images_background/", "images_background/Greek/", "__MACOSX/._x.png", "images_background/.DS_Store")
BAD_LAYOUT = (
    "images_background/Greek/character01.png",
    "Greek/character01/0101_01.png",
    "images_background/Greek/char01/0101_01.png",
    "images_background/Greek/character01/sub/0101_01.png",
    "images_background/Greek/character01/0101_01.jpg",
    "images_background/Greek/character01/readme.txt",
)
ALPHABETS = ("Greek", "Korean", "Latin")


def zip_bytes(members: list[tuple[str, bytes]], deflate: bool) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


@st.composite
def background_zips(draw: st.DrawFn) -> tuple[list[tuple[str, bytes]], dict[str, np.ndarray], bool]:
    """Members of an Omniglot background zip, the pixels of each image, and whether it is valid."""
    alphabets = draw(st.lists(st.sampled_from(ALPHABETS), min_size=1, max_size=3, unique=True))
    members, known = [], {}
    for a, alphabet in enumerate(alphabets):
        for c in range(1, draw(st.integers(1, 2)) + 1):
            for drawer in range(1, draw(st.integers(1, 2)) + 1):
                name = f"images_background/{alphabet}/character{c:02d}/{a}{c:02d}_{drawer:02d}.png"
                array = pixels(100 * a + 10 * c + drawer, "1")
                members.append((name, png(array, "1")))
                known[name] = array
    members += [(name, b"") for name in draw(st.lists(st.sampled_from(JUNK), max_size=2, unique=True))]
    bad = draw(st.lists(st.sampled_from(BAD_LAYOUT), max_size=1))
    members += [(name, png(pixels(0, "1"), "1")) for name in bad]
    order = draw(st.permutations(range(len(members))))
    return [members[i] for i in order], known, not bad


@FUZZ
@given(
    spec=background_zips(), deflate=st.booleans(), twice=st.booleans(), ops=st.none() | mutations(tokens=())
)
def test_omniglot_background_zips(
    spec: tuple[list[tuple[str, bytes]], dict[str, np.ndarray], bool],
    deflate: bool,
    twice: bool,
    ops: list[Op] | None,
    scratch: Path,
) -> None:
    members, known, valid = spec
    path = write(scratch / "background.zip", mutate(zip_bytes(members, deflate), ops))
    # The same zip given twice must de-duplicate to the same images.
    result = outcome(DataError, path, images.read_omniglot_background, [path, path] if twice else path)
    if ops is None:
        assert (result is not None) == valid
    if result is None:
        return
    assert len(result) == len(known), f"{len(known)} images in the zip but {len(result)} read"
    if ops is None:
        names = sorted(known, key=lambda n: tuple(n.split("/")[1:]))
        for i, name in enumerate(names):
            np.testing.assert_array_equal(result.images[i, :, :, 0], known[name])
        classes = sorted({"/".join(n.split("/")[1:3]) for n in known})
        assert result.class_names == classes
        assert result.group_names == sorted({n.split("/")[1] for n in known})
        np.testing.assert_array_equal(
            result.labels, [classes.index("/".join(n.split("/")[1:3])) for n in names]
        )


@st.composite
def runs_zips(
    draw: st.DrawFn,
) -> tuple[list[tuple[str, bytes]], list[tuple[list[np.ndarray], list[int]]], bool]:
    """Members of an all_runs-style zip, each run's exemplars and answers, and whether it is valid."""
    runs, members = [], []
    valid = True
    for r in range(1, draw(st.integers(1, 2)) + 1):
        run = f"run{r:02d}"
        k = draw(st.integers(2, 3))
        answers = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=3))
        exemplars = [pixels(10 * r + i, "1") for i in range(k)]
        members += [(f"{run}/training/class{i + 1:02d}.png", png(x, "1")) for i, x in enumerate(exemplars)]
        members += [
            (f"{run}/test/item{j + 1:02d}.png", png(exemplars[answer], "1"))
            for j, answer in enumerate(answers)
        ]
        lines = [
            f"{run}/test/item{j + 1:02d}.png {run}/training/class{a + 1:02d}.png"
            for j, a in enumerate(answers)
        ]
        lines = [lines[i] for i in draw(st.permutations(range(len(lines))))]
        edit = draw(st.sampled_from(["none", "blank", "dup", "spaces", "drop", "swap", "extra"]))
        if edit == "blank":
            lines.insert(draw(st.integers(0, len(lines))), "   ")
        elif edit == "dup":
            lines.append(lines[0])
        elif edit == "spaces":
            lines = [f"  {line.replace(' ', chr(9))}  " for line in lines]
        elif edit == "drop":
            del lines[0]
        elif edit == "swap":
            lines[0] = " ".join(reversed(lines[0].split()))
        elif edit == "extra":
            lines[0] += " surplus"
        valid &= edit not in ("drop", "swap", "extra")
        eol = draw(st.sampled_from(["\n", "\r\n"]))
        members.append((f"{run}/class_labels.txt", (eol.join(lines) + eol).encode()))
        runs.append((exemplars, answers))
    if draw(st.booleans()):
        members.append((draw(st.sampled_from(["run01/", "run01/test/", "__MACOSX/._a"])), b""))
    if draw(st.booleans()):
        members.append((draw(st.sampled_from(["readme.txt", "run09/test/item01.png", "run01/x.png"])), b"x"))
        valid = False
    return members, runs, valid


@FUZZ
@given(spec=runs_zips(), deflate=st.booleans(), ops=st.none() | mutations(tokens=()))
def test_omniglot_runs_zips(
    spec: tuple[list[tuple[str, bytes]], list[tuple[list[np.ndarray], list[int]]], bool],
    deflate: bool,
    ops: list[Op] | None,
    scratch: Path,
) -> None:
    members, runs, valid = spec
    path = write(scratch / "all_runs.zip", mutate(zip_bytes(members, deflate), ops))
    result = outcome(DataError, path, images.read_omniglot_runs, path)
    if ops is None:
        assert (result is not None) == valid
    if result is None:
        return
    assert [run.name for run in result] == [f"run{r:02d}" for r in range(1, len(runs) + 1)]
    for run, (exemplars, answers) in zip(result, runs, strict=True):
        np.testing.assert_array_equal(run.answers, answers)
        np.testing.assert_array_equal(run.exemplars[:, :, :, 0], np.stack(exemplars))
        np.testing.assert_array_equal(run.queries[:, :, :, 0], np.stack([exemplars[a] for a in answers]))


def zip_of_images(names: list[str], deflate: bool = False) -> bytearray:
    return bytearray(zip_bytes([(name, png(pixels(i, "1"), "1")) for i, name in enumerate(names)], deflate))


TWO_IMAGES = [f"images_background/Greek/character01/0101_0{k}.png" for k in (1, 2)]
CENTRAL = b"PK\x01\x02"  # signature of a central-directory entry
LOCAL = b"PK\x03\x04"  # signature of a local file header


def test_zip_with_a_bad_utf8_member_name_is_a_data_error(tmp_path: Path) -> None:
    data = zip_bytes([("images_background/Gr\u00e9ek/character01/0101_01.png", b"")], deflate=False)
    path = tmp_path / "bad-name.zip"
    path.write_bytes(data.replace("\u00e9".encode(), b"\xc3\x28"))  # flagged UTF-8, but is not
    with pytest.raises(DataError, match="not a readable zip"):
        images.read_omniglot_background(path)


def test_zip_needing_an_unknown_format_version_is_a_data_error(tmp_path: Path) -> None:
    data = zip_of_images(TWO_IMAGES)
    at = data.find(CENTRAL)
    data[at + 6 : at + 8] = struct.pack("<H", 130)  # "needs version 13.0 to extract"
    path = tmp_path / "version.zip"
    path.write_bytes(data)
    with pytest.raises(DataError, match="version"):
        images.read_omniglot_background(path)


def test_zip_member_whose_data_runs_past_the_end_is_a_data_error(tmp_path: Path) -> None:
    members = [("run01/training/class01.png", png(pixels(1, "1"), "1")), ("run01/test/item01.png", b"")]
    members.append(("run01/class_labels.txt", b"run01/test/item01.png run01/training/class01.png\n"))
    data = bytearray(zip_bytes(members, deflate=True))
    at = data.rfind(LOCAL)
    data[at + 28 : at + 30] = struct.pack("<H", 0x5300)  # a huge extra field: the data starts past EOF
    path = tmp_path / "runs.zip"
    path.write_bytes(data)
    with pytest.raises(DataError, match="cannot read zip member"):  # was a bare EOFError
        images.read_omniglot_runs(path)


def test_zip_directory_that_hides_an_entry_is_a_data_error(tmp_path: Path) -> None:
    # A comment length covering the next directory entry made zipfile skip that entry
    # silently: one image of two was read.
    data = zip_of_images(TWO_IMAGES)
    at = data.find(CENTRAL)
    data[at + 32 : at + 34] = struct.pack("<H", 46 + len(TWO_IMAGES[1]))
    path = tmp_path / "hidden.zip"
    path.write_bytes(data)
    with pytest.raises(DataError, match="declares 2 entries but lists 1"):
        images.read_omniglot_background(path)


def test_zip_listing_a_member_twice_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "twice.zip"
    with pytest.warns(UserWarning, match="Duplicate name"):
        path.write_bytes(zip_of_images([TWO_IMAGES[0], *TWO_IMAGES]))
    with pytest.raises(DataError, match="lists .*0101_01.png twice"):
        images.read_omniglot_background(path)


def test_runs_zip_whose_labels_file_lost_its_name_is_a_data_error(tmp_path: Path) -> None:
    # Without its class_labels.txt a run used to vanish silently from the benchmark.
    members = []
    for run in ("run01", "run02"):
        members += [(f"{run}/training/class01.png", png(pixels(1, "1"), "1"))]
        members += [(f"{run}/test/item01.png", png(pixels(1, "1"), "1"))]
        labels = "class_labels.txt" if run == "run01" else "class_labels.txu"
        members += [(f"{run}/{labels}", f"{run}/test/item01.png {run}/training/class01.png\n".encode())]
    path = tmp_path / "runs.zip"
    path.write_bytes(zip_bytes(members, deflate=False))
    with pytest.raises(DataError, match="run02/.* is not part of a run"):
        images.read_omniglot_runs(path)


# ---------------------------------------------------------------------------------- basketball

GAME_COLUMNS = ("season", "team_1", "team_2", "home", "seed_diff", "score_diff", "score_1", "score_2", "won")


@st.composite
def games_files(draw: st.DrawFn) -> bytes:
    """A valid course-format games CSV: each game twice, once from each team's side."""
    pred = draw(st.booleans())
    header = ",".join(GAME_COLUMNS + (("pred",) if pred else ()))
    lines = [header]
    for _ in range(draw(st.integers(1, 3))):
        season = draw(st.integers(1985, 2017))
        t1, t2 = draw(st.lists(st.integers(0, 10_000), min_size=2, max_size=2, unique=True))
        s1, s2 = draw(st.integers(30, 120)), draw(st.integers(30, 120))
        seed = draw(st.integers(-15, 15))
        value = draw(st.floats(-30, 30, allow_nan=False)) if pred else None
        for a, b, sa, sb, sign in ((t1, t2, s1, s2, 1), (t2, t1, s2, s1, -1)):
            row = [season, a, b, 0, sign * seed, sa - sb, sa, sb, int(sa > sb)]
            lines.append(",".join(map(str, row)) + ("" if value is None else f",{sign * value!r}"))
    return ("\n".join(lines) + "\n").encode()


def csv_rows(data: bytes) -> list[list[str]]:
    """Header and rows of a quote-free CSV, split here: CR LF, CR or LF ends a line; blank lines skipped."""
    content = data.decode("utf-8-sig")
    return [line.split(",") for line in re.split(r"\r\n|\r|\n", content) if line.strip()]


@FUZZ
@given(data=games_files(), ops=st.none() | mutations(tokens=(*TOKENS, b"_", b"+", b"-", b"0")))
def test_mutated_games_files(data: bytes, ops: list[Op] | None, scratch: Path) -> None:
    data = mutate(data, ops, b",")
    path = write(scratch / "games.csv", data)
    games = outcome(DataError, path, basketball.read_games_csv, path)
    if ops is None:
        assert games is not None
    if games is None or b'"' in data:
        return
    header, *rows = csv_rows(data)
    assert len(games) == len(rows), f"{len(rows)} data lines but {len(games)} games"
    for name in ("season", "team_1", "team_2", "score_1", "score_2"):
        column = [field.strip() for field in header].index(name)
        np.testing.assert_array_equal(games.column(name), [int(row[column]) for row in rows])


KAGGLE_RESULTS = (
    b"Season,DayNum,WTeamID,WScore,LTeamID,LScore,WLoc,NumOT\n"
    b"1985,20,1228,81,1328,64,N,0\n1985,25,1106,77,1354,70,H,0\n1986,30,1112,63,1223,56,A,1\n"
)


@FUZZ
@given(
    ops=mutations(tokens=()) | st.none(),
    inner=st.none() | mutations(tokens=(*TOKENS, b"H", b"A", b"N", b"0")),
    deflate=st.booleans(),
)
def test_mutated_kaggle_season_zips(
    ops: list[Op] | None, inner: list[Op] | None, deflate: bool, scratch: Path
) -> None:
    # The CSV inside is mutated (a valid zip of a damaged CSV), then the zip itself.
    csv_data = mutate(KAGGLE_RESULTS, inner, b",")
    data = mutate(zip_bytes([("MRegularSeasonCompactResults.csv", csv_data)], deflate=deflate), ops)
    with fresh_dir(scratch) as folder:
        path = write(folder / basketball.KAGGLE_SEASON_ZIP, data)
        results = outcome(DataError, path, basketball.read_season_results, path)
    if ops is None and inner is None:
        assert results is not None
    if results is None:
        return
    # Accepted: it must hold every game of the CSV it was read from (no silent truncation).
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        (name,) = [n for n in archive.namelist() if n.lower().endswith(".csv")]
        content = archive.read(name)
    if b'"' in content:
        return
    header, *rows = csv_rows(content)
    assert len(results.season) == len(rows), f"{len(rows)} data lines but {len(results.season)} games"
    names = [field.strip() for field in header]
    for column, values in (
        ("Season", results.season),
        ("WTeamID", results.w_team),
        ("LScore", results.l_score),
    ):
        np.testing.assert_array_equal(values, [int(row[names.index(column)]) for row in rows])
    assert outcome(DataError, folder, basketball.build_season_table, kaggle_dir=folder) is None


def test_kaggle_zip_with_a_bad_utf8_member_name_is_a_data_error(tmp_path: Path) -> None:
    data = zip_bytes([("Results\u00e9.csv", b"Season\n")], deflate=False)
    write(tmp_path / basketball.KAGGLE_SEASON_ZIP, data.replace("\u00e9".encode(), b"\xc3\x28"))
    with pytest.raises(DataError, match="not a readable zip"):  # was a bare UnicodeDecodeError
        basketball.build_season_table(kaggle_dir=tmp_path)


def test_games_file_with_an_integer_too_large_for_int64(tmp_path: Path) -> None:
    path = tmp_path / "games.csv"
    path.write_bytes(b"season,team_1,team_2,score_1,score_2\n1985,1,2,99999999999999999999999,50\n")
    with pytest.raises(DataError, match="too large for a 64-bit integer") as info:
        basketball.read_games_csv(path)
    assert info.value.line == 2


# ---------------------------------------------------------------------------------- index folders

DIM = 4
IDS = [3, 5, 8, 13, 21, 34, 55, 89]
PAYLOADS = ["alpha", {"b": [1, 2]}, None, 2.5, "é ü", [True, False], "", {"nested": {"x": "y"}}]
FACTORIES = ("Flat", "IVF2,Flat")


@dataclass(frozen=True)
class SavedIndex:
    folder: Path
    vectors: np.ndarray
    files: dict[str, bytes]


@pytest.fixture(scope="module")
def saved_indexes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SavedIndex]:
    vectors = np.random.default_rng(0).normal(size=(len(IDS), DIM)).astype(np.float32)
    saved = {}
    for factory in FACTORIES:
        folder = tmp_path_factory.mktemp("index") / factory.replace(",", "_")
        Index.from_vectors(vectors, ids=IDS, payloads=PAYLOADS, factory=factory).save(folder)
        files = {p.name: p.read_bytes() for p in index_files(folder).iterdir()}
        saved[factory] = SavedIndex(folder, vectors, files)
    return saved


def damaged_copy(saved: SavedIndex, target: Path, name: str, data: bytes, *, rehash: bool) -> Path:
    """Copy an index folder with one file replaced; ``rehash`` records its new size and sha256."""
    files = dict(saved.files, **{name: data})
    if rehash:
        manifest = json.loads(saved.files["manifest.json"])
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        files["manifest.json"] = json.dumps(manifest).encode()
    version = target / "v-00000000000000000001-00000000"
    version.mkdir(parents=True)
    for file, content in files.items():
        write(version / file, content)
    (target / "CURRENT").write_text(version.name + "\n")
    return target


def load_damaged(saved: SavedIndex, scratch: Path, name: str, data: bytes, *, rehash: bool) -> Index | None:
    """Index.load on a copy of ``saved`` with file ``name`` replaced; None if it raised IndexFileError.

    Unless ``rehash`` records the new file in the manifest, a data file that changed at all
    must be refused by its sha256.
    """
    with fresh_dir(scratch) as work:
        index = outcome(
            IndexFileError, work, Index.load, damaged_copy(saved, work / "idx", name, data, rehash=rehash)
        )
    if data == saved.files[name]:
        assert index is not None
    elif not rehash and name != "manifest.json":
        assert index is None, f"a changed {name} that no longer matches its sha256 was accepted"
    return index


def check_index(index: Index | None, vectors: np.ndarray, payloads: dict[int, Any] | None = None) -> None:
    """A loaded index (if any) holds every item once; searches give known ids with their payloads."""
    if index is None:
        return
    payloads = dict(zip(IDS, PAYLOADS, strict=True)) if payloads is None else payloads
    assert index.ntotal == len(payloads) == len(IDS)
    with time_limit():
        scores, ids = index.search_vectors(vectors, 3)
        hits = index.hits(scores, ids)
        recall = recall_at_k(index, vectors, k=3)
    assert len(hits) == len(vectors) and ids.shape == scores.shape == (len(vectors), 3)
    assert 0.0 <= recall <= 1.0
    for row in hits:
        assert len(row) <= 3
        for hit in row:
            assert hit.id in payloads
            assert json.dumps(hit.payload, sort_keys=True) == json.dumps(payloads[hit.id], sort_keys=True)


def payloads_of(data: bytes) -> dict[int, Any]:
    """Id -> payload of a payloads.jsonl file, parsed here (call only on a file the index accepted)."""
    lines = [line for line in re.split(r"\r\n|\r|\n", data.decode("utf-8")) if line]
    records = [json.loads(line) for line in lines]
    return {record["id"]: record["payload"] for record in records}


def test_saved_index_loads_exactly(saved_indexes: dict[str, SavedIndex]) -> None:
    for factory, saved in saved_indexes.items():
        index = Index.load(saved.folder)
        check_index(index, saved.vectors)
        if factory == "Flat":
            assert [row[0].id for row in index.hits(*index.search_vectors(saved.vectors, 1))] == IDS


@pytest.mark.parametrize("factory", FACTORIES)
@FUZZ
@given(ops=mutations())
def test_index_with_mutated_manifest(
    factory: str, ops: list[Op], saved_indexes: dict[str, SavedIndex], scratch: Path
) -> None:
    saved = saved_indexes[factory]
    data = mutate(saved.files["manifest.json"], ops, b",")
    check_index(load_damaged(saved, scratch, "manifest.json", data, rehash=False), saved.vectors)


@pytest.mark.parametrize("factory", FACTORIES)
@FUZZ
@given(ops=mutations(), rehash=st.booleans())
def test_index_with_mutated_payloads(
    factory: str, ops: list[Op], rehash: bool, saved_indexes: dict[str, SavedIndex], scratch: Path
) -> None:
    saved = saved_indexes[factory]
    data = mutate(saved.files["payloads.jsonl"], ops, b",")
    index = load_damaged(saved, scratch, "payloads.jsonl", data, rehash=rehash)
    check_index(index, saved.vectors, None if index is None else payloads_of(data))


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("name", ["vectors.npy", "index.faiss"])
@FUZZ
@given(ops=mutations(tokens=()), rehash=st.booleans())
def test_index_with_mutated_binary_files(
    factory: str, name: str, ops: list[Op], rehash: bool, saved_indexes: dict[str, SavedIndex], scratch: Path
) -> None:
    # A re-hashed index.faiss is fuzzed in a process with capped memory, see below.
    saved = saved_indexes[factory]
    rehash &= name != "index.faiss"
    check_index(
        load_damaged(saved, scratch, name, mutate(saved.files[name], ops), rehash=rehash), saved.vectors
    )


@pytest.mark.parametrize("factory", FACTORIES)
def test_payload_ids_that_differ_from_the_faiss_ids_are_refused(
    factory: str, saved_indexes: dict[str, SavedIndex], tmp_path: Path
) -> None:
    # Loaded before, then search raised KeyError for the id only FAISS knew.
    saved = saved_indexes[factory]
    data = saved.files["payloads.jsonl"].replace(b'"id": 3,', b'"id": 4,')
    folder = damaged_copy(saved, tmp_path / "idx", "payloads.jsonl", data, rehash=True)
    with pytest.raises(IndexFileError, match="ids are not the ids listed in payloads.jsonl"):
        Index.load(folder)


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        # ids beyond int64 raised OverflowError; deep nesting RecursionError
        ("payloads.jsonl", lambda d: d.replace(b'"id": 3,', b'"id": 99999999999999999999,', 1), "expected"),
        ("payloads.jsonl", lambda d: b"[" * 100_000 + b"\n" + d, "nested too deeply"),
        ("manifest.json", lambda d: b"[" * 100_000, "not a readable JSON manifest"),
        # a tower file name too long for the file system raised OSError
        (
            "manifest.json",
            lambda d: d.replace(b'"tower_path": null', b'"tower_path": "' + b"x" * 5000 + b'"'),
            "tower",
        ),
        # a header numpy's tokenizer chokes on (TokenError), a zip (.npz), a huge declared shape
        ("vectors.npy", lambda d: d.replace(b"}", b" ", 1), "not a readable .npy"),
        ("vectors.npy", lambda d: zip_bytes([("vectors.npy", d)], deflate=False), "not a .npy file"),
        ("vectors.npy", lambda d: d.replace(b"(8, 4)", b"(8000000000000, 4)"), "not a readable .npy"),
    ],
)
def test_damaged_index_files_found_by_fuzzing(
    name: str,
    edit: Callable[[bytes], bytes],
    message: str,
    saved_indexes: dict[str, SavedIndex],
    tmp_path: Path,
) -> None:
    saved = saved_indexes["Flat"]
    data = edit(saved.files[name])
    assert data != saved.files[name]
    folder = damaged_copy(saved, tmp_path / "idx", name, data, rehash=name != "manifest.json")
    with pytest.raises(IndexFileError, match=message):
        Index.load(folder)


def faiss_file_property(folder: str) -> None:
    """Index.load on FAISS files mutated and re-hashed: a working index or IndexFileError.

    ``folder`` holds a saved index in ``base/`` and its vectors in ``vectors.npy``. FAISS trusts
    the sizes inside its own files, so a damaged size can make it allocate a lot of memory: run
    this in a process whose address space is capped (see the test below).
    """
    base = Path(folder)
    files = {p.name: p.read_bytes() for p in index_files(base / "base").iterdir()}
    saved = SavedIndex(base / "base", np.load(base / "vectors.npy"), files)

    @FUZZ
    @given(ops=mutations(tokens=()))
    def check(ops: list[Op]) -> None:
        data = mutate(saved.files["index.faiss"], ops)
        check_index(load_damaged(saved, base, "index.faiss", data, rehash=True), saved.vectors)

    check()


@pytest.mark.slow  # a fresh Python process under an address-space limit
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs RLIMIT_AS and /proc (Linux)")
@pytest.mark.parametrize("factory", FACTORIES)
def test_index_with_mutated_and_rehashed_faiss_file(
    factory: str, saved_indexes: dict[str, SavedIndex], tmp_path: Path
) -> None:
    saved = saved_indexes[factory]
    shutil.copytree(saved.folder, tmp_path / "base")
    np.save(tmp_path / "vectors.npy", saved.vectors)
    from conftest import run_python

    run_python(
        f"""
        import re, resource, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import test_fuzz_readers as fuzz
        status = open("/proc/self/status").read()
        used = int(re.search(r"VmSize:\\s+(\\d+) kB", status).group(1)) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (used + 3 * 2**30, resource.getrlimit(resource.RLIMIT_AS)[1]))
        fuzz.faiss_file_property({str(tmp_path)!r})
        """,
        timeout=120,
    )
