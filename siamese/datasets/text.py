"""Readers for sentence-pair similarity datasets.

Every reader returns a :class:`TextPairs`: two parallel lists of sentences, one float32 label
per pair, and whether the labels are graded scores (SICK, STS-B) or binary judgements (MRPC,
PAWS, QQP). :func:`load_text_dataset` turns a dataset name, a ``tfds:`` name or a CSV/TSV
path into ``train``/``dev``/``test`` splits.

Files are read as bytes and decoded one line at a time, so a bad byte, a missing field or a
non-numeric score is reported as a :class:`~siamese.errors.DataError` naming the file and
its 1-based line. A UTF-8 byte-order mark at the start of a file and ``\\r`` at the end of a
line are removed; completely empty lines are skipped.
"""

from __future__ import annotations

import codecs
import csv
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from siamese.datasets.locate import locate
from siamese.datasets.records import BINARY, GRADED, KINDS, TextPairs
from siamese.datasets.splits import hold_out_indices
from siamese.datasets.tfds import load_tfds_pairs
from siamese.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

TEXT_DATASETS: tuple[str, ...] = ("sick", "stsb", "mrpc", "paws", "qqp")
TFDS_PREFIX = "tfds:"

SICK_SCALE = (1.0, 5.0)
STSB_SCALE = (0.0, 5.0)
ENTAILMENT_LABELS: tuple[str, ...] = ("ENTAILMENT", "NEUTRAL", "CONTRADICTION")

_SICK_HEADER = ("pair_ID", "sentence_A", "sentence_B", "relatedness_score", "entailment_judgment")
_MRPC_HEADER = ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")
_PAWS_HEADER = ("id", "sentence1", "sentence2", "label")

PathLike = str | os.PathLike[str]
Column = int | str


# ----------------------------------------------------------------------------- line reading


def _decode_lines(path: PathLike) -> list[tuple[int, str]]:
    """All lines of a file as ``(line_number, text)``, BOM and line endings removed."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except OSError as exc:
        raise DataError(f"cannot read file ({exc.strerror or exc})", path=path) from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    lines = []
    for number, raw in enumerate(pieces, start=1):
        try:
            text = raw.rstrip(b"\r").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"text is not valid UTF-8 (bad byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                path=path,
                line=number,
            ) from None
        lines.append((number, text))
    return lines


def read_lines(path: PathLike) -> list[tuple[int, str]]:
    """Non-empty lines of a file as ``(line_number, text)``; an empty file is an error."""
    lines = [(number, text) for number, text in _decode_lines(path) if text != ""]
    if not lines:
        raise DataError("file is empty", path=path, line=1)
    return lines


def _data_rows(
    lines: list[tuple[int, str]], path: PathLike, header: tuple[str, ...] | None
) -> list[tuple[int, str]]:
    """The data lines, after checking and dropping the expected header line."""
    if header is None:
        return lines
    number, text = lines[0]
    found = [part.strip().lower() for part in text.split("\t")]
    if found != [name.lower() for name in header]:
        raise DataError(
            f"expected the header {', '.join(header)} (tab-separated), found {text[:120]!r}",
            path=path,
            line=number,
        )
    if len(lines) == 1:
        raise DataError("file has a header but no data rows", path=path, line=number + 1)
    return lines[1:]


def _fields(text: str, path: PathLike, line: int, count: int, *, at_least: bool = False) -> list[str]:
    """Split a line on tabs, checking the number of fields."""
    parts = text.split("\t")
    if len(parts) < count or (not at_least and len(parts) != count):
        wanted = f"at least {count}" if at_least else str(count)
        raise DataError(f"expected {wanted} tab-separated fields, found {len(parts)}", path=path, line=line)
    return parts


def _sentence(value: str, path: PathLike, line: int, column: str) -> str:
    """A sentence with surrounding whitespace removed; empty sentences are an error."""
    value = value.strip()
    if not value:
        raise DataError(f"empty sentence in column {column}", path=path, line=line)
    return value


def _number(value: str, path: PathLike, line: int, column: str) -> float:
    """A finite float parsed from a field."""
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{column} {value.strip()[:40]!r} is not a number", path=path, line=line) from None
    if not math.isfinite(number):
        raise DataError(f"{column} {value.strip()!r} is not finite", path=path, line=line)
    return number


def _score(value: str, path: PathLike, line: int, column: str, scale: tuple[float, float]) -> float:
    """A graded score that must lie within ``scale``."""
    number = _number(value, path, line, column)
    if not scale[0] <= number <= scale[1]:
        raise DataError(
            f"{column} {number:g} is outside the range [{scale[0]:g}, {scale[1]:g}]",
            path=path,
            line=line,
        )
    return number


def _binary(value: str, path: PathLike, line: int, column: str) -> float:
    """A 0/1 label."""
    number = _number(value, path, line, column)
    if number not in (0.0, 1.0):
        raise DataError(f"{column} must be 0 or 1, found {value.strip()!r}", path=path, line=line)
    return number


def _default_name(prefix: str, path: PathLike) -> str:
    return f"{prefix}/{Path(path).stem}"


# ----------------------------------------------------------------------------- named readers


def read_sick(path: PathLike, *, name: str | None = None) -> TextPairs:
    """Read a SemEval-2014 SICK file (``SICK_train.txt``, ``SICK_trial.txt``, ...).

    The file is tab-separated with the header ``pair_ID, sentence_A, sentence_B,
    relatedness_score, entailment_judgment``. Scores must lie in [1, 5]. The entailment
    judgement and pair ID are kept in ``extra["entailment"]`` and ``extra["pair_id"]``.

    Args:
        path: The file to read.
        name: Name of the result; defaults to ``"sick/<file stem>"``.

    Raises:
        DataError: the file is missing, empty, not UTF-8 or not laid out as above.
    """
    rows = _data_rows(read_lines(path), path, _SICK_HEADER)
    a, b, labels, ids, entailment = [], [], [], [], []
    for line, text in rows:
        parts = _fields(text, path, line, len(_SICK_HEADER))
        ids.append(parts[0].strip())
        a.append(_sentence(parts[1], path, line, "sentence_A"))
        b.append(_sentence(parts[2], path, line, "sentence_B"))
        labels.append(_score(parts[3], path, line, "relatedness_score", SICK_SCALE))
        judgement = parts[4].strip().upper()
        if judgement not in ENTAILMENT_LABELS:
            raise DataError(
                f"entailment_judgment {parts[4].strip()!r} is not one of {', '.join(ENTAILMENT_LABELS)}",
                path=path,
                line=line,
            )
        entailment.append(judgement)
    return TextPairs(
        a,
        b,
        np.asarray(labels, dtype=np.float32),
        GRADED,
        SICK_SCALE,
        name or _default_name("sick", path),
        extra={"pair_id": ids, "entailment": entailment},
    )


def read_stsb(path: PathLike, *, name: str | None = None) -> TextPairs:
    """Read an STS Benchmark file (``sts-train.csv``, ``sts-dev.csv``, ``sts-test.csv``).

    Despite the extension the files are tab-separated, with no header and no quoting. Only
    the first 7 fields are used (genre, source file, year, sentence id, score, sentence 1,
    sentence 2); some rows carry extra licence fields, which are ignored. Scores must lie in
    [0, 5]. Genre, source file and year are kept in ``extra``.

    Args:
        path: The file to read.
        name: Name of the result; defaults to ``"stsb/<file stem>"``.

    Raises:
        DataError: the file is missing, empty, not UTF-8 or not laid out as above.
    """
    a, b, labels = [], [], []
    genre, source, year = [], [], []
    for line, text in read_lines(path):
        parts = _fields(text, path, line, 7, at_least=True)
        labels.append(_score(parts[4], path, line, "score", STSB_SCALE))
        a.append(_sentence(parts[5], path, line, "sentence1"))
        b.append(_sentence(parts[6], path, line, "sentence2"))
        genre.append(parts[0].strip())
        source.append(parts[1].strip())
        year.append(parts[2].strip())
    return TextPairs(
        a,
        b,
        np.asarray(labels, dtype=np.float32),
        GRADED,
        STSB_SCALE,
        name or _default_name("stsb", path),
        extra={"genre": genre, "source": source, "year": year},
    )


def read_mrpc(path: PathLike, *, name: str | None = None) -> TextPairs:
    """Read an MRPC file (``msr_paraphrase_train.txt`` / ``_test.txt`` or GLUE's TSVs).

    Tab-separated with the header ``Quality, #1 ID, #2 ID, #1 String, #2 String``, no
    quoting (sentences contain raw ``"``). ``Quality`` (0 or 1) is the label. The sentence
    IDs are kept in ``extra["id_a"]`` and ``extra["id_b"]``.

    Args:
        path: The file to read.
        name: Name of the result; defaults to ``"mrpc/<file stem>"``.

    Raises:
        DataError: the file is missing, empty, not UTF-8 or not laid out as above.
    """
    rows = _data_rows(read_lines(path), path, _MRPC_HEADER)
    a, b, labels, id_a, id_b = [], [], [], [], []
    for line, text in rows:
        parts = _fields(text, path, line, len(_MRPC_HEADER))
        labels.append(_binary(parts[0], path, line, "Quality"))
        id_a.append(parts[1].strip())
        id_b.append(parts[2].strip())
        a.append(_sentence(parts[3], path, line, "#1 String"))
        b.append(_sentence(parts[4], path, line, "#2 String"))
    return TextPairs(
        a,
        b,
        np.asarray(labels, dtype=np.float32),
        BINARY,
        None,
        name or _default_name("mrpc", path),
        extra={"id_a": id_a, "id_b": id_b},
    )


def read_paws(path: PathLike, *, name: str | None = None) -> TextPairs:
    """Read a PAWS-Wiki labelled file (``dev.tsv``, ``test.tsv``, ``train.tsv``).

    Tab-separated with the header ``id, sentence1, sentence2, label``; ``label`` is 0 or 1.
    The ``id`` column is kept in ``extra["id"]``.

    Args:
        path: The file to read.
        name: Name of the result; defaults to ``"paws/<file stem>"``.

    Raises:
        DataError: the file is missing, empty, not UTF-8 or not laid out as above.
    """
    rows = _data_rows(read_lines(path), path, _PAWS_HEADER)
    a, b, labels, ids = [], [], [], []
    for line, text in rows:
        parts = _fields(text, path, line, len(_PAWS_HEADER))
        ids.append(parts[0].strip())
        a.append(_sentence(parts[1], path, line, "sentence1"))
        b.append(_sentence(parts[2], path, line, "sentence2"))
        labels.append(_binary(parts[3], path, line, "label"))
    return TextPairs(
        a,
        b,
        np.asarray(labels, dtype=np.float32),
        BINARY,
        None,
        name or _default_name("paws", path),
        extra={"id": ids},
    )


def read_qqp(path: PathLike, *, name: str | None = None) -> TextPairs:
    """Read a Quora Question Pairs file of the BiMPM split (``dev.tsv``, ``test.tsv``).

    Tab-separated with no header; each line is ``label, question1, question2, pair_id`` with
    ``label`` 0 or 1 (1 = duplicate). ``pair_id`` is kept in ``extra["pair_id"]``.

    Args:
        path: The file to read.
        name: Name of the result; defaults to ``"qqp/<file stem>"``.

    Raises:
        DataError: the file is missing, empty, not UTF-8 or not laid out as above.
    """
    a, b, labels, ids = [], [], [], []
    for line, text in read_lines(path):
        parts = _fields(text, path, line, 4)
        labels.append(_binary(parts[0], path, line, "label"))
        a.append(_sentence(parts[1], path, line, "question1"))
        b.append(_sentence(parts[2], path, line, "question2"))
        ids.append(parts[3].strip())
    return TextPairs(
        a,
        b,
        np.asarray(labels, dtype=np.float32),
        BINARY,
        None,
        name or _default_name("qqp", path),
        extra={"pair_id": ids},
    )


# ----------------------------------------------------------------------------- generic files


def guess_separator(path: PathLike) -> str:
    """Tab for ``.tsv``/``.tab`` files, comma otherwise.

    Args:
        path: The file whose name decides.
    """
    return "\t" if Path(path).suffix.lower() in (".tsv", ".tab") else ","


def delimited_records(path: PathLike, sep: str) -> list[tuple[int, list[str]]]:
    """Non-empty records of a delimited file as ``(line_number, fields)``.

    Tab-separated files are read without quoting (raw ``"`` is common in sentence data);
    other separators use standard CSV quoting, so a quoted field may hold the separator.
    """
    lines = _decode_lines(path)
    quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader((text + "\n" for _, text in lines), delimiter=sep, quoting=quoting, strict=True)
    records = []
    try:
        for fields in reader:
            if fields:
                records.append((reader.line_num, fields))
    except csv.Error as exc:
        raise DataError(f"malformed CSV ({exc})", path=path, line=reader.line_num) from None
    if not records:
        raise DataError("file is empty", path=path, line=1)
    return records


def column_index(column: Column, header: list[str] | None, path: PathLike, header_line: int) -> int:
    """0-based position of a column given by name (needs a header) or by index."""
    if isinstance(column, bool):
        raise ConfigError(f"column must be a name or a 0-based index, not {column!r}")
    if isinstance(column, str):
        names = None if header is None else [name.strip() for name in header]
        if names is not None and column in names:
            return names.index(column)
        if column.strip().isdigit():
            return int(column.strip())
        if names is None:
            raise ConfigError(
                f"column {column!r} is given by name but the file has no header; give a 0-based index instead"
            )
        raise DataError(
            f"no column named {column!r}; the header has {', '.join(names)}",
            path=path,
            line=header_line,
        )
    if isinstance(column, int) and column >= 0:
        return column
    raise ConfigError(f"column must be a name or a 0-based index, not {column!r}")


def _resolve_kind(
    labels: np.ndarray, lines: list[int], kind: str | None, path: PathLike
) -> tuple[str, tuple[float, float] | None]:
    """The kind and scale of a label column, guessed when ``kind`` is None."""
    is_binary = (labels == 0.0) | (labels == 1.0)
    if kind is None:
        kind = BINARY if bool(is_binary.all()) else GRADED
    if kind == BINARY:
        if not is_binary.all():
            first = int(np.flatnonzero(~is_binary)[0])
            raise DataError(
                f"label must be 0 or 1 for binary data, found {labels[first]:g}",
                path=path,
                line=lines[first],
            )
        return BINARY, None
    if kind == GRADED:
        return GRADED, (float(labels.min()), float(labels.max()))
    raise ConfigError(f"kind must be one of {KINDS} or None, not {kind!r}")


def read_pairs_csv(
    path: PathLike,
    *,
    text_a_col: Column,
    text_b_col: Column,
    label_col: Column,
    sep: str | None = None,
    header: bool = True,
    kind: str | None = None,
    name: str | None = None,
) -> TextPairs:
    """Read sentence pairs from any CSV or TSV file.

    Every row must have as many fields as the first row (the header, when there is one).
    Tab-separated files are read without quoting; comma (or other) separated files use
    standard CSV double-quote quoting, so quoted fields may contain the separator.

    Args:
        path: The file to read.
        text_a_col: Column of the first sentence: a header name, or a 0-based index (also as
            a string of digits).
        text_b_col: Column of the second sentence, as for ``text_a_col``.
        label_col: Column of the label or score, as for ``text_a_col``.
        sep: Field separator; ``None`` guesses tab for ``.tsv``/``.tab`` and comma otherwise.
        header: Whether the first row holds column names.
        kind: ``"binary"``, ``"graded"`` or ``None`` to guess: binary when every label is 0
            or 1, else graded with ``scale = (min, max)`` of the labels.
        name: Name of the result; defaults to the file's stem.

    Raises:
        DataError: the file is missing, empty, not UTF-8, has rows of the wrong width, a
            non-numeric label, an empty sentence, or lacks a named column.
        ConfigError: a column or ``kind`` argument cannot be used.
    """
    sep = guess_separator(path) if sep is None else sep
    if len(sep) != 1:
        raise ConfigError(f"sep must be a single character, not {sep!r}")
    records = delimited_records(path, sep)
    first_line, first = records[0]
    header_row = first if header else None
    rows = records[1:] if header else records
    if not rows:
        raise DataError("file has a header but no data rows", path=path, line=first_line + 1)
    width = len(first)
    cols = [column_index(c, header_row, path, first_line) for c in (text_a_col, text_b_col, label_col)]
    for col in cols:
        if col >= width:
            raise DataError(
                f"column index {col} is out of range: the file has {width} columns",
                path=path,
                line=first_line,
            )
    names = [header_row[c].strip() if header_row else f"column {c}" for c in cols]
    a, b, labels, lines = [], [], [], []
    for line, fields in rows:
        if len(fields) != width:
            raise DataError(
                f"expected {width} fields (as on line {first_line}), found {len(fields)}",
                path=path,
                line=line,
            )
        a.append(_sentence(fields[cols[0]], path, line, names[0]))
        b.append(_sentence(fields[cols[1]], path, line, names[1]))
        labels.append(_number(fields[cols[2]], path, line, names[2]))
        lines.append(line)
    values = np.asarray(labels, dtype=np.float32)
    kind, scale = _resolve_kind(values, lines, kind, path)
    return TextPairs(a, b, values, kind, scale, name or Path(path).stem)


def _train_dev(pairs: TextPairs, prefix: str, fraction: float, seed: int) -> dict[str, TextPairs]:
    """``train`` and ``dev`` splits made by holding out ``fraction`` of ``pairs``."""
    rest, held = hold_out_indices(pairs, fraction, seed)
    return {
        "train": pairs.subset(rest, f"{prefix}/train"),
        "dev": pairs.subset(held, f"{prefix}/dev"),
    }


def _read_id_pairs(path: PathLike) -> set[tuple[str, str]]:
    """GLUE's ``mrpc_dev_ids.tsv``: one ``id1<TAB>id2`` per line, no header."""
    pairs = set()
    for line, text in read_lines(path):
        parts = _fields(text, path, line, 2)
        if not all(part.strip().isdigit() for part in parts):
            raise DataError(f"expected two numeric sentence IDs, found {text!r}", path=path, line=line)
        pairs.add((parts[0].strip(), parts[1].strip()))
    return pairs


# ----------------------------------------------------------------------------- named datasets


def _load_sick() -> dict[str, TextPairs]:
    return {
        "train": read_sick(locate("text/sick/SICK_train.txt"), name="sick/train"),
        "dev": read_sick(locate("text/sick/SICK_trial.txt"), name="sick/dev"),
        "test": read_sick(locate("text/sick/SICK_test_annotated.txt"), name="sick/test"),
    }


def _load_stsb() -> dict[str, TextPairs]:
    return {
        split: read_stsb(locate(f"text/stsbenchmark/sts-{split}.csv"), name=f"stsb/{split}")
        for split in ("train", "dev", "test")
    }


def _load_mrpc() -> dict[str, TextPairs]:
    """Original MRPC train/test, with GLUE's 408 dev pairs carved out of train by ID."""
    full = read_mrpc(locate("text/mrpc/msr_paraphrase_train.txt"))
    ids_path = locate("text/mrpc/glue/dev_ids.tsv")
    dev_ids = _read_id_pairs(ids_path)
    keys = list(zip(full.extra["id_a"], full.extra["id_b"], strict=True))
    in_dev = np.array([key in dev_ids for key in keys], dtype=bool)
    found = {key for key in keys if key in dev_ids}
    if len(found) != len(dev_ids):
        raise DataError(
            f"{len(dev_ids) - len(found)} of the {len(dev_ids)} dev ID pairs are not in "
            "msr_paraphrase_train.txt",
            path=ids_path,
        )
    return {
        "train": full.subset(np.flatnonzero(~in_dev), "mrpc/train"),
        "dev": full.subset(np.flatnonzero(in_dev), "mrpc/dev"),
        "test": read_mrpc(locate("text/mrpc/msr_paraphrase_test.txt"), name="mrpc/test"),
    }


def _load_dev_test(
    folder: str, prefix: str, reader: Callable[..., TextPairs], seed: int, fraction: float
) -> dict[str, TextPairs]:
    """Datasets staged as dev + test only: train/dev come from dev.tsv, test is test.tsv."""
    splits = _train_dev(reader(locate(f"{folder}/dev.tsv")), prefix, fraction, seed)
    splits["test"] = reader(locate(f"{folder}/test.tsv"), name=f"{prefix}/test")
    return splits


def _load_named(name: str, seed: int, fraction: float) -> dict[str, TextPairs]:
    if name == "sick":
        return _load_sick()
    if name == "stsb":
        return _load_stsb()
    if name == "mrpc":
        return _load_mrpc()
    if name == "paws":
        return _load_dev_test("text/paws", "paws", read_paws, seed, fraction)
    return _load_dev_test("text/qqp-bimpm", "qqp", read_qqp, seed, fraction)


def load_text_dataset(
    spec: str,
    *,
    text_a_col: Column = "sentence1",
    text_b_col: Column = "sentence2",
    label_col: Column = "label",
    sep: str | None = None,
    header: bool = True,
    kind: str | None = None,
    seed: int = 0,
    dev_fraction: float = 0.1,
) -> dict[str, TextPairs]:
    """Load a sentence-pair dataset as ``train``/``dev``/``test`` splits.

    ``spec`` is one of:

    * a name in :data:`TEXT_DATASETS`, read from ``$SIAMESE_DATA_DIR/text/...``:

      - ``sick``: SemEval-2014 train (4,500) / trial as dev (500) / test (4,927).
      - ``stsb``: STS Benchmark train (5,749) / dev (1,500) / test (1,379).
      - ``mrpc``: MSR train minus GLUE's dev pairs (3,668) / GLUE dev, chosen by
        ``glue/dev_ids.tsv`` (408) / MSR test (1,725).
      - ``paws``: only PAWS-Wiki dev and test are staged, so train is ``dev.tsv`` minus a
        seeded, class-stratified ``dev_fraction`` held out as dev; test is ``test.tsv``.
      - ``qqp``: only the BiMPM dev and test files are staged; same approach as ``paws``.

    * ``"tfds:NAME"`` (e.g. ``tfds:glue/stsb``), loaded with tensorflow-datasets; see
      :func:`siamese.datasets.tfds.load_tfds_pairs` for the split mapping.
    * a path to a CSV/TSV file read with :func:`read_pairs_csv`: train is the file minus a
      seeded ``dev_fraction`` held out as dev; there is no test split.

    Args:
        spec: Dataset name, ``tfds:`` name, or file path.
        text_a_col: First-sentence column of a CSV/TSV file (name or 0-based index).
        text_b_col: Second-sentence column of a CSV/TSV file.
        label_col: Label column of a CSV/TSV file.
        sep: Separator of a CSV/TSV file; ``None`` guesses from the extension.
        header: Whether a CSV/TSV file has a header row.
        kind: ``"binary"``/``"graded"`` for a CSV/TSV file, or ``None`` to guess.
        seed: Seed of every random dev hold-out.
        dev_fraction: Share held out as dev where a dataset has no dev split of its own.

    Returns:
        Split name to pairs; ``"test"`` is absent for a plain file.

    Raises:
        ConfigError: ``spec`` is neither a known name nor an existing file, or an option is
            invalid.
        DatasetNotFoundError: a named dataset's files are not in the data folder.
        DataError: a file is malformed.
    """
    if not 0.0 < dev_fraction < 1.0:
        raise ConfigError(f"dev_fraction must be strictly between 0 and 1, not {dev_fraction!r}")
    key = spec.strip().lower()
    if key in TEXT_DATASETS:
        return _load_named(key, seed, dev_fraction)
    if spec.strip().startswith(TFDS_PREFIX):
        return load_tfds_pairs(spec.strip()[len(TFDS_PREFIX) :], seed=seed, dev_fraction=dev_fraction)
    path = Path(spec).expanduser()
    if path.is_file():
        pairs = read_pairs_csv(
            path,
            text_a_col=text_a_col,
            text_b_col=text_b_col,
            label_col=label_col,
            sep=sep,
            header=header,
            kind=kind,
        )
        return _train_dev(pairs, path.name, dev_fraction, seed)
    if path.suffix.lower() in (".csv", ".tsv", ".txt", ".tab") or os.sep in spec or "/" in spec:
        raise DataError("file not found (it looks like a path to a pairs file)", path=path)
    raise ConfigError(
        f"unknown text dataset {spec!r}: expected one of {', '.join(TEXT_DATASETS)}, "
        f"'{TFDS_PREFIX}NAME' (e.g. tfds:glue/stsb), or the path of an existing CSV/TSV file"
    )
