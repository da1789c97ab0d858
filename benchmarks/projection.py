"""The FAISS figures behind the scale-out projection of ``benchmarks/README.md``: IVF-PQ
training, adding and searching on this machine, at sizes it can hold.

Run:  python benchmarks/projection.py [--n 1000000] [--dim 256]

Vectors: ``--n`` float32 vectors of dimension ``--dim`` (256: the width of the default text
tower, a 128-unit BiLSTM) around 1,000 Gaussian centres (seeded), 1,000 queries alike. Raw
FAISS (the operations the toolkit's index build calls, without its embedding):

1. training the coarse quantizer (k-means, FAISS's defaults: 25 iterations) of ``IVF1024``
   and ``IVF4096`` on 40 vectors per list, and the product quantizer (``PQ32``: 32 bytes a
   vector) on 65,536 vectors;
2. adding the ``--n`` vectors to the trained ``IVF4096,PQ32`` with 1 and with 2 threads
   (vectors/s);
3. searching the 1,000 queries in one batch at ``nprobe`` 16 and 64 with 1 thread (queries/s);
4. the serialised index's bytes per vector.

Each timed step runs ``--repeats`` times; medians. Writes ``benchmarks/results/projection.md``.
"""

from __future__ import annotations

import time

import common
import faiss
import numpy as np

NAME = "projection"
TITLE = "IVF-PQ on this machine: the figures the scale-out projection starts from"
CLUSTERS = 1000


def vectors(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, dim)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        rows = min(100_000, n - start)
        out[start : start + rows] = centres[rng.integers(0, CLUSTERS, rows)] + rng.normal(
            size=(rows, dim)
        ).astype(np.float32)
    return out


def timed(repeats: int, work) -> tuple[float, object]:
    seconds, result = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - began)
    return float(np.median(seconds)), result


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__, NAME)
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors to add")
    parser.add_argument("--dim", type=int, default=256, help="their dimension")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    run = common.invocation(NAME, argv)
    common.write_result(NAME, measure(args, run), args.out)


def measure(args, run) -> str:
    base = vectors(args.n, args.dim, 0)
    queries = vectors(1000, args.dim, 1)
    rows = []
    faiss.omp_set_num_threads(common.cores())
    for nlist in (1024, 4096):
        sample = base[: 40 * nlist]

        def train_quantizer(nlist=nlist, sample=sample):
            quantizer = faiss.IndexFlatL2(args.dim)
            kmeans = faiss.Clustering(args.dim, nlist)
            kmeans.seed = 0
            kmeans.train(sample, quantizer)
            return quantizer

        seconds, _ = timed(args.repeats, train_quantizer)
        rows.append(
            [
                f"k-means of IVF{nlist} ({len(sample):,} vectors, 25 iterations)",
                f"{common.cores()}",
                f"{seconds:.1f} s",
                "",
            ]
        )
        common.echo(rows[-1][0] + f": {seconds:.1f} s")

    pq_sample = base[:65_536]

    def train_pq():
        pq = faiss.ProductQuantizer(args.dim, 32, 8)
        pq.train(pq_sample)
        return pq

    seconds, _ = timed(args.repeats, train_pq)
    rows.append([f"PQ32 training ({len(pq_sample):,} vectors)", f"{common.cores()}", f"{seconds:.1f} s", ""])

    empty = faiss.index_factory(args.dim, "IVF4096,PQ32")
    empty.train(base[: 40 * 4096])
    blob = faiss.serialize_index(empty)
    filled = None
    for threads in (1, common.cores()):
        faiss.omp_set_num_threads(threads)

        def add(blob=blob):
            index = faiss.deserialize_index(blob)
            index.add(base)
            return index

        seconds, filled = timed(args.repeats, add)
        rows.append(
            [
                f"add {args.n:,} vectors to IVF4096,PQ32",
                f"{threads}",
                f"{seconds:.1f} s",
                f"{args.n / seconds:,.0f} vectors/s",
            ]
        )
        common.echo(rows[-1][0] + f" ({threads} threads): {args.n / seconds:,.0f}/s")
    faiss.omp_set_num_threads(1)
    for nprobe in (16, 64):
        filled.nprobe = nprobe
        seconds, _ = timed(args.repeats, lambda: filled.search(queries, 10))
        rows.append(
            [
                f"search 1,000 queries, nprobe={nprobe}",
                "1",
                f"{seconds:.2f} s",
                f"{len(queries) / seconds:,.0f} queries/s",
            ]
        )
    size = len(faiss.serialize_index(filled))
    table = common.markdown_table(["step", "threads", "time (median)", "rate"], rows)
    notes = [
        f"Vectors: {args.n:,} × {args.dim} float32 around {CLUSTERS:,} Gaussian centres; raw FAISS "
        f"{faiss.__version__}, {args.repeats} runs per step, medians.",
        f"IVF4096,PQ32 with {args.n:,} vectors serialises to {size / 2**20:,.1f} MiB: "
        f"{size / args.n:.1f} bytes a vector (32 of code, 8 of id, the rest the centroids and tables).",
    ]
    return common.header(TITLE, run, notes) + table + "\n"


if __name__ == "__main__":
    main()
