"""The index over HTTP (``siamese-index serve``) beside ``Index.search`` in the process.

Run:  python benchmarks/serve.py [--queries 2000] [--repeats 3]

1. A text tower: ``siamese-train --task text-pairs`` on SICK, defaults, ``--epochs 1`` (the
   architecture users get), and an index (``Flat``, cosine) of every distinct SICK sentence.
2. Queries: SICK test sentences, one per request (``k`` = 10).
3. In process: ``Index.search([query], 10)`` from 1 thread, and from 8 threads sharing the
   loaded index. Over HTTP: ``siamese-index serve`` in its own process on 127.0.0.1, and 1 or
   8 client threads in this process, each with its own keep-alive connection, posting
   ``{"queries": [query], "k": 10}`` and reading the JSON answer. Every side answers the same
   queries; ``--repeats`` rounds, the sides interleaved; medians of queries/s and of each
   round's p50 and p99 latency.

Writes ``benchmarks/results/serve.md``. Target (issue 23): with 8 clients, the server answers
at least 50% of the in-process single-query rate, p99 at most 50 ms.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import common
import numpy as np

NAME = "serve"
TITLE = "Serving an index over HTTP beside searching it in the process"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(work: Path) -> tuple[Path, list[str], int]:
    from siamese.datasets.text import load_text_dataset
    from siamese.index import Index

    run = common.siamese_train(work / "run", "--epochs", "1", what="training the tower")
    splits = load_text_dataset("sick")
    corpus = list(dict.fromkeys(s for pairs in splits.values() for s in (*pairs.a, *pairs.b)))
    import siamese

    tower = siamese.load_tower(run / "tower.keras")
    Index.build(tower, corpus, tower_path=run / "tower.keras").save(work / "idx")
    queries = list(dict.fromkeys(splits["test"].a))
    return work / "idx", queries, len(corpus)


def in_process(index, queries: list[str], clients: int) -> tuple[float, list[float]]:
    def one(query: str) -> float:
        began = time.perf_counter()
        index.search([query], 10)
        return time.perf_counter() - began

    began = time.perf_counter()
    if clients == 1:
        latencies = [one(q) for q in queries]
    else:
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            latencies = list(pool.map(one, queries))
    return len(queries) / (time.perf_counter() - began), latencies


def over_http(port: int, queries: list[str], clients: int) -> tuple[float, list[float]]:
    shares = [queries[i::clients] for i in range(clients)]

    def client(share: list[str]) -> list[float]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        times = []
        try:
            for query in share:
                body = json.dumps({"queries": [query], "k": 10})
                began = time.perf_counter()
                connection.request("POST", "/search", body=body, headers={"content-type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                times.append(time.perf_counter() - began)
                if response.status != 200:
                    raise SystemExit(f"the server answered {response.status}: {answer[:300]!r}")
        finally:
            connection.close()
        return times

    began = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        latencies = [t for times in pool.map(client, shares) for t in times]
    return len(queries) / (time.perf_counter() - began), latencies


def start_server(index_dir: Path, work: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from siamese.cli import index; index()",
            "serve",
            "--index",
            str(index_dir),
            "--port",
            str(port),
            "--error-log",
            str(work / "errors.log"),
        ],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                connection.close()
                return server, port
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.3)


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__, NAME)
    parser.add_argument("--queries", type=int, default=2000, help="single-query requests per side and round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (medians)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/siamese-serve-bench"), help="scratch folder")
    args = parser.parse_args(argv)
    run = common.invocation(NAME, argv)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    server = None
    try:
        from siamese.index import Index

        index_dir, queries, corpus = prepare(args.work)
        queries = (queries * (args.queries // len(queries) + 1))[: args.queries]
        index = Index.load(index_dir)
        in_process(index, queries[:50], 1)  # traced once, as the server's first requests trace it
        server, port = start_server(index_dir, args.work)
        over_http(port, queries[:50], 1)
        sides = [
            ("in process", 1, lambda: in_process(index, queries, 1)),
            ("in process", 8, lambda: in_process(index, queries, 8)),
            ("over HTTP", 1, lambda: over_http(port, queries, 1)),
            ("over HTTP", 8, lambda: over_http(port, queries, 8)),
        ]
        found: dict[tuple[str, int], list[tuple[float, float, float]]] = {(n, c): [] for n, c, _ in sides}
        for repeat in range(args.repeats):
            for name, clients, measure in sides:
                rate, latencies = measure()
                ms = np.asarray(latencies) * 1000
                found[(name, clients)].append(
                    (rate, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)))
                )
                common.echo(f"round {repeat + 1}: {name}, {clients} clients: {rate:,.0f} q/s\n")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(args.work, ignore_errors=True)
    base = float(np.median([r for r, _, _ in found[("in process", 1)]]))
    rows = []
    for (name, clients), rounds in found.items():
        rate = float(np.median([r for r, _, _ in rounds]))
        rows.append(
            [
                name,
                clients,
                f"{rate:,.0f}",
                f"{rate / base:.0%}",
                f"{np.median([p for _, p, _ in rounds]):.2f}",
                f"{np.median([p for _, _, p in rounds]):.2f}",
            ]
        )
    table = common.markdown_table(
        ["side", "clients", "queries/s", "of in-process, 1 client", "p50 ms", "p99 ms"], rows
    )
    http8 = found[("over HTTP", 8)]
    rate8 = float(np.median([r for r, _, _ in http8]))
    p99 = float(np.median([p for _, _, p in http8]))
    notes = [
        f"Index: the {corpus:,} distinct SICK sentences, `Flat` cosine, the default text tower "
        "(SICK, 1 epoch). "
        f"Queries: {args.queries:,} single-query requests (SICK test sentences), k = 10, per side and round; "
        f"{args.repeats} rounds, sides interleaved, medians. The server: `siamese-index serve` (FastAPI, "
        "uvicorn, one process) on 127.0.0.1; the clients are threads of the benchmark's process, each with "
        "a keep-alive connection, so they share the machine's 2 cores with the server.",
        f"Target: 8 clients over HTTP at ≥ 50% of the in-process single-query rate with p99 ≤ 50 ms: "
        f"{rate8 / base:.0%} and {p99:.1f} ms "
        f"({'met' if rate8 / base >= 0.5 and p99 <= 50 else 'not met'}).",
    ]
    common.write_result(NAME, common.header(TITLE, run, notes) + table + "\n", args.out)


if __name__ == "__main__":
    main()
