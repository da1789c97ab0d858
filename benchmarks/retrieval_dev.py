"""The dev figure the retrieval settings were chosen on: Quora dev queries in a corpus of
test-like size.

Run:  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/retrieval_dev.py RUN [RUN ...]

The staged Quora dev split (carved from ``dev.tsv`` with the runs' seed 0) has 1,990 distinct
questions; the test split's corpus has about 19,000. Here each similar dev pair's first
question queries a corpus of the dev and train questions together (19,056), so the figures
are of the test's difficulty while the test split stays untouched. The train questions are
distractors the towers were trained on, so the figure is a proxy, used only to compare
settings. Prints recall@1, recall@10 and MRR@10 per run folder.
"""

from __future__ import annotations

import logging
import sys

import numpy as np

import siamese
from siamese.datasets.text import load_text_dataset
from siamese.metrics.retrieval import PAIRS, RetrievalSet, retrieval_of


def main(runs: list[str]) -> None:
    if not runs or runs[0] in ("-h", "--help"):
        sys.stdout.write(__doc__)
        return
    logging.basicConfig(level=logging.WARNING)
    splits = load_text_dataset("qqp")
    dev, train = splits["dev"], splits["train"]
    corpus = list(dict.fromkeys([*dev.a, *dev.b, *train.a, *train.b]))
    position = {text: i for i, text in enumerate(corpus)}
    chosen = [
        (position[a], position[b])
        for a, b, y in zip(dev.a, dev.b, dev.labels, strict=True)
        if y == 1 and a != b
    ]
    queries, partners = (np.array(side) for side in zip(*chosen, strict=True))
    dev_set = RetrievalSet(PAIRS, [corpus[i] for i in queries], queries, partners=partners, corpus=corpus)
    for run in runs:
        f = retrieval_of(siamese.load_tower(run), dev_set)
        sys.stdout.write(
            f"{run}: recall@1 {f['retrieval_recall@1']:.4f}, recall@10 {f['retrieval_recall@10']:.4f}, "
            f"MRR@10 {f['retrieval_mrr@10']:.4f} "
            f"({f['retrieval_queries']} queries, {f['retrieval_corpus']} items)\n"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
