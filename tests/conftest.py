"""Shared fixtures: seeds, the real-data folder, and running code in a fresh process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(1234)


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then closed again)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def _offline_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return str(tmp_path_factory.mktemp("cache")), f"http://127.0.0.1:{closed_port()}"


@pytest.fixture(autouse=True)
def _no_downloads_from_the_internet(monkeypatch: pytest.MonkeyPatch, _offline_cache: tuple[str, str]) -> None:
    """Tests never reach the internet nor the user's cache: downloads go to an address on
    127.0.0.1 where nothing listens (a test that serves files points the mirror at them)."""
    cache, mirror = _offline_cache
    monkeypatch.setenv("SIAMESE_CACHE_DIR", cache)
    monkeypatch.setenv("SIAMESE_DATA_MIRROR", mirror)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real datasets folder from ``SIAMESE_DATA_DIR``; skips when it is absent."""
    value = os.environ.get("SIAMESE_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("real datasets not available: SIAMESE_DATA_DIR is unset or not a folder")
    return Path(value)


def run_python(code: str, *, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python process and fail the test if it exits non-zero."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=path)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stderr[-3000:]}"
    return proc


# ---------------------------------------------------------------------- small text-pair runs

WORDS = "man woman dog cat plays runs eats guitar ball food park house red blue small big".split()
SMALL = [
    *("--units", "8", "--embedding-dim", "8", "--batch-size", "16", "--sequence-length", "8"),
    *("--word-vectors", "none", "--rnn", "lstm", "--sequence-pooling", "last"),
]


def index_files(idx: Path) -> Path:
    """The folder holding a saved index's files: the version its ``CURRENT`` names."""
    from siamese.io import current_version

    version = current_version(idx)
    assert version is not None, f"{idx} is not a versioned index folder"
    return version


def unversion(idx: Path) -> None:
    """Turn a saved index folder into the layout of earlier releases (its files at the top)."""
    version = index_files(idx)
    for path in version.iterdir():
        os.rename(path, idx / path.name)
    version.rmdir()
    (idx / "CURRENT").unlink()


def pairs_file(path, n=120, binary=False, seed=0):
    """A TSV of ``n`` seeded sentence pairs over :data:`WORDS`: graded 1-5 by words shared, or
    binary (1 when 3 or more of 5 words are shared)."""
    rng = np.random.default_rng(seed)
    lines = ["sentence1\tsentence2\tlabel"]
    for _ in range(n):
        a = list(rng.choice(WORDS, 5))
        keep = int(rng.integers(0, 6))
        b = a[:keep] + list(rng.choice(WORDS, 5 - keep))
        score = keep / 5 * 4 + 1
        label = str(int(keep >= 3)) if binary else f"{score:.2f}"
        lines.append(f"{' '.join(a)}\t{' '.join(b)}\t{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train_text_pairs(args, catch=False):
    """``siamese-train --task text-pairs ARGS`` through click's test runner."""
    from siamese import cli

    result = CliRunner().invoke(cli.train, ["--task", "text-pairs", *args], catch_exceptions=catch)
    return result


def train_killed_at(phase: str, args: list[str], timeout: float = 300) -> None:
    """``siamese-train ARGS`` in a new process that kills itself at ``phase`` (the test hook
    of :mod:`siamese.faults`); fails unless the kill landed there."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", SIAMESE_KILL_AT=phase)
    proc = subprocess.run(
        [sys.executable, "-c", "from siamese.cli import train; train()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    # only the hook sends SIGKILL: this return code says the kill landed at ``phase``
    assert proc.returncode == -signal.SIGKILL, (phase, proc.returncode, proc.stderr[-3000:])


def eval_in_a_fresh_process(run, split, *extra):
    """``siamese-eval --run RUN --split SPLIT [EXTRA]`` in a new Python process: the figures it
    prints."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from siamese.cli import evaluate; evaluate()",
            "--run",
            str(run),
            "--split",
            split,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(li for li in proc.stdout.splitlines() if li.startswith(f"{split}:"))
    return {k: float(v) for k, v in (part.strip().split(" ") for part in line[len(split) + 1 :].split(","))}


def without_speed(figures: dict) -> dict:
    """Figures without the timing ones (queries per second), which differ from run to run."""
    return {k: v for k, v in figures.items() if not k.endswith("_per_second")}


def tagged_pairs_file(path, n=160):
    """Graded pairs whose second sentences each end in a word of their own (``pairN``), so a
    vocabulary shows which pairs it was adapted on."""
    rng = np.random.default_rng(0)
    lines = ["sentence1\tsentence2\tlabel"]
    for i in range(n):
        a = list(rng.choice(WORDS, 5))
        keep = int(rng.integers(0, 6))
        b = a[:keep] + list(rng.choice(WORDS, 5 - keep))
        lines.append(f"{' '.join(a)}\t{' '.join(b)} pair{i}\t{keep / 5 * 4 + 1:.2f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------- serialisation round trips


@dataclass(eq=False)
class RoundTrip:
    """One registered object to round-trip.

    Attributes:
        obj: The object (a layer, head, loss or metric).
        model: A model that calls it (layers and heads), or ``None``: a loss is called on
            ``inputs`` as ``(y_true, y_pred)``, a metric updated with them.
        inputs: The inputs its outputs are compared on.
    """

    obj: Any
    model: Any
    inputs: list[np.ndarray]


def _round_trip_outputs(obj: Any, model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    if model is not None:
        out = model(inputs if len(inputs) > 1 else inputs[0], training=False)
        return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
    if isinstance(obj, keras.losses.Loss):
        return [np.asarray(obj(*inputs))]
    obj.reset_state()
    obj.update_state(*inputs)
    return [np.asarray(obj.result())]


def assert_round_trips(cases: list[RoundTrip], tmp_path: Path) -> None:
    """Each case's object survives ``get_config`` → ``from_config`` (the same config, the same
    outputs with the same weights), and a save loaded in Keras's safe mode in a fresh process
    (``.keras`` files for models, the serialised config for a loss or metric) gives the same
    outputs."""
    import json

    for number, case in enumerate(cases):
        config = case.obj.get_config()
        clone = type(case.obj).from_config(config)
        assert clone.get_config() == config, type(case.obj).__name__
        expected = _round_trip_outputs(case.obj, case.model, case.inputs)
        if case.model is not None:
            copy = keras.Model.from_config(case.model.get_config())
            copy.set_weights(case.model.get_weights())
            got = _round_trip_outputs(None, copy, case.inputs)
            case.model.save(tmp_path / f"{number}.keras")
        else:
            got = _round_trip_outputs(clone, None, case.inputs)
            (tmp_path / f"{number}.json").write_text(
                json.dumps(keras.saving.serialize_keras_object(case.obj))
            )
        for a, b in zip(expected, got, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6, err_msg=type(case.obj).__name__)
        np.savez(tmp_path / f"{number}.inputs.npz", *case.inputs)
        np.savez(tmp_path / f"{number}.expected.npz", *expected)
    run_python(
        f"""
        import json
        from pathlib import Path

        import keras
        import numpy as np

        import siamese  # registers the toolkit's classes

        folder = Path({str(tmp_path)!r})
        for number in range({len(cases)}):
            with np.load(folder / f"{{number}}.inputs.npz") as saved:
                inputs = [saved[k] for k in sorted(saved.files, key=lambda k: int(k.split("_")[1]))]
            model_file = folder / f"{{number}}.keras"
            if model_file.is_file():
                model = keras.saving.load_model(model_file, safe_mode=True)
                out = model(inputs if len(inputs) > 1 else inputs[0], training=False)
                outputs = out if isinstance(out, (list, tuple)) else [out]
            else:
                config = json.loads((folder / f"{{number}}.json").read_text())
                obj = keras.saving.deserialize_keras_object(config, safe_mode=True)
                if isinstance(obj, keras.losses.Loss):
                    outputs = [obj(*inputs)]
                else:
                    obj.update_state(*inputs)
                    outputs = [obj.result()]
            np.savez(folder / f"{{number}}.loaded.npz", *[np.asarray(o) for o in outputs])
        """
    )
    for number, case in enumerate(cases):
        with (
            np.load(tmp_path / f"{number}.expected.npz") as want,
            np.load(tmp_path / f"{number}.loaded.npz") as got,
        ):
            assert len(want.files) == len(got.files)
            for key in want.files:
                np.testing.assert_allclose(
                    got[key], want[key], rtol=1e-6, atol=1e-6, err_msg=type(case.obj).__name__
                )
