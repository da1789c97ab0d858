"""Embedding export throughput: reading + embedding + adding to FAISS, beside the bare forward pass.

Run:  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/export.py [--only text images]

The *export path* is what ``siamese-index build`` does, timed from the file on disk to the
filled index: read the items (:mod:`siamese.datasets.corpus`), embed them with the tower
(:meth:`siamese.Index.build`, which calls :func:`siamese.encode.embed` batch by batch) and add
the vectors to a FAISS ``Flat`` index (cosine). The *bare forward pass* is the same embedding
computation on the same items already in memory, with no reading and no index: for images the
tower's call compiled once as a ``tf.function`` (:func:`siamese.encode.compiled_forward`),
batch after batch; for text the computation the export path runs on texts
(:func:`siamese.encode.embed_texts`: token ids once, texts sorted by length, each batch cut to
its longest text). So the export path's share of the bare pass's items/s (the figure; target
at least 80%) is the cost of reading the items and filling the index, nothing else.

Workloads (untrained towers: speed does not depend on the weights):

- ``text``: 32,768 distinct made-up sentences (the synthetic sentences of ``throughput.py``:
  a Zipf vocabulary of 5,000 words, lengths log-normal with median 10 tokens, capped at 60)
  in a ``.txt`` file, one per line; a text tower without word vectors (vocabulary adapted on
  them, 128-d embeddings, 128-unit LSTM, 30 tokens: the defaults of ``siamese-train`` when
  the table was made).
- ``images``: the 10,000 Fashion-MNIST test images written as PNG files into one folder (the
  export path decodes them); the image tower of ``siamese-train``'s defaults.
- ``images-idx``: the same images and tower, the export path reading them from the dataset's
  own idx files (``siamese-index build --input fashion-mnist``: its test split, unzipped and
  parsed inside the timed path).

Batch sizes 256, 1024 and 4096; each measured 3 times, the two sides alternating, in this one
process (after one untimed warm-up of each); medians are reported. Writes
``benchmarks/results/export.md``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import common
import numpy as np

NAME = "export"
WORKLOADS = ("text", "images", "images-idx")
BATCH_SIZES = (256, 1024, 4096)
TEXTS = 32_768
COLUMNS = (
    "items | batch | export path items/s (median, min–max) | bare forward items/s (median, min–max) "
    "| export / bare"
).split(" | ")


def text_workload(folder: Path) -> tuple[object, str, np.ndarray]:
    """(tower, corpus spec for the export path, the items in memory for the bare pass)."""
    from throughput import synthetic_pairs

    import siamese
    from siamese.tasks.text_pairs import TextOptions

    a, b, _ = synthetic_pairs(TEXTS, seed=0)
    texts = list(dict.fromkeys(a + b))[:TEXTS]
    path = folder / "sentences.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    options = TextOptions()
    tower = siamese.text_tower(  # the LSTM tower of the committed table, without word vectors
        texts,
        units=options.units,
        embedding_dim=128,
        sequence_length=options.sequence_length,
        vocab_size=options.vocab_size,
        seed=0,
    )
    return tower, str(path), np.asarray(texts, dtype=object)


def default_image_tower(images: np.ndarray):
    """The image tower of ``siamese-train``'s defaults for images of this shape (untrained)."""
    import siamese
    from siamese.tasks.image_pairs import IMAGE_DEFAULTS, ImageOptions

    options = ImageOptions()
    return siamese.image_tower(
        images.shape[1:],
        filters=options.filters,
        embedding_dim=IMAGE_DEFAULTS["embedding_dim"],
        global_pooling=options.global_pooling,
        seed=0,
    )


def image_workload(folder: Path) -> tuple[object, str, np.ndarray]:
    """(tower, image folder for the export path, the decoded images for the bare pass)."""
    from PIL import Image

    from siamese.datasets.images import load_image_dataset

    images = load_image_dataset("fashion-mnist")["test"].images
    pictures = folder / "pictures"
    pictures.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image[..., 0]).save(pictures / f"{i:05d}.png")
    return default_image_tower(images), str(pictures), images


def image_file_workload(folder: Path) -> tuple[object, str, np.ndarray]:
    """(tower, the dataset name for the export path, the decoded images for the bare pass)."""
    from siamese.datasets.images import load_image_dataset

    images = load_image_dataset("fashion-mnist")["test"].images
    return default_image_tower(images), "fashion-mnist", images


WORKLOAD_BUILDERS = {"text": text_workload, "images": image_workload, "images-idx": image_file_workload}


def export_path(tower, spec: str, kind: str, batch_size: int) -> tuple[float, int]:
    """Seconds from the file(s) on disk to the filled index, and the items indexed."""
    from siamese.datasets.corpus import image_corpus, text_corpus
    from siamese.index import Index

    began = time.perf_counter()
    items, payloads = text_corpus(spec) if kind == "text" else image_corpus(spec)
    index = Index.build(tower, items, payloads=payloads, batch_size=batch_size, progress=False)
    return time.perf_counter() - began, index.ntotal


def bare_forward(tower, items: np.ndarray, batch_size: int) -> float:
    """Seconds of the export path's embedding computation over ``items`` in memory."""
    from siamese.encode import compiled_forward, embed_texts

    began = time.perf_counter()
    if items.dtype == object:  # texts: what the export path's embedding does with them
        embed_texts(tower, items, batch_size=batch_size)
        return time.perf_counter() - began
    forward = compiled_forward(tower)
    for start in range(0, len(items), batch_size):
        np.asarray(forward(items[start : start + batch_size]))
    return time.perf_counter() - began


def measure(kind: str, repeats: int, folder: Path) -> list[dict]:
    tower, spec, items = WORKLOAD_BUILDERS[kind](folder)
    rows = []
    for batch_size in BATCH_SIZES:
        export_path(tower, spec, kind, batch_size)  # warm-up: traces the compiled calls
        bare_forward(tower, items, batch_size)
        exports, bares = [], []
        for repeat in range(repeats):
            sides = ("export", "bare") if repeat % 2 == 0 else ("bare", "export")
            for side in sides:
                if side == "export":
                    seconds, count = export_path(tower, spec, kind, batch_size)
                    assert count == len(items), (count, len(items))
                    exports.append(len(items) / seconds)
                else:
                    bares.append(len(items) / bare_forward(tower, items, batch_size))
        rows.append(
            {"kind": kind, "items": len(items), "batch": batch_size, "export": exports, "bare": bares}
        )
        sys.stderr.write(f"{kind} batch {batch_size}: export {exports}, bare {bares}\n")
    return rows


def table(rows: list[dict]) -> str:
    cells = []
    for r in rows:
        export, bare = statistics.median(r["export"]), statistics.median(r["bare"])
        cells.append(
            [
                f"{r['kind']} ({r['items']:,})",
                f"{r['batch']:,}",
                f"{export:,.0f} ({min(r['export']):,.0f}–{max(r['export']):,.0f})",
                f"{bare:,.0f} ({min(r['bare']):,.0f}–{max(r['bare']):,.0f})",
                f"**{export / bare:.0%}**",
            ]
        )
    return common.markdown_table(COLUMNS, cells)


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__, NAME, only=WORKLOADS)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    run = common.invocation(NAME, argv)
    import logging

    import siamese  # noqa: F401  (quiet TensorFlow start-up)

    logging.basicConfig(level=logging.WARNING)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="siamese-export-") as folder:
        for kind in args.only:
            rows.extend(measure(kind, args.repeats, Path(folder)))
    title = "Embedding export: reading + embedding + adding to FAISS, beside the bare forward pass"
    notes = f"{args.repeats} repeats per cell, alternating, medians; one process."
    common.write_result(NAME, common.header(title, run, notes) + table(rows), args.out)


if __name__ == "__main__":
    main()
