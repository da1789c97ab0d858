"""siamese-train --task basketball, end to end."""

from __future__ import annotations

import json
import logging

import pytest
from click.testing import CliRunner

from siamese import cli


def _train(args):
    return CliRunner().invoke(cli.train, ["--task", "basketball", *args])


def _shown(output, split):
    line = next(li for li in output.splitlines() if li.startswith(f"{split}:"))
    return {k: float(v) for k, v in (p.strip().split(" ") for p in line[len(split) + 1 :].split(","))}


def test_simulated_season_recovers_the_true_strengths(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    out = tmp_path / "sim"
    result = _train(["--model", "team-strength", "--data", "simulated", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    dev = _shown(result.output, "season_dev")
    assert dev["strength_correlation"] >= 0.95
    assert dev["mae"] <= 1.05 * dev["irreducible_mae"]
    assert "team_strength (Functional)" in caplog.text  # the model summary, logged
    assert json.loads((out / "config.json").read_text())["basketball"]["season_loss"] == "mae"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["season_dev"]["strength_correlation"] == pytest.approx(dev["strength_correlation"], abs=1e-4)
    assert (out / "tower.keras").is_file() and (out / "model.keras").is_file()


@pytest.mark.slow
def test_real_team_strength_reports_tournament_mae(tmp_path, data_dir):
    result = _train(["--model", "team-strength", "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    tourney = _shown(result.output, "tourney")
    assert tourney["rows"] == 4234
    assert tourney["mae"] < 11.65  # the course's figure, beaten


@pytest.mark.slow
def test_real_regressor_classifier_reports_mae_and_log_loss(tmp_path, data_dir):
    result = _train(["--model", "regressor-classifier", "--pred", "course", "--out", str(tmp_path / "rc")])
    assert result.exit_code == 0, result.output
    test = _shown(result.output, "tourney_test")
    assert test["rows"] == 4234 - 3168
    assert test["mae"] < 10.0 and test["log_loss"] < 0.65
    # No season model is trained with the course's pred, so no season loss is recorded.
    assert json.loads((tmp_path / "rc" / "config.json").read_text())["basketball"]["season_loss"] is None


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", ["empty"]),
        (b"season,team_1,team_2,score_1\n2000,1,2,70\n", ["score_2"]),
        (b"season,team_1,team_2,score_1,score_2\n2000,1,x2,70,60\n", ["line 2", "team_2"]),
    ],
)
def test_bad_season_files_are_one_line_exit_2(tmp_path, content, words):
    path = tmp_path / "games_season.csv"
    path.write_bytes(content)
    result = CliRunner().invoke(
        cli.train, ["--task", "basketball", "--data", str(path), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_tournament_ids_beyond_the_season_embedding(tmp_path, data_dir):
    path = tmp_path / "games_season.csv"
    path.write_text("season,team_1,team_2,score_1,score_2\n2000,1,2,70,60\n2000,2,1,60,70\n")
    result = CliRunner().invoke(
        cli.train, ["--task", "basketball", "--data", str(path), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "games_tourney" in result.output or "embedding" in result.output


def test_tournament_models_need_real_data(tmp_path):
    result = CliRunner().invoke(
        cli.train,
        ["--task", "basketball", "--model", "stacked", "--data", "simulated", "--out", str(tmp_path / "r")],
    )
    assert result.exit_code == 2 and "--data real" in result.output


def test_season_loss_follows_the_model_unless_asked():
    from siamese.basketball.task import BasketballOptions, season_loss
    from siamese.training import RunConfig

    def loss_of(**options):
        return season_loss(RunConfig(task="basketball", data="real", options=BasketballOptions(**options)))

    assert loss_of(model="team-strength") == "mae"
    assert loss_of(model="three-input") == "mae"
    assert loss_of(model="regressor-classifier") == "mse"
    assert loss_of(model="stacked", season_loss="mae") == "mae"
    assert loss_of(model="team-strength", season_loss="mse") == "mse"


def test_unknown_season_loss_is_refused(tmp_path):
    result = _train(["--season-loss", "huber", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "huber" in result.output and not (tmp_path / "x").exists()
