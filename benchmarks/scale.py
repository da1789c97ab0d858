"""Scaling out on one machine: the index build on Ray beside the single process, and
training on one and two tf.distribute replicas.

Run:  python benchmarks/scale.py [--items 1000000] [--repeats 2] [--only build train]

build
    1. A corpus of ``--items`` sentences: the distinct sentences of the staged text sets
       (SICK, STS-B, MRPC, PAWS, QQP; every split), repeated in order until there are
       enough, ids 0..n-1 (a repeated sentence is embedded again: the same work as a new one).
    2. A text tower: ``siamese-train --task text-pairs`` on SICK with the defaults and
       ``--epochs 1`` (the architecture users get; its quality does not matter here).
    3. Three builds of an ``IVF1024,Flat`` cosine index of the corpus, each in a fresh
       process, ``--repeats`` times, interleaved: ``Index.build`` (one process, TensorFlow
       on every core); ``build_on_ray`` with 1 worker and with 2 workers of one CPU each
       (each actor's TensorFlow on one thread; a local Ray started and stopped by the
       build). Each reports its whole time (starting Ray and the actors included, saving
       the folder excluded), the embedding stage's time (the toolkit's "embedded N items"
       log line: from the first block sent to the last received on Ray), the driver's peak
       RSS and, sampled every 0.5 s from ``/proc``, the peak RSS of each Ray actor.

train
    ``siamese-train --task text-pairs`` on SICK (defaults, ``--batch-size 64``,
    ``--epochs 3``, ``--patience 0``) in a fresh process: without ``--distribute``, with
    ``--distribute mirrored --cpu-replicas 1`` and ``--cpu-replicas 2``, ``--repeats``
    times, interleaved; training pairs/s of epochs 2 and 3 (``checkpoints/state.json``'s
    epoch seconds; the first epoch also traces the step).

Medians over the repeats. Writes ``benchmarks/results/scale.md``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import common
import numpy as np

NAME = "scale"
TITLE = "Scaling out on one machine: Ray index build and tf.distribute training"
PARTS = ("build", "train")
TEXT_SETS = ("sick", "stsb", "mrpc", "paws", "qqp")
FACTORY = "IVF1024,Flat"

CHILD = r"""
import json, logging, resource, sys, time
engine, tower, corpus, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
embedded = []

class Grab(logging.Handler):
    def emit(self, record):
        message = record.getMessage()
        if message.startswith("embedded "):
            embedded.append(float(message.split(" in ")[1].split(" s")[0]))

logging.getLogger("siamese").addHandler(Grab())
logging.getLogger("siamese").setLevel(logging.INFO)
from siamese.index import Index, build_on_ray
from siamese.models import load_tower
items = open(corpus, encoding="utf-8").read().split("\n")
began = time.perf_counter()
if engine == "local":
    index = Index.build(load_tower(tower), items, tower_path=tower, factory="FACTORY", metric="cosine",
                        progress=False)
else:
    index = build_on_ray(tower, items, factory="FACTORY", metric="cosine", workers=workers,
                         cpus_per_worker=1.0, progress=False)
seconds = time.perf_counter() - began
print(json.dumps({"seconds": seconds, "embed_seconds": embedded[-1], "count": index.ntotal,
                  "driver_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""".replace("FACTORY", FACTORY)


class ActorMemory:
    """Peak RSS of Ray's worker processes (``ray::...`` in their command line), sampled."""

    def __init__(self) -> None:
        self.peaks: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ActorMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
                    if not title.startswith("ray::"):
                        continue
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                peak = re.search(r"VmHWM:\s+(\d+) kB", status)
                if peak:
                    name, before = self.peaks.get(int(pid), (title, 0.0))
                    self.peaks[int(pid)] = (
                        title if "EmbedWorker" in title else name,
                        max(before, int(peak[1]) / 1024),
                    )

    def embed_workers(self) -> list[float]:
        return [mb for title, mb in self.peaks.values() if "EmbedWorker" in title]


def corpus_file(path: Path, items: int) -> tuple[int, list[str]]:
    from siamese.datasets.text import load_text_dataset

    distinct: dict[str, None] = {}
    used = []
    for name in TEXT_SETS:
        try:
            splits = load_text_dataset(name)
        except Exception as exc:  # a set that is not staged is left out, and said so
            common.echo(f"{name}: not read ({exc})\n")
            continue
        used.append(name)
        for pairs in splits.values():
            for sentence in (*pairs.a, *pairs.b):
                distinct[sentence.replace("\n", " ")] = None
    sentences = list(distinct)
    if not sentences:
        raise SystemExit(
            f"no staged text set could be read (SIAMESE_DATA_DIR={os.environ.get('SIAMESE_DATA_DIR')})"
        )
    chosen = [sentences[i % len(sentences)] for i in range(items)]
    path.write_text("\n".join(chosen), encoding="utf-8")
    return len(sentences), used


def train_tower(work: Path) -> Path:
    run = common.siamese_train(
        work / "tower-run", "--data", "sick", "--epochs", "1", what="training the tower"
    )
    return run / "tower.keras"


def one_build(engine: str, tower: Path, corpus: Path, workers: int) -> dict:
    with ActorMemory() as actors:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, engine, str(tower), str(corpus), str(workers)],
            capture_output=True,
            text=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )
    if proc.returncode != 0:
        raise SystemExit(f"the {engine} build failed:\n{proc.stderr[-3000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    figures["actor_peak_mb"] = actors.embed_workers()
    return figures


def measure_build(args, rows: list, notes: list) -> None:
    work = args.work
    corpus = work / "corpus.txt"
    distinct, used = corpus_file(corpus, args.items)
    tower = train_tower(work)
    sides = [
        ("single process (TensorFlow on every core)", "local", 0),
        ("Ray, 1 worker of 1 CPU", "ray", 1),
        ("Ray, 2 workers of 1 CPU", "ray", 2),
    ]
    found: dict[str, list[dict]] = {name: [] for name, _, _ in sides}
    for repeat in range(args.repeats):
        for name, engine, workers in sides:
            common.echo(f"build {repeat + 1}/{args.repeats}: {name}\n")
            figures = one_build(engine, tower, corpus, workers)
            assert figures["count"] == args.items
            found[name].append(figures)
    median = lambda values: float(np.median(values))  # noqa: E731
    single = median([f["seconds"] for f in found[sides[0][0]]])
    one = median([args.items / f["embed_seconds"] for f in found[sides[1][0]]])
    for name, _, _ in sides:
        runs = found[name]
        seconds = median([f["seconds"] for f in runs])
        rate = median([args.items / f["embed_seconds"] for f in runs])
        actor = [max(f["actor_peak_mb"]) for f in runs if f["actor_peak_mb"]]
        rows.append(
            [
                name,
                f"{seconds:,.0f}",
                f"{seconds / single:.2f}×",
                f"{rate:,.0f}",
                "—" if name == sides[0][0] else f"{rate / one:.2f}×",
                f"{median([f['driver_peak_mb'] for f in runs]):,.0f}",
                f"{median(actor):,.0f}" if actor else "—",
            ]
        )
    notes.append(
        f"Build: {args.items:,} sentences ({distinct:,} distinct, from {', '.join(used)}, "
        "repeated in order), "
        f"the default text tower (SICK, 1 epoch), `{FACTORY}` cosine; each build in a fresh process, "
        f"{args.repeats} repeats interleaved, medians. Whole time: from the call to the index in memory "
        "(starting Ray and its actors included, the folder not saved). Embedding items/s: the corpus over "
        "the embedding stage's time. RSS: the build's process (the driver) and the largest Ray actor."
    )


def measure_train(args, rows: list, notes: list) -> None:
    from siamese.tasks.text_pairs import ASYMMETRIC_HEADS

    sides = [
        ("one process, no strategy", []),
        ("mirrored, 1 CPU replica", ["--distribute", "mirrored", "--cpu-replicas", "1"]),
        ("mirrored, 2 CPU replicas", ["--distribute", "mirrored", "--cpu-replicas", "2"]),
    ]
    found: dict[str, list[float]] = {name: [] for name, _ in sides}
    count = None
    for repeat in range(args.repeats):
        for name, extra in sides:
            common.echo(f"train {repeat + 1}/{args.repeats}: {name}\n")
            run = args.work / f"train-{repeat}-{len(found[name])}-{name.split(',')[0].replace(' ', '-')}"
            shutil.rmtree(run, ignore_errors=True)
            common.siamese_train(
                run,
                "--data",
                "sick",
                "--batch-size",
                "64",
                "--epochs",
                "3",
                "--patience",
                "0",
                *extra,
                what=f"training ({name})",
            )
            state = json.loads((run / "checkpoints" / "state.json").read_text())
            metrics = json.loads((run / "metrics.json").read_text())
            config = json.loads((run / "config.json").read_text())
            both = config["swap_pairs"] and config["head"] in ASYMMETRIC_HEADS  # each pair in both orders
            count = metrics["train"]["n"] * (2 if both else 1)
            found[name].append(float(np.mean(state["seconds"][1:])))
    base = float(np.median(found[sides[0][0]]))
    for name, _ in sides:
        seconds = float(np.median(found[name]))
        rows.append([name, f"{seconds:.2f}", f"{count / seconds:,.0f}", f"{base / seconds:.2f}×"])
    notes.append(
        f"Training: SICK train ({count:,} pairs an epoch, with the default head's pair orders), "
        "global batch 64, "
        f"3 epochs, the mean of epochs 2-3; {args.repeats} repeats interleaved, medians; "
        "each run a fresh process."
    )


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__, NAME, only=PARTS)
    parser.add_argument("--items", type=int, default=1_000_000, help="sentences to index")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side (medians)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/siamese-scale-bench"), help="scratch folder")
    args = parser.parse_args(argv)
    run = common.invocation(NAME, argv)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    tables, notes = [], []
    try:
        if "build" in args.only:
            rows: list = []
            measure_build(args, rows, notes)
            tables.append(
                common.markdown_table(
                    [
                        "build",
                        "whole s",
                        "× single",
                        "embedding items/s",
                        "× 1 worker",
                        "driver peak RSS MB",
                        "actor peak RSS MB",
                    ],
                    rows,
                )
            )
        if "train" in args.only:
            rows = []
            measure_train(args, rows, notes)
            tables.append(common.markdown_table(["training", "s / epoch", "pairs/s", "× one process"], rows))
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    common.write_result(NAME, common.header(TITLE, run, notes) + "\n\n".join(tables) + "\n", args.out)


if __name__ == "__main__":
    main()
