"""Text-pairs benchmark: SICK, STS-B and MRPC test figures beside published anchors.

Run:  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/text_pairs.py [--only sick sick-refit stsb mrpc]

Each dataset is trained with and without pretrained word vectors (GloVe 6B 50d from the
``glove`` extra), with settings chosen on the dev split (SICK trial, STS-B dev, MRPC's GLUE
dev carved from train); the test split is touched only for the final figure. Every cell is
an ensemble of three models (``--members 3``: seeds 0-2, scores averaged). STS-B and MRPC
start from a SICK cell's towers (trained first, with the same word vectors; member K from
member K): MRPC from the SICK models chosen on SICK's trial split, STS-B from the SICK models
then trained again on train + trial for the epoch count chosen on trial (``--refit``, the
``sick-refit`` cell); STS-B's own models are refit on train + dev the same way. MRPC's
threshold is the one with the best F1 on dev (``--threshold-metric f1``). Every cell gets at
most 20 minutes of training in all, pretraining included (``time_budget``). Writes
``benchmarks/results/text_pairs.md``.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

import common

import siamese  # noqa: F401  (quiet TensorFlow start-up)
from siamese.io import read_json
from siamese.tasks import text_pairs
from siamese.tasks.text_pairs import TextOptions
from siamese.training import RunConfig

NAME = "text_pairs"
BUDGET = 20 * 60.0

# Settings per dataset, chosen on dev (see benchmarks/README.md for what was tried): a
# bidirectional LSTM max-pooled over the tokens, GloVe's 100,000 most frequent words added to
# the vocabulary, and for STS-B and MRPC a tower first trained on SICK (train, trial for
# early stopping; SICK's test split is not used) under a fresh head.
TOWER = {"rnn": "bilstm", "sequence_pooling": "max", "units": 100, "vectors_vocabulary": 100000}
# A cell's dataset is its name up to the first "-" ("sick-refit" is SICK with --refit).
SETTINGS = {
    "sick": {"head": "concat", "hidden": 128, "epochs": 60, "patience": 6, "batch_size": 32},
    "sick-refit": {
        "head": "concat",
        "hidden": 128,
        "epochs": 60,
        "patience": 6,
        "batch_size": 32,
        "refit": True,
    },
    "stsb": {
        "head": "concat",
        "hidden": 128,
        "epochs": 60,
        "patience": 6,
        "pretrain": "sick-refit",
        "refit": True,
    },
    "mrpc": {
        "head": "concat",
        "hidden": 128,
        "epochs": 40,
        "patience": 5,
        "pretrain": "sick",
        "threshold_metric": "f1",
    },
}
# Every cell is an ensemble of this many models (seeds 0, 1, 2 with --seed 0), member K of
# STS-B and MRPC starting from member K of its SICK cell (--members).
MEMBERS = 3

# STS-B: the first four are transfer results (no training on STS-B: the cosine of sentence
# embeddings learned elsewhere; SBERT paper, Table 1); the others are trained on STS-B train
# like our cells: the GLUE paper's single-task baselines (ICLR 2019 version, Table 4, test
# Pearson/Spearman ×100) and SBERT-STSb-base (SBERT paper, Table 2, mean of 10 seeds).
STSB_ANCHORS = (
    "transfer, not trained on STS-B (Spearman ×100): avg GloVe 58.02, InferSent 68.03, USE 74.92, "
    "SBERT-NLI-base 77.12; trained on STS-B train: GLUE single-task BiLSTM Pearson/Spearman ×100 "
    "66.0/62.8 (+ELMo 64.0/60.2, +CoVe 67.2/64.1), SBERT-STSb-base Spearman 84.67"
)
ANCHORS = {
    "sick": "MaLSTM: Pearson 0.8822, Spearman 0.8345, MSE 0.2286",
    "stsb": STSB_ANCHORS,
    "mrpc": "majority 66.5% / F1 79.9; early systems 70.3-75.6% / F1 80.5-83.0",
}
COLUMNS = (
    "data | word vectors | test figures | dev | epochs | training (with pretraining) | pairs/s | target "
    "| anchors"
).split(" | ")
TARGETS = {"sick": "Pearson ≥ 0.80", "stsb": "Spearman ×100 ≥ 70", "mrpc": "accuracy ≥ 72%, F1 ≥ 81"}


def config_for(
    name: str, vectors: bool, seed: int, init_tower: Path | None = None, budget: float = BUDGET
) -> RunConfig:
    """The run settings of one benchmark cell (``init_tower``: the pretrained tower's run;
    ``budget``: seconds of training left after the pretraining)."""
    s = SETTINGS[name]
    text = TextOptions(
        units=TOWER["units"],
        rnn=TOWER["rnn"],
        sequence_pooling=TOWER["sequence_pooling"],
        embedding_dim=50 if vectors else 128,
        word_vectors="glove-6b-50d" if vectors else None,
        vectors_vocabulary=TOWER["vectors_vocabulary"] if vectors else 0,
        init_tower=str(init_tower) if init_tower else None,
        refit=s.get("refit", False),
        members=MEMBERS,
        threshold_metric=s.get("threshold_metric", "accuracy"),
    )
    return RunConfig(
        task="text-pairs",
        data=_data(name),
        head=s["head"],
        head_hidden_units=s["hidden"],
        epochs=s["epochs"],
        patience=s["patience"],
        batch_size=s.get("batch_size", 64),
        seed=seed,
        time_budget=budget,
        options=text,
    )


def _data(name: str) -> str:
    return name.split("-")[0]


def _train(name: str, vectors: bool, seed: int, folder: Path, done: dict) -> dict:
    """Train ``name`` (after its pretraining run, trained first unless ``done`` has it)."""
    key = (name, vectors)
    if key in done:
        return done[key]
    pretrain = SETTINGS[name].get("pretrain")
    before = _train(pretrain, vectors, seed, folder, done) if pretrain else None
    out = folder / f"{name}-{'glove' if vectors else 'plain'}"
    spent = before["seconds"] + before["pretrain_seconds"] if before else 0.0
    config = config_for(name, vectors, seed, before["out"] if before else None, BUDGET - spent)
    began = time.perf_counter()
    metrics = text_pairs.TASK.train(config, out, verbose=0)
    seconds = time.perf_counter() - began
    members = [out / text_pairs.MEMBERS_FOLDER / str(k) for k in range(config.options.members)]
    epochs = [len(read_json(m / "history.json")["loss"]) for m in members]
    refit_epochs = [
        len(read_json(m / text_pairs.REFIT_FOLDER / "history.json")["loss"]) if config.options.refit else 0
        for m in members
    ]
    sides = 2 if config.head in text_pairs.ASYMMETRIC_HEADS else 1
    # Pairs trained on: train each epoch, then train + dev in each refit epoch (both orders).
    n_train, n_dev = metrics["train"]["n"], metrics["dev"]["n"]
    pairs_seen = sides * (sum(epochs) * n_train + sum(refit_epochs) * (n_train + n_dev))
    done[key] = {
        "name": name,
        "vectors": vectors,
        "out": out,
        "test": metrics["test"],
        "dev": metrics["dev"],
        "epochs": epochs,
        "refit_epochs": refit_epochs,
        "seconds": seconds,
        "pretrain": pretrain,
        "pretrain_seconds": spent,
        "pairs_per_second": pairs_seen / seconds,
    }
    return done[key]


def _training(cell: dict) -> str:
    total = (cell["seconds"] + cell["pretrain_seconds"]) / 60
    if not cell["pretrain"]:
        return f"{total:.1f} min"
    before, after = cell["pretrain_seconds"] / 60, cell["seconds"] / 60
    return f"{total:.1f} min ({before:.1f} on {cell['pretrain']}, then {after:.1f})"


def _figures(cell: dict) -> str:
    t = cell["test"]
    if _data(cell["name"]) == "sick":
        return f"Pearson {t['pearson']:.4f}, Spearman {t['spearman']:.4f}, MSE {t['mse']:.4f}"
    if cell["name"] == "stsb":
        return f"Spearman ×100 {100 * t['spearman']:.2f} (Pearson {t['pearson']:.4f})"
    return f"accuracy {100 * t['accuracy']:.1f}%, F1 {100 * t['f1']:.1f} (ROC-AUC {t['roc_auc']:.3f})"


def _dev(cell: dict) -> str:
    d = cell["dev"]
    if "pearson" not in d:
        return f"{100 * d['accuracy']:.1f}% accuracy, F1 {100 * d['f1']:.1f}"
    # A refit ensemble's dev figure is the mean of its members' (each chosen on dev, then refit).
    return f"{d['pearson']:.4f} Pearson" + (" (members' mean)" if any(cell["refit_epochs"]) else "")


def _epochs(cell: dict) -> str:
    each = " / ".join(str(e) for e in cell["epochs"])
    if not any(cell["refit_epochs"]):
        return each
    again = " / ".join(str(e) for e in cell["refit_epochs"])
    return f"{each}, then {again} on train + dev (`--refit`)"


def table(cells: list[dict]) -> str:
    rows = [
        [
            c["name"],
            "GloVe 6B 50d" if c["vectors"] else "none (learned)",
            _figures(c),
            _dev(c),
            _epochs(c),
            _training(c),
            f"{c['pairs_per_second']:.0f}",
            TARGETS[_data(c["name"])],
            ANCHORS[_data(c["name"])],
        ]
        for c in cells
    ]
    return common.markdown_table(COLUMNS, rows)


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__, NAME, only=list(SETTINGS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run = common.invocation(NAME, argv)
    logging.basicConfig(level=logging.WARNING)
    cells, done = [], {}
    with tempfile.TemporaryDirectory(prefix="siamese-bench-") as folder:
        for name in args.only:
            for vectors in (True, False):
                cells.append(_train(name, vectors, args.seed, Path(folder), done))
                sys.stderr.write(table(cells[-1:]) + "\n")
    notes = (
        f"Seed {args.seed}; at most {BUDGET / 60:.0f} minutes of training per cell, "
        "SICK pretraining included."
    )
    common.write_result(NAME, common.header("Text-pairs benchmark", run, notes) + table(cells), args.out)


if __name__ == "__main__":
    main()
