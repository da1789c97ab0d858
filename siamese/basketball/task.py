"""``siamese-train --task basketball``: the team-strength model and the models built on it.

Data (``--data``):

* ``real`` (default): the regular seasons 1985-2018 rebuilt from the Kaggle files in the
  course's schema, with team ids that agree with ``games_tourney.csv``; the tournament games
  (``games_season_enriched.csv``, which adds the course's season-model prediction ``pred``).
* ``simulated``: a seeded season with known team strengths (see
  :func:`siamese.basketball.data.simulate_season`), to check the model recovers them.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import click
import keras

from siamese import metrics as plain
from siamese.basketball import data
from siamese.basketball import models as bb
from siamese.errors import ConfigError
from siamese.io import atomic_write_json
from siamese.tasks.base import Defaults, Job, Task, Trained, option, register
from siamese.training.config import RunConfig, TaskOptions
from siamese.training.run_dir import RunDir
from siamese.training.summaries import LOGS_FOLDER

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
        home = 0.0 if config.options.model == "team-strength" else 3.0
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
            raise ConfigError(f"--model {config.options.model} learns from the tournament: use --data real")
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
    model: keras.Model,
    games: data.Games,
    config: RunConfig,
    validation: Any,
    *,
    tourney: bool = False,
    logs: Path | None = None,
) -> dict[str, list[float]]:
    options = config.options
    part = "tourney" if tourney else "season"
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
        log_dir=None if logs is None or not config.tensorboard else logs / part,
    )


def season_loss(config: RunConfig) -> str:
    """The season model's loss: as asked, else MAE for the season models themselves (the
    course's) and squared error where the season model only supplies ``pred``."""
    if config.options.season_loss is not None:
        return config.options.season_loss
    return "mae" if config.options.model in SEASON_MODELS else "mse"


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


@dataclass
class BasketballOptions(TaskOptions):
    """Settings of the basketball example."""

    SECTION: ClassVar[str] = "basketball"

    model: str = "team-strength"
    pred: str = "ours"
    # Loss of the season model, "mae" or "mse"; None: MAE when the season model is the run's
    # model (the course's), squared error when it only supplies the tournament models' pred
    # (a better pred for them on dev: tournament train rows, season folds).
    season_loss: str | None = None
    # The tournament models learn from 3,168 rows: small batches and many epochs (with early
    # stopping on a held-out tenth of those rows). ``epochs``/``batch_size`` of the run apply
    # to the season model.
    tourney_epochs: int = 1000
    tourney_batch_size: int = 128
    tourney_patience: int = 25


class BasketballTask(Task):
    """The team-strength model and the models built on it (see the module docstring).

    Its runs train in seconds: they have no checkpoints and no ``--resume``. The models are
    trained with Keras's own ``fit`` and its callbacks (:func:`siamese.basketball.models.fit_games`:
    early stopping on a held-out tenth, the learning rate lowered on plateaus), as the course
    does: a tournament model runs up to 1,000 epochs of 3,168 rows in seconds, where a
    checkpoint after each epoch would cost more than the training.
    """

    name = "basketball"
    summary = "the team-strength model (a shared categorical Embedding) and the models built on it"
    data_help = (
        "real (the Kaggle seasons and the course's tournament), simulated, or a course-format season CSV."
    )
    rank = 3
    options_type = BasketballOptions
    defaults = Defaults(data="real", epochs=40, batch_size=2048, learning_rate=0.05)
    settings = frozenset(
        {
            "data",
            "epochs",
            "batch_size",
            "learning_rate",
            "patience",
            "seed",
            "lr_patience",
            "lr_factor",
            "tensorboard",
        }
    )
    resumable = False
    evaluable = False
    examples = (
        "siamese-train --task basketball --model team-strength",
        "siamese-train --task basketball --model regressor-classifier --pred course",
        "siamese-train --task basketball --model team-strength --data simulated",
    )

    def cli_options(self) -> list[click.Option]:
        o = BasketballOptions
        return [
            option(o, "model", "--model", type=click.Choice(MODELS), help="Which model to train."),
            option(
                o,
                "pred",
                "--pred",
                type=click.Choice(PRED_SOURCES),
                help="Tournament models: the season prediction used as a feature.",
            ),
            option(
                o,
                "season_loss",
                "--season-loss",
                type=click.Choice(bb.SEASON_LOSSES),
                help="The season model's loss [mae for the season models, as the course; "
                "mse where it only makes --pred ours].",
            ),
        ]

    def prepare(self, config: RunConfig, *, resume: bool) -> Job:
        kind, pred = config.options.model, config.options.pred
        if kind not in MODELS:
            raise ConfigError(f"--model must be one of {', '.join(MODELS)}; got {kind!r}")
        if pred not in PRED_SOURCES:
            raise ConfigError(f"pred must be one of {', '.join(PRED_SOURCES)}; got {pred!r}")
        if config.options.season_loss not in (None, *bb.SEASON_LOSSES):
            raise ConfigError(
                f"season loss must be one of {', '.join(bb.SEASON_LOSSES)}; "
                f"got {config.options.season_loss!r}"
            )
        season, n_teams, sim = _season(config)
        tourney = _tourney(config, n_teams, required=kind not in SEASON_MODELS)
        if kind in SEASON_MODELS or pred == "ours":
            # config.json records the loss the season model is trained with, not "the default".
            resolved = dataclasses.replace(config.options, season_loss=season_loss(config))
            config = dataclasses.replace(config, options=resolved)
        return Job(config, season, {"n_teams": n_teams, "sim": sim, "tourney": tourney})

    def fit(self, job: Job, run: RunDir, *, model: Any, state: Any, verbose: Any) -> Trained:
        config, season = job.config, job.data
        n_teams, sim, tourney = job.extra["n_teams"], job.extra["sim"], job.extra["tourney"]
        kind, pred = config.options.model, config.options.pred
        fit_part, dev_part = bb.split_games(season, DEV_FRACTION, seed=config.seed)
        logger.info(
            "season: %d rows (%d train, %d dev), %d team ids",
            len(season),
            len(fit_part),
            len(dev_part),
            n_teams,
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
            history["season"] = _fit(season_model, fit_part, config, dev_part, logs=run.path / LOGS_FOLDER)
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
            history["tourney"] = _fit(
                model, train_rows, config, DEV_FRACTION, tourney=True, logs=run.path / LOGS_FOLDER
            )
            metrics["tourney_train"] = bb.evaluate_games(model, train_rows)
            metrics["tourney_test"] = bb.evaluate_games(model, test_rows)
        atomic_write_json(run.history, history)
        for line in _summary(model):
            logger.info("%s", line)
        # The tower is the team-strength embedding; with the course's pred there is none.
        tower = season_model.get_layer(bb.STRENGTH_NAME) if season_model is not None else None
        return Trained(model, tower, history, {"metrics": metrics})

    def score(self, job: Job, trained: Trained) -> dict:
        # Scored as each model was trained (the season model before the tournament model).
        return trained.extra["metrics"]


def _summary(model: keras.Model) -> list[str]:
    lines: list[str] = []
    model.summary(line_length=100, print_fn=lambda line, **_: lines.append(line))
    return lines


TASK = register(BasketballTask())
