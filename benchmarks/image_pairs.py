"""Image-pairs benchmark: Omniglot 20-way one-shot and Fashion-MNIST, beside published anchors.

Run:  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/image_pairs.py [--only omniglot fashion-mnist]

Omniglot: Conv2D twins trained only on the two small background sets (242 characters of 8
alphabets; one whole alphabet held out as dev, Greek's 24 characters for seed 0), with each
character's three rotations as extra classes, for at most 30 minutes of training,
then scored on Lake et al.'s 20 official one-shot runs (400 trials of 20-way within-alphabet
classification), by the pair model's output and by tower-embedding distance. The raw-pixel
nearest-neighbour baseline is computed on the same runs, at the native 105x105 and at the
training size. Fashion-MNIST: twins trained on the 54,000-image train carve (6,000 held out as
dev), scored by 1-NN / 5-NN accuracy of test embeddings against the train embeddings and by
verification accuracy on 4,000 fixed test pairs (threshold chosen on dev pairs); the raw-pixel
1-NN baseline is computed on the same images. Settings were chosen on dev only (see
SETTINGS below). Writes ``benchmarks/results/image_pairs.md`` and each run's
``neighbours.png`` as ``benchmarks/results/neighbours-{omniglot,fashion-mnist}.png``.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import common
import numpy as np

import siamese  # noqa: F401  (quiet TensorFlow start-up)
from siamese import metrics
from siamese.datasets.images import load_image_dataset, read_omniglot_runs
from siamese.io import atomic_save, read_json
from siamese.tasks import image_pairs
from siamese.tasks.image_pairs import ImageOptions
from siamese.training import RunConfig

NAME = "image_pairs"

# Settings per dataset, chosen on dev (each tried for 8 minutes of training; dev figures):
# Omniglot, first with a dev of 24 characters drawn across alphabets (20-way one-shot trials
#   built from them, so candidates of mixed alphabets: an easier question than the test's):
#   abs-diff + cross-entropy 70.3% (embedding) / 64.5% (pair); + distortions 75.5 / 71.8;
#   + hard negatives 76.5 / 65.3; + batch norm (no hard negatives) 79.0 / 75.0;
#   euclidean + contrastive with distortions 77.3; + batch norm 78.5; + hard negatives 81.3;
#   + 128-d embedding 83.3. A 30-minute run of that reached 83.0% on this dev but 66.8% on the
#   official runs, so dev became a held-out alphabet (Greek for seed 0: 20-way trials within
#   one unseen alphabet, the test's question). On it: the settings above 76.8%; + rotated
#   copies as new classes 78.8% (chosen; verification ROC-AUC 0.986 vs 0.981); 40x40 images
#   instead of 28x28 68.3% (half the epochs fit in the time).
#   Pooled pairs (each batch's pairs among ~128 images, embedded once; about twice the epochs
#   per minute): 79.3% in 8 minutes (45 epochs, vs about 24) against 78.8% independent; a
#   30-minute run (made at commit 0e3334e when pooled pairs were the default, its figures in
#   benchmarks/README.md; today `--only omniglot --pair-pools --lr-patience 0`) stopped early
#   at epoch 103 (best 73, dev verification loss rising) with dev 82.8% against the
#   independent run's 82.2%, but 74.5% on the official runs against 78.0%. Dev does not
#   separate the two, and that test figure has been seen, so nothing is claimed from it; the
#   committed table keeps independent pairs (the settings that produced it).
#   Lowering the learning rate on a dev plateau (halved after 5 epochs without a better dev
#   loss), two 30-minute runs against the two of the constant rate: dev one-shot 83.5% and
#   84.0% against 82.25% and 82.0% (embedding, image alone); 84.75% and 87.25% against 85.75%
#   and 85.5% with 8 test-time distortions. Taken (results/image_pairs_plateau*.md).
# Fashion-MNIST, dev 1-NN: abs-diff + cross-entropy 0.902 (chosen; 0.903 in a later 8-minute
#   try); euclidean + contrastive 0.879; contrastive + batch norm 0.853 (batch norm triples the
#   time per epoch here); two convolutions per block 0.892 (5 epochs in 8 minutes).
SETTINGS = {
    "omniglot": {
        "budget": 30 * 60.0,
        "epochs": 500,
        "patience": 30,
        "lr_patience": 5,
        "batch_size": 128,
        "head": "euclidean",
        "loss": "contrastive",
        "image": ImageOptions(
            pairs_per_epoch=20000,
            augment=True,
            batch_norm=True,
            hard_negative_fraction=0.5,
            embedding_dim=128,
            rotated_classes=True,
            pair_pools=False,
        ),
    },
    "fashion-mnist": {
        "budget": 20 * 60.0,
        "epochs": 100,
        "patience": 5,
        "batch_size": 128,
        "head": "abs-diff",
        "loss": "binary-crossentropy",
        "image": ImageOptions(pairs_per_epoch=54000, pair_pools=False),
    },
}
COLUMNS = (
    "data | test figures | dev | raw-pixel NN (same data) | epochs (best) | training (whole run) | pairs/s "
    "| target | anchors"
).split(" | ")
TARGETS = {"omniglot": "20-way ≥ 80%", "fashion-mnist": "1-NN ≥ 0.90"}
ANCHORS = {
    "omniglot": "Koch et al. 2015: 92.0% (full background set, 964 characters, + distortions); "
    "raw-pixel nearest neighbour 21.7% (Lake et al. 2015)",
    "fashion-mnist": "Keras contrastive Siamese example: 0.958 pair accuracy on MNIST (digits, not clothes)",
}


def config_for(name: str, seed: int) -> RunConfig:
    """The run settings of one benchmark cell."""
    s = SETTINGS[name]
    return RunConfig(
        task="image-pairs",
        data=name,
        epochs=s["epochs"],
        patience=s["patience"],
        batch_size=s["batch_size"],
        seed=seed,
        time_budget=s["budget"],
        lr_patience=s.get("lr_patience", 0),
        head=s["head"],
        loss=s["loss"],
        options=dataclasses.replace(s["image"]),
    )


def _pixels(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32)


def raw_pixel_baseline(name: str, config: RunConfig) -> dict[str, float]:
    """Nearest neighbour on raw pixels, on the same trials / images as the trained model."""
    if name == "omniglot":
        raw = image_pairs.embedding_scorer(_pixels)
        native = image_pairs.one_shot_score(read_omniglot_runs(), raw)
        resized = image_pairs.one_shot_score(read_omniglot_runs(size=config.options.image_size), raw)
        return {"native": native, "resized": resized}
    splits = load_image_dataset(name, seed=config.seed, dev_fraction=config.dev_fraction)
    train, test = splits["train"], splits["test"]
    return {
        "knn1": metrics.knn_accuracy(
            _pixels(test.images), test.labels, _pixels(train.images), train.labels, k=1
        )
    }


def run_cell(name: str, seed: int, folder: Path, results: Path) -> dict:
    """Train one dataset and return its figures (test and dev metrics, time, throughput);
    its ``neighbours.png`` is copied beside ``results`` (named after it unless it is the
    default table)."""
    config = config_for(name, seed)
    out = folder / name
    began = time.perf_counter()
    result = image_pairs.TASK.train(config, out, verbose=0)
    seconds = time.perf_counter() - began
    suffix = "" if results == common.result_path(NAME) else f"-{results.stem}"
    picture = results.parent / f"neighbours-{name}{suffix}.png"
    atomic_save(picture, lambda tmp: shutil.copyfile(out / "neighbours.png", tmp))
    history = read_json(out / "history.json")
    config = RunConfig.from_dict(read_json(out / "config.json"), ImageOptions)
    epochs = len(history["loss"])
    # Training proper: from the run folder's creation to the last epoch's checkpoint.
    training = (out / "checkpoints" / "state.json").stat().st_mtime - (out / "config.json").stat().st_mtime
    return {
        "name": name,
        "test": result["test"],
        "dev": result["dev"],
        "epochs": epochs,
        "best_epoch": int(np.argmin(history["val_loss"])) + 1,
        "seconds": seconds,
        "training_seconds": training,
        "pairs_per_second": epochs * config.options.pairs_per_epoch / training,
        "baseline": raw_pixel_baseline(name, config),
    }


def _figures(cell: dict) -> str:
    t = cell["test"]
    if cell["name"] == "omniglot":
        return (
            f"20-way one-shot over {t['one_shot_trials']} trials: **{100 * t['one_shot_embedding']:.1f}%** "
            f"by embedding distance, {100 * t['one_shot_pair']:.1f}% by pair score"
        )
    return (
        f"1-NN **{t['knn1_accuracy']:.4f}**, 5-NN {t['knn5_accuracy']:.4f}; pair verification "
        f"accuracy {t['accuracy']:.4f} (ROC-AUC {t['roc_auc']:.4f}, {t['n']} pairs)"
    )


def _dev(cell: dict) -> str:
    d = cell["dev"]
    if "one_shot_embedding" in d:
        return (
            f"one-shot {100 * d['one_shot_embedding']:.1f}% (embedding) / {100 * d['one_shot_pair']:.1f}% "
            f"(pair); pairs {d['accuracy']:.3f}"
        )
    return f"1-NN {d['knn1_accuracy']:.4f}; pairs {d['accuracy']:.3f}"


def _baseline(cell: dict) -> str:
    b = cell["baseline"]
    if cell["name"] == "omniglot":
        return f"{100 * b['native']:.1f}% (105x105), {100 * b['resized']:.1f}% (training size)"
    return f"1-NN {b['knn1']:.4f}"


def table(cells: list[dict]) -> str:
    rows = [
        [
            c["name"],
            _figures(c),
            _dev(c),
            _baseline(c),
            f"{c['epochs']} ({c['best_epoch']})",
            f"{c['training_seconds'] / 60:.1f} min ({c['seconds'] / 60:.1f})",
            f"{c['pairs_per_second']:.0f}",
            TARGETS[c["name"]],
            ANCHORS[c["name"]],
        ]
        for c in cells
    ]
    return common.markdown_table(COLUMNS, rows)


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__, NAME, only=list(SETTINGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the run folders here (new folder).")
    parser.add_argument(
        "--pair-pools", action="store_true", help="Pooled pairs instead of the settings' independent ones."
    )
    parser.add_argument(
        "--lr-patience",
        type=int,
        default=None,
        help="Lower the learning rate after this many epochs without dev improvement (0: never).",
    )
    args = parser.parse_args(argv)
    run = common.invocation(NAME, argv)
    logging.basicConfig(level=logging.WARNING)
    if args.pair_pools:
        for settings in SETTINGS.values():
            settings["image"] = dataclasses.replace(settings["image"], pair_pools=True)
    if args.lr_patience is not None:
        for settings in SETTINGS.values():
            settings["lr_patience"] = args.lr_patience
    results = common.result_path(NAME, args.out).resolve()
    cells = []
    with tempfile.TemporaryDirectory(prefix="siamese-bench-") as folder:
        for name in args.only:
            cells.append(run_cell(name, args.seed, args.keep or Path(folder), results))
            sys.stderr.write(table(cells[-1:]) + "\n")
    notes = (
        f"Seed {args.seed}; at most {SETTINGS['omniglot']['budget'] / 60:.0f} minutes of training on "
        f"Omniglot, {SETTINGS['fashion-mnist']['budget'] / 60:.0f} on Fashion-MNIST; the whole run adds "
        "data loading and the final evaluation."
    )
    common.write_result(NAME, common.header("Image-pairs benchmark", run, notes) + table(cells), results)


if __name__ == "__main__":
    main()
