"""On-disk IVF index: searched by a process whose memory is capped below the index's size.

Run:  python benchmarks/ondisk.py [--n 24000000] [--limit-mb 1536]

1. ``--n`` float32 vectors of dimension 64 around 1,000 Gaussian centres (the recipe of
   ``index.py``'s synthetic set, generated a block at a time into a ``.npy`` file that is
   mapped, never held whole), and 1,000 queries drawn alike (the first ``--queries`` used).
2. ``Index.from_vectors(..., factory=IVF4096,Flat, metric=l2, on_disk=True)`` builds the
   index (the quantizer trained on a seeded sample of 40 vectors per list, its inverted lists
   merged shard by shard into ``lists.ivfdata``) and saves it.
3. The exact 10 nearest neighbours of the queries, by brute force over the mapped vectors.
4. Three conditions, each a fresh process running the same code (``Index.load`` of the
   folder, then for each ``nprobe`` one batched ``search_vectors`` call of the queries
   and ``--single`` one-query calls), ``--repeats`` times each, interleaved; medians:
   - *capped, cold*: the process joins a new memory cgroup (cgroup v1
     ``memory.limit_in_bytes`` = ``--limit-mb``; no swap on this machine) after the page
     cache of the index's files was dropped (``posix_fadvise(DONTNEED)``);
   - *uncapped, cold*: no cgroup, the page cache dropped the same way;
   - *uncapped, warm*: no cgroup, the index's files read once just before (in the page cache).
   Each reports recall@10, queries/s, its anonymous and file-backed resident memory, and the
   capped one the cgroup's peak usage and failure count. The cap must leave room above the
   process's own footprint before any list is read (Python, NumPy, FAISS and the TensorFlow
   that ``import siamese`` brings: about 900 MiB resident, half of it mapped libraries); at
   768 MiB the process thrashed on its own code pages, hence the default of 1,536 MiB and an
   index whose lists are about four times that. Where no cgroup can be made, the
   capped condition is left out and the table says so.

With ``--keep`` the built index stays in ``--work`` (with its build times in ``built.json``)
and a later ``--keep`` run of the same ``--n`` and ``--seed`` searches it instead of building
again. Under the cap most list reads go to the disk, several times over (the kernel's
readahead brings pages that are evicted before they are used), so the capped condition is the
slow one: hence the 200 batched and 50 single queries per ``nprobe``.

Writes ``benchmarks/results/ondisk.md``. Needs about 5 × (n × 256 bytes) of free disk in
``--work`` (the input, the spill, the lists, the saved vectors).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import common
import numpy as np

NAME = "ondisk"
TITLE = "On-disk IVF index searched under a memory cap"
DIM = 64
CLUSTERS = 1000
SIGMA = 1.0
FACTORY = "IVF4096,Flat"
NPROBES = (8, 32)
BLOCK = 500_000
CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
#: Vectors that train the quantizer: FAISS asks for at least 39 per list.
TRAIN_SAMPLE = 40 * 4096
#: What a ``--keep`` run leaves in ``--work`` beside the index: its size, seed and build times.
BUILT = "built.json"


def make_vectors(path: Path, n: int, seed: int) -> np.ndarray:
    """The base set, written a block at a time into a ``.npy`` file; returned mapped."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, DIM)).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, DIM))
    for start in range(0, n, BLOCK):
        rows = min(BLOCK, n - start)
        out[start : start + rows] = centres[rng.integers(0, CLUSTERS, rows)] + rng.normal(
            scale=SIGMA, size=(rows, DIM)
        ).astype(np.float32)
    out.flush()
    del out
    queries = centres[rng.integers(0, CLUSTERS, 1000)] + rng.normal(scale=SIGMA, size=(1000, DIM)).astype(
        np.float32
    )
    np.save(path.with_name("queries.npy"), queries.astype(np.float32))
    return np.load(path, mmap_mode="r")


def exact_neighbours(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    import faiss

    heap = faiss.ResultHeap(len(queries), k)
    for start in range(0, len(base), BLOCK):
        block = np.ascontiguousarray(base[start : start + BLOCK])
        distances, rows = faiss.knn(queries, block, k)
        heap.add_result(distances, rows + start)
    heap.finalize()
    return heap.I


def drop_cache(folder: Path) -> None:
    """Evict the folder's files from the page cache (clean pages; no privilege needed)."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def warm_cache(folder: Path) -> None:
    """Read the folder's files once, so that they sit in the page cache."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                while f.read(1 << 24):
                    pass


def make_cgroup(limit_mb: int, tag: str) -> Path | None:
    """A fresh memory cgroup capped at ``limit_mb``, or None where none can be made."""
    group = CGROUP_ROOT / f"siamese-ondisk-{os.getpid()}-{tag}"
    try:
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(limit_mb * 1024 * 1024))
        swap = group / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(str(limit_mb * 1024 * 1024))
    except OSError as exc:
        common.echo(f"no cgroup ({exc}); the search process runs uncapped")
        if group.exists():
            group.rmdir()
        return None
    return group


CHILD = r"""
import json, os, sys, time
import numpy as np
group = sys.argv[1]
if group != "-":
    with open(os.path.join(group, "cgroup.procs"), "w") as f:  # join before any work
        f.write(str(os.getpid()))
from siamese import metrics
from siamese.index import Index

def status():
    out = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out

folder, k, single = sys.argv[2], 10, int(sys.argv[5])
queries = np.load(sys.argv[3])
truth = np.load(sys.argv[4])
before = status()
t0 = time.perf_counter()
index = Index.load(folder)
load_s = time.perf_counter() - t0
after_load = status()
results = []
for nprobe in [int(x) for x in sys.argv[6].split(",")]:
    t0 = time.perf_counter()
    _, ids = index.search_vectors(queries, k, nprobe=nprobe)
    batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    for q in queries[:single]:
        index.search_vectors(q, k, nprobe=nprobe)
    single_s = time.perf_counter() - t0
    results.append({"nprobe": nprobe, "recall": float(metrics.recall_at_k(ids, truth, k)),
                    "batched_qps": len(queries) / batched, "single_qps": single / single_s})
print(json.dumps({"on_disk": index.on_disk, "count": index.ntotal, "load_s": load_s, "before": before,
                  "after_load": after_load, "end": status(), "results": results}))
"""


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__, NAME)
    parser.add_argument("--n", type=int, default=24_000_000, help="base vectors")
    parser.add_argument("--limit-mb", type=int, default=1536, help="the search process's memory cap")
    parser.add_argument("--queries", type=int, default=200, help="queries of the batched search (of 1,000)")
    parser.add_argument("--single", type=int, default=50, help="one-query searches per nprobe")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the built index in --work, and reuse one a --keep run left there",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/siamese-ondisk-bench"), help="scratch folder")
    parser.add_argument("--repeats", type=int, default=3, help="runs per condition (medians)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run = common.invocation(NAME, argv)
    reuse = args.keep and (args.work / BUILT).is_file()
    if not reuse:
        shutil.rmtree(args.work, ignore_errors=True)
        args.work.mkdir(parents=True)
    try:
        text = measure(args, run, reuse)
    finally:
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
    common.write_result(NAME, text, args.out)


def build(args) -> dict:
    """Write the vectors, build and save the on-disk index, find the exact neighbours; the
    times taken (kept in ``--work`` as :data:`BUILT`)."""
    from siamese.index import Index

    t0 = time.perf_counter()
    base = make_vectors(args.work / "base.npy", args.n, args.seed)
    queries = np.load(args.work / "queries.npy")
    made_s = time.perf_counter() - t0
    common.echo(f"{args.n:,} vectors written in {made_s:.0f} s")
    t0 = time.perf_counter()
    index = Index.from_vectors(base, factory=FACTORY, metric="l2", on_disk=True, train_sample=TRAIN_SAMPLE)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.save(args.work / "idx")
    save_s = time.perf_counter() - t0
    del index
    common.echo(f"built in {build_s:.0f} s, saved in {save_s:.0f} s")
    np.save(args.work / "truth.npy", exact_neighbours(base, queries, 10))
    del base
    (args.work / "base.npy").unlink()
    built = {"n": args.n, "seed": args.seed, "build_s": build_s, "save_s": save_s}
    (args.work / BUILT).write_text(json.dumps(built))
    return built


def measure(args, run, reuse: bool) -> str:
    if reuse:
        built = json.loads((args.work / BUILT).read_text())
        if (built["n"], built["seed"]) != (args.n, args.seed):
            raise SystemExit(
                f"{args.work} holds an index of {built['n']:,} vectors (seed {built['seed']}): not --n/--seed"
            )
        common.echo(f"reusing the index kept in {args.work}")
    else:
        built = build(args)
    build_s, save_s = built["build_s"], built["save_s"]
    np.save(args.work / "q.npy", np.load(args.work / "queries.npy")[: args.queries])
    np.save(args.work / "t.npy", np.load(args.work / "truth.npy")[: args.queries])
    sizes = {p.name: p.stat().st_size for p in (args.work / "idx").rglob("*") if p.is_file()}
    lists_mb = sizes["lists.ivfdata"] / 2**20
    vectors_mb = sizes["vectors.npy"] / 2**20

    conditions = [
        ("capped, cold", True, False),
        ("uncapped, cold", False, False),
        ("uncapped, warm", False, True),
    ]
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in conditions}
    capped_ok = True
    for repeat in range(args.repeats):
        for name, capped, warm in conditions:
            if capped and not capped_ok:
                continue
            common.echo(f"repeat {repeat + 1}/{args.repeats}: {name}")
            figures = search_process(args, capped=capped, warm=warm, tag=f"{repeat}")
            if figures is None:
                capped_ok = False
                continue
            runs[name].append(figures)

    rows = []
    for name, capped, _ in conditions:
        if not runs[name]:
            continue
        where = f"on disk, capped at {args.limit_mb} MiB, cold cache" if capped else f"on disk, {name}"
        for i, nprobe in enumerate(NPROBES):
            per = [run["results"][i] for run in runs[name]]
            rows.append(
                [
                    f"{FACTORY} (nprobe={nprobe})",
                    where,
                    f"{median([r['recall'] for r in per]):.4f}",
                    f"{median([r['batched_qps'] for r in per]):,.0f}",
                    f"{median([r['single_qps'] for r in per]):,.0f}",
                ]
            )
    table = common.markdown_table(
        [
            "index",
            "the search process",
            "recall@10",
            f"batched q/s ({args.queries:,} q, one call)",
            f"single q/s ({args.single})",
        ],
        rows,
    )
    notes = [
        f"Index: {args.n:,} vectors of dimension {DIM} ({DIM * 4 * args.n / 2**20:,.0f} MiB of float32), "
        f"{FACTORY}, L2; `lists.ivfdata` {lists_mb:,.0f} MiB, `vectors.npy` {vectors_mb:,.0f} MiB, "
        f"{sum(sizes.values()) / 2**20:,.0f} MiB in the folder. Built with "
        f"`Index.from_vectors(..., on_disk=True)` in {build_s:.0f} s (shards of 1,000,000 rows merged "
        f"on disk), saved in {save_s:.0f} s.",
        "Every row is the toolkit's `Index.load` + `search_vectors` in a fresh process, the same code, "
        f"index and queries; medians of {args.repeats} runs per condition, the conditions interleaved.",
    ]
    if runs["capped, cold"]:
        capped = runs["capped, cold"]
        notes.append(
            f"The capped process: a memory cgroup of {args.limit_mb} MiB (cgroup v1; no swap): peak usage "
            f"{median([r['peak_mb'] for r in capped]):,.0f} MiB (median), limit hit "
            f"{median([r['failures'] for r in capped]):,.0f} times (the kernel then reclaims the mapped "
            f"file's clean pages); after `Index.load` ({median([r['load_s'] for r in capped]):.1f} s) and "
            f"every search: anonymous RSS {median([r['end']['RssAnon'] for r in capped]):,.0f} MiB (of "
            f"which {median([r['before']['RssAnon'] for r in capped]):,.0f} MiB before the load: Python, "
            f"TensorFlow, NumPy, FAISS), file-backed RSS {median([r['end']['RssFile'] for r in capped]):,.0f}"
            f" MiB; the index's lists alone are {lists_mb / args.limit_mb:.1f}× the cap."
        )
    else:
        notes.append("No memory cgroup could be made on this machine: the capped condition is left out.")
    for name in ("uncapped, cold", "uncapped, warm"):
        if runs[name]:
            anon = median([r["end"]["RssAnon"] for r in runs[name]])
            mapped = median([r["end"]["RssFile"] for r in runs[name]])
            notes.append(
                f"{name.capitalize()}: anonymous RSS {anon:,.0f} MiB, "
                f"file-backed RSS {mapped:,.0f} MiB at the end."
            )
    notes.append(
        "Recall@10 against exact search (brute force over all the vectors). Cold: the page cache of the "
        "index's files dropped before the process started, so its first searches read from disk."
    )
    return common.header(TITLE, run, notes) + table + "\n"


def median(values: list[float]) -> float:
    return float(np.median(values))


def search_process(args, *, capped: bool, warm: bool, tag: str) -> dict | None:
    """One fresh search process in a condition; None when the cgroup cannot be made."""
    folder = args.work / "idx"
    if warm:
        warm_cache(folder)
    else:
        drop_cache(folder)
    group = make_cgroup(args.limit_mb, tag) if capped else None
    if capped and group is None:
        return None
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(group) if group else "-",
                str(folder),
                str(args.work / "q.npy"),
                str(args.work / "t.npy"),
                str(args.single),
                ",".join(map(str, NPROBES)),
            ],
            capture_output=True,
            text=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )
        peak_mb = failures = None
        if group is not None:
            peak_mb = int((group / "memory.max_usage_in_bytes").read_text()) / 2**20
            failures = int((group / "memory.failcnt").read_text())
    finally:
        if group is not None:
            group.rmdir()
    if proc.returncode != 0:
        raise SystemExit(f"the search process failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    figures["peak_mb"], figures["failures"] = peak_mb, failures
    return figures


if __name__ == "__main__":
    main()
