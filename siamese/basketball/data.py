"""NCAA basketball games in the schema of DataCamp's "Advanced Deep Learning with Keras" course.

A games table has one row per game *per team*: every game appears twice, once from each
team's point of view. Its columns are

``season``
    Year in which the season ends (2017 is the 2016-17 season).
``team_1``, ``team_2``
    Integer team ids. An id names one team in one season (a *team-season*), so it can index
    an embedding of size ``n_teams``.
``home``
    ``1`` if ``team_1`` played at home, ``-1`` if it played away, ``0`` on a neutral court
    (every tournament game is neutral). This is this module's encoding: the course's exact
    integer encoding for its season file is not known.
``seed_diff``
    Tournament files only: ``seed(team_2) - seed(team_1)``, positive when ``team_1`` is the
    better (lower-numbered) seed.
``score_diff``
    ``score_1 - score_2``.
``score_1``, ``score_2``
    Points scored by ``team_1`` and ``team_2``.
``won``
    ``1`` if ``team_1`` won, else ``0``.
``pred``
    Enriched tournament file only: the season model's predicted ``score_diff`` (float).

Three sources fill such tables:

* :func:`read_tourney` and :func:`read_games_csv` read course-format CSV files (the staged
  ``games_tourney.csv`` and its enriched copy, or a user's own ``games_season.csv``).
* :func:`build_season_table` rebuilds the course's missing ``games_season.csv`` from the Kaggle
  regular-season results, with team ids that agree with ``games_tourney.csv``. DataCamp's id
  turned out to be the 0-based rank of ``(Kaggle TeamID, season)`` among all regular-season
  team-seasons of 1985 to 2018 (sorted by TeamID, then season); the builder checks this
  against every tournament game before using it.
* :func:`simulate_season` draws a synthetic season from a known team-strength model.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from siamese.datasets.files import ZIP_READ_ERRORS
from siamese.datasets.locate import locate
from siamese.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

# Column order of the course's files; optional columns are left out of a table that lacks them.
COURSE_COLUMNS = (
    "season",
    "team_1",
    "team_2",
    "home",
    "seed_diff",
    "score_diff",
    "score_1",
    "score_2",
    "won",
    "pred",
)
DEFAULT_REQUIRED = ("season", "team_1", "team_2", "score_1", "score_2")

TOURNEY_FILE = "basketball/games_tourney.csv"
ENRICHED_FILE = "basketball/games_season_enriched.csv"
KAGGLE_FOLDER = "basketball/kaggle"
KAGGLE_SEASON_ZIP = "MRegularSeasonCompactResults.csv.zip"
KAGGLE_TOURNEY = "NCAATourneyCompactResults.csv"
KAGGLE_SEEDS = "NCAATourneySeeds.csv"

# DataCamp's team-season ids enumerate the regular-season team-seasons of these seasons.
DATACAMP_FIRST_SEASON = 1985
DATACAMP_LAST_SEASON = 2018

_WLOC = {"H": 1, "A": -1, "N": 0}
_KEY_BASE = 1_000_000  # season * _KEY_BASE + team id packs a team-season into one int64


@dataclass(frozen=True, eq=False)
class Games:
    """A games table: one int64 NumPy column per course field (``pred`` is float64).

    ``seed_diff`` and ``pred`` are ``None`` when the table has no such column. Build one with
    :meth:`from_scores` to derive ``score_diff`` and ``won`` from the scores.
    """

    season: np.ndarray
    team_1: np.ndarray
    team_2: np.ndarray
    home: np.ndarray
    score_diff: np.ndarray
    score_1: np.ndarray
    score_2: np.ndarray
    won: np.ndarray
    seed_diff: np.ndarray | None = None
    pred: np.ndarray | None = None

    def __post_init__(self) -> None:
        lengths = {name: len(col) for name, col in self._present()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"games columns have different lengths: {lengths}")

    def _present(self) -> list[tuple[str, np.ndarray]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None]

    @classmethod
    def from_scores(
        cls,
        season: np.ndarray,
        team_1: np.ndarray,
        team_2: np.ndarray,
        score_1: np.ndarray,
        score_2: np.ndarray,
        home: np.ndarray | None = None,
        seed_diff: np.ndarray | None = None,
        pred: np.ndarray | None = None,
    ) -> Games:
        """A table whose ``score_diff`` and ``won`` are derived from the scores.

        Args:
            season: Season of each row.
            team_1: Id of the row's own team.
            team_2: Id of the opponent.
            score_1: Points of ``team_1``.
            score_2: Points of ``team_2``.
            home: Venue from ``team_1``'s side (1 home, -1 away, 0 neutral); zeros if None.
            seed_diff: ``seed(team_2) - seed(team_1)``, if known.
            pred: A model's predicted ``score_diff``, if any.
        """
        s1 = np.asarray(score_1, dtype=np.int64)
        s2 = np.asarray(score_2, dtype=np.int64)
        return cls(
            season=np.asarray(season, dtype=np.int64),
            team_1=np.asarray(team_1, dtype=np.int64),
            team_2=np.asarray(team_2, dtype=np.int64),
            home=np.zeros(len(s1), np.int64) if home is None else np.asarray(home, np.int64),
            score_diff=s1 - s2,
            score_1=s1,
            score_2=s2,
            won=(s1 > s2).astype(np.int64),
            seed_diff=None if seed_diff is None else np.asarray(seed_diff, np.int64),
            pred=None if pred is None else np.asarray(pred, np.float64),
        )

    def __len__(self) -> int:
        return len(self.season)

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the columns present, in the course's order."""
        return tuple(name for name in COURSE_COLUMNS if getattr(self, name) is not None)

    def column(self, name: str) -> np.ndarray:
        """One column by name.

        Args:
            name: A name from :attr:`columns`.

        Raises:
            ConfigError: the table has no such column.
        """
        if name not in self.columns:
            raise ConfigError(f"no column {name!r}; the table has {', '.join(self.columns)}")
        return getattr(self, name)

    def to_dict(self) -> dict[str, np.ndarray]:
        """The columns as a name -> array mapping (the arrays are not copied)."""
        return {name: getattr(self, name) for name in self.columns}

    def take(self, indices: np.ndarray | slice | list[int]) -> Games:
        """A new table with the selected rows (integer indices, boolean mask or slice).

        Args:
            indices: Rows to keep, in the order given.
        """
        if not isinstance(indices, slice):
            indices = np.asarray(indices)
        return replace(self, **{name: col[indices] for name, col in self._present()})

    def rows(self, start: int | None = None, stop: int | None = None) -> Games:
        """Rows ``start:stop``, like ``DataFrame.iloc[start:stop]`` (course split: 3168).

        Args:
            start: First row (default the beginning).
            stop: Row after the last (default the end).
        """
        return self.take(slice(start, stop))


# ---------------------------------------------------------------------------------------------
# Low-level CSV reading shared by the course and Kaggle files
# ---------------------------------------------------------------------------------------------


@dataclass
class _Table:
    path: str
    header: list[str]
    rows: list[list[str]]
    lines: list[int]  # 1-based line of each row
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {name: i for i, name in enumerate(self.header)}

    def require(self, names: tuple[str, ...] | list[str]) -> None:
        missing = [name for name in names if name not in self.index]
        if missing:
            raise DataError(
                f"missing column(s) {', '.join(missing)}; header has {', '.join(self.header)}",
                path=self.path,
                line=1,
            )

    def strings(self, name: str) -> list[str]:
        i = self.index[name]
        return [row[i] for row in self.rows]

    def ints(self, name: str) -> np.ndarray:
        values = self.strings(name)
        try:
            return np.array([int(v) for v in values], dtype=np.int64)
        except (ValueError, OverflowError):
            pass
        for value, line in zip(values, self.lines, strict=True):
            try:
                np.int64(int(value))
            except ValueError:
                raise DataError(
                    f"column {name!r} holds {value!r}, not an integer", path=self.path, line=line
                ) from None
            except OverflowError:
                raise DataError(
                    f"column {name!r} holds {value[:40]!r}, too large for a 64-bit integer",
                    path=self.path,
                    line=line,
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def floats(self, name: str) -> np.ndarray:
        values = self.strings(name)
        for value, line in zip(values, self.lines, strict=True):
            try:
                ok = math.isfinite(float(value))
            except ValueError:
                ok = False
            if not ok:
                raise DataError(
                    f"column {name!r} holds {value!r}, not a finite number",
                    path=self.path,
                    line=line,
                )
        return np.array([float(v) for v in values], dtype=np.float64)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except OSError as exc:
        raise DataError(f"cannot read file ({exc.strerror or exc})", path=path) from None


def _read_zip_csv(path: Path) -> tuple[bytes, str]:
    """The bytes of the single CSV inside a zip, and a display name ``zip:member``."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if len(members) != 1:
                raise DataError(f"expected exactly one .csv inside the zip, found {len(members)}", path=path)
            return archive.read(members[0]), f"{path}:{members[0]}"
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except ZIP_READ_ERRORS as exc:
        raise DataError(f"not a readable zip archive ({exc})", path=path) from None


def _parse_csv(data: bytes, path: str) -> _Table:
    """Decode UTF-8 (BOM allowed), split into header and rows, reject ragged rows."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"bytes that are not UTF-8 ({exc.reason})", path=path, line=line) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            if header is None:
                header = [name.strip() for name in record]
                duplicated = sorted({n for n in header if header.count(n) > 1})
                if duplicated:
                    raise DataError(
                        f"duplicated column(s) {', '.join(duplicated)}",
                        path=path,
                        line=reader.line_num,
                    )
                continue
            if len(record) != len(header):
                raise DataError(
                    f"row has {len(record)} fields, the header has {len(header)}",
                    path=path,
                    line=reader.line_num,
                )
            rows.append(record)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(f"malformed CSV ({exc})", path=path, line=reader.line_num) from None
    if header is None:
        raise DataError("file is empty (no header, no rows)", path=path, line=1)
    if not rows:
        raise DataError("file has a header but no data rows", path=path, line=2)
    return _Table(path, header, rows, lines)


def _first_bad(mask: np.ndarray, table: _Table) -> int:
    return table.lines[int(np.flatnonzero(mask)[0])]


# ---------------------------------------------------------------------------------------------
# Course-format files
# ---------------------------------------------------------------------------------------------


def read_games_csv(path: PathLike, *, required: tuple[str, ...] = DEFAULT_REQUIRED) -> Games:
    """Read a course-format games CSV (``games_tourney.csv``, a ``games_season.csv``, ...).

    Columns are found by header name; unknown columns are ignored. ``home`` defaults to 0 when
    absent; ``score_diff`` and ``won`` are derived from the scores when absent and checked
    against them when present.

    Args:
        path: The CSV file (comma-separated, UTF-8, header on the first line).
        required: Columns that must be present.

    Raises:
        DataError: the file is missing, empty or not UTF-8; a required column is missing; a row
            has the wrong number of fields; a value is not an integer (``pred``: not a
            number); ``score_diff``/``won`` disagree with the scores; ``won`` is not 0/1.
    """
    path = Path(path)
    table = _parse_csv(_read_bytes(path), str(path))
    table.require(tuple(dict.fromkeys(list(required) + list(DEFAULT_REQUIRED))))
    ints = {name: table.ints(name) for name in COURSE_COLUMNS if name != "pred" and name in table.index}
    pred = table.floats("pred") if "pred" in table.index else None
    games = Games.from_scores(
        ints["season"],
        ints["team_1"],
        ints["team_2"],
        ints["score_1"],
        ints["score_2"],
        home=ints.get("home"),
        seed_diff=ints.get("seed_diff"),
        pred=pred,
    )
    if "score_diff" in ints and (bad := ints["score_diff"] != games.score_diff).any():
        raise DataError("score_diff is not score_1 - score_2", path=path, line=_first_bad(bad, table))
    if "won" in ints:
        if (bad := (ints["won"] != 0) & (ints["won"] != 1)).any():
            raise DataError("won is not 0 or 1", path=path, line=_first_bad(bad, table))
        if (bad := ints["won"] != games.won).any():
            raise DataError("won disagrees with score_1 > score_2", path=path, line=_first_bad(bad, table))
    if (bad := (games.home < -1) | (games.home > 1)).any():
        raise DataError("home is not -1, 0 or 1", path=path, line=_first_bad(bad, table))
    logger.debug("read %d games rows from %s", len(games), path)
    return games


def read_tourney(enriched: bool = False) -> Games:
    """The course's tournament games (4,234 rows = 2,117 games, 1985 to 2017).

    Args:
        enriched: Read ``games_season_enriched.csv`` instead, the same rows plus ``pred``.

    Raises:
        DatasetNotFoundError: the file is not in the data folder.
        DataError: the file is malformed.
    """
    relative = ENRICHED_FILE if enriched else TOURNEY_FILE
    required = DEFAULT_REQUIRED + ("seed_diff",) + (("pred",) if enriched else ())
    return read_games_csv(locate(relative), required=required)


def validate_ids(games: Games, n_teams: int) -> None:
    """Check that every team id can index an embedding of ``n_teams`` rows.

    Args:
        games: The table to check.
        n_teams: The embedding's input dimension.

    Raises:
        ConfigError: ``n_teams`` is not positive.
        DataError: an id is negative or ``>= n_teams``; the message names the first such row.
    """
    if n_teams <= 0:
        raise ConfigError(f"n_teams must be positive, got {n_teams}")
    bad = {}
    for name in ("team_1", "team_2"):
        ids = games.column(name)
        bad[name] = (ids < 0) | (ids >= n_teams)
    either = bad["team_1"] | bad["team_2"]
    if either.any():
        row = int(np.flatnonzero(either)[0])
        name = "team_1" if bad["team_1"][row] else "team_2"
        raise DataError(
            f"{int(either.sum())} row(s) with a team id outside 0..{n_teams - 1} (embedding "
            f"size {n_teams}); first at row {row}: {name} = {int(games.column(name)[row])}"
        )


# ---------------------------------------------------------------------------------------------
# Kaggle results -> course-schema season table
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Results:
    """Kaggle results, one row per game, winner first."""

    path: str
    season: np.ndarray
    w_team: np.ndarray
    w_score: np.ndarray
    l_team: np.ndarray
    l_score: np.ndarray
    w_home: np.ndarray  # 1: winner at home, -1: winner away, 0: neutral
    lines: list[int]


def _read_results(data: bytes, path: str) -> _Results:
    table = _parse_csv(data, path)
    table.require(["Season", "WTeamID", "WScore", "LTeamID", "LScore", "WLoc"])
    wloc = table.strings("WLoc")
    try:
        w_home = np.array([_WLOC[v.strip()] for v in wloc], dtype=np.int64)
    except KeyError:
        k = next(i for i, v in enumerate(wloc) if v.strip() not in _WLOC)
        raise DataError(
            f"column 'WLoc' holds {wloc[k]!r}, not H, A or N", path=path, line=table.lines[k]
        ) from None
    results = _Results(
        path,
        table.ints("Season"),
        table.ints("WTeamID"),
        table.ints("WScore"),
        table.ints("LTeamID"),
        table.ints("LScore"),
        w_home,
        table.lines,
    )
    if (bad := results.w_score <= results.l_score).any():
        raise DataError("WScore is not above LScore", path=path, line=_first_bad(bad, table))
    if (bad := results.w_team == results.l_team).any():
        raise DataError("a team plays itself", path=path, line=_first_bad(bad, table))
    return results


def read_season_results(path: PathLike) -> _Results:
    """The games of a Kaggle regular-season results zip (one row per game, winner first).

    Raises:
        DataError: The zip or the CSV inside it is malformed.
    """
    data, display = _read_zip_csv(Path(path))
    return _read_results(data, display)


def _read_seeds(path: Path) -> dict[tuple[int, int], int]:
    table = _parse_csv(_read_bytes(path), str(path))
    table.require(["Season", "Seed", "TeamID"])
    seasons, teams = table.ints("Season"), table.ints("TeamID")
    seeds: dict[tuple[int, int], int] = {}
    for season, team, seed, line in zip(seasons, teams, table.strings("Seed"), table.lines, strict=True):
        number = seed.strip()[1:3]
        if not number.isdigit():
            raise DataError(f"seed {seed!r} is not a region letter and two digits", path=path, line=line)
        seeds[(int(season), int(team))] = int(number)
    return seeds


def _pack(season: np.ndarray, team: np.ndarray) -> np.ndarray:
    return season.astype(np.int64) * _KEY_BASE + team.astype(np.int64)


def _match_tourney(
    kaggle: _Results, seeds: dict[tuple[int, int], int], tourney: Games
) -> tuple[dict[tuple[int, int], int], int]:
    """Map (season, Kaggle TeamID) -> course id by matching the tournament games.

    Games are grouped by (season, winner score, loser score, seed_diff); a group with one game
    fixes two team-seasons outright, and larger groups are resolved by requiring each Kaggle
    team-season to keep one course id (and vice versa) across all its games.

    Returns:
        The mapping, and how many games were matched inside groups of two or more.
    """
    use_seeds = tourney.seed_diff is not None
    seasons = set(np.unique(tourney.season).tolist())

    kaggle_groups: dict[tuple[int, ...], list[tuple[int, int, int]]] = defaultdict(list)
    for k in range(len(kaggle.season)):
        season = int(kaggle.season[k])
        if season not in seasons:
            continue
        w, lo = int(kaggle.w_team[k]), int(kaggle.l_team[k])
        key: tuple[int, ...] = (season, int(kaggle.w_score[k]), int(kaggle.l_score[k]))
        if use_seeds:
            try:
                key += (seeds[(season, lo)] - seeds[(season, w)],)
            except KeyError as exc:
                raise DataError(
                    f"tournament team {exc.args[0][1]} has no seed in {exc.args[0][0]}",
                    path=kaggle.path,
                    line=kaggle.lines[k],
                ) from None
        kaggle_groups[key].append((w, lo, kaggle.lines[k]))

    course_groups: dict[tuple[int, ...], list[tuple[int, int]]] = defaultdict(list)
    for r in np.flatnonzero(tourney.won == 1):
        key = (int(tourney.season[r]), int(tourney.score_1[r]), int(tourney.score_2[r]))
        if use_seeds:
            key += (int(tourney.seed_diff[r]),)
        course_groups[key].append((int(tourney.team_1[r]), int(tourney.team_2[r])))

    for key, games in course_groups.items():
        found = len(kaggle_groups.get(key, ()))
        if found != len(games):
            raise DataError(
                f"{len(games)} tournament game(s) with (season, winner score, loser score"
                f"{', seed_diff' if use_seeds else ''}) = {key}, but {found} such Kaggle game(s)",
                path=kaggle.path,
            )

    to_course: dict[tuple[int, int], int] = {}
    to_kaggle: dict[int, tuple[int, int]] = {}

    def fits(season: int, kaggle_id: int, course_id: int) -> bool:
        return to_course.get((season, kaggle_id), course_id) == course_id and to_kaggle.get(
            course_id, (season, kaggle_id)
        ) == (season, kaggle_id)

    pending = {key: (list(kaggle_groups[key]), list(games)) for key, games in course_groups.items()}
    n_resolved = 0
    progress = True
    while pending and progress:
        progress = False
        for key in list(pending):
            k_games, c_games = pending[key]
            season = key[0]
            for w, lo, line in list(k_games):
                options = [(t1, t2) for t1, t2 in c_games if fits(season, w, t1) and fits(season, lo, t2)]
                if not options:
                    raise DataError(
                        f"Kaggle tournament game {w} beat {lo} in {season} matches no course game "
                        "without giving a team-season two different ids",
                        path=kaggle.path,
                        line=line,
                    )
                if len(options) == 1:
                    t1, t2 = options[0]
                    for kaggle_id, course_id in ((w, t1), (lo, t2)):
                        to_course[(season, kaggle_id)] = course_id
                        to_kaggle[course_id] = (season, kaggle_id)
                    n_resolved += int(len(kaggle_groups[key]) > 1)
                    k_games.remove((w, lo, line))
                    c_games.remove((t1, t2))
                    progress = True
            if not k_games:
                del pending[key]
    if pending:
        raise DataError(
            f"cannot tell apart the tournament games with keys {sorted(pending)}: same season, "
            "scores and seeds, and no other game fixes the teams' ids",
            path=kaggle.path,
        )
    return to_course, n_resolved


@dataclass(frozen=True, eq=False)
class SeasonTable:
    """The rebuilt regular-season table and how its ids were assigned.

    Attributes:
        games: Two rows per game (winner's view, then loser's view), in file order.
        n_teams: Embedding size, ``max id + 1``.
        id_map: ``(season, Kaggle TeamID) -> id`` for every team-season in ``games``.
        id_scheme: ``"datacamp"`` when ids follow DataCamp's enumeration (verified on the
            tournament), else ``"matched"`` (tournament ids from matching, fresh ids above
            them for the others).
        n_games: Regular-season games (``len(games) // 2``).
        n_team_seasons: Distinct team-seasons in ``games``.
        n_tourney_team_seasons: Team-seasons whose id was fixed by the tournament file.
        n_ambiguous_resolved: Tournament games whose scores and seeds matched several games
            and that were resolved through the teams' other games.
        seasons: First and last season in ``games``.
    """

    games: Games
    n_teams: int
    id_map: dict[tuple[int, int], int]
    id_scheme: str
    n_games: int
    n_team_seasons: int
    n_tourney_team_seasons: int
    n_ambiguous_resolved: int
    seasons: tuple[int, int]


def _datacamp_ids(results: _Results) -> dict[int, int]:
    """DataCamp's enumeration: packed (season, team) -> rank of (TeamID, season), 1985-2018."""
    keep = (results.season >= DATACAMP_FIRST_SEASON) & (results.season <= DATACAMP_LAST_SEASON)
    season = np.concatenate([results.season[keep]] * 2)
    team = np.concatenate([results.w_team[keep], results.l_team[keep]])
    pairs = np.unique(np.stack([team, season], axis=1), axis=0)  # sorted by team, then season
    return {int(k): i for i, k in enumerate(_pack(pairs[:, 1], pairs[:, 0]))}


def _kaggle_path(kaggle_dir: PathLike | None, name: str) -> Path:
    if kaggle_dir is None:
        return locate(f"{KAGGLE_FOLDER}/{name}")
    return Path(kaggle_dir) / name


def build_season_table(
    max_season: int = 2018,
    *,
    kaggle_dir: PathLike | None = None,
    tourney: Games | None = None,
) -> SeasonTable:
    """Rebuild the course's ``games_season.csv`` from the Kaggle regular-season results.

    Each game becomes two rows (winner's view, loser's view); ``home`` comes from ``WLoc``
    (1 for the home team's row, -1 for the away team's, 0 on a neutral court). Ids are one per
    team-season and agree with ``tourney``'s ids for every tournament team: the Kaggle
    tournament results and seeds are matched against ``tourney`` game by game. When the match
    confirms DataCamp's enumeration (rank of ``(TeamID, season)`` over the 1985-2018
    regular-season team-seasons, 0-based), that enumeration gives every 1985-2018 team-season
    its id, and later seasons get ids from 10,888 upward in (season, TeamID) order. Otherwise
    the matched ids are kept and the other team-seasons get fresh ids above the largest one.
    With ``max_season`` before 2018 the DataCamp ids are kept as they are, so some ids in
    ``0..n_teams-1`` are unused (harmless rows of an embedding).
    Nothing is cached: building 1985-2018 (312,178 rows) takes about a second.

    Args:
        max_season: Last season to include (2018 matches the course file: 156,089 games,
            312,178 rows, 10,888 team-seasons).
        kaggle_dir: Folder with ``MRegularSeasonCompactResults.csv.zip``,
            ``NCAATourneyCompactResults.csv`` and ``NCAATourneySeeds.csv``; default the
            ``basketball/kaggle`` folder of the data folder.
        tourney: The tournament table whose ids must be kept; default :func:`read_tourney`.

    Raises:
        ConfigError: ``max_season`` is before the first season in the data.
        DatasetNotFoundError: a default file is not in the data folder.
        DataError: a file is malformed, or the tournament games cannot be matched consistently.
    """
    results = read_season_results(_kaggle_path(kaggle_dir, KAGGLE_SEASON_ZIP))
    display = results.path
    tourney_path = _kaggle_path(kaggle_dir, KAGGLE_TOURNEY)
    kaggle_tourney = _read_results(_read_bytes(tourney_path), str(tourney_path))
    seeds = _read_seeds(_kaggle_path(kaggle_dir, KAGGLE_SEEDS))
    if tourney is None:
        tourney = read_tourney()

    keep = results.season <= max_season
    if not keep.any():
        raise ConfigError(
            f"max_season {max_season} is before the first season in {display} ({int(results.season.min())})"
        )
    matched, n_resolved = _match_tourney(kaggle_tourney, seeds, tourney)

    season = results.season[keep]
    w_key = _pack(season, results.w_team[keep])
    l_key = _pack(season, results.l_team[keep])
    keys, inverse = np.unique(np.concatenate([w_key, l_key]), return_inverse=True)

    datacamp = _datacamp_ids(results)
    agrees = all(datacamp.get(s * _KEY_BASE + t) == i for (s, t), i in matched.items())
    if agrees:
        scheme = "datacamp"
        fixed = datacamp
    else:
        scheme = "matched"
        fixed = {s * _KEY_BASE + t: i for (s, t), i in matched.items()}
        logger.warning(
            "tournament ids do not follow DataCamp's (TeamID, season) enumeration; keeping the "
            "%d matched ids and numbering the other team-seasons above them",
            len(fixed),
        )
    next_id = max(fixed.values(), default=-1) + 1
    ids = np.empty(len(keys), dtype=np.int64)
    for k, key in enumerate(keys.tolist()):  # keys are sorted by (season, TeamID)
        if key in fixed:
            ids[k] = fixed[key]
        else:
            ids[k] = next_id
            next_id += 1
    if len(np.unique(ids)) != len(ids):  # pragma: no cover - guarded by construction
        raise DataError("two team-seasons received the same id", path=display)

    n = len(season)
    team_ids = ids[inverse]
    w_id, l_id = team_ids[:n], team_ids[n:]
    w_score, l_score = results.w_score[keep], results.l_score[keep]
    w_home = results.w_home[keep]

    def interleave(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.empty(2 * n, dtype=np.int64)
        out[0::2], out[1::2] = a, b
        return out

    games = Games.from_scores(
        interleave(season, season),
        interleave(w_id, l_id),
        interleave(l_id, w_id),
        interleave(w_score, l_score),
        interleave(l_score, w_score),
        home=interleave(w_home, -w_home),
    )
    id_map = {(int(k // _KEY_BASE), int(k % _KEY_BASE)): int(i) for k, i in zip(keys, ids, strict=True)}
    in_table = sum(1 for key in matched if key in id_map)
    table = SeasonTable(
        games=games,
        n_teams=int(ids.max()) + 1,
        id_map=id_map,
        id_scheme=scheme,
        n_games=n,
        n_team_seasons=len(keys),
        n_tourney_team_seasons=in_table,
        n_ambiguous_resolved=n_resolved,
        seasons=(int(season.min()), int(season.max())),
    )
    logger.info(
        "season table %d-%d: %d games, %d rows, %d team-seasons, n_teams %d, ids %s "
        "(%d tournament team-seasons, %d ambiguous games resolved)",
        *table.seasons,
        table.n_games,
        len(games),
        table.n_team_seasons,
        table.n_teams,
        scheme,
        in_table,
        n_resolved,
    )
    return table


# ---------------------------------------------------------------------------------------------
# Simulator
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SimulatedSeason:
    """A simulated games table and the truth behind it.

    Attributes:
        games: Two rows per game (both views, adjacent), course schema without ``seed_diff``.
        strengths: True strength of each team-season, indexed by id.
        n_teams: Number of team-seasons (ids are ``0..n_teams-1``).
        home_advantage: Points added for playing at home.
        noise_sd: Standard deviation of the per-game noise.
        irreducible_mae: Mean absolute error of the true model on these rows,
            ``mean |score_diff - (s[team_1] - s[team_2] + home_advantage * home)|``; about
            ``noise_sd * sqrt(2 / pi)`` (plus a little from rounding to whole points).
    """

    games: Games
    strengths: np.ndarray
    n_teams: int
    home_advantage: float
    noise_sd: float
    irreducible_mae: float


def _schedule(rng: np.random.Generator, n_teams: int, n_rounds: int) -> np.ndarray:
    """Pairs of team indices: ``n_rounds`` random rounds in which every team plays once
    (one team sits each round out when ``n_teams`` is odd)."""
    half = n_teams // 2
    rounds = [rng.permutation(n_teams)[: 2 * half].reshape(half, 2) for _ in range(n_rounds)]
    return np.concatenate(rounds) if rounds else np.empty((0, 2), dtype=np.int64)


def simulate_season(
    *,
    n_seasons: int = 5,
    teams_per_season: int = 60,
    games_per_team: int = 30,
    home_advantage: float = 3.0,
    strength_sd: float = 8.0,
    noise_sd: float = 11.0,
    seed: int = 0,
    first_season: int = 2001,
    neutral_fraction: float = 0.1,
) -> SimulatedSeason:
    """Draw seasons of games from a team-strength model with a known answer.

    Model: every team-season has a strength ``s ~ N(0, strength_sd)``, drawn independently
    per season, with id ``season_index * teams_per_season + team``. Each season has
    ``games_per_team`` rounds; in each round the teams are paired at random (so each team
    plays ``games_per_team`` games, one fewer sits out per round if the count is odd). A game
    of team ``i`` against ``j`` is neutral with probability ``neutral_fraction``, else ``i``
    is at home or away with equal chance (``h`` = 0, 1 or -1). The margin is
    ``x = s_i - s_j + home_advantage * h + e`` with ``e ~ N(0, noise_sd)``, rounded to whole
    points; a rounded margin of 0 becomes +1 or -1 by the sign of ``x`` (an overtime win; no
    ties). The loser scores ``round(b - |d| / 2)`` with ``b ~ N(70, 6)``, at least 20, and
    the winner that plus ``|d|``, so ``score_1 - score_2 == score_diff`` exactly.

    Args:
        n_seasons: Number of seasons.
        teams_per_season: Teams in each season.
        games_per_team: Rounds per season (games per team).
        home_advantage: Points for playing at home.
        strength_sd: Standard deviation of team strengths.
        noise_sd: Standard deviation of the per-game noise.
        seed: Seed of the random generator; equal seeds give identical arrays.
        first_season: Label of the first season.
        neutral_fraction: Share of games on a neutral court.

    Raises:
        ConfigError: a count is below its minimum, or a scale or fraction is out of range.
    """
    if n_seasons < 1 or teams_per_season < 2 or games_per_team < 1:
        raise ConfigError(
            "need n_seasons >= 1, teams_per_season >= 2 and games_per_team >= 1, got "
            f"{n_seasons}, {teams_per_season}, {games_per_team}"
        )
    if strength_sd < 0 or noise_sd < 0:
        raise ConfigError(f"standard deviations must be >= 0, got {strength_sd}, {noise_sd}")
    if not 0.0 <= neutral_fraction <= 1.0:
        raise ConfigError(f"neutral_fraction must be in [0, 1], got {neutral_fraction}")

    rng = np.random.default_rng(seed)
    n_teams = n_seasons * teams_per_season
    strengths = rng.normal(0.0, strength_sd, size=n_teams)
    pairs = np.concatenate(
        [_schedule(rng, teams_per_season, games_per_team) + k * teams_per_season for k in range(n_seasons)]
    ).astype(np.int64)
    n_games = len(pairs)
    i, j = pairs[:, 0], pairs[:, 1]
    season = first_season + i // teams_per_season
    u = rng.random(n_games)
    home = np.where(u < neutral_fraction, 0, np.where(u < (1 + neutral_fraction) / 2, 1, -1))
    expected = strengths[i] - strengths[j] + home_advantage * home
    margin = expected + rng.normal(0.0, noise_sd, size=n_games)
    diff = np.rint(margin).astype(np.int64)
    diff[diff == 0] = np.where(margin[diff == 0] >= 0, 1, -1)
    loser = np.maximum(np.rint(rng.normal(70.0, 6.0, n_games) - np.abs(diff) / 2), 20).astype(np.int64)
    winner = loser + np.abs(diff)
    score_i = np.where(diff > 0, winner, loser)
    score_j = np.where(diff > 0, loser, winner)

    def interleave(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.empty(2 * n_games, dtype=np.result_type(a, b))
        out[0::2], out[1::2] = a, b
        return out

    games = Games.from_scores(
        interleave(season, season),
        interleave(i, j),
        interleave(j, i),
        interleave(score_i, score_j),
        interleave(score_j, score_i),
        home=interleave(home, -home),
    )
    mae = float(np.mean(np.abs(diff - expected))) if n_games else 0.0
    logger.debug("simulated %d games among %d team-seasons", n_games, n_teams)
    return SimulatedSeason(
        games=games,
        strengths=strengths,
        n_teams=n_teams,
        home_advantage=float(home_advantage),
        noise_sd=float(noise_sd),
        irreducible_mae=mae,
    )
