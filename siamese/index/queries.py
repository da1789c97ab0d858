"""What a query may be: of the index's modality, not empty, and within bounded limits.

Every raw query to :meth:`siamese.Index.search` (and so to ``siamese-index query`` and the
server) is checked here before it is embedded, so no request can make the process read an
unbounded file, decode an unbounded image, or embed text of the wrong kind silently.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from PIL import Image

from siamese.errors import ConfigError

#: The longest text query, in characters. A text tower reads at most its sequence length of
#: words, so a longer query would change nothing but the cost of reading it.
MAX_QUERY_CHARS = 10_000
#: The largest image file a query may name, in bytes.
MAX_QUERY_FILE_BYTES = 32 * 2**20
#: The most pixels (width × height) an image query may decode to.
MAX_QUERY_PIXELS = 40_000_000

TEXT, IMAGE, ID = "text", "image", "id"


def input_type(tower: keras.Model) -> str:
    """What a tower embeds: ``"text"`` (strings), ``"image"`` (``(H, W, C)`` arrays or image
    files) or ``"id"`` (category ids, e.g. the basketball team embedding)."""
    spec = tower.inputs[0]
    if spec.dtype == "string":
        return TEXT
    return IMAGE if len(spec.shape) == 4 else ID


def _describe(item: Any) -> str:
    if isinstance(item, np.ndarray):
        return f"an array of shape {item.shape}"
    if isinstance(item, os.PathLike):
        return f"the file {os.fspath(item)!r}"
    return f"a {type(item).__name__}"


def _not_text(item: Any) -> str:
    return f"this index takes text (strings); got {_describe(item)}: an image query needs an image index"


def check_queries(queries: Sequence[Any] | np.ndarray, kind: str) -> None:
    """Refuse queries an index of ``kind`` (see :func:`input_type`) must not embed.

    Raises:
        ConfigError: One line naming the index's input type or the limit: an image (an
            array or a path object) for a text index, text that is not an image file for an
            image index, an empty query, a text longer than :data:`MAX_QUERY_CHARS`, an image
            file larger than :data:`MAX_QUERY_FILE_BYTES` or of more than
            :data:`MAX_QUERY_PIXELS` pixels.
    """
    if kind == TEXT:
        if isinstance(queries, np.ndarray) and queries.dtype.kind not in "USO":
            raise ConfigError(_not_text(queries))
        for query in queries:
            if not isinstance(query, str):
                raise ConfigError(_not_text(query))
            check_text(query)
    elif kind == IMAGE:
        if isinstance(queries, np.ndarray) and queries.dtype.kind not in "USO":
            return  # arrays: their shape is checked when they are embedded
        for query in queries:
            if isinstance(query, (str, os.PathLike)):
                check_image_file(query)
            elif isinstance(query, np.ndarray):
                if query.dtype.kind in "USO":
                    raise ConfigError(f"this index takes images; got {_describe(query)} of strings")
            else:
                raise ConfigError(f"this index takes images (arrays or image files); got {_describe(query)}")


def check_text(query: str) -> None:
    """Refuse an empty (or blank) text query, or one over :data:`MAX_QUERY_CHARS`."""
    if not query.strip():
        raise ConfigError("the query is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise ConfigError(f"the query has {len(query):,} characters; the limit is {MAX_QUERY_CHARS:,}")


def check_image_file(path: str | os.PathLike[str]) -> None:
    """Refuse a query path that is not an image file within the size and pixel limits.

    Only the file's size and the image's header are read here.
    """
    name = os.fspath(path)
    if not name.strip():
        raise ConfigError("the query is empty")
    if len(name) > MAX_QUERY_CHARS:
        raise ConfigError("this index takes images (arrays or image files); the query is not a file name")
    try:
        size = os.stat(name).st_size
    except (OSError, ValueError):
        raise ConfigError(
            f"this index takes images (arrays or image files); {name[:200]!r} is not an image file"
        ) from None
    if not os.path.isfile(name):
        raise ConfigError(f"this index takes images; {name!r} is not a file")
    check_image_source(name, name, size)


def check_image_source(source: str | os.PathLike[str] | io.BytesIO, name: str, size: int) -> str:
    """Refuse an image (a file, or its bytes) over :data:`MAX_QUERY_FILE_BYTES` or
    :data:`MAX_QUERY_PIXELS`, or not readable as an image; returns its format (``"PNG"``...).
    Only the image's header is read."""
    if size > MAX_QUERY_FILE_BYTES:
        raise ConfigError(f"{name}: the image file has {size:,} bytes; the limit is {MAX_QUERY_FILE_BYTES:,}")
    try:
        with Image.open(source) as image:
            width, height = image.size
            found = image.format
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ConfigError(f"{name}: not a readable image file ({exc})") from None
    if width * height > MAX_QUERY_PIXELS:
        raise ConfigError(f"{name}: the image has {width}×{height} pixels; the limit is {MAX_QUERY_PIXELS:,}")
    return found
