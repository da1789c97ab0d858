"""Tests of siamese.examples.basketball: wiring, correctness on simulated seasons, saving."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import run_python

from siamese.basketball import models as bb
from siamese.basketball.data import Games, SimulatedSeason, simulate_season
from siamese.errors import ConfigError, DataError
from siamese.metrics import log_loss, mae, pearson

# Simulation for the correctness test: 2 seasons x 60 teams, 100 games per team (6,000 games,
# 12,000 rows), no home advantage so the two-input model is exactly the true model.
SIM = {"n_seasons": 2, "teams_per_season": 60, "games_per_team": 100, "home_advantage": 0.0, "seed": 7}


@pytest.fixture(scope="module")
def season() -> SimulatedSeason:
    return simulate_season(**SIM)


def _pairs(n: int) -> Games:
    """Every ordered pair of distinct ids in ``range(n)``, with made-up scores."""
    i, j = np.array([(a, b) for a in range(n) for b in range(n) if a != b]).T
    rows = len(i)
    return Games.from_scores(np.full(rows, 2001), i, j, 70 + i, 70 + j, home=np.resize([1, -1, 0], rows))


def _tourney(n: int, rng: np.random.Generator) -> Games:
    """A tournament-like table with ``seed_diff`` and ``pred``, mirrored rows adjacent."""
    seed_diff = rng.integers(-15, 16, n // 2)
    pred = seed_diff * 1.2 + rng.normal(0, 4, n // 2)
    margin = np.rint(pred + rng.normal(0, 8, n // 2)).astype(int)
    margin[margin == 0] = 1
    loser = rng.integers(55, 75, n // 2)
    s1, s2 = loser + np.maximum(margin, 0), loser + np.maximum(-margin, 0)

    def both(a, b):
        return np.stack([a, b], axis=1).reshape(-1)

    return Games.from_scores(
        np.full(n, 2005),
        both(np.arange(n // 2) * 2, np.arange(n // 2) * 2 + 1),
        both(np.arange(n // 2) * 2 + 1, np.arange(n // 2) * 2),
        both(s1, s2),
        both(s2, s1),
        seed_diff=both(seed_diff, -seed_diff),
        pred=both(pred, -pred),
    )


# --- wiring -------------------------------------------------------------------------------------


def test_team_strength_model_uses_one_embedding_for_both_teams():
    n = 7
    model = bb.team_strength_model(n, seed=3)
    tower = model.get_layer("team_strength")
    assert [t.name for t in model.inputs] == ["team_1", "team_2"]
    assert model.output_names == ["score_diff"]
    assert len(model.weights) == 1 and model.count_params() == n
    assert model.weights[0] is tower.weights[0]
    embedding = tower.get_layer("embedding")
    assert isinstance(embedding, keras.layers.Embedding)
    assert embedding.embeddings is model.weights[0]
    assert len(tower._inbound_nodes) == 2  # called on team_1 and on team_2

    truth = np.linspace(-9.0, 12.0, n)
    embedding.set_weights([truth[:, None]])
    np.testing.assert_allclose(bb.strengths(model), truth, rtol=1e-6)
    games = _pairs(n)
    pred = bb.predict_games(model, games)
    assert pred.shape == (n * (n - 1),)
    np.testing.assert_allclose(pred, truth[games.team_1] - truth[games.team_2], atol=1e-5)
    swapped = Games.from_scores(games.season, games.team_2, games.team_1, games.score_2, games.score_1)
    np.testing.assert_array_equal(bb.predict_games(model, swapped), -pred)


def test_three_input_model_shares_the_strength_tower():
    n = 6
    base = bb.team_strength_model(n, seed=1)
    tower = base.get_layer("team_strength")
    model = bb.three_input_model(n, strength=tower, seed=2)
    assert model.get_layer("team_strength") is tower
    assert [t.name for t in model.inputs] == ["team_1", "team_2", "home"]
    assert sum(w is tower.weights[0] for w in model.weights) == 1
    assert model.count_params() == n + 3 + 1

    s = np.arange(n, dtype=float) - 2.5
    tower.set_weights([s[:, None]])  # written through one model, read by the other
    np.testing.assert_allclose(bb.strengths(model), s)
    kernel, bias = model.get_layer("score_diff").get_weights()
    games = _pairs(n)
    expected = (
        kernel[0, 0] * s[games.team_1] + kernel[1, 0] * s[games.team_2] + kernel[2, 0] * games.home + bias[0]
    )
    np.testing.assert_allclose(bb.predict_games(model, games), expected, rtol=1e-5, atol=1e-5)

    fresh = bb.three_input_model(n, seed=0)
    assert fresh.get_layer("team_strength") is not tower
    with pytest.raises(ConfigError, match="expected 9 x 1"):
        bb.three_input_model(9, strength=tower)


def test_stacked_model_shape_and_features(rng):
    model = bb.stacked_model(seed=0)
    assert model.name == "stacked_model"
    assert tuple(model.inputs[0].shape) == (None, 3) and model.inputs[0].name == "features"
    assert tuple(model.outputs[0].shape) == (None, 1)
    assert model.count_params() == 4
    games = _tourney(40, rng)
    x = bb.model_inputs(model, games)["features"]
    np.testing.assert_array_equal(x, np.stack([games.home, games.seed_diff, games.pred], 1).astype("float32"))
    kernel, bias = model.get_layer("score_diff").get_weights()
    np.testing.assert_allclose(
        bb.predict_games(model, games), x @ kernel[:, 0] + bias[0], rtol=1e-5, atol=1e-5
    )
    no_pred = Games.from_scores(games.season, games.team_1, games.team_2, games.score_1, games.score_2)
    with pytest.raises(ConfigError, match="seed_diff"):
        bb.predict_games(model, no_pred)


def test_two_output_model_predicts_both_scores(rng):
    model = bb.two_output_model(seed=0)
    assert model.output_names == ["scores"]
    assert tuple(model.outputs[0].shape) == (None, 2)
    games = _tourney(60, rng)
    targets = bb.model_targets(model, games)
    np.testing.assert_array_equal(targets, np.stack([games.score_1, games.score_2], 1))
    history = bb.fit_games(model, games, epochs=5, batch_size=64)
    assert len(history["loss"]) == 5
    pred = bb.predict_games(model, games)
    assert pred.shape == (60, 2)
    scores = bb.evaluate_games(model, games)
    assert scores["mae"] == pytest.approx((scores["mae_score_1"] + scores["mae_score_2"]) / 2)
    assert scores["mae_score_1"] == pytest.approx(mae(games.score_1, pred[:, 0]))
    assert scores["mae_score_diff"] == pytest.approx(mae(games.score_diff, pred[:, 0] - pred[:, 1]))


def test_regressor_classifier_outputs_and_evaluate(rng):
    model = bb.regressor_classifier_model(seed=0)
    assert model.output_names == ["score_diff", "won"]
    assert model.get_layer("won").activation is keras.activations.sigmoid
    assert len(model.outputs) == 2 and model.count_params() == 3  # no biases
    games = _tourney(200, rng)
    bb.fit_games(model, games, epochs=20, batch_size=200)
    x = bb.model_inputs(model, games)["features"]
    y = bb.model_targets(model, games)
    assert len(y) == 2
    np.testing.assert_array_equal(y[1], games.won)
    result = model.evaluate(x, y, batch_size=len(games), verbose=0)
    assert len(result) == 3
    total, diff_mae, logloss = result
    assert total == pytest.approx(diff_mae + logloss, rel=1e-5)
    pred = bb.predict_games(model, games)
    assert diff_mae == pytest.approx(mae(games.score_diff, pred[:, 0]), rel=1e-4)
    assert logloss == pytest.approx(log_loss(games.won, pred[:, 1]), rel=1e-3)
    scores = bb.evaluate_games(model, games)
    assert scores["mae"] == pytest.approx(diff_mae, rel=1e-4)
    assert scores["log_loss"] == pytest.approx(logloss, rel=1e-3)
    # No bias: the mirror row (negated features) gets -score_diff and 1 - p.
    np.testing.assert_allclose(pred[0::2, 0], -pred[1::2, 0], atol=1e-5)
    np.testing.assert_allclose(pred[0::2, 1], 1 - pred[1::2, 1], atol=1e-5)


def test_models_reject_bad_inputs(season):
    model = bb.team_strength_model(season.n_teams - 1)
    with pytest.raises(DataError, match="outside 0..118"):
        bb.predict_games(model, season.games)
    with pytest.raises(ConfigError, match="positive integer"):
        bb.fit_games(model, season.games, epochs=0, batch_size=32)
    with pytest.raises(ConfigError, match="learning_rate"):
        bb.stacked_model(learning_rate=0)
    with pytest.raises(ConfigError, match="no team-strength embedding"):
        bb.strengths(bb.stacked_model())
    with pytest.raises(ConfigError, match="not one of this module's models"):
        bb.predict_games(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), season.games)
    with pytest.raises(ConfigError, match="not a season model"):
        bb.enrich_tourney(bb.stacked_model(), season.games)


# --- splitting -------------------------------------------------------------------------------


def test_split_games_keeps_mirror_rows_together(season):
    kept, held = bb.split_games(season.games, 0.25, seed=3)
    assert len(kept) + len(held) == len(season.games)
    assert len(held) == 2 * round(0.25 * len(season.games) // 2)
    for part in (kept, held):  # simulate_season puts the two views of a game side by side
        np.testing.assert_array_equal(part.team_1[0::2], part.team_2[1::2])
        np.testing.assert_array_equal(part.score_diff[0::2], -part.score_diff[1::2])
    again, _ = bb.split_games(season.games, 0.25, seed=3)
    np.testing.assert_array_equal(again.team_1, kept.team_1)
    with pytest.raises(ConfigError, match=r"\(0, 1\)"):
        bb.split_games(season.games, 1.0)
    with pytest.raises(ConfigError, match="empty"):
        bb.split_games(season.games.rows(0, 2), 0.3)


def test_course_split(rng):
    games = _tourney(4234, rng)
    train, test = bb.course_split(games)
    assert (len(train), len(test)) == (3168, 1066)
    np.testing.assert_array_equal(test.team_1, games.team_1[3168:])
    with pytest.raises(ConfigError, match="3168 of 100"):
        bb.course_split(games.rows(0, 100))


# --- correctness on simulated data -------------------------------------------------------------


def test_team_strength_model_recovers_simulated_strengths(season):
    train, test = bb.split_games(season.games, 0.2, seed=1)
    model, history = bb.fit_team_strength(train, season.n_teams, batch_size=256, seed=0)
    assert min(history["val_loss"]) < history["val_loss"][0]
    learned = bb.strengths(model)
    assert pearson(learned, season.strengths) >= 0.95
    truth = season.strengths
    irreducible = mae(test.score_diff, truth[test.team_1] - truth[test.team_2])
    model_mae = bb.evaluate_games(model, test)["mae"]
    assert model_mae <= 1.05 * irreducible, (model_mae, irreducible)
    # Predicting zero is far worse: the test can fail.
    assert mae(test.score_diff, np.zeros(len(test))) > 1.3 * irreducible


def test_three_input_model_learns_the_home_advantage():
    sim = simulate_season(n_seasons=1, teams_per_season=40, games_per_team=80, home_advantage=6.0, seed=5)
    model = bb.three_input_model(sim.n_teams, seed=0)
    # No early stopping: the MAE is flat near its minimum, so a noisy validation MAE would stop
    # training before the home weight has settled.
    bb.fit_games(model, sim.games, epochs=40, batch_size=128, validation=None)
    kernel, _ = model.get_layer("score_diff").get_weights()
    assert kernel[2, 0] == pytest.approx(6.0, abs=1.5)
    assert kernel[0, 0] * kernel[1, 0] < 0  # team_1's strength counts for, team_2's against
    assert abs(pearson(bb.strengths(model), sim.strengths)) >= 0.95
    assert bb.evaluate_games(model, sim.games)["mae"] <= 1.08 * sim.irreducible_mae


def test_enrich_tourney_uses_the_season_model(season):
    model = bb.team_strength_model(season.n_teams, seed=0)
    games = season.games.rows(0, 50)
    enriched = bb.enrich_tourney(model, games)
    np.testing.assert_array_equal(enriched.pred, bb.predict_games(model, games))
    np.testing.assert_array_equal(enriched.score_diff, games.score_diff)
    assert games.pred is None


# --- saving ------------------------------------------------------------------------------------


@pytest.mark.slow  # a fresh Python process
def test_saved_team_strength_model_predicts_the_same_in_a_fresh_process(season, tmp_path: Path):
    model, _ = bb.fit_team_strength(season.games, season.n_teams, epochs=2, batch_size=512, validation=None)
    games = season.games.rows(0, 200)
    expected = bb.predict_games(model, games)
    model.save(tmp_path / "team_strength.keras")
    (tmp_path / "pairs.json").write_text(json.dumps([games.team_1.tolist(), games.team_2.tolist()]))
    proc = run_python(
        """
        import json
        import numpy as np
        from siamese.basketball.data import Games
        from siamese.basketball import models as bb
        from siamese.models import load_model
        model = load_model("team_strength.keras")
        t1, t2 = json.load(open("pairs.json"))
        n = len(t1)
        games = Games.from_scores(np.zeros(n), t1, t2, np.zeros(n), np.zeros(n))
        print(json.dumps(bb.predict_games(model, games).tolist()))
        """,
        cwd=tmp_path,
    )
    reloaded = np.array(json.loads(proc.stdout.strip().splitlines()[-1]))
    np.testing.assert_array_equal(reloaded, expected)
    assert np.std(expected) > 0.1  # trained, not the near-zero initial strengths


# --- real data (optional) ----------------------------------------------------------------------


def test_real_season_model_beats_the_constant_on_the_tournament():
    value = os.environ.get("SIAMESE_DATA_DIR")
    if not value or not (Path(value) / "basketball").is_dir():
        pytest.skip("SIAMESE_DATA_DIR not set / folder absent")
    from siamese.basketball.data import build_season_table, read_tourney

    tourney = read_tourney()
    table = build_season_table(2018, tourney=tourney)
    model, history = bb.fit_team_strength(table.games, table.n_teams, epochs=6)
    assert min(history["val_loss"]) < 10.5
    scores = bb.evaluate_games(model, tourney)
    assert scores["rows"] == 4234
    assert scores["mae"] < 10.5  # predicting 0 gives 11.69
    enriched = bb.enrich_tourney(model, tourney)
    train, test = bb.course_split(enriched)
    assert train.season.max() == 2009 and test.season.min() == 2010


def test_fit_games_lowers_the_rate_on_a_validation_plateau(rng):
    model = bb.stacked_model(seed=0)
    train = _tourney(120, rng)
    # The same rows with the scores swapped, which the model cannot fit: it soon stops improving.
    held = Games.from_scores(
        train.season,
        train.team_1,
        train.team_2,
        train.score_2,
        train.score_1,
        seed_diff=train.seed_diff,
        pred=train.pred,
    )
    history = bb.fit_games(
        model, train, epochs=20, batch_size=30, validation=held, patience=20, lr_patience=1, lr_factor=0.5
    )
    # The rate each epoch ran at: halved after every epoch that did not improve on the best.
    rate, best, expected = float(bb.stacked_model().optimizer.learning_rate), np.inf, []
    for val_loss in history["val_loss"]:
        expected.append(rate)
        if val_loss < best - 1e-4:
            best = val_loss
        else:
            rate /= 2
    assert history["learning_rate"] == pytest.approx(expected)
    assert expected[-1] < expected[0]


def test_season_models_take_the_course_loss_or_squared_error():
    for build in (bb.team_strength_model, bb.three_input_model):
        assert build(5).loss == "mean_absolute_error"
        assert build(5, loss="mse").loss == "mean_squared_error"
        with pytest.raises(ConfigError, match="season loss must be one of mae, mse; got 'huber'"):
            build(5, loss="huber")


@pytest.mark.slow
def test_squared_error_season_model_finds_the_least_squares_strengths():
    sim = simulate_season(n_seasons=1, teams_per_season=30, games_per_team=60, home_advantage=0.0, seed=2)
    model = bb.team_strength_model(sim.n_teams, seed=0, learning_rate=0.1, loss="mse")
    # Full-batch steps, so Adam settles on the minimum rather than around it.
    bb.fit_games(model, sim.games, epochs=600, batch_size=len(sim.games), validation=None)
    games = sim.games
    design = np.zeros((len(games), sim.n_teams))
    design[np.arange(len(games)), games.team_1] += 1.0
    design[np.arange(len(games)), games.team_2] -= 1.0
    least_squares, *_ = np.linalg.lstsq(design, games.score_diff.astype(float), rcond=None)
    learned = bb.strengths(model)
    # Strengths are defined up to a constant: compare centred values.
    np.testing.assert_allclose(learned - learned.mean(), least_squares - least_squares.mean(), atol=0.15)
