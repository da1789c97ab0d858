"""The FAISS-backed index: build from a tower and a corpus, save, load, search.

- :mod:`siamese.index.api`: :class:`Index`, :class:`Hit`, :func:`recall_at_k`;
- :mod:`siamese.index.folder`: the index folder on disk (files, manifest, checks);
- :mod:`siamese.index.ray_build`: :func:`build_on_ray`, the same index built on Ray;
- :mod:`siamese.index.projector`: :func:`write_projector`, the vectors for TensorBoard's
  Embedding Projector;
- :mod:`siamese.index.stored_vectors`: the exact vectors, kept in a memory-mapped file;
- :mod:`siamese.index.faiss_helpers`: FAISS plumbing (factory strings, id maps, search
  parameters).
"""

from __future__ import annotations

from siamese.index.api import Hit, Index, default_payloads, recall_at_k
from siamese.index.projector import write_projector
from siamese.index.ray_build import build_on_ray

__all__ = ["Hit", "Index", "build_on_ray", "default_payloads", "recall_at_k", "write_projector"]
