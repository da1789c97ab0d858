"""Index benchmark: the toolkit's :class:`~siamese.index.Index` beside raw FAISS, in one process.

Run:  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/index.py [--fmnist-run RUN_DIR] [--quick]

Data sets:

- ``synthetic``: ``--n`` (1,000,000) float32 vectors of dimension 64 around 1,000 Gaussian
  cluster centres (centres ~ N(0, 1), noise ~ N(0, sigma=1)), seeded; the queries are drawn
  the same way with fresh noise, so none is in the base set. Metric L2.
- ``fashion-mnist`` (only with ``--fmnist-run``): the 70,000 train + test images embedded by
  that run's ``tower.keras``; the queries are the 10,000 test images (each is in the base set,
  so its own vector comes first), the tuning queries 1,000 train images. Metric cosine.

For each index type (Flat, HNSW32, an IVF setting) both sides do the same work: build (train
on the same seeded sample of at most 100,000 vectors, then add), one batched search of all
the queries, and ``--single-queries`` searches of one query each (``--flat-single-queries``
for Flat, whose every query scans the whole set). The toolkit side is
``Index.from_vectors`` and ``Index.search_vectors`` (plus ``Index.hits`` on its arrays: the
``Hit`` lists that ``Index.search`` returns, without embedding the queries; the table's
"search() with Hits" column); the raw side is ``faiss.index_factory`` + ``train`` + ``add``
+ ``search`` on contiguous float32 (normalised by ``faiss.normalize_L2`` for cosine, inside
the timed region, as the toolkit does). In each repeat both sides are built and then searched
in alternating order (toolkit first in even repeats, raw first in odd ones); figures are
medians over the repeats. HNSW ``efSearch`` and IVF ``nprobe`` are tuned once, on the raw index of
the first repeat and on separate tuning queries: the smallest value whose recall@10 reaches
the target plus 0.01. Recall@10 is against exact search (raw Flat). Writes
``benchmarks/results/index.md`` (``--quick``: prints only, unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import logging
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common
import faiss
import numpy as np

import siamese  # noqa: F401  (quiet TensorFlow start-up)
from siamese import metrics
from siamese.index import Index

NAME = "index"
HEAVY_JOBS = "benchmarks/|pytest|siamese-train"
TRAIN_SAMPLE = 100_000  # the toolkit's default train_sample
LADDERS = {
    "efSearch": (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512),
    "nprobe": (1, 2, 3, 4, 6, 8, 12, 16, 32, 64),
}
MB = 1024 * 1024

logger = logging.getLogger("benchmarks.index")


# ---------------------------------------------------------------------- data


@dataclass
class Dataset:
    """Base vectors, measurement queries and tuning queries, with the metric to use."""

    name: str
    base: np.ndarray
    queries: np.ndarray
    tune: np.ndarray
    metric: str
    note: str
    train_rows: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        # The same seeded sample the toolkit draws (faiss_helpers.train, seed 0): both sides train alike.
        n = len(self.base)
        self.train_rows = np.arange(n)
        if n > TRAIN_SAMPLE:
            self.train_rows = np.sort(np.random.default_rng(0).choice(n, TRAIN_SAMPLE, replace=False))


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int, sigma: float) -> np.ndarray:
    """``n`` points: a random centre each plus Gaussian noise, float32, C-contiguous."""
    points = rng.standard_normal((n, centres.shape[1]), dtype=np.float32)
    points *= np.float32(sigma)
    points += centres[rng.integers(0, len(centres), n)]
    return points


def synthetic(n: int, dim: int, clusters: int, sigma: float, n_queries: int, seed: int) -> Dataset:
    """The clustered synthetic set (L2)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    return Dataset(
        name="synthetic",
        base=clustered(rng, centres, n, sigma),
        queries=clustered(rng, centres, n_queries, sigma),
        tune=clustered(rng, centres, 1000, sigma),
        metric="l2",
        note=(
            f"{n:,} vectors, dimension {dim}, {clusters:,} cluster centres ~ N(0, 1), noise sigma "
            f"{sigma}, seed {seed}; {n_queries:,} queries and 1,000 tuning queries drawn alike (not in "
            "the base set); L2"
        ),
    )


def fashion_mnist(run_dir: Path, n_queries: int) -> Dataset:
    """Fashion-MNIST train + test embedded by a run's tower (cosine)."""
    from siamese.datasets.images import read_fashion_mnist
    from siamese.encode import embed
    from siamese.models import load_tower

    tower_file = run_dir / "tower.keras"
    tower = load_tower(tower_file)
    train, test = read_fashion_mnist("train"), read_fashion_mnist("test")
    t0 = time.perf_counter()
    base = embed(tower, np.concatenate([train.images, test.images]), batch_size=1024)
    seconds = time.perf_counter() - t0
    tune_rows = np.sort(np.random.default_rng(0).choice(len(train.images), 1000, replace=False))
    return Dataset(
        name="fashion-mnist",
        base=np.ascontiguousarray(base),
        queries=np.ascontiguousarray(base[len(train.images) :][:n_queries]),
        tune=np.ascontiguousarray(base[tune_rows]),
        metric="cosine",
        note=(
            f"{len(base):,} images (train + test) embedded by `{tower_file}` to dimension "
            f"{base.shape[1]} in {seconds:.0f} s; queries: the first {min(n_queries, len(test.images)):,} "
            "test images (in the base set: each finds itself), tuning queries 1,000 train images; cosine"
        ),
    )


# ---------------------------------------------------------------------- memory


def _status_kib(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where Linux refuses."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


@dataclass
class Built:
    obj: Any
    seconds: float
    peak_mb: float | None
    held_mb: float


def _release_free_memory() -> None:
    """Collect garbage and hand the allocator's free pages back to the OS (glibc ``malloc_trim``).

    Without it, memory freed by an earlier build stays resident in malloc's free lists, a later
    build reuses it without any RSS growth, and its figures come out near zero.
    """
    gc.collect()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measured_build(build: Callable[[], Any]) -> Built:
    """Time ``build()`` and measure its memory: peak RSS growth during it and RSS held after it."""
    _release_free_memory()
    before = _status_kib("VmRSS")
    can_peak = _reset_peak()
    t0 = time.perf_counter()
    obj = build()
    seconds = time.perf_counter() - t0
    peak = (_status_kib("VmHWM") - before) * 1024 / MB if can_peak else None
    _release_free_memory()
    held = (_status_kib("VmRSS") - before) * 1024 / MB
    return Built(obj, seconds, peak, held)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# ---------------------------------------------------------------------- the two sides


@dataclass
class Kind:
    """An index type: its factory string and the search parameter to tune (if any)."""

    factory: str
    param: str | None  # "efSearch", "nprobe" or None
    value: int | None = None
    sweep: list[tuple[int, float, float]] = field(default_factory=list)  # (value, recall, raw q/s)
    loads: list[float] = field(default_factory=list)  # 1-minute load average as each repeat starts


class RawSide:
    """Plain FAISS: index_factory, train, add, search on contiguous float32."""

    name = "raw FAISS"

    def __init__(self, data: Dataset, kind: Kind) -> None:
        self.data, self.kind = data, kind
        self.cosine = data.metric == "cosine"
        self.index: Any = None

    def build(self) -> Any:
        x = self.data.base
        if self.cosine:
            x = x.copy()
            faiss.normalize_L2(x)
        metric = faiss.METRIC_INNER_PRODUCT if self.cosine else faiss.METRIC_L2
        index = faiss.index_factory(x.shape[1], self.kind.factory, metric)
        if not index.is_trained:
            index.train(x[self.data.train_rows])
        index.add(x)
        return index

    def set_param(self, value: int) -> None:
        if self.kind.param == "efSearch":
            faiss.downcast_index(self.index).hnsw.efSearch = value
        elif self.kind.param == "nprobe":
            faiss.extract_index_ivf(self.index).nprobe = value

    def batched(self, queries: np.ndarray, k: int) -> np.ndarray:
        if self.cosine:
            queries = queries.copy()
            faiss.normalize_L2(queries)
        return self.index.search(queries, k)[1]

    def single(self, queries: np.ndarray, k: int) -> None:
        search = self.index.search
        if self.cosine:
            for i in range(len(queries)):
                row = queries[i : i + 1].copy()
                faiss.normalize_L2(row)
                search(row, k)
        else:
            for i in range(len(queries)):
                search(queries[i : i + 1], k)


class ToolkitSide:
    """siamese.index.Index: from_vectors, search_vectors (and hits, the Hit lists of search)."""

    name = "toolkit"

    def __init__(self, data: Dataset, kind: Kind) -> None:
        self.data, self.kind = data, kind
        self.index: Any = None

    def build(self) -> Index:
        return Index.from_vectors(
            self.data.base, factory=self.kind.factory, metric=self.data.metric, train_sample=TRAIN_SAMPLE
        )

    def params(self) -> dict[str, int]:
        if self.kind.param == "efSearch":
            return {"ef_search": self.kind.value}
        if self.kind.param == "nprobe":
            return {"nprobe": self.kind.value}
        return {}

    def batched(self, queries: np.ndarray, k: int) -> np.ndarray:
        return self.index.search_vectors(queries, k, **self.params())[1]

    def hits(self, queries: np.ndarray, k: int) -> None:
        self.index.hits(*self.index.search_vectors(queries, k, **self.params()))

    def single(self, queries: np.ndarray, k: int) -> None:
        search, params = self.index.search_vectors, self.params()
        for i in range(len(queries)):
            search(queries[i], k, **params)


# ---------------------------------------------------------------------- measuring


@dataclass
class Figures:
    """One side of one index type, every repeat."""

    build_s: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    held_mb: list[float] = field(default_factory=list)
    batched_s: list[float] = field(default_factory=list)
    single_s: list[float] = field(default_factory=list)
    hits_s: list[float] = field(default_factory=list)
    save_s: list[float] = field(default_factory=list)  # the toolkit's Index.save (the folder)
    recall: float | None = None


@dataclass
class Truth:
    """Exact neighbours (raw Flat) of the measurement and of the tuning queries."""

    queries: np.ndarray | None = None
    tune: np.ndarray | None = None


def tune(raw: RawSide, data: Dataset, truth: Truth, k: int, target: float) -> None:
    """Sweep the kind's parameter on the raw index; keep the smallest value reaching target + 0.01."""
    kind = raw.kind
    for value in LADDERS[kind.param]:
        raw.set_param(value)
        seconds, found = timed(lambda: raw.batched(data.tune, k))
        recall = metrics.recall_at_k(found, truth.tune, k)
        kind.sweep.append((value, recall, len(data.tune) / seconds))
        logger.info(
            "  %s=%d: recall@%d %.4f, %.0f q/s", kind.param, value, k, recall, len(data.tune) / seconds
        )
        if recall >= target + 0.01:
            break
    kind.value = kind.sweep[-1][0]


def single_count(kind: Kind, data: Dataset, args: argparse.Namespace) -> int:
    """How many one-query searches to time: fewer for Flat, whose every query scans the whole set."""
    wanted = args.flat_single_queries if kind.param is None else args.single_queries
    return min(wanted, len(data.queries))


def run_kind(data: Dataset, kind: Kind, truth: Truth, args: argparse.Namespace) -> dict[str, Figures]:
    """All repeats of one index type, both sides, alternating."""
    sides = {"toolkit": ToolkitSide(data, kind), "raw FAISS": RawSide(data, kind)}
    figures = {name: Figures() for name in sides}
    single = data.queries[: single_count(kind, data, args)]
    for repeat in range(args.repeats):
        kind.loads.append(os.getloadavg()[0])
        order = list(sides) if repeat % 2 == 0 else list(sides)[::-1]
        for name in order:
            built = measured_build(sides[name].build)
            sides[name].index = built.obj
            fig = figures[name]
            fig.build_s.append(built.seconds)
            fig.held_mb.append(built.held_mb)
            if built.peak_mb is not None:
                fig.peak_mb.append(built.peak_mb)
            logger.info("%s %s %s: built in %.1f s", data.name, kind.factory, name, built.seconds)
            if isinstance(sides[name], ToolkitSide):
                with tempfile.TemporaryDirectory(prefix="index-bench-") as folder:
                    fig.save_s.append(timed(lambda obj=built.obj, to=Path(folder) / "idx": obj.save(to))[0])
        if repeat == 0 and kind.param is not None:
            tune(sides["raw FAISS"], data, truth, args.k, args.recall_target)
        if kind.value is not None:
            sides["raw FAISS"].set_param(kind.value)
        found = {}
        for name in order:
            side, fig = sides[name], figures[name]
            seconds, found[name] = timed(lambda side=side: side.batched(data.queries, args.k))
            fig.batched_s.append(seconds)
            if repeat == 0 and kind.param is None and name == "raw FAISS":  # exact search: the truth
                truth.queries, truth.tune = found[name], side.batched(data.tune, args.k)
            fig.single_s.append(timed(lambda side=side: side.single(single, args.k))[0])
            if isinstance(side, ToolkitSide):
                fig.hits_s.append(timed(lambda side=side: side.hits(data.queries, args.k))[0])
            logger.info(
                "%s %s %s: batched %.3f s, single %.3f s",
                data.name,
                kind.factory,
                name,
                seconds,
                fig.single_s[-1],
            )
        if repeat == 0:
            for name, ids in found.items():
                figures[name].recall = metrics.recall_at_k(ids, truth.queries, args.k)
        for side in sides.values():
            side.index = None
        gc.collect()
    return figures


# ---------------------------------------------------------------------- reporting


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _spread(values: list[float], fmt: str) -> str:
    if not values:
        return "n/a"
    text = format(_median(values), fmt)
    if len(values) > 1:
        text += f" ({format(min(values), fmt)}–{format(max(values), fmt)})"
    return text


def _rate(count: int, seconds: list[float]) -> list[float]:
    return [count / s for s in seconds]


def dataset_table(
    data: Dataset, results: dict[str, dict[str, Figures]], kinds: list[Kind], args: argparse.Namespace
) -> str:
    headers = [
        "index",
        "side",
        "build s",
        "save s (the folder)",
        "peak RSS growth MB",
        "RSS held MB",
        f"batched q/s ({len(data.queries):,} q, one call)",
        "single q/s (calls)",
        f"recall@{args.k}",
        "toolkit/raw time, batched",
        "toolkit/raw time, single",
        "search() with Hits, q/s",
    ]
    rows = []
    for kind in kinds:
        figs = results[kind.factory]
        label = kind.factory + ("" if kind.param is None else f" ({kind.param}={kind.value})")
        tool, raw = figs["toolkit"], figs["raw FAISS"]
        for name, fig in figs.items():
            ratio_b = ratio_s = hits = ""
            if name == "toolkit":
                ratio_b = f"{_median(tool.batched_s) / _median(raw.batched_s):.3f}"
                ratio_s = f"{_median(tool.single_s) / _median(raw.single_s):.3f}"
                hits = _spread(_rate(len(data.queries), fig.hits_s), ",.0f")
            cells = [
                label,
                name,
                _spread(fig.build_s, ".2f"),
                _spread(fig.save_s, ".2f"),
                _spread(fig.peak_mb, ",.0f"),
                _spread(fig.held_mb, ",.0f"),
                _spread(_rate(len(data.queries), fig.batched_s), ",.0f"),
                _spread(_rate(single_count(kind, data, args), fig.single_s), ",.0f")
                + f" ({single_count(kind, data, args):,})",
                f"{fig.recall:.4f}",
                ratio_b,
                ratio_s,
                hits,
            ]
            rows.append(cells)
    return common.markdown_table(headers, rows)


def sweep_table(kinds: list[Kind], k: int) -> str:
    headers = ["index", "parameter", "value", f"recall@{k} (tuning queries)", "raw q/s (batched)"]
    rows = [
        [
            kind.factory,
            kind.param,
            f"{value}{' ←' if value == kind.value else ''}",
            f"{recall:.4f}",
            f"{qps:,.0f}",
        ]
        for kind in kinds
        for value, recall, qps in kind.sweep
    ]
    return common.markdown_table(headers, rows)


def targets(
    data: Dataset,
    results: dict[str, dict[str, Figures]],
    kinds: list[Kind],
    target: float,
    args: argparse.Namespace,
) -> str:
    lines = []
    for kind in kinds:
        tool, raw = results[kind.factory]["toolkit"], results[kind.factory]["raw FAISS"]
        held = _median(tool.held_mb) / _median(raw.held_mb)
        calls = single_count(kind, data, args)
        slower_us = (_median(tool.single_s) - _median(raw.single_s)) / calls * 1e6
        allowed = 1.10 * _median(raw.build_s) + _median(tool.save_s)
        build, verdicts = _median(tool.build_s), {}
        for what, ok in (("held", held <= 1.15), ("single", slower_us <= 30), ("build", build <= allowed)):
            verdicts[what] = "met" if ok else "NOT met"
        lines.append(
            f"- {kind.factory}: RSS held {held:.3f}× raw FAISS (target ≤ 1.15: {verdicts['held']}); "
            f"a single query {slower_us:+.1f} µs against raw (target ≤ +30: {verdicts['single']}); "
            f"build {build:.2f} s against 1.10 × raw {_median(raw.build_s):.2f} s + the folder's save "
            f"{_median(tool.save_s):.2f} s = {allowed:.2f} s (target: {verdicts['build']})"
        )
        ratio = _median(tool.batched_s) / _median(raw.batched_s)
        best = min(tool.batched_s) / min(raw.batched_s)
        verdict = "met" if ratio <= 1.10 else "NOT met"
        lines.append(
            f"- {kind.factory}: toolkit overhead on batched queries {100 * (ratio - 1):+.1f}% from the "
            f"medians ({verdict}), {100 * (best - 1):+.1f}% from the best repeats; 1-minute load average "
            f"at the repeats' starts: {', '.join(f'{load:.1f}' for load in kind.loads)}"
        )
    # Exact search's throughput: the faster of the two Flat sides (the smaller, safer speed-up).
    flat = min(_median(fig.batched_s) for fig in results[kinds[0].factory].values())
    for kind in kinds[1:]:
        tool = results[kind.factory]["toolkit"]
        speedup = flat / _median(tool.batched_s)
        verdict = "met" if tool.recall >= target and speedup >= 10 else "NOT met"
        if data.name != "synthetic":
            verdict += "; the target is set for the 1M synthetic set"
        lines.append(
            f"- {kind.factory} ({kind.param}={kind.value}): recall@10 {tool.recall:.4f} at {speedup:,.1f}× "
            f"exact search's batched throughput (target: ≥ {target} at ≥ 10×: {verdict})"
        )
    return "\n".join(lines)


def heavy_jobs() -> list[str]:
    """Other processes matching the heavy-job pattern (this process and its ancestors excluded)."""
    mine = {os.getpid()}
    pid = os.getpid()
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        mine.add(pid)
    try:
        out = subprocess.run(["pgrep", "-fa", HEAVY_JOBS], capture_output=True, text=True, check=False).stdout
    except OSError:
        return ["(pgrep unavailable)"]
    lines = [line for line in out.splitlines() if line.split(maxsplit=1)[0].isdigit()]
    return [line for line in lines if int(line.split(maxsplit=1)[0]) not in mine and "pgrep" not in line]


def faiss_setup() -> str:
    """FAISS's SIMD level in use and its thread count (the machine line has the rest)."""
    simd = faiss.SIMDConfig.get_level_name() if hasattr(faiss, "SIMDConfig") else "n/a"
    return f"FAISS SIMD level in use: {simd}; faiss.omp_set_num_threads({faiss.omp_get_max_threads()})"


# ---------------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = common.parser(__doc__, NAME)
    parser.add_argument("--n", type=int, default=1_000_000, help="synthetic base vectors")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--sigma", type=float, default=1.0, help="noise around each centre")
    parser.add_argument("--queries", type=int, default=10_000, help="queries of the batched search")
    parser.add_argument("--single-queries", type=int, default=1000, help="one-query searches")
    parser.add_argument(
        "--flat-single-queries", type=int, default=100, help="one-query searches of Flat (a full scan each)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--ivf", default="IVF1024,Flat", help="the IVF factory string")
    parser.add_argument("--recall-target", type=float, default=0.95)
    parser.add_argument("--threads", type=int, default=common.cores())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fmnist-run", type=Path, help="run folder with tower.keras from the image task")
    parser.add_argument("--quick", action="store_true", help="smoke run: 50,000 vectors, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.repeats, args.queries = 50_000, 1, 2000
        args.single_queries, args.flat_single_queries = 200, 50
    return args


def run_dataset(data: Dataset, args: argparse.Namespace) -> tuple[str, list[float]]:
    """The section of one data set, and the load averages seen while it ran."""
    kinds = [Kind("Flat", None), Kind("HNSW32", "efSearch"), Kind(args.ivf, "nprobe")]
    truth = Truth()
    results = {kind.factory: run_kind(data, kind, truth, args) for kind in kinds}
    text = (
        f"## {data.name}\n\n{data.note}.\n\n{dataset_table(data, results, kinds, args)}\n\n"
        f"Targets:\n\n{targets(data, results, kinds, args.recall_target, args)}\n\n"
        f"Tuning sweep (raw index of the first repeat):\n\n{sweep_table(kinds[1:], args.k)}\n"
    )
    return text, [load for kind in kinds for load in kind.loads]


def busy_note(loads: list[float], busy: list[str]) -> list[str]:
    """A warning when other work shared the machine (load of half the cores or more, or jobs seen)."""
    cores = common.cores()
    if max(loads) < cores / 2 and not busy:
        return []
    return [
        f"**The machine was not quiet**: the 1-minute load average reached {max(loads):.1f} on {cores} "
        "cores during the run (other benchmarks and tests were running). Absolute speeds are pessimistic "
        "and noisy, and a repeat that overlapped a burst of other work can be several times slower; "
        "judge the two sides by the ratios from the best repeats in Targets as well as by the medians."
    ]


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    run = common.invocation(NAME, argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logger.setLevel(logging.INFO)
    faiss.omp_set_num_threads(args.threads)
    busy_start = heavy_jobs()
    sections, loads = [], [run.load]
    datasets = [lambda: synthetic(args.n, args.dim, args.clusters, args.sigma, args.queries, args.seed)]
    if args.fmnist_run is not None:
        datasets.append(lambda: fashion_mnist(args.fmnist_run, args.queries))
    for make in datasets:
        section, seen = run_dataset(make(), args)
        sections.append(section)
        loads.extend(seen)
    if args.fmnist_run is None:
        sections.append(
            "## fashion-mnist\n\nSkipped: no `--fmnist-run RUN_DIR` (a run folder with tower.keras).\n"
        )
    busy_end = heavy_jobs()
    loads.append(os.getloadavg()[0])
    busy = sorted(set(busy_start + busy_end))
    quiet = "none" if not busy else "; ".join(f"`{line[:120]}`" for line in busy)
    notes = [
        f"{faiss_setup()}. Repeats: {args.repeats} (medians, with min–max in brackets). Other heavy jobs "
        f'seen at the start and the end (`pgrep -fa "{HEAVY_JOBS}"`): {quiet}.',
        *busy_note(loads, busy),
        "Memory: *peak RSS growth* is the kernel's peak resident set (VmHWM, reset through "
        "/proc/self/clear_refs just before the build) minus the RSS before the build; *RSS held* is the RSS "
        "after the build minus the RSS before it, both taken after a garbage collection and glibc's "
        "malloc_trim (so that memory freed by an earlier build is not silently reused). The base vectors "
        "exist before either build and are not counted. Build = train (same seeded sample on both "
        "sides) + add; for the toolkit it also includes its checks, id and payload bookkeeping and its "
        "copy of the vectors.",
    ]
    text = common.header("Index benchmark: the toolkit's Index beside raw FAISS", run, notes)
    text += "\n".join(sections)
    if args.quick and args.out is None:
        common.echo(text)
    else:
        common.write_result(NAME, text, args.out)


if __name__ == "__main__":
    main()
