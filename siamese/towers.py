"""Tower builders: functions that return a named ``keras.Model`` from raw input to an embedding.

A tower is built once and then called on every input of a pair, so its weights exist once.
Each tower takes RAW input (strings, images, integer ids) and is made of Keras's own layers,
so a saved ``tower.keras`` loads with ``keras.saving.load_model`` on its own; the one
exception is a text tower with ``sequence_pooling="max"``, whose
:class:`~siamese.layers.MaskedMaxPooling1D` is registered when ``siamese`` is imported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import keras
import numpy as np

from siamese.checks import choice, fraction, positive_int
from siamese.layers import MaskedMaxPooling1D
from siamese.vectors import WordVectors

logger = logging.getLogger(__name__)

RNN_KINDS = ("lstm", "bilstm")
# How a text tower turns the LSTM's states into one vector: its last state, or the mean or
# maximum of its states over the sentence's real tokens.
SEQUENCE_POOLINGS = ("last", "mean", "max")
POOLINGS = ("max", "avg")
GLOBAL_POOLINGS = ("flatten", "avg", "max")


def text_tower(
    texts: Iterable[str],
    *,
    vocab_size: int = 20000,
    sequence_length: int = 30,
    embedding_dim: int | None = 128,
    units: int = 128,
    rnn: str = "lstm",
    sequence_pooling: str = "last",
    word_vectors: WordVectors | Mapping[str, np.ndarray] | None = None,
    train_embeddings: bool = True,
    dropout: float = 0.0,
    standardize: str | None = "lower_and_strip_punctuation",
    seed: int | None = None,
    extra_vocabulary: Sequence[str] = (),
    projection: int | None = None,
    name: str = "text_tower",
) -> keras.Model:
    """Text tower: ``TextVectorization`` → ``Embedding(mask_zero=True)`` → LSTM or BiLSTM
    (→ a linear ``Dense`` projection).

    The vocabulary is adapted on ``texts`` (normally the training sentences of both sides) and
    is saved with the model, so the tower maps raw strings to vectors on its own.

    Args:
        texts: Sentences to adapt the vocabulary on. Must hold at least one non-empty string.
        vocab_size: Largest vocabulary, counting the padding and out-of-vocabulary tokens.
        sequence_length: Tokens kept per sentence (longer ones are cut, shorter ones padded).
        embedding_dim: Width of the word embedding. ``None`` takes the word vectors' width.
        units: LSTM units (per direction for ``"bilstm"``); the embedding width of the tower.
        rnn: ``"lstm"`` or ``"bilstm"`` (a bidirectional LSTM whose two states are joined).
        sequence_pooling: ``"last"`` takes the LSTM's last state; ``"mean"`` and ``"max"``
            pool its states over the real tokens (the padding is masked). ``"max"`` uses
            :class:`~siamese.layers.MaskedMaxPooling1D`, so a tower saved with it loads once ``siamese`` is
            imported; the other two are made of Keras's own layers only.
        word_vectors: Pretrained vectors (a :class:`~siamese.vectors.WordVectors` or a mapping
            from word to vector) used to initialise the rows of the words they cover.
        train_embeddings: Whether the embedding is fine-tuned (``False`` freezes it).
        dropout: Dropout on the LSTM's inputs, in [0, 1).
        standardize: ``TextVectorization`` standardisation (``None`` keeps text as given).
        seed: Seed for the initial weights of rows with no pretrained vector.
        extra_vocabulary: Words added to the vocabulary after those of ``texts`` (until
            ``vocab_size``), e.g. the most frequent words that have pretrained vectors, so
            words never seen in training still get their pretrained vector instead of
            ``[UNK]``.
        projection: Add a linear ``Dense`` layer to this width after the pooling (e.g. the
            width of a teacher's vectors); ``None``: none.
        name: Name of the returned model.

    Returns:
        A ``keras.Model`` from a batch of strings, shape ``(batch,)``, to ``(batch, units)``
        (``(batch, 2 * units)`` for ``"bilstm"``; ``(batch, projection)`` with a projection).

    Raises:
        ValueError: A size is not a positive integer, ``rnn`` is unknown, there are no texts
            to adapt the vocabulary on, or ``embedding_dim`` disagrees with the word vectors.
    """
    vocab_size = positive_int("vocab_size", vocab_size)
    if vocab_size < 3:
        raise ValueError(f"vocab_size must be at least 3 (padding, unknown, one word), got {vocab_size}")
    sequence_length = positive_int("sequence_length", sequence_length)
    units = positive_int("units", units)
    rnn = choice("rnn", rnn, RNN_KINDS)
    sequence_pooling = choice("sequence_pooling", sequence_pooling, SEQUENCE_POOLINGS)
    dropout = fraction("dropout", dropout, include_one=False)
    if projection is not None:
        projection = positive_int("projection", projection)
    if embedding_dim is None:
        if word_vectors is None:
            raise ValueError("embedding_dim may be None only when word_vectors are given")
        embedding_dim = _vectors_dim(word_vectors)
    embedding_dim = positive_int("embedding_dim", embedding_dim)
    if word_vectors is not None and _vectors_dim(word_vectors) != embedding_dim:
        raise ValueError(
            f"embedding_dim ({embedding_dim}) must equal the word vectors' width "
            f"({_vectors_dim(word_vectors)})"
        )
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("texts must hold at least one non-empty string to adapt the vocabulary on")

    vectorizer = _adapted_vectorizer(texts, vocab_size, sequence_length, standardize)
    vocabulary = vectorizer.get_vocabulary()
    if extra_vocabulary:
        known = set(vocabulary)
        extra = [w for w in dict.fromkeys(extra_vocabulary) if w and w not in known]
        words = vocabulary[2:] + extra[: max(0, vocab_size - len(vocabulary))]
        vectorizer.set_vocabulary(words)  # [PAD] and [UNK] are added back in front
        vocabulary = vectorizer.get_vocabulary()
    logger.info("text tower vocabulary: %d tokens (of at most %d)", len(vocabulary), vocab_size)

    embedding = keras.layers.Embedding(
        len(vocabulary),
        embedding_dim,
        mask_zero=True,
        trainable=train_embeddings,
        embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seed),
        name="embedding",
    )
    inputs = keras.Input(shape=(), dtype="string", name="text")
    x = embedding(vectorizer(inputs))
    lstm = keras.layers.LSTM(
        units,
        dropout=dropout,
        return_sequences=sequence_pooling != "last",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        recurrent_initializer=keras.initializers.Orthogonal(seed=seed),
        name="lstm",
    )
    if rnn == "bilstm":
        x = keras.layers.Bidirectional(lstm, name="bilstm")(x)
    else:
        x = lstm(x)
    if sequence_pooling == "mean":
        x = keras.layers.GlobalAveragePooling1D(name="mean_pool")(x)
    elif sequence_pooling == "max":
        x = MaskedMaxPooling1D(name="max_pool")(x)
    if projection is not None:
        x = keras.layers.Dense(
            projection, kernel_initializer=keras.initializers.GlorotUniform(seed=seed), name="projection"
        )(x)
    model = keras.Model(inputs, x, name=name)
    if word_vectors is not None:
        matrix = np.array(embedding.get_weights()[0])
        covered = _fill_rows(matrix, vocabulary, word_vectors)
        embedding.set_weights([matrix])
        logger.info(
            "word vectors cover %d of %d vocabulary entries (%.1f%%)",
            covered,
            len(vocabulary),
            100.0 * covered / len(vocabulary),
        )
    return model


def vocabulary_words(
    texts: Iterable[str], *, vocab_size: int = 20000, standardize: str | None = "lower_and_strip_punctuation"
) -> list[str]:
    """The words of the vocabulary a :func:`text_tower` adapted on ``texts`` starts from, most
    frequent first ([PAD] and [UNK] left out): the words to give vectors for."""
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("texts must hold at least one non-empty string to adapt the vocabulary on")
    vocabulary = _adapted_vectorizer(texts, positive_int("vocab_size", vocab_size), 1, standardize)
    return [str(word) for word in vocabulary.get_vocabulary()[2:]]


def _adapted_vectorizer(
    texts: Sequence[str], vocab_size: int, sequence_length: int, standardize: str | None
) -> keras.layers.TextVectorization:
    vectorizer = keras.layers.TextVectorization(
        max_tokens=vocab_size,
        output_sequence_length=sequence_length,
        standardize=standardize,
        name="vectorize",
    )
    vectorizer.adapt(np.asarray(texts, dtype=object), batch_size=1024)
    return vectorizer


def _vectors_dim(word_vectors: WordVectors | Mapping[str, np.ndarray]) -> int:
    if isinstance(word_vectors, WordVectors):
        return word_vectors.dim
    for vector in word_vectors.values():
        return int(np.asarray(vector).shape[-1])
    raise ValueError("word_vectors is empty")


def _fill_rows(
    matrix: np.ndarray, vocabulary: Sequence[str], word_vectors: WordVectors | Mapping[str, np.ndarray]
) -> int:
    """Copy the pretrained vector of each vocabulary word into ``matrix``; return how many."""
    covered = 0
    matrix[0] = 0.0  # the padding row is masked anyway; keep it neutral
    for row, word in enumerate(vocabulary):
        if row < 2:  # padding and [UNK]
            continue
        vector = word_vectors.get(word)
        if vector is not None:
            matrix[row] = vector
            covered += 1
    return covered


def image_tower(
    input_shape: Sequence[int],
    *,
    filters: Sequence[int] = (32, 64),
    kernel_size: int = 3,
    convs_per_block: int = 1,
    pooling: str = "max",
    global_pooling: str = "avg",
    embedding_dim: int = 64,
    activation: str | None = None,
    batch_norm: bool = False,
    dropout: float = 0.0,
    scale: float = 1.0 / 255.0,
    seed: int | None = None,
    name: str = "image_tower",
) -> keras.Model:
    """Image tower: ``Rescaling`` → ``Conv2D`` blocks → pooling → ``Dense`` embedding.

    Args:
        input_shape: ``(height, width, channels)`` of the raw images.
        filters: Filters of each convolutional block; each block ends in 2×2 pooling.
        kernel_size: Convolution kernel size.
        convs_per_block: ``Conv2D`` layers in each block.
        pooling: Pooling after each block, ``"max"`` or ``"avg"``.
        global_pooling: How the last feature map becomes a vector: ``"flatten"``, ``"avg"``
            or ``"max"``.
        embedding_dim: Width of the output embedding.
        activation: Activation of the embedding layer (``None`` for linear, or e.g.
            ``"sigmoid"`` as in Koch et al.).
        batch_norm: Add batch normalisation after each convolution.
        dropout: Dropout before the embedding layer, in [0, 1).
        scale: Factor applied to the raw pixels (1/255 for uint8 images, 1.0 for floats).
        seed: Seed for the initial weights.
        name: Name of the returned model.

    Returns:
        A ``keras.Model`` from ``(batch, H, W, C)`` images to ``(batch, embedding_dim)``.

    Raises:
        ValueError: ``input_shape`` is not three positive integers, a size is not positive,
            or a pooling name is unknown.
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3:
        raise ValueError(
            f"input_shape must be (height, width, channels), three positive integers; got {input_shape!r}"
        )
    shape = tuple(positive_int("input_shape", s) for s in shape)
    if not filters:
        raise ValueError("filters must name at least one block, e.g. (32, 64)")
    filters = [positive_int("filters", f) for f in filters]
    kernel_size = positive_int("kernel_size", kernel_size)
    convs_per_block = positive_int("convs_per_block", convs_per_block)
    embedding_dim = positive_int("embedding_dim", embedding_dim)
    pooling = choice("pooling", pooling, POOLINGS)
    global_pooling = choice("global_pooling", global_pooling, GLOBAL_POOLINGS)
    dropout = fraction("dropout", dropout, include_one=False)

    pool_layer = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
    init = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input(shape=shape, name="image")
    x = keras.layers.Rescaling(scale, name="rescale")(inputs)
    for b, n_filters in enumerate(filters):
        for c in range(convs_per_block):
            x = keras.layers.Conv2D(
                n_filters,
                kernel_size,
                padding="same",
                activation=None if batch_norm else "relu",
                kernel_initializer=init,
                name=f"block{b + 1}_conv{c + 1}",
            )(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"block{b + 1}_bn{c + 1}")(x)
                x = keras.layers.Activation("relu", name=f"block{b + 1}_relu{c + 1}")(x)
        if x.shape[1] >= 2 and x.shape[2] >= 2:
            x = pool_layer(2, name=f"block{b + 1}_pool")(x)
    if global_pooling == "flatten":
        x = keras.layers.Flatten(name="flatten")(x)
    elif global_pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    else:
        x = keras.layers.GlobalMaxPooling2D(name="global_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
    x = keras.layers.Dense(embedding_dim, activation=activation, kernel_initializer=init, name="embed")(x)
    return keras.Model(inputs, x, name=name)


def categorical_tower(
    n_categories: int,
    dim: int = 1,
    *,
    seed: int | None = None,
    name: str = "categorical_tower",
) -> keras.Model:
    """Categorical tower: ``Embedding(n_categories, dim)`` → ``Flatten``.

    With ``dim=1`` this is the team-strength model: one learned number per team.

    Args:
        n_categories: Number of distinct ids; inputs must lie in ``[0, n_categories)``.
        dim: Width of each category's vector.
        seed: Seed for the initial weights.
        name: Name of the returned model.

    Returns:
        A ``keras.Model`` from integer ids, shape ``(batch, 1)``, to ``(batch, dim)``.

    Raises:
        ValueError: ``n_categories`` or ``dim`` is not a positive integer.
    """
    n_categories = positive_int("n_categories", n_categories)
    dim = positive_int("dim", dim)
    inputs = keras.Input(shape=(1,), dtype="int32", name="id")
    x = keras.layers.Embedding(
        n_categories,
        dim,
        embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seed),
        name="embedding",
    )(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, x, name=name)
