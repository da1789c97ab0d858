"""Plain sentences, without labels: what ``siamese-train --task text-distill --sentences`` reads.

A source is one of:

- a text dataset name (:data:`~siamese.datasets.text.TEXT_DATASETS`): the sentences of both
  sides of its ``train`` and ``dev`` splits, never ``test``;
- a ``.txt`` file: one sentence per line (blank lines are skipped);
- a ``.csv``/``.tsv`` file: the named columns of every row (a header names them; the
  default is ``sentence``, else ``sentence1`` and ``sentence2`` where the header has those).

:func:`read_sources` reads several sources into one list, in order, duplicates kept: a
precomputed teacher's vectors (``--teacher vectors.npy``) are aligned with that list, one row
per sentence. Files are decoded strictly: a byte that is not UTF-8, or a file without a
sentence, is a :class:`~siamese.errors.DataError` naming the file (and the line).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from siamese.datasets.text import (
    TEXT_DATASETS,
    column_index,
    delimited_records,
    guess_separator,
    load_text_dataset,
    read_lines,
)
from siamese.errors import ConfigError, DataError, DatasetNotFoundError

logger = logging.getLogger(__name__)

#: The splits of a named dataset whose sentences a source gives (never ``test``).
SOURCE_SPLITS = ("train", "dev")
#: The column a CSV/TSV source reads when none is named, and the pair of columns it falls
#: back to when its header has no such column.
DEFAULT_COLUMN = "sentence"
PAIR_COLUMNS = ("sentence1", "sentence2")


def is_named(spec: str) -> bool:
    """Whether ``spec`` names a staged text dataset."""
    return spec.strip().lower() in TEXT_DATASETS


def read_sources(specs: Sequence[str], *, columns: Sequence[str] = (), seed: int = 0) -> list[str]:
    """The sentences of every source, in order (duplicates kept).

    Args:
        specs: The sources (see the module docstring).
        columns: The columns a CSV/TSV source reads (empty: the default).
        seed: Seed of the dev hold-out of datasets staged without a dev split.

    Raises:
        ConfigError: A source is neither a dataset name nor an existing file of a known kind.
        DataError: A file cannot be read, is not UTF-8, or holds no sentence.
        DatasetNotFoundError: A named dataset is not in the data folder.
    """
    if not specs:
        raise ConfigError("--sentences is required: a dataset name, a .txt file or a CSV/TSV column")
    sentences: list[str] = []
    for spec in specs:
        found = read_source(spec, columns=columns, seed=seed)
        sentences.extend(found)
        logger.info("sentences from %s: %d", spec, len(found))
    return sentences


def read_source(spec: str, *, columns: Sequence[str] = (), seed: int = 0) -> list[str]:
    """The sentences of one source (see :func:`read_sources`)."""
    if is_named(spec):
        splits = load_text_dataset(spec, seed=seed)
        return [text for name in SOURCE_SPLITS for text in (*splits[name].a, *splits[name].b)]
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"--sentences {spec!r}: expected a dataset name ({', '.join(TEXT_DATASETS)}), a .txt file "
            "with one sentence per line, or a CSV/TSV file"
        )
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".tab"):
        found = _column_sentences(path, columns)
    else:
        found = [text.strip() for _, text in read_lines(path) if text.strip()]
    if not found:
        raise DataError("no sentence in the file", path=path)
    return found


def _column_sentences(path: Path, columns: Sequence[str]) -> list[str]:
    """The sentences of the named columns of a CSV/TSV file with a header, row by row."""
    records = delimited_records(path, guess_separator(path))
    header_line, header = records[0]
    names = [name.strip() for name in header]
    wanted = list(columns)
    if not wanted:
        if DEFAULT_COLUMN in names or not all(name in names for name in PAIR_COLUMNS):
            wanted = [DEFAULT_COLUMN]
        else:
            wanted = list(PAIR_COLUMNS)
    positions = [column_index(column, header, path, header_line) for column in wanted]
    found = []
    for line, fields in records[1:]:
        for position in positions:
            if position >= len(fields):
                raise DataError(
                    f"expected at least {position + 1} fields, found {len(fields)}", path=path, line=line
                )
            text = fields[position].strip()
            if text:
                found.append(text)
    return found


def heldout_test_sentences(names: Sequence[str], *, seed: int = 0) -> set[str]:
    """The sentences of the ``test`` splits of the named datasets (those staged; the others
    are skipped with a log line): what a student must not be trained on."""
    found: set[str] = set()
    for name in dict.fromkeys(n.strip().lower() for n in names):
        try:
            splits = load_text_dataset(name, seed=seed)
        except DatasetNotFoundError as exc:
            logger.info("%s is not staged (%s): its test sentences are not checked", name, exc)
            continue
        if "test" in splits:
            found.update((*splits["test"].a, *splits["test"].b))
    return found
