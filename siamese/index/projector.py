"""An index's vectors for TensorBoard's Embedding Projector.

:func:`write_projector` (``siamese-index projector --index DIR --out DIR``) writes, in the
output folder::

    vectors.tsv               the vectors as the index holds them (normalised for cosine),
                              one row per item, tab-separated
    metadata.tsv              a header line, then per item: its id, its payload (the text, or
                              the image's path) and, for image files in class sub-folders,
                              the label (the folder's name); tabs and line breaks in a
                              payload become spaces
    sprite.png                for an index of image files: each image as a square thumbnail,
                              row by row, in the order of the vectors
    projector_config.pbtxt    TensorBoard's ProjectorConfig naming the three

Open it with ``tensorboard --logdir OUT`` (the Projector tab). The first ``limit`` rows of
the index are written (TensorBoard's Projector stays responsive to about 100,000 points).
Each file is written atomically; the config, last, names files that are all whole.
"""

from __future__ import annotations

import io
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from siamese.checks import positive_int
from siamese.errors import ConfigError
from siamese.index.api import Index
from siamese.io import atomic_write_bytes, atomic_write_text

logger = logging.getLogger(__name__)

VECTORS_FILE = "vectors.tsv"
METADATA_FILE = "metadata.tsv"
SPRITE_FILE = "sprite.png"
CONFIG_FILE = "projector_config.pbtxt"
#: Rows written by default.
DEFAULT_LIMIT = 10_000
#: TensorBoard's largest sprite image, per side.
SPRITE_SIDE = 8192
#: Largest thumbnail side in a sprite.
THUMBNAIL = 64


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.replace("\t", " ").splitlines()) or " "


def _is_image_file(payload: Any) -> bool:
    return isinstance(payload, str) and Path(payload).suffix.lower() in {
        ".png",
        ".jpg",
        ".jpeg",
        ".bmp",
        ".gif",
    }


def write_projector(
    index: Index, out: str | os.PathLike[str], *, limit: int = DEFAULT_LIMIT
) -> dict[str, Any]:
    """Write ``index``'s first ``limit`` rows for the Embedding Projector into ``out``.

    Returns:
        What was written: ``rows``, ``dim``, ``sprite`` (the thumbnail side, or ``None``).

    Raises:
        ConfigError: ``limit`` is not positive, or the index is empty.
        DataError: An image of an image index cannot be read for the sprite.
    """
    from tensorboard.plugins import projector

    limit = positive_int("limit", limit)
    if index.ntotal == 0:
        raise ConfigError("the index is empty: nothing to project")
    rows = min(limit, index.ntotal)
    if rows < index.ntotal:
        logger.info("projector: the first %d of the index's %d rows (--limit)", rows, index.ntotal)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vectors = np.asarray(index.vectors[:rows], dtype=np.float32)
    ids = index.ids[:rows]
    payloads = index.payloads[:rows]
    images = index.input_type in (None, "image") and all(_is_image_file(p) for p in payloads)

    buffer = io.StringIO()
    np.savetxt(buffer, vectors, delimiter="\t", fmt="%.7g")
    atomic_write_text(out / VECTORS_FILE, buffer.getvalue())
    header = ["id", "payload", *(["label"] if images else [])]
    lines = ["\t".join(header)]
    for item_id, payload in zip(ids.tolist(), payloads, strict=True):
        cells = [str(item_id), _cell(payload)]
        if images:
            cells.append(_cell(Path(payload).parent.name))
        lines.append("\t".join(cells))
    atomic_write_text(out / METADATA_FILE, "\n".join(lines) + "\n")

    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = f"siamese index ({index.factory}, {index.metric})"
    embedding.tensor_path = VECTORS_FILE
    embedding.metadata_path = METADATA_FILE
    embedding.tensor_shape.extend([rows, index.dim])
    side = None
    if images:
        side = _write_sprite(payloads, out / SPRITE_FILE)
        embedding.sprite.image_path = SPRITE_FILE
        embedding.sprite.single_image_dim.extend([side, side])
    from google.protobuf import text_format

    atomic_write_text(out / CONFIG_FILE, text_format.MessageToString(config))
    return {"rows": rows, "dim": index.dim, "sprite": side}


def _write_sprite(paths: tuple[Any, ...], target: Path) -> int:
    """The images as thumbnails on a square grid; returns the thumbnail side."""
    from PIL import Image

    from siamese.errors import DataError

    columns = math.ceil(math.sqrt(len(paths)))
    side = max(1, min(THUMBNAIL, SPRITE_SIDE // columns))
    sheet = Image.new("RGB", (columns * side, math.ceil(len(paths) / columns) * side))
    for position, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                thumbnail = image.convert("RGB").resize((side, side))
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read the image for the sprite ({exc})") from None
        row, column = divmod(position, columns)
        sheet.paste(thumbnail, (column * side, row * side))
    data = io.BytesIO()
    sheet.save(data, format="PNG")
    atomic_write_bytes(target, data.getvalue())
    return side
