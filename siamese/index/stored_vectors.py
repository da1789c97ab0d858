"""The index's own copy of its vectors, kept on disk and memory-mapped (not in RAM).

FAISS holds the vectors it searches. The toolkit keeps a second, exact copy beside them
(compressed indexes cannot give the vectors back): :func:`siamese.index.recall_at_k` compares
against it, :meth:`siamese.index.Index.remove` and saves need it. Holding that copy in RAM
would double an index's memory, so :class:`StoredVectors` keeps it in a file and maps it:

- a loaded index maps the folder's ``vectors.npy`` (read-only, pages read only when used);
- a built or changed index writes its rows to an unnamed temporary file (``TMPDIR``; gone
  when the index is, or when the process dies) and maps that.

``in_memory=True`` keeps an ordinary array instead (what a caller asks for when the vectors
are small and read often). Either way :attr:`StoredVectors.array` is a read-only
``(n, dim)`` float32 array in row order.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO

import numpy as np

#: Rows copied at a time when vectors are rewritten or streamed.
CHUNK_ROWS = 65_536


class StoredVectors:
    """An append-only, row-filterable ``(n, dim)`` float32 array, on disk or in memory."""

    def __init__(self, dim: int, *, in_memory: bool = False) -> None:
        self.dim = dim
        self.in_memory = in_memory
        self._memory = np.zeros((0, dim), dtype=np.float32)
        self._file: IO[bytes] | None = None  # our own temporary file (raw rows, no header)
        self._mapped: np.ndarray | None = None  # the array over the file
        self._saved: IO[bytes] | None = None  # the saved .npy file the rows came from, kept open
        self._saved_offset = 0  # where its rows start
        self._count = 0

    @classmethod
    def open_npy(cls, path: Path, array: np.memmap, *, in_memory: bool = False) -> StoredVectors:
        """Vectors of a saved ``.npy`` file, already opened memory-mapped as ``array``. The
        mapping and an open handle are taken at once, so the rows stay those of this file
        even if its folder is replaced or removed later."""
        stored = cls(array.shape[1], in_memory=in_memory)
        if in_memory:
            stored._memory = np.array(array, dtype=np.float32, order="C")
        else:
            stored._mapped = array
            stored._saved = open(path, "rb")  # noqa: SIM115 (closed by close() or when dropped)
            stored._saved_offset = array.offset
        stored._count = len(array)
        return stored

    def __len__(self) -> int:
        return self._count

    @property
    def array(self) -> np.ndarray:
        """The rows, read-only."""
        if self.in_memory:
            view = self._memory.view()
        elif self._mapped is not None:
            view = self._mapped.view()
        else:
            view = np.zeros((0, self.dim), dtype=np.float32)
        view.flags.writeable = False
        return view

    def append(self, rows: np.ndarray) -> None:
        """Add rows at the end (``rows`` is C-contiguous float32 ``(n, dim)``)."""
        if len(rows) == 0:
            return
        if self.in_memory:
            self._memory = np.concatenate([self._memory, rows])
        else:
            file = self._own_file()
            file.seek(0, os.SEEK_END)
            file.write(_as_bytes(rows))
            file.flush()
            self._remap(self._count + len(rows))
        self._count += len(rows)

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the rows where ``mask`` is true, in order."""
        if self.in_memory:
            self._memory = self._memory[mask]
            self._count = len(self._memory)
            return
        source = self.array
        fresh = _temporary_file()
        for start in range(0, self._count, CHUNK_ROWS):
            chunk = source[start : start + CHUNK_ROWS][mask[start : start + CHUNK_ROWS]]
            fresh.write(_as_bytes(chunk))
        fresh.flush()
        if self._file is not None:
            self._file.close()
        self._file, self._mapped = fresh, None
        self._count = int(np.count_nonzero(mask))
        self._remap(self._count)

    def write_npy(self, file: IO[bytes]) -> None:
        """Write the rows to ``file`` as a ``.npy`` array, streamed: the rows are copied from
        their file, not read into memory (and not through the mapping)."""
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False}
        header["shape"] = (self._count, self.dim)
        np.lib.format.write_array_header_1_0(file, header)
        if self.in_memory or self._count == 0:
            file.write(_as_bytes(self.array))
            return
        _copy_rows(self._source_file(), file, self._count * self.dim * 4)

    def close(self) -> None:
        """Drop the mapping and the files (the index is going away)."""
        self._mapped = None
        for handle in (self._file, self._saved):
            if handle is not None:
                handle.close()
        self._file = self._saved = None

    # ------------------------------------------------------------------ internals

    def _own_file(self) -> IO[bytes]:
        """Our temporary file, started from the saved rows if the vectors came from a folder."""
        if self._file is None:
            fresh = _temporary_file()
            if self._count:
                _copy_rows(self._source_file(), fresh, self._count * self.dim * 4)
            self._file = fresh
        return self._file

    def _source_file(self) -> IO[bytes]:
        """A file positioned at the first row: our own, or the saved ``.npy`` file."""
        if self._file is not None:
            self._file.seek(0)
            return self._file
        assert self._saved is not None
        self._saved.seek(self._saved_offset)
        return self._saved

    def _remap(self, count: int) -> None:
        assert self._file is not None
        if count == 0:
            self._mapped = None
            return
        self._mapped = np.memmap(self._file, dtype=np.float32, mode="r", shape=(count, self.dim))


def _as_bytes(rows: np.ndarray) -> np.ndarray:
    """The rows' bytes in order, as a flat view when they are contiguous (no copy)."""
    return np.ascontiguousarray(rows, dtype=np.float32).reshape(-1).view(np.uint8)


def _copy_rows(source: IO[bytes], target: IO[bytes], size: int) -> None:
    """Copy ``size`` bytes from ``source``'s position to ``target``, a chunk at a time."""
    step = 1 << 22
    while size > 0:
        chunk = source.read(min(step, size))
        if not chunk:
            raise OSError(f"{getattr(source, 'name', 'vectors file')}: ended {size} bytes early")
        target.write(chunk)
        size -= len(chunk)


def _temporary_file() -> IO[bytes]:
    """An unnamed file in ``TMPDIR``: nothing is left behind, whatever ends the process."""
    return tempfile.TemporaryFile(prefix="siamese-vectors-")
