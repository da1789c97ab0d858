"""Training throughput: the toolkit's training path beside the plain Keras formulation.

Run:  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/throughput.py [--only WORKLOAD ...]

The *plain formulation* is what a notebook does: a two-input functional model that calls the
tower on each input, and ``model.fit`` on NumPy arrays, the text turned into token ids once and
padded to the longest sequence of the data (cut, as the toolkit cuts them, at the tower's
``sequence_length`` tokens, so both sides train on the same token ids). The *toolkit* side is
``siamese-train``'s own path (``siamese.tasks.text_pairs.TASK.train`` /
``image_pairs.TASK.train``) on the same pairs, with the same tower, head, loss, optimizer,
batch size, epochs and seed. Both sides validate on the same dev pairs after each epoch; the
time counted is the time spent in ``fit`` (training and that validation), epoch by epoch, so
data loading, model building, checkpoint saving and the final scoring are outside it.
Pairs/s = training pairs seen / those seconds.

Workloads:

- ``sick``: SICK train (4,439 pairs) with dev trial (495); graded, ``manhattan`` head, MSE;
  text tower of 128-unit LSTM over 128-d embeddings; 30 tokens at most on both sides (the
  tower's ``sequence_length``).
- ``synthetic``: 200,000 training pairs of made-up sentences (a Zipf vocabulary of 5,000 words,
  lengths drawn from a log-normal with median 10 tokens, capped at 60), half of them a
  sentence and its copy with a fifth of its words replaced (label 1), half two unrelated
  sentences (label 0), and 5,128 dev pairs drawn alike (written as one TSV; the toolkit's
  seeded carve picks the dev pairs for both sides); binary, ``abs-diff`` head, cross-entropy.
- ``fashion-mnist``: Fashion-MNIST pairs, 54,000 per epoch, balanced, with 4,000 dev pairs;
  the image tower's defaults, ``abs-diff`` head, cross-entropy. Both sides draw the same
  independent pairs, fresh each epoch (the toolkit's ``PairSampler`` with the run's seed,
  ``--independent-pairs``); the plain side gathers them into NumPy arrays of both images and
  fits one epoch at a time. (The toolkit's default, pooled pairs, is a different sampling and
  so is not compared here.)

Each repeat runs each side in a fresh subprocess (so its peak memory is its own), alternating
which side goes first; repeat i trains both sides with seed ``--seed`` + i (the data stays
that of ``--seed``), so the dev figures show the spread over seeds and equal quality means
the two sides' means differ by less than that spread. Speeds are medians over the repeats. Writes
``benchmarks/results/throughput.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import numpy as np

NAME = "throughput"
WORKLOADS = ("sick", "synthetic", "fashion-mnist")
EPOCHS = {"sick": 3, "synthetic": 1, "fashion-mnist": 2}
BATCH = {"sick": 64, "synthetic": 64, "fashion-mnist": 128}
#: Synthetic pairs written (the toolkit's seeded carve of SYNTHETIC_DEV_FRACTION is dev for both
#: sides, leaving 200,000 training pairs), and Fashion-MNIST training pairs per epoch.
SIZES = {"synthetic": 205_128, "fashion-mnist": 54_000}
SYNTHETIC_DEV_FRACTION = 0.025
QUICK_SIZES = {"synthetic": 2_000, "fashion-mnist": 2_000}
COLUMNS = (
    "workload | side | pairs/s (median, min–max) | fit seconds | dev after the same epochs (mean ± sd) "
    "| padding share of token slots | peak RSS MB | toolkit / plain pairs/s"
).split(" | ")


# --------------------------------------------------------------------------- data


def synthetic_pairs(n: int, seed: int) -> tuple[list[str], list[str], np.ndarray]:
    """``n`` made-up pairs: half near-copies (label 1), half unrelated (label 0)."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{i}" for i in range(5000)])
    weights = 1.0 / np.arange(1, 5001)
    weights /= weights.sum()

    def sentence() -> np.ndarray:
        length = int(np.clip(np.round(rng.lognormal(np.log(10), 0.5)), 2, 60))
        return rng.choice(vocabulary, size=length, p=weights)

    a, b, labels = [], [], np.zeros(n, dtype=np.float32)
    for i in range(n):
        first = sentence()
        if i % 2 == 0:
            second = first.copy()
            swap = rng.random(len(second)) < 0.2
            second[swap] = rng.choice(vocabulary, size=int(swap.sum()), p=weights)
            labels[i] = 1.0
        else:
            second = sentence()
        a.append(" ".join(first))
        b.append(" ".join(second))
    order = rng.permutation(n)
    return [a[i] for i in order], [b[i] for i in order], labels[order]


def write_synthetic(folder: Path, seed: int) -> Path:
    """The synthetic set as a TSV of pairs (``sentence1``, ``sentence2``, ``label``)."""
    path = folder / f"synthetic-{SIZES['synthetic']}.tsv"
    if path.is_file():
        return path
    a, b, labels = synthetic_pairs(SIZES["synthetic"], seed)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("sentence1\tsentence2\tlabel\n")
        for x, y, z in zip(a, b, labels, strict=True):
            handle.write(f"{x}\t{y}\t{int(z)}\n")
    return path


# --------------------------------------------------------------------------- the two sides


def text_config(workload: str, data: str, seed: int):
    from siamese.tasks.text_pairs import TextOptions
    from siamese.training import RunConfig

    return RunConfig(
        task="text-pairs",
        data=data,
        dev_fraction=SYNTHETIC_DEV_FRACTION if workload == "synthetic" else 0.1,
        epochs=EPOCHS[workload],
        batch_size=BATCH[workload],
        patience=0,
        seed=seed,
        head="manhattan",  # the settings of the committed tables (the defaults of their time)
        options=TextOptions(
            units=128,
            embedding_dim=128,
            sequence_length=30,
            word_vectors=None,
            rnn="lstm",
            sequence_pooling="last",
        ),
    )


def toolkit_side(workload: str, data: str, seed: int, folder: Path) -> dict:
    """Train with the toolkit's own path; seconds in fit from the run's state.json."""
    from siamese.tasks import image_pairs, text_pairs
    from siamese.tasks.image_pairs import ImageOptions
    from siamese.training import RunConfig

    out = folder / f"run-{workload}-{time.time_ns()}"
    if workload == "fashion-mnist":
        config = RunConfig(
            task="image-pairs",
            data="fashion-mnist",
            epochs=EPOCHS[workload],
            batch_size=BATCH[workload],
            patience=0,
            seed=seed,
            options=ImageOptions(pairs_per_epoch=SIZES[workload], pair_pools=False),
        )
        train, n_pairs = image_pairs.TASK.train, SIZES[workload]
    else:
        config = text_config(workload, data, seed)
        train, n_pairs = text_pairs.TASK.train, None
    train(config, out, verbose=0)
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    history = state["history"]
    if n_pairs is None:
        n_pairs = len(text_pairs.load_splits(config)["train"])
    return _figures(n_pairs, state["seconds"], history)


def _figures(n_pairs: int, seconds: list[float], history: dict) -> dict:
    dev = {k: v[-1] for k, v in history.items() if k.startswith("val_")}
    return {
        "pairs_per_second": n_pairs * len(seconds) / sum(seconds),
        "seconds": sum(seconds),
        "epochs": len(seconds),
        "dev": dev,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


class _EpochTimes:
    """Seconds of each epoch of ``fit`` (training plus its validation)."""

    def __init__(self) -> None:
        import keras

        outer = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.began = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                outer.seconds.append(time.perf_counter() - outer.began)

        self.seconds: list[float] = []
        self.callback = Callback()


def plain_side(workload: str, data: str, seed: int) -> dict:
    """The plain formulation: two-input model, tower called on each input, fit on arrays."""
    import keras

    import siamese
    from siamese import heads, losses

    keras.utils.set_random_seed(seed)
    times = _EpochTimes()
    if workload == "fashion-mnist":
        from siamese.datasets.images import load_image_dataset
        from siamese.pairs import PairSampler
        from siamese.tasks import image_pairs
        from siamese.tasks.image_pairs import VERIFICATION_PAIRS, ImageOptions, verification_pairs
        from siamese.training import RunConfig

        splits = load_image_dataset("fashion-mnist", seed=seed)
        train, dev = splits["train"], splits["dev"]
        sampler = PairSampler(train.labels, pairs_per_epoch=SIZES[workload], seed=seed)
        da, db, dy = verification_pairs(dev, VERIFICATION_PAIRS, seed * 10 + 2)
        # the toolkit side's tower settings, as its run configures them
        options = image_pairs.TASK.configure(
            RunConfig(task="image-pairs", data="fashion-mnist", options=ImageOptions(pair_pools=False))
        ).options
        tower = siamese.image_tower(
            train.images.shape[1:],
            filters=options.filters,
            embedding_dim=options.embedding_dim,
            global_pooling=options.global_pooling,
            seed=seed,
        )

        def epoch_pairs(epoch: int) -> tuple[list[np.ndarray], np.ndarray]:
            a, b, y = sampler.epoch(epoch)  # the toolkit's independent pairs of that epoch
            return [train.images[a], train.images[b]], y.astype("float32")

        dev_x = [dev.images[da], dev.images[db]]
        dev_y, head, loss, metrics = (
            dy.astype("float32"),
            "abs-diff",
            "binary-crossentropy",
            ["accuracy"],
        )
        shape, dtype = train.images.shape[1:], "uint8"
    else:
        from siamese.metrics.keras_metrics import PearsonCorrelation
        from siamese.tasks import text_pairs

        config = text_config(workload, data, seed)
        splits = text_pairs.load_splits(config)
        config = text_pairs.resolve(config, splits["train"].kind)
        train, dev = splits["train"], splits["dev"]
        vectorize = keras.layers.TextVectorization(
            max_tokens=config.options.vocab_size, standardize="lower_and_strip_punctuation"
        )
        vectorize.adapt(list(train.a) + list(train.b))
        cap = config.options.sequence_length  # the toolkit's tower cuts there too
        ids = [np.asarray(vectorize(list(side)))[:, :cap] for side in (train.a, train.b, dev.a, dev.b)]
        longest = max(i.shape[1] for i in ids)
        ids = [np.pad(i, ((0, 0), (0, longest - i.shape[1]))) for i in ids]
        x, dev_x = ids[:2], ids[2:]
        padding = padding_shares(x[0], x[1], config)
        y, dev_y = text_pairs._targets(train, config), text_pairs._targets(dev, config)

        def epoch_pairs(epoch: int) -> tuple[list[np.ndarray], np.ndarray]:
            return x, y  # the same pairs every epoch, shuffled by fit

        tower = keras.Sequential(
            [
                keras.layers.Embedding(
                    vectorize.vocabulary_size(), config.options.embedding_dim, mask_zero=True
                ),
                keras.layers.LSTM(config.options.units),
            ]
        )
        head, loss = config.head, config.loss
        metrics = [PearsonCorrelation()] if config.objective == "regression" else ["accuracy"]
        shape, dtype = (longest,), "int32"
    left, right = keras.Input(shape, dtype=dtype), keras.Input(shape, dtype=dtype)
    output = heads.get(head)([tower(left), tower(right)])
    model = keras.Model([left, right], output)
    model.compile(keras.optimizers.Adam(1e-3, clipnorm=1.0), loss=losses.get(loss), metrics=metrics)
    # Text: one fit over the epochs. Images: one fit per epoch, each on that epoch's pairs.
    rounds = range(EPOCHS[workload]) if workload == "fashion-mnist" else [EPOCHS[workload] - 1]
    for epoch in rounds:
        x, y = epoch_pairs(epoch)
        fitted = model.fit(
            x,
            y,
            batch_size=BATCH[workload],
            epochs=epoch + 1,
            initial_epoch=epoch if workload == "fashion-mnist" else 0,
            validation_data=(dev_x, dev_y),
            callbacks=[times.callback],
            verbose=0,
        )
    figures = _figures(len(y), times.seconds, fitted.history)
    if workload != "fashion-mnist":
        figures["padding"] = padding
    return figures


def padding_shares(ids_a: np.ndarray, ids_b: np.ndarray, config) -> dict[str, float]:
    """Share of the token slots that hold padding in the first epoch, on each side: the plain
    side pads both inputs to the longest sentence of the data (both sides cut each sentence
    at ``sequence_length`` tokens); the toolkit cuts each length-bucketed batch to its longest
    sentence."""
    from siamese.encode import lengths_of
    from siamese.training import fused
    from siamese.training.loop import epoch_permutation

    lengths_a, lengths_b = lengths_of(ids_a), lengths_of(ids_b)
    used = int(lengths_a.sum() + lengths_b.sum())
    plain = 1.0 - used / (2 * len(ids_a) * ids_a.shape[1])
    cap = config.options.sequence_length
    cut_a, cut_b = np.minimum(lengths_a, cap), np.minimum(lengths_b, cap)
    batches = fused.batch_order(
        np.maximum(cut_a, cut_b),
        epoch_permutation(len(ids_a), config.seed, 0),
        config.batch_size,
        pool_batches=config.options.bucket_pool,
        rng=np.random.default_rng([config.seed, 0, 1]),
    )
    slots = sum(2 * len(b) * max(int(np.maximum(cut_a[b], cut_b[b]).max()), 1) for b in batches)
    return {"plain": plain, "toolkit": 1.0 - int(cut_a.sum() + cut_b.sum()) / slots}


# --------------------------------------------------------------------------- driver


def worker(args: argparse.Namespace) -> None:
    import siamese  # noqa: F401  (quiet TensorFlow start-up)

    logging.basicConfig(level=logging.WARNING)
    folder = Path(args.folder)
    data = {"sick": "sick", "fashion-mnist": "fashion-mnist"}.get(args.workload)
    if args.workload == "synthetic":
        data = str(write_synthetic(folder, args.data_seed))
    if args.worker == "plain":
        result = plain_side(args.workload, data, args.seed)
    else:
        result = toolkit_side(args.workload, data, args.seed, folder)
    sys.stdout.write(json.dumps(result) + "\n")


def run_worker(
    side: str, workload: str, seed: int, data_seed: int, folder: str, *, quick: bool = False
) -> dict:
    command = [sys.executable, __file__, "--worker", side, "--workload", workload, "--seed", str(seed)]
    command += ["--data-seed", str(data_seed)]
    if quick:
        command.append("--quick")
    done = subprocess.run([*command, "--folder", folder], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} {workload} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: dict[str, dict[str, list[dict]]]) -> str:
    rows = []
    for workload, sides in results.items():
        median = {
            side: statistics.median(r["pairs_per_second"] for r in runs) for side, runs in sides.items()
        }
        for side, runs in sides.items():
            speeds = [r["pairs_per_second"] for r in runs]
            dev = "; ".join(
                f"{k[4:]} {statistics.mean(r['dev'][k] for r in runs):.4f}"
                + (f" ± {statistics.stdev(r['dev'][k] for r in runs):.4f}" if len(runs) > 1 else "")
                + " ("
                + "/".join(f"{r['dev'][k]:.4f}" for r in runs)
                + ")"
                for k in sorted(runs[0]["dev"])
            )
            padding = next((r["padding"][side] for r in sides["plain"] if "padding" in r), None)
            rows.append(
                [
                    f"{workload} ({runs[0]['epochs']} epochs)",
                    side,
                    f"{median[side]:,.0f} ({min(speeds):,.0f}–{max(speeds):,.0f})",
                    f"{statistics.median(r['seconds'] for r in runs):.1f}",
                    dev,
                    "" if padding is None else f"{padding:.0%}",
                    f"{statistics.median(r['peak_rss_mb'] for r in runs):,.0f}",
                    f"**{median['toolkit'] / median['plain']:.2f}×**" if side == "toolkit" else "",
                ]
            )
    return common.markdown_table(COLUMNS, rows)


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__, NAME, only=WORKLOADS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="Seed of the first repeat (and of the data).")
    parser.add_argument("--data-seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["plain", "toolkit"], help=argparse.SUPPRESS)
    parser.add_argument("--workload", choices=WORKLOADS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: small sets, 1 epoch, 1 repeat, no table"
    )
    args = parser.parse_args(argv)
    if args.quick:
        SIZES.update(QUICK_SIZES)
        EPOCHS.update(dict.fromkeys(EPOCHS, 1))
        args.repeats = min(args.repeats, 1)
    if args.worker:
        worker(args)
        return
    run = common.invocation(NAME, argv)
    results: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="siamese-throughput-") as folder:
        for workload in args.only:
            sides = results.setdefault(workload, {"plain": [], "toolkit": []})
            for repeat in range(args.repeats):
                order = ("plain", "toolkit") if repeat % 2 == 0 else ("toolkit", "plain")
                for side in order:
                    seed = args.seed + repeat  # each repeat a new seed, the same for both sides
                    sides[side].append(run_worker(side, workload, seed, args.seed, folder, quick=args.quick))
                    sys.stderr.write(f"{workload} {side} repeat {repeat + 1}: {sides[side][-1]}\n")
    notes = (
        f"{args.repeats} repeats per side, repeat i with training seed {args.seed}+i on both sides (data "
        f"seed {args.seed}), each in a fresh process, alternating which side goes first; dev figures as "
        "mean ± sd over the seeds, each seed's value in brackets."
    )
    text = common.header("Training throughput: toolkit vs the plain Keras formulation", run, notes)
    text += table(results) + "\n"
    if args.quick:
        common.echo(text)
    else:
        common.write_result(NAME, text, args.out)


if __name__ == "__main__":
    main()
