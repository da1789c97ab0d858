"""The shared-layer patterns the toolkit is built from, as small runnable models.

Each builder returns a :class:`Pattern`: the model, the layer (or model) whose weights are
shared, and the names of two outputs that reach the shared weights by different paths. The
tests use that to prove the sharing: the same variable objects, the weights counted once, and
an update made through one path changing the other path's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras

from siamese.towers import categorical_tower


@dataclass
class Pattern:
    """A pattern's model, its shared part, and two outputs that go through it by different paths.

    Attributes:
        model: The functional model (for :func:`shared_embedding_two_models`, the first of two).
        shared: The layer or model whose weights are shared.
        paths: Indices into ``model.outputs`` of two outputs reached through ``shared``.
        others: Further models that share ``shared`` (only for the two-model pattern).
    """

    model: keras.Model
    shared: keras.layers.Layer
    paths: tuple[int, int] = (0, 1)
    others: list[keras.Model] = field(default_factory=list)


def _init(seed: int) -> keras.initializers.Initializer:
    return keras.initializers.GlorotUniform(seed=seed)


def shared_dense(input_dim: int = 4, units: int = 3, seed: int = 0) -> Pattern:
    """One ``Dense`` layer applied to two inputs."""
    dense = keras.layers.Dense(units, kernel_initializer=_init(seed), name="shared_dense")
    a = keras.Input((input_dim,), name="a")
    b = keras.Input((input_dim,), name="b")
    return Pattern(keras.Model([a, b], [dense(a), dense(b)], name="shared_dense"), dense)


def shared_conv2d_pair(
    input_shape: tuple[int, int, int] = (12, 12, 1), filters: int = 4, seed: int = 0
) -> Pattern:
    """A ``Conv2D`` twin: one convolution (and pooling) encodes both images.

    The model outputs both encodings and their absolute difference ``|u - v|``.
    """
    conv = keras.layers.Conv2D(
        filters, 3, activation="relu", kernel_initializer=_init(seed), name="shared_conv"
    )
    pool = keras.layers.GlobalAveragePooling2D(name="shared_pool")
    a = keras.Input(input_shape, name="image_a")
    b = keras.Input(input_shape, name="image_b")
    u, v = pool(conv(a)), pool(conv(b))
    diff = keras.layers.Subtract(name="difference")([u, v])
    model = keras.Model([a, b], [u, v, diff], name="shared_conv2d_pair")
    return Pattern(model, conv)


def shared_embedding_lstm(vocab_size: int = 50, dim: int = 8, units: int = 6, seed: int = 0) -> Pattern:
    """One ``Embedding`` + ``LSTM`` over two variable-length integer sequences (0 = padding)."""
    embedding = keras.layers.Embedding(vocab_size, dim, mask_zero=True, name="shared_embedding")
    lstm = keras.layers.LSTM(units, kernel_initializer=_init(seed), name="shared_lstm")
    a = keras.Input((None,), dtype="int32", name="tokens_a")
    b = keras.Input((None,), dtype="int32", name="tokens_b")
    model = keras.Model([a, b], [lstm(embedding(a)), lstm(embedding(b))], name="shared_embedding_lstm")
    return Pattern(model, lstm)


def model_as_layer(input_dim: int = 4, units: int = 3, seed: int = 0) -> Pattern:
    """A whole model used as a layer, called on two inputs."""
    inner_in = keras.Input((input_dim,))
    hidden = keras.layers.Dense(5, activation="relu", kernel_initializer=_init(seed))(inner_in)
    inner = keras.Model(
        inner_in, keras.layers.Dense(units, kernel_initializer=_init(seed + 1))(hidden), name="encoder"
    )
    a = keras.Input((input_dim,), name="a")
    b = keras.Input((input_dim,), name="b")
    return Pattern(keras.Model([a, b], [inner(a), inner(b)], name="model_as_layer"), inner)


def shared_embedding_two_models(vocab_size: int = 20, dim: int = 4, seed: int = 0) -> Pattern:
    """One ``Embedding`` layer used by two different models (e.g. a classifier and a scorer)."""
    embedding = keras.layers.Embedding(vocab_size, dim, name="shared_embedding")
    x1 = keras.Input((3,), dtype="int32", name="ids_first")
    first = keras.Model(
        x1,
        keras.layers.Dense(1, kernel_initializer=_init(seed))(keras.layers.Flatten()(embedding(x1))),
        name="first_model",
    )
    x2 = keras.Input((3,), dtype="int32", name="ids_second")
    second = keras.Model(
        x2,
        keras.layers.Dense(2, kernel_initializer=_init(seed + 1))(
            keras.layers.GlobalAveragePooling1D()(embedding(x2))
        ),
        name="second_model",
    )
    return Pattern(first, embedding, paths=(0, 0), others=[second])


def lstm_encoder_decoder(vocab_size: int = 30, dim: int = 8, units: int = 6, seed: int = 0) -> Pattern:
    """One ``LSTM`` used first as encoder, then as decoder started from the encoder's state.

    Outputs: the encoder's final hidden state, and the decoder's per-step token scores.
    """
    embedding = keras.layers.Embedding(vocab_size, dim, name="embedding")
    lstm = keras.layers.LSTM(
        units, return_sequences=True, return_state=True, kernel_initializer=_init(seed), name="shared_lstm"
    )
    source = keras.Input((None,), dtype="int32", name="source")
    target = keras.Input((None,), dtype="int32", name="target")
    _, state_h, state_c = lstm(embedding(source))
    decoded, _, _ = lstm(embedding(target), initial_state=[state_h, state_c])
    scores = keras.layers.Dense(vocab_size, kernel_initializer=_init(seed + 1), name="token_scores")(decoded)
    return Pattern(keras.Model([source, target], [state_h, scores], name="lstm_encoder_decoder"), lstm)


def merge_layers(input_dim: int = 4, units: int = 3, seed: int = 0) -> Pattern:
    """The merge layers on two encodings from one shared ``Dense``.

    Outputs, in order: ``u``, ``v``, ``Add``, ``Subtract`` (u - v), ``Multiply``,
    ``Concatenate``.
    """
    dense = keras.layers.Dense(units, kernel_initializer=_init(seed), name="shared_dense")
    a = keras.Input((input_dim,), name="a")
    b = keras.Input((input_dim,), name="b")
    u, v = dense(a), dense(b)
    outputs = [
        u,
        v,
        keras.layers.Add(name="add")([u, v]),
        keras.layers.Subtract(name="subtract")([u, v]),
        keras.layers.Multiply(name="multiply")([u, v]),
        keras.layers.Concatenate(name="concatenate")([u, v]),
    ]
    return Pattern(keras.Model([a, b], outputs, name="merge_layers"), dense)


def three_input_model(n_teams: int = 10, seed: int = 0) -> Pattern:
    """Team 1, team 2 and home: one strength model looked up for both teams, then ``Dense(1)``.

    Outputs: the prediction, and each team's strength (so the sharing can be observed).
    """
    strength = categorical_tower(n_teams, 1, seed=seed, name="team_strength")
    team_1 = keras.Input((1,), dtype="int32", name="team_1")
    team_2 = keras.Input((1,), dtype="int32", name="team_2")
    home = keras.Input((1,), name="home")
    s1, s2 = strength(team_1), strength(team_2)
    joined = keras.layers.Concatenate(name="concatenate")([s1, s2, home])
    out = keras.layers.Dense(1, kernel_initializer=_init(seed), name="prediction")(joined)
    return Pattern(keras.Model([team_1, team_2, home], [s1, s2, out], name="three_input"), strength)


def two_output_model(input_dim: int = 2, seed: int = 0) -> Pattern:
    """One input, a shared hidden layer, two outputs (e.g. each team's score)."""
    hidden = keras.layers.Dense(4, activation="relu", kernel_initializer=_init(seed), name="shared_hidden")
    x = keras.Input((input_dim,), name="features")
    h = hidden(x)
    out_1 = keras.layers.Dense(1, kernel_initializer=_init(seed + 1), name="score_1")(h)
    out_2 = keras.layers.Dense(1, kernel_initializer=_init(seed + 2), name="score_2")(h)
    return Pattern(keras.Model(x, [out_1, out_2], name="two_output"), hidden)


class CopyOf(keras.constraints.Constraint):
    """A weight constraint that replaces a weight with another variable's value.

    Keras applies constraints after each optimizer update, so the constrained weight ends
    every step as a copy of ``source``. Not serialisable (it holds a live variable): it only
    exists to show what "sharing by copying" does, see :func:`copied_by_constraint`.
    """

    def __init__(self, source: keras.Variable) -> None:
        self.source = source

    def __call__(self, weight: keras.Variable) -> keras.KerasTensor:
        return keras.ops.convert_to_tensor(self.source)


def copied_by_constraint(
    input_dim: int = 4, units: int = 3, seed: int = 0
) -> tuple[keras.Model, keras.layers.Dense, keras.layers.Dense]:
    """Not sharing: two ``Dense`` layers, the second's weights copied from the first's by a
    constraint after each update (a pattern some tutorials show as "tied" weights).

    Unlike :func:`shared_dense`, this model holds two sets of weights (twice the
    parameters), the two agree only once an optimizer step has run the constraint, and the
    gradient that reaches the copy through the second input is thrown away by the copy
    instead of being added to the first layer's, as a shared layer's would be. The toolkit
    shares the layer object instead.

    Returns:
        The model (two inputs, two outputs), the first layer and its copy.
    """
    first = keras.layers.Dense(units, kernel_initializer=_init(seed), name="first")
    first.build((None, input_dim))
    copy = keras.layers.Dense(
        units,
        kernel_initializer=_init(seed + 1),
        kernel_constraint=CopyOf(first.kernel),
        bias_constraint=CopyOf(first.bias),
        name="copy",
    )
    a = keras.Input((input_dim,), name="a")
    b = keras.Input((input_dim,), name="b")
    return keras.Model([a, b], [first(a), copy(b)], name="copied_by_constraint"), first, copy


#: Every pattern builder, by name.
PATTERNS = {
    "shared-dense": shared_dense,
    "shared-conv2d-pair": shared_conv2d_pair,
    "shared-embedding-lstm": shared_embedding_lstm,
    "model-as-layer": model_as_layer,
    "shared-embedding-two-models": shared_embedding_two_models,
    "lstm-encoder-decoder": lstm_encoder_decoder,
    "merge-layers": merge_layers,
    "three-input": three_input_model,
    "two-output": two_output_model,
}
