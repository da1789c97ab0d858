"""The dev figure distillation settings are chosen on: STS-B and SICK dev pairs whose sentences
the student never saw.

Run:
  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/distill_dev.py sentences OUT.txt
  siamese-train --task text-distill --teacher ... --sentences OUT.txt --eval-data none ... --out RUN
  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/distill_dev.py score RUN [RUN ...]
  SIAMESE_DATA_DIR=../shared/datasets SIAMESE_BENCH_TEACHER_PYTHON=/path/to/venv/bin/python \\
    PYTHONPATH=benchmarks python benchmarks/distill_dev.py teacher

``sentences`` writes the distinct sentences of the train and dev splits of the benchmark's
sources (``distill.SOURCES``), in the order the task reads them, without any sentence of
their test splits and without those of STS-B's and SICK's dev splits: a student distilled on
that file has never seen the dev pairs, so the cosine correlations of its vectors on them are
held-out figures that follow the test figures' kind (the task's own held-out figure, the mean
cosine to the teacher on sentences drawn like the training ones, does not: see
benchmarks/README.md). ``score`` prints, for each run folder, the STS-B and SICK dev Spearman
(×100) and SICK Pearson of the cosine of its tower's vectors; ``teacher`` the same for
all-MiniLM-L6-v2 through :mod:`venv_teacher`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from siamese import embed, load_tower
from siamese.datasets.sentences import heldout_test_sentences, read_sources
from siamese.datasets.text import load_text_dataset
from siamese.io import atomic_write_text
from siamese.tasks.text_distill import evaluation_figures

#: The sources of benchmarks/distill.py.
SOURCES = ("sick", "stsb", "mrpc", "paws", "qqp")
#: The graded sets whose dev pairs are scored, and left out of the sentences.
SCORED = ("stsb", "sick")


def clean_sentences() -> list[str]:
    """The sources' distinct train/dev sentences without the test splits' and the scored dev
    splits' sentences."""
    banned = heldout_test_sentences(SOURCES)
    for name in SCORED:
        dev = load_text_dataset(name)["dev"]
        banned.update((*dev.a, *dev.b))
    return [text for text in dict.fromkeys(read_sources(SOURCES)) if text not in banned and "\n" not in text]


def tower_figures(tower) -> dict[str, float]:
    """The tower's dev figures (cosine correlations on the scored dev pairs)."""
    return evaluation_figures(lambda texts: embed(tower, texts, batch_size=256), SCORED, split="dev")


def line(label: str, figures: dict[str, float]) -> str:
    return (
        f"{label}: STS-B dev {100 * figures['stsb_cosine_spearman']:.2f}, SICK dev "
        f"{100 * figures['sick_cosine_spearman']:.2f} / {figures['sick_cosine_pearson']:.4f}\n"
    )


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("sentences", "score", "teacher"):
        sys.stdout.write(__doc__)
        return
    logging.basicConfig(level=logging.WARNING)
    if argv[0] == "sentences":
        found = clean_sentences()
        atomic_write_text(Path(argv[1]), "".join(text.strip() + "\n" for text in found))
        sys.stdout.write(f"{len(found)} sentences written to {argv[1]}\n")
    elif argv[0] == "score":
        for run in argv[1:]:
            sys.stdout.write(line(run, tower_figures(load_tower(run))))
    else:
        import venv_teacher

        sys.stdout.write(line("teacher", evaluation_figures(venv_teacher.embed, SCORED, split="dev")))


if __name__ == "__main__":
    main(sys.argv[1:])
