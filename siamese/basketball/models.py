"""Basketball team-strength models of DataCamp's "Advanced Deep Learning with Keras" course.

Every model that looks at team ids is built on :func:`siamese.towers.categorical_tower`: one
learned number per team-season (``Embedding(n_teams, 1)`` -> ``Flatten``), wrapped as a model
named ``team_strength`` and called on both ``team_1`` and ``team_2``, so its single weight
matrix serves both teams.

The five builders, their inputs and their outputs (names are Keras layer names):

========================================  ==============================  =========================
model (``model.name``)                    inputs                          outputs (trained on)
========================================  ==============================  =========================
:func:`team_strength_model`               ``team_1``, ``team_2``          ``score_diff``
:func:`three_input_model`                 ``team_1``, ``team_2``,         ``score_diff``
                                          ``home``
:func:`stacked_model`                     ``features`` = (home,           ``score_diff``
                                          seed_diff, pred)
:func:`two_output_model`                  ``features`` = (seed_diff,      ``scores`` = (score_1,
                                          pred)                           score_2)
:func:`regressor_classifier_model`        ``features`` = (seed_diff,      ``score_diff``, ``won``
                                          pred)                           (win probability)
========================================  ==============================  =========================

Each builder returns a compiled model (Adam, MAE; binary cross-entropy for ``won``). The
helpers below turn a :class:`~siamese.basketball.data.Games` table into the inputs and
targets a model expects (looked up by ``model.name``, so they also work on a reloaded model),
train it (:func:`fit_games`, :func:`fit_team_strength`), predict (:func:`predict_games`) and
score it (:func:`evaluate_games`). Nothing here writes files.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace

import keras
import numpy as np

from siamese.basketball.data import Games, validate_ids
from siamese.errors import ConfigError
from siamese.metrics import accuracy, log_loss, mae
from siamese.models import tower_of
from siamese.towers import categorical_tower
from siamese.training.loop import MIN_LEARNING_RATE

logger = logging.getLogger(__name__)

#: Name of the shared strength tower inside the team-id models.
STRENGTH_NAME = "team_strength"
#: Rows of ``games_tourney.csv`` the course trains its tournament models on.
COURSE_TRAIN_ROWS = 3168

TEAM_STRENGTH = "team_strength_model"
THREE_INPUT = "three_input_model"
STACKED = "stacked_model"
TWO_OUTPUT = "two_output_model"
REGRESSOR_CLASSIFIER = "regressor_classifier_model"


@dataclass(frozen=True)
class ModelSpec:
    """What a model reads from and predicts of a games table.

    Attributes:
        features: Columns of the single ``features`` input, in order; ``None`` for the models
            whose inputs are named after their columns (``team_1``, ``team_2``, ``home``).
        outputs: For each model output, in order, the columns it is trained on.
    """

    features: tuple[str, ...] | None
    outputs: tuple[tuple[str, ...], ...]


#: Inputs and targets of every model this module builds, by ``model.name``.
SPECS: dict[str, ModelSpec] = {
    TEAM_STRENGTH: ModelSpec(None, (("score_diff",),)),
    THREE_INPUT: ModelSpec(None, (("score_diff",),)),
    STACKED: ModelSpec(("home", "seed_diff", "pred"), (("score_diff",),)),
    TWO_OUTPUT: ModelSpec(("seed_diff", "pred"), (("score_1", "score_2"),)),
    REGRESSOR_CLASSIFIER: ModelSpec(("seed_diff", "pred"), (("score_diff",), ("won",))),
}

#: Losses a season model can be trained with: the course's absolute error, or squared error
#: (a least-squares rating: the expected margin rather than the median one).
SEASON_LOSSES = {"mae": "mean_absolute_error", "mse": "mean_squared_error"}

DEFAULT_LEARNING_RATES = {
    TEAM_STRENGTH: 0.05,
    THREE_INPUT: 0.05,
    STACKED: 0.01,
    TWO_OUTPUT: 0.01,
    REGRESSOR_CLASSIFIER: 0.01,
}


# ---------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------


def _glorot(seed: int) -> keras.initializers.Initializer:
    return keras.initializers.GlorotUniform(seed=seed)


def _team_inputs() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    return (
        keras.Input((1,), dtype="int32", name="team_1"),
        keras.Input((1,), dtype="int32", name="team_2"),
    )


def _season_loss(loss: str) -> str:
    if loss not in SEASON_LOSSES:
        raise ConfigError(f"season loss must be one of {', '.join(SEASON_LOSSES)}; got {loss!r}")
    return SEASON_LOSSES[loss]


def _adam(learning_rate: float) -> keras.optimizers.Optimizer:
    if not float(learning_rate) > 0.0:
        raise ConfigError(f"learning_rate must be positive, got {learning_rate!r}")
    return keras.optimizers.Adam(learning_rate=float(learning_rate))


def team_strength_model(
    n_teams: int,
    *,
    seed: int = 0,
    learning_rate: float = DEFAULT_LEARNING_RATES[TEAM_STRENGTH],
    loss: str = "mae",
) -> keras.Model:
    """The course's team-strength model: ``strength(team_1) - strength(team_2)``.

    One strength tower (``model.get_layer("team_strength")``) is called on both inputs and a
    ``Subtract`` layer named ``score_diff`` takes the difference, so the prediction for
    ``(i, j)`` is exactly minus the prediction for ``(j, i)``. The model's only weight is the
    ``(n_teams, 1)`` embedding matrix.

    Args:
        n_teams: Embedding size; team ids must lie in ``[0, n_teams)``.
        seed: Seed of the initial strengths (uniform in [-0.05, 0.05]).
        learning_rate: Adam learning rate the model is compiled with.
        loss: ``"mae"`` (the course's) or ``"mse"`` (see :data:`SEASON_LOSSES`).

    Returns:
        A compiled ``keras.Model`` named ``team_strength_model`` with int32 inputs ``team_1``
        and ``team_2`` of shape ``(batch, 1)`` and output ``score_diff``, shape ``(batch, 1)``.

    Raises:
        ValueError: ``n_teams`` is not a positive integer.
        ConfigError: ``learning_rate`` is not positive, or ``loss`` is unknown.
    """
    strength = categorical_tower(n_teams, 1, seed=seed, name=STRENGTH_NAME)
    team_1, team_2 = _team_inputs()
    diff = keras.layers.Subtract(name="score_diff")([strength(team_1), strength(team_2)])
    model = keras.Model([team_1, team_2], diff, name=TEAM_STRENGTH)
    model.compile(optimizer=_adam(learning_rate), loss=_season_loss(loss))
    return model


def three_input_model(
    n_teams: int,
    *,
    strength: keras.Model | None = None,
    seed: int = 0,
    learning_rate: float = DEFAULT_LEARNING_RATES[THREE_INPUT],
    loss: str = "mae",
) -> keras.Model:
    """Team 1, team 2 and home: ``Dense(1)`` on ``[strength(team_1), strength(team_2), home]``.

    Args:
        n_teams: Embedding size of a new strength tower (checked against ``strength`` if given).
        strength: A strength tower to reuse (e.g. ``model.get_layer("team_strength")`` of a
            trained :func:`team_strength_model`); the new model then shares its weights.
            ``None`` builds a new one.
        seed: Seed of the new tower's strengths and of the ``Dense`` kernel.
        learning_rate: Adam learning rate the model is compiled with.
        loss: ``"mae"`` (the course's) or ``"mse"`` (see :data:`SEASON_LOSSES`).

    Returns:
        A compiled ``keras.Model`` named ``three_input_model`` with inputs ``team_1``,
        ``team_2`` (int32) and ``home`` (float32; 1 home, -1 away, 0 neutral), each of shape
        ``(batch, 1)``, and output ``score_diff``, shape ``(batch, 1)``.

    Raises:
        ValueError: ``n_teams`` is not a positive integer.
        ConfigError: ``strength`` is not a one-number-per-team tower of ``n_teams`` rows,
            ``learning_rate`` is not positive, or ``loss`` is unknown.
    """
    if strength is None:
        strength = categorical_tower(n_teams, 1, seed=seed, name=STRENGTH_NAME)
    else:
        table = _embedding_of(strength)
        if (table.input_dim, table.output_dim) != (n_teams, 1):
            raise ConfigError(
                f"strength tower has an embedding of {table.input_dim} x {table.output_dim}, "
                f"expected {n_teams} x 1"
            )
    team_1, team_2 = _team_inputs()
    home = keras.Input((1,), name="home")
    joined = keras.layers.Concatenate(name="concatenate")([strength(team_1), strength(team_2), home])
    out = keras.layers.Dense(1, kernel_initializer=_glorot(seed), name="score_diff")(joined)
    model = keras.Model([team_1, team_2, home], out, name=THREE_INPUT)
    model.compile(optimizer=_adam(learning_rate), loss=_season_loss(loss))
    return model


def _features_input(model_name: str) -> keras.KerasTensor:
    return keras.Input((len(SPECS[model_name].features or ()),), name="features")


def _linear_model(
    model_name: str, units: int, output_name: str, seed: int, learning_rate: float
) -> keras.Model:
    """``Dense(units)`` on the ``features`` input, compiled with Adam and MAE."""
    features = _features_input(model_name)
    out = keras.layers.Dense(units, kernel_initializer=_glorot(seed), name=output_name)(features)
    model = keras.Model(features, out, name=model_name)
    model.compile(optimizer=_adam(learning_rate), loss="mean_absolute_error")
    return model


def stacked_model(*, seed: int = 0, learning_rate: float = DEFAULT_LEARNING_RATES[STACKED]) -> keras.Model:
    """The course's stacked tournament model: ``Dense(1)`` on (home, seed_diff, pred).

    ``pred`` is the season model's predicted ``score_diff`` for the tournament game (see
    :func:`enrich_tourney`). As in the course the three values arrive as one input of
    width 3, so no ``Concatenate`` is needed.

    Args:
        seed: Seed of the ``Dense`` kernel.
        learning_rate: Adam learning rate the model is compiled with (loss: MAE).

    Returns:
        A compiled ``keras.Model`` named ``stacked_model`` with input ``features`` of shape
        ``(batch, 3)`` (columns ``home, seed_diff, pred``) and output ``score_diff``,
        shape ``(batch, 1)``.

    Raises:
        ConfigError: ``learning_rate`` is not positive.
    """
    return _linear_model(STACKED, 1, "score_diff", seed, learning_rate)


def two_output_model(
    *, seed: int = 0, learning_rate: float = DEFAULT_LEARNING_RATES[TWO_OUTPUT]
) -> keras.Model:
    """The course's two-output model: one ``Dense(2)`` predicting both teams' scores.

    Following the course's shape, the two predictions come out of a single ``Dense(2)``
    output named ``scores`` whose columns are ``score_1`` and ``score_2``, trained on the
    ``(n, 2)`` array of both scores with MAE (averaged over the two columns). Its bias starts
    at zero, so it needs many small steps to reach scores near 70 (the course runs 10,000
    full-batch epochs at learning rate 0.01).

    Args:
        seed: Seed of the ``Dense`` kernel.
        learning_rate: Adam learning rate the model is compiled with (loss: MAE).

    Returns:
        A compiled ``keras.Model`` named ``two_output_model`` with input ``features`` of shape
        ``(batch, 2)`` (columns ``seed_diff, pred``) and output ``scores``, shape ``(batch, 2)``.

    Raises:
        ConfigError: ``learning_rate`` is not positive.
    """
    return _linear_model(TWO_OUTPUT, 2, "scores", seed, learning_rate)


def regressor_classifier_model(
    *, seed: int = 0, learning_rate: float = DEFAULT_LEARNING_RATES[REGRESSOR_CLASSIFIER]
) -> keras.Model:
    """The course's regressor-classifier: a score margin, then a win probability from it.

    ``Dense(1)`` (output ``score_diff``, linear, trained with MAE) feeds ``Dense(1,
    sigmoid)`` (output ``won``, the probability that ``team_1`` wins, trained with binary
    cross-entropy); the loss weights are 1. As in the course neither layer has a bias, so
    swapping the teams (negating both features) negates ``score_diff`` and turns the win
    probability ``p`` into ``1 - p``.

    ``model.evaluate(x, [score_diff, won])`` returns ``[total, mae, log_loss]`` (Keras
    names ``loss``, ``score_diff_loss``, ``won_loss``). With Keras 3 the two per-output values
    are averages of per-batch means, so ``total == mae + log_loss`` holds exactly only when
    ``batch_size`` covers all rows; :func:`evaluate_games` computes the metrics in NumPy.

    Args:
        seed: Seed of the two kernels.
        learning_rate: Adam learning rate the model is compiled with.

    Returns:
        A compiled ``keras.Model`` named ``regressor_classifier_model`` with input
        ``features`` of shape ``(batch, 2)`` (columns ``seed_diff, pred``) and outputs
        ``[score_diff, won]``, each of shape ``(batch, 1)``.

    Raises:
        ConfigError: ``learning_rate`` is not positive.
    """
    features = _features_input(REGRESSOR_CLASSIFIER)
    diff = keras.layers.Dense(1, use_bias=False, kernel_initializer=_glorot(seed), name="score_diff")(
        features
    )
    won = keras.layers.Dense(
        1, activation="sigmoid", use_bias=False, kernel_initializer=_glorot(seed + 1), name="won"
    )(diff)
    model = keras.Model(features, [diff, won], name=REGRESSOR_CLASSIFIER)
    model.compile(optimizer=_adam(learning_rate), loss=["mean_absolute_error", "binary_crossentropy"])
    return model


# ---------------------------------------------------------------------------------------------
# Games table <-> model arrays
# ---------------------------------------------------------------------------------------------


def _spec(model: keras.Model) -> ModelSpec:
    try:
        return SPECS[model.name]
    except KeyError:
        raise ConfigError(
            f"model {model.name!r} is not one of this module's models ({', '.join(SPECS)})"
        ) from None


def _columns(games: Games, names: tuple[str, ...]) -> np.ndarray:
    """The named columns as a float32 ``(n, len(names))`` array."""
    return np.stack([games.column(name) for name in names], axis=1).astype(np.float32)


def _embedding_of(model: keras.Model) -> keras.layers.Embedding:
    """The one ``Embedding`` layer of a strength tower, or of the tower inside ``model``."""
    if not isinstance(model, keras.Model):
        raise ConfigError(f"expected a keras.Model, got {type(model).__name__}")
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    if not layers:
        try:
            return _embedding_of(tower_of(model))
        except ValueError:
            raise ConfigError(f"model {model.name!r} holds no team-strength embedding") from None
    if len(layers) != 1:
        raise ConfigError(f"model {model.name!r} has {len(layers)} embeddings, expected one")
    return layers[0]


def model_inputs(model: keras.Model, games: Games) -> dict[str, np.ndarray]:
    """The arrays ``model`` takes, by input name, built from ``games``.

    Team ids become int32 ``(n, 1)`` arrays (checked against the model's embedding size),
    ``home`` a float32 ``(n, 1)`` array, and ``features`` the float32 ``(n, k)`` array of the
    columns listed in :data:`SPECS`.

    Args:
        model: A model built by this module (or a reloaded one; found by ``model.name``).
        games: The games table.

    Raises:
        ConfigError: the model is not one of this module's, or the table lacks a column it
            needs (e.g. ``pred`` for the tournament models).
        DataError: a team id lies outside ``[0, n_teams)``.
    """
    spec = _spec(model)
    if spec.features is not None:
        return {"features": _columns(games, spec.features)}
    validate_ids(games, _embedding_of(model).input_dim)
    arrays = {
        "team_1": games.team_1.astype(np.int32)[:, None],
        "team_2": games.team_2.astype(np.int32)[:, None],
        "home": games.home.astype(np.float32)[:, None],
    }
    return {t.name: arrays[t.name] for t in model.inputs}


def model_targets(model: keras.Model, games: Games) -> np.ndarray | list[np.ndarray]:
    """The training targets of ``model`` from ``games``: one array, or a list per output.

    A one-column target is a float32 ``(n,)`` array; ``two_output_model``'s is ``(n, 2)``.

    Args:
        model: A model built by this module.
        games: The games table.

    Raises:
        ConfigError: the model is not one of this module's.
    """
    targets = []
    for names in _spec(model).outputs:
        array = _columns(games, names)
        targets.append(array[:, 0] if len(names) == 1 else array)
    return targets[0] if len(targets) == 1 else targets


def _feed(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray] | np.ndarray:
    """What Keras takes for these inputs: the one array of a single-input model, else the dict."""
    return next(iter(inputs.values())) if len(inputs) == 1 else inputs


def _predict(model: keras.Model, inputs: dict[str, np.ndarray], batch_size: int) -> list[np.ndarray]:
    outputs = model.predict(_feed(inputs), batch_size=batch_size, verbose=0)
    return [np.asarray(o, dtype=np.float64) for o in (outputs if isinstance(outputs, list) else [outputs])]


def predict_games(model: keras.Model, games: Games, *, batch_size: int = 8192) -> np.ndarray:
    """Predict every row of ``games``.

    Args:
        model: A model built by this module.
        games: The games table (with ``seed_diff`` and ``pred`` for the tournament models).
        batch_size: Rows per forward pass.

    Returns:
        float64 ``(n,)`` predicted ``score_diff`` for the team, three-input and stacked
        models; ``(n, 2)`` predicted ``(score_1, score_2)`` for ``two_output_model``;
        ``(n, 2)`` columns ``(score_diff, win probability)`` for
        ``regressor_classifier_model``.

    Raises:
        ConfigError: the model is not one of this module's, or a needed column is missing.
        DataError: a team id lies outside the model's embedding.
    """
    outputs = _predict(model, model_inputs(model, games), batch_size)
    if len(outputs) > 1:
        return np.concatenate(outputs, axis=1)
    out = outputs[0]
    return out[:, 0] if out.shape[1] == 1 else out


def strengths(model: keras.Model) -> np.ndarray:
    """The learned strength of every team id, float64 ``(n_teams,)``.

    Strengths are identifiable only up to an added constant (only differences are fitted).

    Args:
        model: A :func:`team_strength_model` or :func:`three_input_model`, or the strength
            tower itself.

    Raises:
        ConfigError: the model holds no (or more than one) embedding.
    """
    table = _embedding_of(model)
    return np.asarray(table.get_weights()[0], dtype=np.float64)[:, 0]


def enrich_tourney(season_model: keras.Model, tourney: Games) -> Games:
    """Our own season model's ``pred`` for the tournament games.

    Predicts ``score_diff`` for each row (``team_1``, ``team_2``, and ``home`` for the
    three-input model) with a model trained on the season table, and returns a copy of
    ``tourney`` whose ``pred`` column holds the predictions (replacing any ``pred`` it had).
    Season tables from :func:`~siamese.basketball.data.build_season_table` use the
    tournament file's team ids, so the same id means the same team-season in both.

    Args:
        season_model: A trained :func:`team_strength_model` or :func:`three_input_model`.
        tourney: The tournament games.

    Raises:
        ConfigError: ``season_model`` does not read team ids.
        DataError: a tournament team id lies outside the season model's embedding.
    """
    if _spec(season_model).features is not None:
        raise ConfigError(f"{season_model.name!r} is not a season model (it does not read team ids)")
    return replace(tourney, pred=predict_games(season_model, tourney))


def course_split(tourney: Games, train_rows: int = COURSE_TRAIN_ROWS) -> tuple[Games, Games]:
    """The course's tournament split: the first ``train_rows`` rows, and the rest.

    With the staged ``games_tourney.csv`` the first 3,168 rows are seasons 1985 to 2009.

    Args:
        tourney: The tournament games, in file order.
        train_rows: Rows in the training part.

    Raises:
        ConfigError: ``train_rows`` leaves one part empty.
    """
    if not 0 < train_rows < len(tourney):
        raise ConfigError(
            f"cannot take the first {train_rows} of {len(tourney)} rows for training and keep a test part"
        )
    return tourney.rows(None, train_rows), tourney.rows(train_rows, None)


# ---------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------


def split_games(games: Games, fraction: float, *, seed: int = 0) -> tuple[Games, Games]:
    """A random split by game: both rows of a game (its two points of view) go the same way.

    A row's game is ``(season, lower id, higher id, lower id's score, higher id's score)``,
    which its mirror row shares. Keras's ``validation_split`` would instead hold out the last
    rows, i.e. the latest seasons, whose team-seasons never appear in training.

    Args:
        games: The table to split.
        fraction: Share of games held out, in (0, 1).
        seed: Seed of the random choice.

    Returns:
        ``(kept, held_out)``, each in the original row order.

    Raises:
        ConfigError: ``fraction`` is outside (0, 1) or leaves one part empty.
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction!r}")
    low = np.minimum(games.team_1, games.team_2)
    first_is_low = games.team_1 == low
    keys = np.stack(
        [
            games.season,
            low,
            np.maximum(games.team_1, games.team_2),
            np.where(first_is_low, games.score_1, games.score_2),
            np.where(first_is_low, games.score_2, games.score_1),
        ],
        axis=1,
    )
    _, game = np.unique(keys, axis=0, return_inverse=True)
    game = game.reshape(-1)
    n_games = int(game.max()) + 1 if len(game) else 0
    n_held = int(round(fraction * n_games))
    if not 0 < n_held < n_games:
        raise ConfigError(f"a fraction of {fraction} of {n_games} games leaves one part empty")
    held = np.zeros(n_games, dtype=bool)
    held[np.random.default_rng(seed).choice(n_games, size=n_held, replace=False)] = True
    mask = held[game]
    return games.take(~mask), games.take(mask)


class _LogEpochs(keras.callbacks.Callback):
    """Logs the losses every ``every`` epochs (and every epoch at debug level)."""

    def __init__(self, every: int = 1) -> None:
        super().__init__()
        self.every = max(1, every)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted((logs or {}).items()))
        level = logging.INFO if (epoch + 1) % self.every == 0 else logging.DEBUG
        logger.log(level, "epoch %d: %s", epoch + 1, shown)


def fit_games(
    model: keras.Model,
    games: Games,
    *,
    epochs: int,
    batch_size: int,
    validation: float | Games | None = None,
    patience: int = 3,
    seed: int = 0,
    lr_patience: int = 0,
    lr_factor: float = 0.5,
    log_dir: str | os.PathLike[str] | None = None,
) -> dict[str, list[float]]:
    """Train one of this module's models on a games table.

    With a validation set, training stops once ``val_loss`` (the validation MAE for the
    MAE-trained models) has not improved for ``patience`` epochs, and the weights of the best
    epoch are restored. Seeds Python, NumPy and the backend with ``seed`` (the shuffling
    order), so equal seeds give equal results.

    Args:
        model: A compiled model built by this module.
        games: Training rows.
        epochs: Largest number of passes over the rows.
        batch_size: Rows per gradient step.
        validation: A share of ``games`` to hold out by game (see :func:`split_games`), a
            separate validation table, or ``None`` (no validation, no early stopping).
        patience: Epochs without improvement before stopping.
        seed: Random seed.
        lr_patience: With validation, epochs without improvement before the learning rate is
            multiplied by ``lr_factor`` (Keras's ``ReduceLROnPlateau``; 0: never).
        lr_factor: The factor of ``lr_patience``, in (0, 1).
        log_dir: Write TensorBoard logs there (Keras's ``TensorBoard`` callback, per epoch).

    Returns:
        Keras's history: metric name -> one float per epoch run (``loss``, ``val_loss``, and
        per-output losses for the two-output-layer model).

    Raises:
        ConfigError: a count is not positive, the fraction is out of range, or the table
            lacks a column the model needs.
        DataError: a team id lies outside the model's embedding.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    keras.utils.set_random_seed(seed)
    if isinstance(validation, (float, int)) and not isinstance(validation, bool):
        games, validation = split_games(games, float(validation), seed=seed)
    callbacks: list[keras.callbacks.Callback] = [_LogEpochs(every=max(1, int(epochs) // 20))]
    if log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False))
    validation_data = None
    if validation is not None:
        validation_data = (_feed(model_inputs(model, validation)), model_targets(model, validation))
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
        )
        if lr_patience:
            callbacks.append(
                keras.callbacks.ReduceLROnPlateau(
                    monitor="val_loss",
                    factor=lr_factor,
                    patience=lr_patience,
                    min_lr=MIN_LEARNING_RATE,
                    verbose=0,
                )
            )
    logger.info(
        "training %s on %d rows (%s validation rows), at most %d epochs of batch %d",
        model.name,
        len(games),
        "no" if validation is None else len(validation),
        epochs,
        batch_size,
    )
    history = model.fit(
        _feed(model_inputs(model, games)),
        model_targets(model, games),
        epochs=int(epochs),
        batch_size=int(batch_size),
        validation_data=validation_data,
        callbacks=callbacks,
        shuffle=True,
        verbose=0,
    )
    return {name: [float(v) for v in values] for name, values in history.history.items()}


def fit_team_strength(
    games_train: Games,
    n_teams: int,
    *,
    epochs: int = 40,
    batch_size: int = 2048,
    validation: float | Games | None = 0.1,
    patience: int = 3,
    seed: int = 0,
    learning_rate: float = DEFAULT_LEARNING_RATES[TEAM_STRENGTH],
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Build and train a :func:`team_strength_model` on a season table.

    The course trains one epoch with Adam's default rate 0.001, which leaves every strength
    within about 0.1 of zero; Adam at 0.05 with early stopping on the validation MAE fits
    the 312,178-row 1985-2018 table in well under a minute on two CPU cores.

    Args:
        games_train: Season rows (both points of view of each game).
        n_teams: Embedding size (``SeasonTable.n_teams`` or ``SimulatedSeason.n_teams``).
        epochs: Largest number of epochs.
        batch_size: Rows per step.
        validation: Held-out share of games, a validation table, or ``None``.
        patience: Epochs without a better validation MAE before stopping.
        seed: Seed of the initial strengths, the split and the shuffling.
        learning_rate: Adam learning rate.

    Returns:
        ``(model, history)``; the model holds the weights of its best validation epoch.

    Raises:
        ConfigError: an argument is out of range.
        DataError: a team id lies outside ``[0, n_teams)``.
    """
    model = team_strength_model(n_teams, seed=seed, learning_rate=learning_rate)
    history = fit_games(
        model,
        games_train,
        epochs=epochs,
        batch_size=batch_size,
        validation=validation,
        patience=patience,
        seed=seed,
    )
    return model, history


def evaluate_games(model: keras.Model, games: Games, *, batch_size: int = 8192) -> dict[str, float]:
    """Score a model on a games table with :mod:`siamese.metrics`.

    Keys: ``rows``; for the ``score_diff`` models ``mae`` and ``win_accuracy`` (share of rows
    whose predicted margin has the winner's sign); for ``two_output_model`` ``mae`` (both
    scores), ``mae_score_1``, ``mae_score_2`` and ``mae_score_diff`` (of their difference);
    for ``regressor_classifier_model`` ``mae`` (of ``score_diff``), ``log_loss`` and
    ``accuracy`` (of the win probability at 0.5).

    Args:
        model: A model built by this module.
        games: The rows to score.
        batch_size: Rows per forward pass.

    Raises:
        ConfigError: the model is not one of this module's, or a needed column is missing.
        DataError: a team id lies outside the model's embedding.
    """
    pred = predict_games(model, games, batch_size=batch_size)
    won = games.won
    result: dict[str, float] = {"rows": float(len(games))}
    if model.name == TWO_OUTPUT:
        result["mae"] = mae(np.concatenate([games.score_1, games.score_2]), pred.T.reshape(-1))
        result["mae_score_1"] = mae(games.score_1, pred[:, 0])
        result["mae_score_2"] = mae(games.score_2, pred[:, 1])
        result["mae_score_diff"] = mae(games.score_diff, pred[:, 0] - pred[:, 1])
    elif model.name == REGRESSOR_CLASSIFIER:
        result["mae"] = mae(games.score_diff, pred[:, 0])
        result["log_loss"] = log_loss(won, pred[:, 1])
        result["accuracy"] = accuracy(won, (pred[:, 1] > 0.5).astype(np.int64))
    else:
        result["mae"] = mae(games.score_diff, pred)
        result["win_accuracy"] = accuracy(won, (pred > 0).astype(np.int64))
    return result
