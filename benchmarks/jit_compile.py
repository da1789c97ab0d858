"""Does ``jit_compile`` (XLA) speed up the toolkit's training step on this CPU?

Run:  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/jit_compile.py

The toolkit's own trainers (:func:`siamese.training.fused.fused_trainer` on SICK token ids,
length-bucketed batches of 64; :func:`siamese.training.fused.unique_trainer` on 12,800 pooled
Fashion-MNIST pairs, batches of 128), each compiled with ``jit_compile=False`` and ``True``
and fitted on the same batches: one untimed epoch first (it traces, and XLA compiles once per
batch shape), then 3 timed epochs, the two settings alternating epoch by epoch; the median
epoch is reported.
Writes ``benchmarks/results/jit_compile.md``.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time

import common
import numpy as np

NAME = "jit_compile"
IMAGE_PAIRS = 12_800


def text_case():
    """(pair model, trainer, batches, pairs per epoch) for SICK."""
    import tensorflow as tf

    from siamese.encode import text_vectorizer, token_ids
    from siamese.models import tower_of
    from siamese.tasks import text_pairs
    from siamese.tasks.text_pairs import TextOptions
    from siamese.training import RunConfig, fused

    plain = TextOptions(units=128, embedding_dim=128, word_vectors=None, rnn="lstm", sequence_pooling="last")
    config = RunConfig(task="text-pairs", data="sick", batch_size=64, head="manhattan", options=plain)
    config = text_pairs.TASK.configure(config)
    splits = text_pairs.load_splits(config)
    config = text_pairs.resolve(config, splits["train"].kind)
    train = splits["train"]
    model = text_pairs.build_model(config, train)
    vectorizer = text_vectorizer(tower_of(model))
    ids_a, ids_b = token_ids(vectorizer, train.a), token_ids(vectorizer, train.b)
    lengths = fused.pair_lengths(ids_a, ids_b)
    rng = np.random.default_rng(0)
    order = fused.batch_order(lengths, rng.permutation(len(lengths)), 64, pool_batches=16, rng=rng)
    targets = text_pairs._targets(train, config).astype(np.float32)
    batches = list(fused.length_batches(ids_a, ids_b, targets, order, lengths))
    signature = (
        (tf.TensorSpec((None, None), tf.int64),) * 2,
        tf.TensorSpec((None,) + targets.shape[1:], tf.float32),
    )
    dataset = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=signature)
    return model, lambda m: fused.fused_trainer(m, token_ids=True), dataset, config, len(targets)


def image_case():
    """(pair model, trainer, batches, pairs per epoch) for Fashion-MNIST."""
    import tensorflow as tf

    from siamese.datasets.records import BINARY
    from siamese.pairs import PairSampler
    from siamese.tasks import image_pairs
    from siamese.tasks.image_pairs import ImageOptions
    from siamese.tasks.pair_model import resolve_pair_settings
    from siamese.training import RunConfig, fused

    config = RunConfig(task="image-pairs", data="fashion-mnist", batch_size=128, options=ImageOptions())
    config = image_pairs.TASK.configure(config)
    data = image_pairs.load_data(config)
    config = resolve_pair_settings(config, BINARY)
    train = data.splits["train"]
    model = image_pairs.build_model(config, train.images.shape[1:])
    pairs = PairSampler(train.labels, pairs_per_epoch=IMAGE_PAIRS, pool_size=128, seed=0).epoch(0)
    dataset = image_pairs.pair_batches(tf.constant(train.images), pairs, 128, unique=True).cache()
    return model, fused.unique_trainer, dataset, config, IMAGE_PAIRS


def measure(name: str, epochs: int) -> list[dict]:
    from siamese.tasks.pair_model import compile_model

    model, make_trainer, dataset, config, n_pairs = (text_case if name == "sick" else image_case)()
    trainers = {}
    for jit in (False, True):
        trainer = make_trainer(model)
        compile_model(trainer, config)
        trainer.jit_compile = jit
        began = time.perf_counter()
        trainer.fit(dataset, epochs=1, verbose=0)
        trainers[jit] = (trainer, time.perf_counter() - began, [])
    for epoch in range(epochs):
        for jit in (False, True) if epoch % 2 == 0 else (True, False):
            trainer, _, seconds = trainers[jit]
            began = time.perf_counter()
            trainer.fit(dataset, epochs=1, verbose=0)
            seconds.append(time.perf_counter() - began)
    rows = []
    for jit, (_, first, seconds) in trainers.items():
        median = statistics.median(seconds)
        rows.append(
            {"name": name, "jit": jit, "first": first, "median": median, "pairs_per_second": n_pairs / median}
        )
        sys.stderr.write(f"{name} jit={jit}: first epoch {first:.1f} s, epochs {seconds}\n")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__, NAME)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    run = common.invocation(NAME, argv)
    import siamese  # noqa: F401  (quiet TensorFlow start-up)

    logging.basicConfig(level=logging.WARNING)
    rows = [row for name in ("sick", "fashion-mnist") for row in measure(name, args.epochs)]
    cells = []
    for row in rows:
        base = next(r for r in rows if r["name"] == row["name"] and not r["jit"])
        cells.append(
            [
                row["name"],
                row["jit"],
                f"{row['first']:.1f}",
                f"{row['pairs_per_second']:,.0f}",
                f"{row['pairs_per_second'] / base['pairs_per_second']:.2f}×",
            ]
        )
    headers = [
        "workload",
        "jit_compile",
        "first epoch s (with tracing)",
        "pairs/s (median epoch)",
        "vs without",
    ]
    notes = f"{args.epochs} timed epochs per setting, alternating; one process."
    text = common.header("jit_compile on the toolkit's training step", run, notes)
    common.write_result(NAME, text + common.markdown_table(headers, cells), args.out)


if __name__ == "__main__":
    main()
