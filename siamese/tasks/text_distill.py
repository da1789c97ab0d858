"""``siamese-train --task text-distill``: a text tower trained to reproduce a sentence-embedding
model's vectors (knowledge distillation), from plain sentences without labels.

The student is a text tower (every tower option of ``text-pairs``: word vectors, RNN, units,
pooling) with a linear projection to the teacher's width. Each training sentence's target
is the teacher's vector of it, normalised to length 1 (:mod:`siamese.teachers`: a
sentence-transformers model, vectors computed elsewhere, or a Python function; a model
teacher's vectors are cached). The loss is

- ``cosine`` (default): minus the cosine of the two, the direction alone — all the index and
  the test figures use, as they compare unit vectors;
- ``mse``: the squared error between the student's output and the unit target, so the
  student learns the direction and a length of 1.

On dev, the cosine loss agreed better with the teacher at every epoch: a BiLSTM-256 student
on the 42,968 train/dev sentences of the staged text sets, 8 epochs, mean cosine to the
teacher on 2,000 held-out sentences 0.709 against 0.660 with ``mse`` (0.696 with ``mse`` at
three times the learning rate). The default learning rate, 3e-3, likewise: 0.747 against
0.709 at 1e-3 (cosine loss, 8 epochs); benchmarks/README.md ("Distillation: tuning on dev").

The student's word embedding starts from the teacher's own vectors of its words by default
(``--word-vectors auto``, which is ``teacher`` for a teacher that embeds words and GloVe 6B 50d
for precomputed vectors): each word embedded alone, on the principal axes of those vectors,
the first 128 of them unless ``--embedding-dim`` says otherwise
(:func:`siamese.teachers.teacher_word_vectors`). The vocabulary is the training sentences'
words, then frequent English words beyond them (:func:`siamese.vectors.frequent_words`, up to
``--vectors-vocabulary`` of them and ``--vocab-size`` in all), so that a word training never
saw still starts near the teacher's meaning of it. On dev (STS-B and SICK dev pairs whose
sentences the students never saw) this beat GloVe 50d for a BiLSTM-128 by 2.5 / 1.5 points of
Spearman and for a BiLSTM-384 by 1.9 / 0.6; the added words gave most of it on STS-B. The
teacher's word vectors are kept fixed unless ``--train-embeddings`` is given: for a
BiLSTM-384, fixed ones scored 1.4 to 1.6 points higher on SICK dev and level on STS-B dev, and
the words training never saw stay in the space the others are in (benchmarks/README.md).

More sentences for the teacher to embed can be made from the training ones:
``--augment N`` adds N variants of each with words dropped or a span kept, ``--synonyms N``
adds N variants of each with one word or two swapped for one of their five nearest words in
the student's word vectors (:func:`synonym_variants`). No variant is a held-out or test
sentence. On dev, synonym variants raised a BiLSTM-384's STS-B dev Spearman in every run
tried (two or three per sentence: +0.06 to +0.64, two seeds); with three, and 100,000 tokens,
STS-B test rose from 77.0 to 77.8 for a BiLSTM-384 and from 75.2 to 76.4 for a BiLSTM-128.
Each epoch then takes three to four times as long, so the default is none
(benchmarks/README.md).

A share of the sentences (``--dev-sentences``) is held out: the mean cosine between the
student's and the teacher's vectors of those picks the epoch (``val_cosine``). The test
figures are the student's on the test splits of ``--eval-data`` (by default STS-B and SICK:
Pearson and Spearman of the cosine of the two sentences' vectors against the gold scores;
Quora: duplicate retrieval through a cosine index of the split's questions, as
:mod:`siamese.metrics.retrieval` scores it), beside the teacher's own when the teacher is a
model. No sentence of those test splits is trained on, whatever the sources hold.

``tower.keras`` is a text tower like any other: the index, the server and the export take
it, and ``text-pairs --init-tower`` starts a pair run from it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import click
import keras
import numpy as np

from siamese import encode
from siamese.datasets.records import GRADED
from siamese.datasets.sentences import heldout_test_sentences, is_named, read_sources
from siamese.datasets.text import load_text_dataset
from siamese.errors import ConfigError, DataError, DatasetNotFoundError
from siamese.export import standardize
from siamese.index import Index
from siamese.metrics import evaluators
from siamese.metrics.retrieval import pair_retrieval_set, score_results, search_depth
from siamese.models import load_tower, uncompiled
from siamese.tasks.base import Defaults, Job, Task, Trained, option, register
from siamese.tasks.text_pairs import (
    DEFAULT_WORD_VECTORS,
    PLAIN_EMBEDDING_DIM,
    TextTowerOptions,
    new_text_tower,
    tower_cli_options,
    with_word_vectors,
)
from siamese.teachers import Precomputed, Teacher, resolve_teacher, teacher_vectors, teacher_word_vectors
from siamese.towers import vocabulary_words
from siamese.training import fused
from siamese.training.config import RunConfig
from siamese.training.loop import epoch_permutation, fit_epochs
from siamese.training.plots import plot_history
from siamese.training.run_dir import RunDir
from siamese.vectors import WordVectors, frequent_words

logger = logging.getLogger(__name__)

NAME = "text-distill"
#: The losses of ``--distill-loss`` (the default first).
DISTILL_LOSSES = ("cosine", "mse")
#: The datasets whose test splits give the test figures unless ``--eval-data`` says otherwise.
DEFAULT_EVAL = ("stsb", "sick", "qqp")
#: ``--word-vectors teacher``: the student's word vectors are the teacher's vectors of its words.
TEACHER_WORDS = "teacher"
#: ``--word-vectors auto`` (the default): the teacher's when it embeds words, else GloVe's.
AUTO_WORDS = "auto"
#: The width of the teacher's word vectors unless ``--embedding-dim`` says otherwise: their
#: first principal axes (on dev, as good as all 384 of all-MiniLM-L6-v2's; a narrower LSTM input).
TEACHER_WORDS_DIM = 128
#: ``--synonyms``: a word is replaced by one of its SYNONYM_NEIGHBOURS nearest among the
#: SYNONYM_CANDIDATES most frequent words, unless it is one of the SYNONYM_COMMON most frequent.
SYNONYM_NEIGHBOURS = 5
SYNONYM_CANDIDATES = 30000
SYNONYM_COMMON = 200
#: The figure that picks the epoch: the mean cosine to the teacher on the held-out sentences.
MONITOR = "val_cosine"


@dataclass
class DistillOptions(TextTowerOptions):
    """Settings of a distillation run: the student tower's (those of ``text-pairs``), the
    teacher, the sentences, the loss and the evaluation."""

    SECTION: ClassVar[str] = "distill"

    units: int = 256
    # Word vectors: "auto" is the teacher's (TEACHER_WORDS) when it embeds words, else GloVe's.
    word_vectors: str | None = AUTO_WORDS
    # None: the teacher's word vectors are kept fixed (better on dev), others trained.
    train_embeddings: bool | None = None
    # The teacher: a sentence-transformers model (folder or name), vectors.npy, or MODULE:FUNCTION.
    teacher: str = ""
    # Where the sentences come from: dataset names (train and dev splits), .txt or CSV/TSV files.
    sentences: tuple[str, ...] = ()
    # The columns a CSV/TSV source reads (empty: "sentence", else "sentence1" and "sentence2").
    text_col: tuple[str, ...] = ()
    distill_loss: str = "cosine"
    # Sentences held out to pick the epoch (at most a fifth of them).
    dev_sentences: int = 2000
    # Variants of each training sentence added for the teacher to embed (words dropped, or a
    # span kept): more sentences from the same text (0: none).
    augment: int = 0
    # Variants of each training sentence with a word or two swapped for one of its nearest words
    # in the word vectors, added for the teacher to embed (0: none).
    synonyms: int = 0
    # Datasets whose test splits are scored at the end (and never trained on).
    eval_data: tuple[str, ...] = DEFAULT_EVAL
    # Also score the teacher on them (a model teacher only; its vectors are cached).
    teacher_figures: bool = True
    # The teacher cache's folder (None: $SIAMESE_CACHE_DIR/teachers or ~/.cache/siamese/teachers).
    teacher_cache: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.sentences = tuple(self.sentences)
        self.text_col = tuple(self.text_col)
        self.eval_data = tuple(
            name.strip().lower() for name in self.eval_data if name.strip().lower() != "none"
        )


class TextDistillTask(Task):
    """Sentences and a teacher → a fast text tower in the teacher's space."""

    name = NAME
    summary = "a text tower trained to reproduce a sentence-embedding model's vectors (distillation)"
    data_help = "Not used: --sentences gives the sentences."
    rank = 2
    options_type = DistillOptions
    defaults = Defaults(data="sentences", epochs=10, batch_size=64, learning_rate=3e-3, patience=2)
    settings = frozenset(
        {
            "epochs",
            "batch_size",
            "learning_rate",
            "patience",
            "seed",
            "split_seed",
            "time_budget",
            "lr_patience",
            "lr_factor",
            "lr_schedule",
            "tensorboard",
        }
    )
    examples = (
        "siamese-train --task text-distill --teacher all-MiniLM-L6-v2 --sentences sick --sentences stsb "
        "--out runs/d",
        "siamese-train --task text-distill --teacher vectors.npy --sentences sentences.txt --out runs/d",
        "siamese-train --task text-distill --teacher all-MiniLM-L6-v2 --sentences qqp --rnn lstm --units 128 "
        "--out runs/d-small",
        "siamese-train --task text-pairs --data stsb --init-tower runs/d --out runs/d-stsb",
    )

    def cli_options(self) -> list[click.Option]:
        o = DistillOptions
        return [
            option(
                o,
                "teacher",
                "--teacher",
                default=None,
                show_default=False,
                help="The model to copy (needed by a new run): all-MiniLM-L6-v2 (offline, with the "
                "teacher extra), a sentence-transformers folder or name, vectors.npy (one row per "
                "sentence read), or MODULE:FUNCTION.",
            ),
            option(
                o,
                "sentences",
                "--sentences",
                multiple=True,
                default=None,
                show_default=False,
                help="Sentences to learn from (repeatable; needed by a new run): a dataset name (its "
                "train and dev splits), a .txt file (one per line) or a CSV/TSV file (see --text-col).",
            ),
            option(
                o,
                "text_col",
                "--text-col",
                multiple=True,
                default=None,
                show_default=False,
                help="CSV/TSV sources: a column to read (repeatable)  [default: sentence, else sentence1 and "
                "sentence2]",
            ),
            option(
                o,
                "distill_loss",
                "--distill-loss",
                type=click.Choice(DISTILL_LOSSES),
                help="cosine: minus the cosine to the teacher's vector (better on dev); mse: squared "
                "error to its unit vector.",
            ),
            option(
                o,
                "dev_sentences",
                "--dev-sentences",
                type=click.IntRange(min=1),
                help="Sentences held out to pick the epoch (mean cosine to the teacher).",
            ),
            option(
                o,
                "augment",
                "--augment",
                type=click.IntRange(min=0),
                help="Add N variants of each training sentence (words dropped, or a span kept), embedded "
                "by the teacher.",
            ),
            option(
                o,
                "synonyms",
                "--synonyms",
                type=click.IntRange(min=0),
                help="Add N variants of each training sentence with one or two words swapped for one of "
                "their nearest words in the word vectors, embedded by the teacher (2 or 3 raised STS-B "
                "dev; each epoch takes 3-4 times as long).",
            ),
            option(
                o,
                "eval_data",
                "--eval-data",
                multiple=True,
                default=None,
                show_default=False,
                help="Datasets whose test splits are scored at the end, and never trained on (repeatable; "
                "none: no test figures)  [default: stsb, sick, qqp]",
            ),
            option(
                o,
                "teacher_figures",
                "--no-teacher-figures",
                flag_value=False,
                show_default=False,
                help="Do not score the teacher beside the student.",
            ),
            option(
                o,
                "teacher_cache",
                "--teacher-cache",
                type=click.Path(file_okay=False),
                help="Teacher cache folder.",
            ),
            *[
                option(
                    o,
                    "train_embeddings",
                    "--train-embeddings/--freeze-embeddings",
                    show_default=False,
                    help="Train the word vectors with the rest, or keep them fixed  [default: fixed for the "
                    "teacher's word vectors, trained for others]",
                )
                if tower_option.name == "train_embeddings"
                else tower_option
                for tower_option in tower_cli_options(
                    o,
                    more_vectors=f"{TEACHER_WORDS} (the teacher's vectors of the vocabulary's words), "
                    f"{AUTO_WORDS} ({TEACHER_WORDS} if the teacher embeds words, else "
                    f"{DEFAULT_WORD_VECTORS}), ",
                )
            ],
        ]

    def options_from_cli(self, values: dict[str, Any]) -> DistillOptions:
        values = dict(values)
        values["teacher"] = values.get("teacher") or ""
        for name in ("sentences", "text_col"):
            values[name] = tuple(values.get(name) or ())
        values["eval_data"] = tuple(values.get("eval_data") or DEFAULT_EVAL)
        return DistillOptions(**values)

    # ------------------------------------------------------------------ the run

    def next_steps(self, config: RunConfig, out: str | os.PathLike[str]) -> list[str]:
        sources = config.options.sentences
        named = [spec for spec in sources if is_named(spec)]
        lines = [spec for spec in sources if not is_named(spec) and spec.lower().endswith(".txt")]
        corpus = (named or lines or ["sentences.txt"])[0]  # one the index reads as it is
        index = Path("idx") / Path(str(out)).name
        return [
            f"siamese-index build --run {shlex.quote(str(out))} --input {shlex.quote(corpus)} --out {index}",
            f'siamese-index query --index {index} "A man is playing a guitar" -k 5',
        ]

    def prepare(self, config: RunConfig, *, resume: bool) -> Job:
        config = _resolve(config)
        options = config.options
        # Checked here, not by the command line, so that --resume needs neither: it goes on
        # with the run's saved teacher and sentences.
        if not options.teacher:
            raise ConfigError(
                "--teacher is required: all-MiniLM-L6-v2, a sentence-transformers folder or name, "
                "vectors.npy or MODULE:FUNCTION"
            )
        if not options.sentences:
            raise ConfigError("--sentences is required: a dataset name, a .txt file or a CSV/TSV file")
        teacher = resolve_teacher(options.teacher)
        for name, value in (("--augment", options.augment), ("--synonyms", options.synonyms)):
            if value and isinstance(teacher, Precomputed):
                raise ConfigError(
                    f"{name} needs a teacher that embeds new sentences (a model or MODULE:FUNCTION)"
                )
        if options.synonyms and not options.word_vectors:
            raise ConfigError(
                "--synonyms needs word vectors to find near words: leave out --word-vectors none"
            )
        if str(options.word_vectors).strip().lower() == AUTO_WORDS:
            chosen = DEFAULT_WORD_VECTORS if isinstance(teacher, Precomputed) else TEACHER_WORDS
            options = dataclasses.replace(options, word_vectors=chosen)
            config = dataclasses.replace(config, options=options)
        if options.train_embeddings is None:
            options = dataclasses.replace(options, train_embeddings=not _teacher_words(options))
            config = dataclasses.replace(config, options=options)
        if _teacher_words(options) and isinstance(teacher, Precomputed):
            raise ConfigError(
                f"--word-vectors {TEACHER_WORDS} needs a teacher that embeds words (a model or "
                "MODULE:FUNCTION)"
            )
        sentences = read_sources(options.sentences, columns=options.text_col, seed=config.data_seed)
        given = teacher.vectors(len(sentences)) if isinstance(teacher, Precomputed) else None
        banned = heldout_test_sentences(
            [*options.eval_data, *(spec for spec in options.sentences if is_named(spec))],
            seed=config.data_seed,
        )
        first: dict[str, int] = {}
        for i, text in enumerate(sentences):
            first.setdefault(text, i)
        keep = np.array([i for text, i in first.items() if text not in banned], dtype=np.int64)
        dropped = sum(1 for text in first if text in banned)
        if dropped:
            logger.info("%d sentences that are in a test split are left out of training", dropped)
        if len(keep) < 2:
            raise DataError(
                f"--sentences gave {len(keep)} distinct sentence(s) to learn from: at least 2 are needed"
            )
        texts = [sentences[i] for i in keep]
        if given is None:
            vectors = teacher_vectors(teacher, texts, root=_cache_root(options))
        else:
            vectors = given[keep]
        targets = unit_rows(vectors)
        dev_count = min(options.dev_sentences, max(1, len(texts) // 5))
        order = np.random.default_rng([config.data_seed, 11]).permutation(len(texts))
        dev, train = np.sort(order[:dev_count]), np.sort(order[dev_count:])
        logger.info(
            "distillation: %d sentences (%d train, %d dev), teacher width %d, loss %s",
            len(texts),
            len(train),
            len(dev),
            targets.shape[1],
            options.distill_loss,
        )
        train_texts, train_targets = [texts[i] for i in train], targets[train]
        if options.augment:
            train_texts, train_targets = _with_variants(
                train_texts,
                train_targets,
                augmented(train_texts, options.augment, seed=config.data_seed),
                banned | set(texts),
                teacher,
                options,
                "augmentation",
            )
        word_vectors = None
        if _teacher_words(options) and (options.synonyms or not resume):
            config, word_vectors = _with_teacher_words(config, teacher, train_texts)
        elif options.word_vectors and (options.synonyms or not resume):
            config, word_vectors = with_word_vectors(config)
        if options.synonyms:
            train_texts, train_targets = _with_variants(
                train_texts,
                train_targets,
                synonym_variants(
                    [texts[i] for i in train], word_vectors, options.synonyms, seed=config.data_seed
                ),
                banned | set(texts) | set(train_texts),
                teacher,
                options,
                "synonyms",
            )
        data = {
            "train": (train_texts, train_targets),
            "dev": ([texts[i] for i in dev], targets[dev]),
        }
        return Job(config, data, {"teacher": teacher, "word_vectors": word_vectors})

    def build(self, job: Job) -> keras.Model:
        config = job.config
        keras.utils.set_random_seed(config.seed)
        texts, targets = job.data["train"]
        tower = new_text_tower(
            config.options, texts, job.extra["word_vectors"], seed=config.seed, projection=targets.shape[1]
        )
        tower.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate), loss=_loss(config.options.distill_loss)
        )
        return tower

    def fit(self, job: Job, run: RunDir, *, model: keras.Model, state: dict | None, verbose: Any) -> Trained:
        config = job.config
        trainer = fused.id_trainer(model)
        trainer.compile(
            optimizer=model.optimizer,
            loss=_loss(config.options.distill_loss),
            metrics=[keras.metrics.CosineSimilarity(name="cosine")],
        )
        vectorizer = encode.text_vectorizer(model)
        texts, targets = job.data["train"]
        ids = encode.token_ids(vectorizer, texts)
        lengths = encode.lengths_of(ids)
        dev_texts, dev_targets = job.data["dev"]
        dev_ids = encode.token_ids(vectorizer, dev_texts)
        dev_lengths = encode.lengths_of(dev_ids)
        dev_batches = fused.batch_order(
            dev_lengths, np.argsort(dev_lengths, kind="stable"), 256, pool_batches=0, rng=None
        )
        dev_data = fused.id_dataset([dev_ids], dev_targets, dev_batches, dev_lengths).map(_one_input)

        def epoch_data(epoch: int) -> tuple[Any, None]:
            order = epoch_permutation(len(texts), config.seed, epoch)
            batches = fused.batch_order(
                lengths,
                order,
                config.batch_size,
                pool_batches=16,
                rng=np.random.default_rng([config.seed, epoch, 1]),
            )
            return fused.id_dataset([ids], targets, batches, lengths).map(_one_input), None

        history = fit_epochs(
            model,
            epoch_data,
            dev_data,
            run,
            config,
            monitor=MONITOR,
            mode="max",
            state=state,
            trainer=trainer,
            verbose=verbose,
        )
        return Trained(model, uncompiled(model), history)

    def score(self, job: Job, trained: Trained) -> dict:
        tower = trained.tower
        dev_texts, dev_targets = job.data["dev"]
        student = unit_rows(encode.embed(tower, dev_texts))
        metrics: dict[str, dict[str, Any]] = {
            "dev": {
                "teacher_cosine": float(np.mean(np.sum(student * dev_targets, axis=1))),
                "n": len(dev_texts),
            }
        }
        options = job.config.options
        found = evaluation_figures(
            lambda texts: encode.embed(tower, texts), options.eval_data, seed=job.config.data_seed
        )
        if found:
            metrics["test"] = found
        teacher = job.extra["teacher"]
        if found and options.teacher_figures and isinstance(teacher, Teacher):
            root = _cache_root(options)
            metrics["teacher/test"] = evaluation_figures(
                lambda texts: teacher_vectors(teacher, texts, root=root, progress=False),
                options.eval_data,
                seed=job.config.data_seed,
            )
        return metrics

    def complete(self, job: Job, trained: Trained, metrics: dict, run: RunDir, *, verbose: Any) -> tuple:
        plot_history(trained.history, run.path / "history.png", metric="cosine")
        return trained, metrics

    def evaluate(
        self, run_dir: str | os.PathLike[str], *, data: str | None = None, split: str = "test", **options: Any
    ) -> dict:
        """The test figures of a finished distillation run's tower on ``data`` (default: the
        run's ``--eval-data``).

        Raises:
            ConfigError: The folder is not a finished text-distill run, or ``split`` is not ``test``.
        """
        if split != "test":
            raise ConfigError(f"a {NAME} run is scored on test splits only, not {split!r}")
        config = self.finished_config(run_dir)
        tower = load_tower(run_dir)
        names = (data,) if data else config.options.eval_data
        return {
            "test": evaluation_figures(lambda texts: encode.embed(tower, texts), names, seed=config.data_seed)
        }


TASK = register(TextDistillTask())


def _resolve(config: RunConfig) -> RunConfig:
    options = config.options
    if options.distill_loss not in DISTILL_LOSSES:
        raise ConfigError(
            f"--distill-loss must be one of {', '.join(DISTILL_LOSSES)}, got {options.distill_loss!r}"
        )
    if (
        isinstance(options.dev_sentences, bool)
        or not isinstance(options.dev_sentences, int)
        or options.dev_sentences < 1
    ):
        raise ConfigError(f"--dev-sentences must be a positive integer, got {options.dev_sentences!r}")
    for name in ("augment", "synonyms"):
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"--{name} must be 0 or more, got {value!r}")
    if options.embedding_dim is None and not options.word_vectors:
        config = dataclasses.replace(
            config, options=dataclasses.replace(options, embedding_dim=PLAIN_EMBEDDING_DIM)
        )
    return config


def _teacher_words(options: DistillOptions) -> bool:
    return str(options.word_vectors or "").strip().lower() == TEACHER_WORDS


def _with_teacher_words(config: RunConfig, teacher: Teacher, texts: Sequence[str]) -> tuple[RunConfig, Any]:
    """The teacher's vectors of the words of the student's vocabulary, and the config with the
    embedding width set to theirs. The vocabulary is that of ``texts``, then (up to
    ``--vectors-vocabulary`` of them) frequent English words beyond it, up to ``--vocab-size``:
    a word of a later sentence that training never saw still gets the teacher's vector of it."""
    options = config.options
    words = vocabulary_words(texts, vocab_size=options.vocab_size)
    room = min(options.vectors_vocabulary, options.vocab_size - 2 - len(words))  # [PAD], [UNK]
    words += frequent_words(room, known=words)
    vectors = teacher_word_vectors(
        teacher, words, dim=options.embedding_dim, most=TEACHER_WORDS_DIM, root=_cache_root(options)
    )
    options = dataclasses.replace(options, embedding_dim=vectors.dim)
    return dataclasses.replace(config, options=options), vectors


def _with_variants(
    texts: list[str],
    targets: np.ndarray,
    variants: Sequence[str],
    known: set[str],
    teacher: Teacher,
    options: DistillOptions,
    kind: str,
) -> tuple[list[str], np.ndarray]:
    """``texts`` and their ``targets``, then the ``variants`` that are not in ``known`` (the
    sentences already read, and the test splits') with the teacher's unit vectors of them."""
    extra = [text for text in variants if text not in known]
    extra_targets = unit_rows(teacher_vectors(teacher, extra, root=_cache_root(options)))
    logger.info("%s: %d variants of the training sentences added", kind, len(extra))
    return texts + extra, np.concatenate([targets, extra_targets])


def _one_input(sides: Any, targets: Any) -> tuple[Any, Any]:
    """A batch of one side's ids as the single input of :func:`siamese.training.fused.id_trainer`'s model."""
    return sides[0], targets


def _cache_root(options: DistillOptions) -> Path | None:
    return Path(options.teacher_cache).expanduser() if options.teacher_cache else None


def _loss(name: str) -> keras.losses.Loss:
    return keras.losses.MeanSquaredError() if name == "mse" else keras.losses.CosineSimilarity()


def augmented(texts: Sequence[str], copies: int, *, seed: int) -> list[str]:
    """``copies`` variants of each text of three words or more, distinct, in order: each either
    drops every word with probability 0.2 (two words at least are kept), or keeps one
    contiguous span of at least half of the words."""
    rng = np.random.default_rng([seed, 13])
    found: dict[str, None] = {}
    for text in texts:
        words = text.split()
        if len(words) < 3:
            continue
        for _ in range(copies):
            if rng.random() < 0.5:
                kept = [w for w in words if rng.random() >= 0.2]
                if len(kept) < 2:
                    kept = words[:2]
            else:
                size = int(rng.integers((len(words) + 1) // 2, len(words)))
                start = int(rng.integers(0, len(words) - size + 1))
                kept = words[start : start + size]
            variant = " ".join(kept)
            if variant != text:
                found.setdefault(variant, None)
    return list(found)


def synonym_variants(
    texts: Sequence[str],
    word_vectors: WordVectors,
    copies: int,
    *,
    seed: int,
    neighbours: int = SYNONYM_NEIGHBOURS,
    candidates: int = SYNONYM_CANDIDATES,
    common: int = SYNONYM_COMMON,
) -> list[str]:
    """``copies`` variants of each text, distinct and in order, in which one word, or two (even
    odds), is replaced by one of its ``neighbours`` nearest words (cosine of ``word_vectors``)
    among the first ``candidates`` of ``word_vectors.words`` (the most frequent, in the
    vocabularies the tasks build). A word is replaced only if its standard form (the tower's:
    lowercase, punctuation deleted) has a vector, is three characters or longer and is not one
    of the ``common`` first words (at most a tenth of them, for small vocabularies); the
    replacement is the neighbour as ``word_vectors`` spells it. Texts with no such word give
    none; a variant equal to its text, or to an earlier variant, is left out."""
    rng = np.random.default_rng([seed, 17])
    words = word_vectors.words
    frequent = set(words[: min(common, len(words) // 10)])
    split = [(tokens, [standardize(token) for token in tokens]) for tokens in (t.split() for t in texts)]
    swappable = {
        key
        for _, keys in split
        for key in keys
        if len(key) >= 3 and key not in frequent and key in word_vectors
    }
    nearest = _nearest_words(word_vectors, sorted(swappable), neighbours, candidates)
    swappable = set(nearest)

    found: dict[str, None] = {}
    for text, (tokens, keys) in zip(texts, split, strict=True):
        places = [k for k, key in enumerate(keys) if key in swappable]
        if not places:
            continue
        for _ in range(copies):
            chosen = rng.choice(places, size=min(len(places), 1 + int(rng.random() < 0.5)), replace=False)
            variant = list(tokens)
            for k in chosen:
                variant[k] = words[int(rng.choice(nearest[keys[k]]))]
            joined = " ".join(variant)
            if joined != text:
                found.setdefault(joined, None)
    return list(found)


def _nearest_words(
    word_vectors: WordVectors, keys: Sequence[str], neighbours: int, candidates: int, block: int = 512
) -> dict[str, np.ndarray]:
    """For each of ``keys``, the rows of its ``neighbours`` nearest among the first
    ``candidates`` words of ``word_vectors`` by cosine, nearest first, leaving out itself and
    any word with the same direction (a key with none left has no entry)."""
    pool = unit_rows(word_vectors.vectors[:candidates])
    count = min(neighbours, len(pool))
    nearest: dict[str, np.ndarray] = {}
    if count < 1:
        return nearest
    for start in range(0, len(keys), block):
        chunk = keys[start : start + block]
        similar = unit_rows(np.stack([word_vectors.get(key) for key in chunk])) @ pool.T
        similar[similar > 0.999] = -np.inf  # the word itself, and any with the very same direction
        for key, row in zip(chunk, similar, strict=True):
            top = np.argpartition(-row, count - 1)[:count]
            top = top[np.lexsort((top, -row[top]))]
            top = top[np.isfinite(row[top])]
            if len(top):
                nearest[key] = top
    return nearest


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` with every row scaled to length 1 (float32)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def evaluation_figures(
    embed: Callable[[list[str]], np.ndarray], names: Sequence[str], *, seed: int = 0, split: str = "test"
) -> dict[str, float]:
    """The figures of an embedding function on the ``split`` splits of ``names``: graded data, the
    Pearson and Spearman correlation of the cosine of each pair's vectors with the gold
    scores; binary data (Quora, MRPC, PAWS), retrieval of each duplicate's partner through a
    cosine index of the split's distinct sentences. A dataset that is not staged is skipped
    with a log line."""
    figures: dict[str, float] = {}
    for name in names:
        try:
            pairs = load_text_dataset(name, seed=seed)[split]
        except DatasetNotFoundError as exc:
            logger.warning("%s is not available (%s): no test figures for it", name, exc)
            continue
        if pairs.kind == GRADED:
            a, b = unit_rows(embed(list(pairs.a))), unit_rows(embed(list(pairs.b)))
            graded = evaluators.graded_metrics(np.sum(a * b, axis=1), pairs.labels)
            figures[f"{name}_cosine_pearson"] = graded["pearson"]
            figures[f"{name}_cosine_spearman"] = graded["spearman"]
            continue
        retrieval = pair_retrieval_set(pairs.a, pairs.b, pairs.labels == 1.0)
        corpus = embed(list(retrieval.corpus))
        index = Index.from_vectors(corpus, metric="cosine")
        _, found = index.search_vectors(corpus[retrieval.query_ids], search_depth(retrieval, len(corpus)) + 1)
        scored = score_results(retrieval, found, corpus_size=len(corpus))
        figures.update({f"{name}_{key}": value for key, value in scored.items()})
    return figures
