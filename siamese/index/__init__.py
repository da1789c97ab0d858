"""The FAISS-backed index: build from a tower and a corpus, save, load, search.

- :mod:`siamese.index.api`: :class:`Index`, :class:`Hit`, :func:`recall_at_k`;
- :mod:`siamese.index.folder`: the index folder on disk (files, manifest, checks);
- :mod:`siamese.index.stored_vectors`: the exact vectors, kept in a memory-mapped file;
- :mod:`siamese.index.faiss_helpers`: FAISS plumbing (factory strings, id maps, search
  parameters).
"""

from __future__ import annotations

from siamese.index.api import Hit, Index, default_payloads, recall_at_k

__all__ = ["Hit", "Index", "default_payloads", "recall_at_k"]
