"""``siamese-train --task basketball``: the team-strength model and the models built on it.

Data (``--data``):

* ``real`` (default): the regular seasons 1985-2018 rebuilt from the Kaggle files in the
  course's schema, with team ids that agree with ``games_tourney.csv``; the tournament games
  (``games_season_enriched.csv``, which adds the course's season-model prediction ``pred``).
* ``simulated``: a seeded season with known team strengths (see
  :func:`siamese.datasets.basketball.simulate_season`), to check the model recovers them.
* a path: your own course-format ``games_season.csv``; the staged tournament file is used
  for the tournament models when it is available.

Models (``--model``): ``team-strength`` and ``three-input`` learn from the season and are
scored on held-out season games and on the tournament; ``stacked``, ``two-output`` and
``regressor-classifier`` learn from the tournament with the course's split (first 3,168 rows
train, the rest test), using a season model's prediction as a feature: our own three-input
season model's (``pred=ours``, default) or the course's (``pred=course``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import keras

from siamese import metrics as plain
from siamese.datasets import basketball as data
from siamese.errors import ConfigError
from siamese.examples import basketball as bb
from siamese.io import atomic_write_json
from siamese.training import RunConfig, RunDir

logger = logging.getLogger(__name__)

MODELS = ("team-strength", "three-input", "stacked", "two-output", "regressor-classifier")
SEASON_MODELS = ("team-strength", "three-input")
PRED_SOURCES = ("ours", "course")
DEV_FRACTION = 0.1
# The simulated season used by --data simulated: enough games per team that the strengths are
# well determined; no home advantage for the two-input team-strength model, which has no
# home input (the three-input model gets one to recover).
SIMULATION = {"n_seasons": 2, "teams_per_season": 60, "games_per_team": 100}


def _season(config: RunConfig) -> tuple[data.Games, int, data.SimulatedSeason | None]:
    """The season table, its embedding size, and the simulation behind it (if simulated)."""
    source = config.data
    if source == "real":
        table = data.build_season_table()
        return table.games, table.n_teams, None
    if source == "simulated":
        home = 0.0 if config.basketball.model == "team-strength" else 3.0
        sim = data.simulate_season(seed=config.seed, home_advantage=home, **SIMULATION)
        return sim.games, sim.n_teams, sim
    path = Path(source).expanduser()
    if not path.is_file():
        raise ConfigError(f"--data must be real, simulated, or a course-format season CSV; got {source!r}")
    games = data.read_games_csv(path)
    n_teams = int(max(games.team_1.max(), games.team_2.max())) + 1
    data.validate_ids(games, n_teams)
    return games, n_teams, None


def _tourney(config: RunConfig, n_teams: int, *, required: bool) -> data.Games | None:
    if config.data == "simulated":
        if required:
            raise ConfigError(
                f"--model {config.basketball.model} learns from the tournament: use --data real"
            )
        return None
    try:
        tourney = data.read_tourney(enriched=True)
    except data.DataError:
        if required:
            raise
        logger.info("no tournament file found: the season model is scored on season games only")
        return None
    data.validate_ids(tourney, n_teams)
    return tourney


def _strength_correlation(model: keras.Model, sim: data.SimulatedSeason) -> float:
    return plain.pearson(bb.strengths(model), sim.strengths)


def _irreducible(sim: data.SimulatedSeason, games: data.Games) -> float:
    truth = sim.strengths[games.team_1] - sim.strengths[games.team_2] + sim.home_advantage * games.home
    return plain.mae(games.score_diff, truth)


def _fit(
    model: keras.Model, games: data.Games, config: RunConfig, validation: Any, *, tourney: bool = False
) -> dict[str, list[float]]:
    options = config.basketball
    return bb.fit_games(
        model,
        games,
        epochs=options.tourney_epochs if tourney else config.epochs,
        batch_size=options.tourney_batch_size if tourney else config.batch_size,
        validation=validation,
        patience=options.tourney_patience if tourney else max(config.patience, 1),
        seed=config.seed,
        lr_patience=config.lr_patience,
        lr_factor=config.lr_factor,
    )


def season_loss(config: RunConfig) -> str:
    """The season model's loss: as asked, else MAE for the season models themselves (the
    course's) and squared error where the season model only supplies ``pred``."""
    if config.basketball.season_loss is not None:
        return config.basketball.season_loss
    return "mae" if config.basketball.model in SEASON_MODELS else "mse"


def _season_model(config: RunConfig, kind: str, n_teams: int) -> keras.Model:
    build = bb.team_strength_model if kind == "team-strength" else bb.three_input_model
    return build(n_teams, seed=config.seed, learning_rate=config.learning_rate, loss=season_loss(config))


def _tourney_model(kind: str, config: RunConfig) -> keras.Model:
    builders = {
        "stacked": bb.stacked_model,
        "two-output": bb.two_output_model,
        "regressor-classifier": bb.regressor_classifier_model,
    }
    return builders[kind](seed=config.seed)


def train(config: RunConfig, out: str | os.PathLike[str]) -> tuple[dict, keras.Model]:
    """Train the chosen basketball model and write its run folder.

    Args:
        config: The run's settings; ``config.basketball.model`` picks the model and
            ``config.data`` the data (``real``, ``simulated`` or a season CSV).
        out: The run folder (must not hold a run yet).

    Returns:
        ``(metrics, model)``: split → metric → value, and the trained model.
    """
    kind, pred = config.basketball.model, config.basketball.pred
    if kind not in MODELS:
        raise ConfigError(f"--model must be one of {', '.join(MODELS)}; got {kind!r}")
    if pred not in PRED_SOURCES:
        raise ConfigError(f"pred must be one of {', '.join(PRED_SOURCES)}; got {pred!r}")
    if config.basketball.season_loss not in (None, *bb.SEASON_LOSSES):
        raise ConfigError(
            f"season loss must be one of {', '.join(bb.SEASON_LOSSES)}; got {config.basketball.season_loss!r}"
        )
    season, n_teams, sim = _season(config)
    tourney = _tourney(config, n_teams, required=kind not in SEASON_MODELS)
    run = RunDir(out)
    if kind in SEASON_MODELS or pred == "ours":
        # config.json records the loss the season model is trained with, not "the default".
        resolved = dataclasses.replace(config.basketball, season_loss=season_loss(config))
        config = dataclasses.replace(config, basketball=resolved)
    run.prepare(config, resume=False)
    fit_part, dev_part = bb.split_games(season, DEV_FRACTION, seed=config.seed)
    logger.info(
        "season: %d rows (%d train, %d dev), %d team ids", len(season), len(fit_part), len(dev_part), n_teams
    )

    # The tournament models' own ``pred`` comes from the three-input season model, as the
    # course's does (its season model reads team 1, team 2 and home).
    season_kind = kind if kind in SEASON_MODELS else "three-input"
    needs_season = kind in SEASON_MODELS or pred == "ours"
    metrics: dict[str, dict[str, float]] = {}
    history: dict[str, Any] = {}
    season_model = None
    if needs_season:
        season_model = _season_model(config, season_kind, n_teams)
        history["season"] = _fit(season_model, fit_part, config, dev_part)
        metrics["season_dev"] = bb.evaluate_games(season_model, dev_part)
        if sim is not None:
            metrics["season_dev"]["irreducible_mae"] = _irreducible(sim, dev_part)
            metrics["season_dev"]["strength_correlation"] = _strength_correlation(season_model, sim)
        if tourney is not None:
            metrics["tourney"] = bb.evaluate_games(season_model, tourney)

    if kind in SEASON_MODELS:
        model = season_model
    else:
        features = bb.enrich_tourney(season_model, tourney) if pred == "ours" else tourney
        train_rows, test_rows = bb.course_split(features)
        model = _tourney_model(kind, config)
        history["tourney"] = _fit(model, train_rows, config, DEV_FRACTION, tourney=True)
        metrics["tourney_train"] = bb.evaluate_games(model, train_rows)
        metrics["tourney_test"] = bb.evaluate_games(model, test_rows)

    # The tower is the team-strength embedding; with the course's pred there is none.
    tower = season_model.get_layer(bb.STRENGTH_NAME) if season_model is not None else None
    atomic_write_json(run.history, history)
    run.finish(model, tower, metrics)
    return metrics, model
