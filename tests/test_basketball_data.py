"""Tests of siamese.datasets.basketball: course files, the rebuilt season table, the simulator."""

from __future__ import annotations

import csv
import math
import os
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from siamese.basketball.data import (
    Games,
    build_season_table,
    read_games_csv,
    read_tourney,
    simulate_season,
    validate_ids,
)
from siamese.errors import ConfigError, DataError

HEADER = "season,team_1,team_2,home,seed_diff,score_diff,score_1,score_2,won"


def _data_root() -> Path:
    value = os.environ.get("SIAMESE_DATA_DIR")
    if not value or not (Path(value) / "basketball").is_dir():
        pytest.skip("SIAMESE_DATA_DIR not set / folder absent")
    return Path(value)


@pytest.fixture(scope="module")
def tourney() -> Games:
    _data_root()
    return read_tourney()


@pytest.fixture(scope="module")
def season_table():
    _data_root()
    return build_season_table(2018)


def _mirror_counts(games: Games) -> tuple[Counter, Counter]:
    cols = [games.season, games.team_1, games.team_2, games.score_1, games.score_2]
    rows = Counter(zip(*(c.tolist() for c in cols), strict=True))
    mirrored = Counter(zip(*(c.tolist() for c in (cols[0], cols[2], cols[1], cols[4], cols[3])), strict=True))
    return rows, mirrored


# --- course files -----------------------------------------------------------------------------


def test_tourney_file(tourney: Games) -> None:
    assert len(tourney) == 4234
    assert tourney.columns == tuple(HEADER.split(","))
    assert tourney.won.mean() == 0.5
    assert tourney.season.min() == 1985 and tourney.season.max() == 2017
    assert tourney.team_1.min() == 24 and tourney.team_1.max() == 10851
    assert len(np.unique(tourney.team_1)) == 2150
    assert (tourney.home == 0).all()
    np.testing.assert_array_equal(tourney.score_diff, tourney.score_1 - tourney.score_2)
    rows, mirrored = _mirror_counts(tourney)
    assert rows == mirrored
    # The README's example: 1985 Arizona (288, seed 10) lost 41-50 to Alabama (73, seed 7).
    first = tourney.take([0])
    assert first.team_1.tolist() == [288] and first.seed_diff.tolist() == [-3]
    assert len(tourney.rows(None, 3168)) == 3168 and len(tourney.rows(3168)) == 1066


def test_enriched_tourney_has_same_rows_plus_pred(tourney: Games) -> None:
    enriched = read_tourney(enriched=True)
    assert enriched.columns[-1] == "pred" and enriched.pred.dtype == np.float64
    for name in tourney.columns:
        np.testing.assert_array_equal(enriched.column(name), tourney.column(name))
    assert 50 < enriched.pred.max() < 50.2 and -50.2 < enriched.pred.min() < -50
    assert enriched.pred[0] == pytest.approx(-3.60145230960554)


# --- season table -----------------------------------------------------------------------------


def test_season_table_counts(season_table) -> None:
    t = season_table
    g = t.games
    assert (len(g), t.n_games, t.n_team_seasons) == (312_178, 156_089, 10_888)
    assert t.n_teams == 10_888 and t.id_scheme == "datacamp" and t.seasons == (1985, 2018)
    assert len(t.id_map) == 10_888 and sorted(t.id_map.values()) == list(range(10_888))
    assert t.n_tourney_team_seasons == 2150 and t.n_ambiguous_resolved == 8
    np.testing.assert_array_equal(g.score_diff, g.score_1 - g.score_2)
    assert g.won.mean() == 0.5 and (g.score_diff != 0).all()
    # README's WLoc counts for 1985-2018: H 92,737, A 47,547, N 15,805 (winner's view).
    winner = g.take(slice(0, None, 2))
    assert Counter(winner.home.tolist()) == {1: 92_737, -1: 47_547, 0: 15_805}
    loser = g.take(slice(1, None, 2))
    np.testing.assert_array_equal(loser.team_1, winner.team_2)
    np.testing.assert_array_equal(loser.home, -winner.home)
    assert (winner.won == 1).all() and (loser.won == 0).all()
    validate_ids(g, t.n_teams)


def test_datacamp_ids_are_sorted_team_season_ranks(season_table) -> None:
    id_map = season_table.id_map
    assert id_map[(1985, 1104)] == 73  # Alabama
    assert id_map[(1985, 1112)] == 288  # Arizona
    by_rank = sorted(id_map, key=lambda key: (key[1], key[0]))
    assert [id_map[key] for key in by_rank] == list(range(len(by_rank)))


def test_every_tourney_pair_is_a_kaggle_game_between_mapped_teams(season_table, tourney) -> None:
    kaggle = Counter()
    path = _data_root() / "basketball/kaggle/NCAATourneyCompactResults.csv"
    with open(path, newline="") as handle:
        for r in csv.DictReader(handle):
            kaggle[(int(r["Season"]), int(r["WTeamID"]), int(r["LTeamID"]),
                    int(r["WScore"]), int(r["LScore"]))] += 1  # fmt: skip
    to_kaggle = {i: key for key, i in season_table.id_map.items()}
    found = Counter()
    for season, t1, t2, s1, s2 in zip(
        *(c.tolist() for c in (tourney.season, tourney.team_1, tourney.team_2,
                               tourney.score_1, tourney.score_2)),
        strict=True,
    ):  # fmt: skip
        (season_1, k1), (season_2, k2) = to_kaggle[t1], to_kaggle[t2]
        assert season_1 == season_2 == season
        key = (season, k1, k2, s1, s2) if s1 > s2 else (season, k2, k1, s2, s1)
        assert kaggle[key] > 0, (season, t1, t2, s1, s2)
        found[key] += 1
    assert found == Counter({key: 2 * n for key, n in kaggle.items()})


def test_later_and_earlier_seasons_keep_datacamp_ids(season_table) -> None:
    wide = build_season_table(2022)
    assert wide.n_games == 174_471 and wide.id_scheme == "datacamp"
    for key, i in season_table.id_map.items():
        assert wide.id_map[key] == i
    extra = [i for (s, _), i in wide.id_map.items() if s > 2018]
    assert min(extra) == 10_888 and wide.n_teams == 10_888 + len(extra)
    narrow = build_season_table(1986)
    assert narrow.seasons == (1985, 1986) and set(narrow.games.season.tolist()) == {1985, 1986}
    assert all(season_table.id_map[key] == i for key, i in narrow.id_map.items())
    with pytest.raises(ConfigError):
        build_season_table(1900)


def test_relabelled_tourney_falls_back_to_matched_ids(tourney) -> None:
    relabelled = Games.from_scores(
        tourney.season,
        tourney.team_1 + 20_000,
        tourney.team_2 + 20_000,
        tourney.score_1,
        tourney.score_2,
        seed_diff=tourney.seed_diff,
    )
    table = build_season_table(2018, tourney=relabelled)
    assert table.id_scheme == "matched" and table.n_tourney_team_seasons == 2150
    assert table.id_map[(1985, 1112)] == 20_288 and table.id_map[(1985, 1104)] == 20_073
    tourney_ids = set((tourney.team_1 + 20_000).tolist())
    fresh = sorted(i for i in table.id_map.values() if i not in tourney_ids)
    # The other 8,738 team-seasons are numbered from max tourney id + 1 = 30,852, no gaps.
    assert fresh == list(range(30_852, 30_852 + 8_738)) and table.n_teams == 30_852 + 8_738


# --- tiny synthetic Kaggle folder (no real data needed) ----------------------------------------


def _kaggle_dir(tmp_path: Path, tourney_rows: list[str], seeds: dict[int, str]) -> Path:
    folder = tmp_path / "kaggle"
    folder.mkdir(parents=True)
    season_rows = [
        "2000,10,1101,70,1102,60,H,0",
        "2000,11,1103,80,1104,70,A,0",
        "2000,12,1105,75,1101,74,N,1",
        "2000,13,1102,66,1104,65,H,0",
        "2001,10,1101,90,1105,60,H,0",
    ]
    text = "Season,DayNum,WTeamID,WScore,LTeamID,LScore,WLoc,NumOT\r\n"
    text += "".join(row + "\r\n" for row in season_rows)
    with zipfile.ZipFile(folder / "MRegularSeasonCompactResults.csv.zip", "w") as archive:
        archive.writestr("MRegularSeasonCompactResults.csv", text)
    (folder / "NCAATourneyCompactResults.csv").write_text(
        "Season,DayNum,WTeamID,WScore,LTeamID,LScore,WLoc,NumOT\n"
        + "".join(f"{row}\n" for row in tourney_rows)
    )
    (folder / "NCAATourneySeeds.csv").write_text(
        "Season,Seed,TeamID\n" + "".join(f"2000,{s},{t}\n" for t, s in seeds.items())
    )
    return folder


def _course(rows: list[tuple[int, int, int, int, int]]) -> Games:
    """Two-view course table from (season, winner id, loser id, winner score, loser score)."""
    season, t1, t2, s1, s2 = (np.array(c) for c in zip(*rows, strict=True))
    return Games.from_scores(
        np.r_[season, season], np.r_[t1, t2], np.r_[t2, t1], np.r_[s1, s2], np.r_[s2, s1]
    )


# Kaggle 1101 and 1103 play the same-score, same-seed-gap games; a third game fixes 1101.
AMBIGUOUS = ["2000,136,1101,60,1102,50,N,0", "2000,136,1103,60,1104,50,N,0"]
FIXER = "2000,137,1101,70,1103,65,N,0"
SEEDS = {1101: "W01", 1102: "W02", 1103: "X01", 1104: "X02"}


def test_tiny_build_resolves_ambiguous_games_and_uses_enumeration(tmp_path: Path) -> None:
    folder = _kaggle_dir(tmp_path, AMBIGUOUS + [FIXER], SEEDS)
    # Enumeration ranks (TeamID, season): 1101/2000=0, 1101/2001=1, 1102=2, 1103=3, 1104=4.
    course = _course([(2000, 0, 2, 60, 50), (2000, 3, 4, 60, 50), (2000, 0, 3, 70, 65)])
    table = build_season_table(2001, kaggle_dir=folder, tourney=course)
    assert table.id_scheme == "datacamp" and table.n_ambiguous_resolved == 2
    assert table.id_map == {
        (2000, 1101): 0, (2001, 1101): 1, (2000, 1102): 2, (2000, 1103): 3,
        (2000, 1104): 4, (2000, 1105): 5, (2001, 1105): 6,
    }  # fmt: skip
    g = table.games
    assert len(g) == 10 and table.n_teams == 7
    assert g.home.tolist()[:4] == [1, -1, -1, 1] and g.home.tolist()[4:6] == [0, 0]


def test_tiny_build_with_other_ids_keeps_them(tmp_path: Path) -> None:
    folder = _kaggle_dir(tmp_path, AMBIGUOUS + [FIXER], SEEDS)
    course = _course([(2000, 50, 52, 60, 50), (2000, 40, 41, 60, 50), (2000, 50, 40, 70, 65)])
    table = build_season_table(2001, kaggle_dir=folder, tourney=course)
    assert table.id_scheme == "matched"
    m = table.id_map
    assert (m[(2000, 1101)], m[(2000, 1102)], m[(2000, 1103)], m[(2000, 1104)]) == (50, 52, 40, 41)
    # Others numbered above 52 in (season, TeamID) order.
    assert (m[(2000, 1105)], m[(2001, 1101)], m[(2001, 1105)]) == (53, 54, 55)


def test_tiny_build_unresolvable_or_inconsistent(tmp_path: Path) -> None:
    folder = _kaggle_dir(tmp_path, AMBIGUOUS, SEEDS)
    course = _course([(2000, 0, 2, 60, 50), (2000, 3, 4, 60, 50)])
    with pytest.raises(DataError, match="cannot tell apart"):
        build_season_table(2001, kaggle_dir=folder, tourney=course)
    # Kaggle team 1101 would need two course ids (0 and 9).
    folder2 = _kaggle_dir(tmp_path / "b", AMBIGUOUS + [FIXER], SEEDS)
    bad = _course([(2000, 0, 2, 60, 50), (2000, 3, 4, 60, 50), (2000, 9, 3, 70, 65)])
    with pytest.raises(DataError, match="csv, line 2: Kaggle tournament game 1101 beat 1102"):
        build_season_table(2001, kaggle_dir=folder2, tourney=bad)
    # A course game with no Kaggle counterpart.
    extra = _course([(2000, 0, 2, 60, 50), (2000, 3, 4, 60, 50), (2000, 0, 3, 71, 65)])
    with pytest.raises(DataError, match="but 0 such Kaggle"):
        build_season_table(2001, kaggle_dir=folder2, tourney=extra)


def test_tiny_build_bad_kaggle_files(tmp_path: Path) -> None:
    folder = _kaggle_dir(tmp_path, AMBIGUOUS + [FIXER], SEEDS)
    course = _course([(2000, 0, 2, 60, 50)])
    zip_path = folder / "MRegularSeasonCompactResults.csv.zip"
    zip_path.write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match="not a readable zip"):
        build_season_table(2001, kaggle_dir=folder, tourney=course)
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr(
            "MRegularSeasonCompactResults.csv",
            "Season,DayNum,WTeamID,WScore,LTeamID,LScore,WLoc,NumOT\r\n2000,1,1101,70,1102,60,Q,0\r\n",
        )
    with pytest.raises(DataError, match=r"csv, line 2: column 'WLoc' holds 'Q'"):
        build_season_table(2001, kaggle_dir=folder, tourney=course)
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("MRegularSeasonCompactResults.csv", "Season,DayNum\r\n2000,1\r\n")
    with pytest.raises(DataError, match=r"line 1: missing column\(s\) WTeamID"):
        build_season_table(2001, kaggle_dir=folder, tourney=course)
    (folder / "NCAATourneySeeds.csv").unlink()
    _kaggle_dir(tmp_path / "c", [], {})  # a fresh valid zip to copy over the broken one
    zip_path.write_bytes((tmp_path / "c/kaggle/MRegularSeasonCompactResults.csv.zip").read_bytes())
    with pytest.raises(DataError, match="file not found"):
        build_season_table(2001, kaggle_dir=folder, tourney=course)


# --- read_games_csv on bad files ---------------------------------------------------------------


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "games.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_read_games_csv_minimal_columns_and_derivations(tmp_path: Path) -> None:
    path = _write(tmp_path, "score_2,team_1,season,team_2,score_1,extra\n60,5,2000,6,71,x\n")
    games = read_games_csv(path)
    assert games.columns == ("season", "team_1", "team_2", "home", "score_diff",
                             "score_1", "score_2", "won")  # fmt: skip
    assert games.score_diff.tolist() == [11] and games.won.tolist() == [1]
    assert games.home.tolist() == [0] and games.team_1.dtype == np.int64


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"line 1: file is empty"),
        ("\n\n", r"line 1: file is empty"),
        (HEADER + "\n", r"line 2: file has a header but no data rows"),
        ("season,team_1,score_1,score_2\n2000,1,60,50\n", r"line 1: missing column\(s\) team_2"),
        (HEADER + "\n2000,5,6,0,1,4,64,60,1\n2000,a7,5,0,-1,-4,60,64,0\n",
         r"line 3: column 'team_1' holds 'a7', not an integer"),
        (HEADER + "\n2000,5,6.0,0,1,4,64,60,1\n", r"line 2: column 'team_2' holds '6.0'"),
        (HEADER + "\n2000,5,6,0,1,4,64,60\n", r"line 2: row has 8 fields, the header has 9"),
        (HEADER + "\n2000,5,6,0,1,5,64,60,1\n", r"line 2: score_diff is not score_1 - score_2"),
        (HEADER + "\n2000,5,6,0,1,4,64,60,0\n", r"line 2: won disagrees"),
        (HEADER + "\n2000,5,6,2,1,4,64,60,1\n", r"line 2: home is not -1, 0 or 1"),
        (HEADER + ",pred\n2000,5,6,0,1,4,64,60,1,nan\n", r"line 2: column 'pred' holds 'nan'"),
        ("season,season,team_1,team_2,score_1,score_2\n", r"line 1: duplicated column"),
    ],
)  # fmt: skip
def test_read_games_csv_rejects_bad_files(tmp_path: Path, text: str, pattern: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(DataError, match=pattern) as info:
        read_games_csv(path)
    assert info.value.path == str(path)


def test_read_games_csv_bad_bytes_missing_file_and_required(tmp_path: Path) -> None:
    path = _write(tmp_path, (HEADER + "\n2000,5,6,0,1,4,64,60,1\n2000,\xff").encode("latin-1"))
    with pytest.raises(DataError, match="line 3: bytes that are not UTF-8"):
        read_games_csv(path)
    with pytest.raises(DataError, match="file not found"):
        read_games_csv(tmp_path / "absent.csv")
    ok = _write(tmp_path, "season,team_1,team_2,score_1,score_2\n2000,1,2,60,50\n")
    with pytest.raises(DataError, match=r"missing column\(s\) seed_diff"):
        read_games_csv(ok, required=("seed_diff",))
    bom = _write(tmp_path, b"\xef\xbb\xbfseason,team_1,team_2,score_1,score_2\r\n2000,1,2,60,50\r\n")
    assert read_games_csv(bom).season.tolist() == [2000]


# --- validate_ids -----------------------------------------------------------------------------


def test_validate_ids() -> None:
    games = _course([(2000, 0, 4, 60, 50), (2000, 2, 3, 70, 65)])
    validate_ids(games, 5)
    with pytest.raises(DataError, match=r"2 row\(s\) .* outside 0\.\.3 .*first at row 0: team_2 = 4"):
        validate_ids(games, 4)
    negative = _course([(2000, -1, 2, 60, 50)])
    with pytest.raises(DataError, match="first at row 0: team_1 = -1"):
        validate_ids(negative, 5)
    with pytest.raises(ConfigError):
        validate_ids(games, 0)


# --- Games helpers ----------------------------------------------------------------------------


def test_games_take_rows_and_column() -> None:
    games = _course([(2000, 0, 4, 60, 50), (2001, 2, 3, 70, 65)])
    assert len(games) == 4 and games.team_1.tolist() == [0, 2, 4, 3]
    assert games.take([3, 0]).team_1.tolist() == [3, 0]
    assert games.take(games.won == 1).score_diff.tolist() == [10, 5]
    assert games.rows(1, 3).season.tolist() == [2001, 2000]
    assert set(games.to_dict()) == set(games.columns)
    with pytest.raises(ConfigError):
        games.column("pred")
    with pytest.raises(DataError, match="different lengths"):
        Games.from_scores([2000], [1, 2], [2], [60], [50])


# --- simulator --------------------------------------------------------------------------------


def test_simulator_is_seeded_and_consistent() -> None:
    a = simulate_season(seed=3)
    b = simulate_season(seed=3)
    c = simulate_season(seed=4)
    for name in a.games.columns:
        np.testing.assert_array_equal(a.games.column(name), b.games.column(name))
    np.testing.assert_array_equal(a.strengths, b.strengths)
    assert a.irreducible_mae == b.irreducible_mae
    assert not np.array_equal(a.games.score_diff, c.games.score_diff)
    assert not np.array_equal(a.strengths, c.strengths)
    g = a.games
    assert len(g) == 2 * 5 * 30 * 30 and a.n_teams == 300 and a.strengths.shape == (300,)
    np.testing.assert_array_equal(g.score_diff, g.score_1 - g.score_2)
    assert (g.score_diff != 0).all() and g.won.mean() == 0.5 and (g.score_2 >= 20).all()
    np.testing.assert_array_equal(g.team_1[0::2], g.team_2[1::2])
    np.testing.assert_array_equal(g.home[0::2], -g.home[1::2])
    assert set(g.home.tolist()) == {-1, 0, 1}
    assert Counter(g.team_1.tolist()) == {i: 30 for i in range(300)}
    assert set(g.season.tolist()) == set(range(2001, 2006))
    same_season = (g.team_1 // 60) == (g.team_2 // 60)
    assert same_season.all()
    validate_ids(g, a.n_teams)


def test_simulator_irreducible_mae_matches_noise() -> None:
    sim = simulate_season(n_seasons=10, teams_per_season=100, games_per_team=100, seed=1)
    expected = sim.noise_sd * math.sqrt(2 / math.pi)
    assert sim.irreducible_mae == pytest.approx(expected, rel=0.02)
    g = sim.games
    truth = sim.strengths[g.team_1] - sim.strengths[g.team_2] + sim.home_advantage * g.home
    assert np.mean(np.abs(g.score_diff - truth)) == pytest.approx(sim.irreducible_mae)
    # Home teams win more than away teams.
    assert g.won[g.home == 1].mean() > 0.55 > 0.45 > g.won[g.home == -1].mean()
    quiet = simulate_season(noise_sd=0.0, seed=2)
    assert quiet.irreducible_mae < 0.5


def test_simulator_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError):
        simulate_season(teams_per_season=1)
    with pytest.raises(ConfigError):
        simulate_season(noise_sd=-1.0)
    with pytest.raises(ConfigError):
        simulate_season(neutral_fraction=1.5)
