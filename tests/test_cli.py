from __future__ import annotations

import importlib.metadata
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from siamese import cli


@pytest.mark.parametrize(
    "command, args, words",
    [
        (cli.train, ["--help"], ["--task", "Examples:", "siamese-train --task text-pairs"]),
        (cli.index, ["--help"], ["build", "query", "info", "Examples:"]),
        (cli.index, ["build", "--help"], ["--run", "--input", "--out"]),
        (cli.evaluate, ["--help"], ["--run", "Examples:", "siamese-eval --run"]),
    ],
)
def test_help_has_examples(command, args, words):
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    for word in words:
        assert word in result.output


def test_bad_task_is_one_line_and_exit_2():
    result = CliRunner().invoke(cli.train, ["--task", "poetry"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, option",
    [(["--lr-factor", "1.5"], "--lr-factor"), (["--lr-patience", "-1"], "--lr-patience")],
)
def test_bad_learning_rate_plateau_options_are_refused(tmp_path, args, option):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli.train, ["--task", "text-pairs", *args, "--out", str(out)])
    assert result.exit_code == 2
    assert option in result.output and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.slow  # a process each
@pytest.mark.parametrize("script", ["siamese-train", "siamese-index", "siamese-eval"])
def test_console_scripts_are_installed(script):
    try:
        importlib.metadata.distribution("siamese")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the package is not pip-installed here (run: pip install -e .)")
    path = shutil.which(script)
    assert path is not None, f"{script} is not on PATH although siamese is installed"
    proc = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Examples:" in proc.stdout


def test_an_unexpected_failure_is_one_line_naming_the_traceback_file(tmp_path, monkeypatch):
    from siamese.tasks import text_pairs

    def broken(*args, **kwargs):
        raise TypeError("a bug, somewhere deep")

    monkeypatch.setattr(text_pairs.TextPairsTask, "prepare", broken)
    result = CliRunner().invoke(cli.train, ["--task", "text-pairs", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert "unexpected TypeError: a bug, somewhere deep" in line and "Traceback" not in result.output
    log = line.split("the full traceback is in ")[1].split(";")[0]
    assert "Traceback (most recent call last)" in open(log, encoding="utf-8").read()
    verbose = CliRunner().invoke(cli.train, ["--task", "text-pairs", "--out", str(tmp_path / "r2"), "-v"])
    assert isinstance(verbose.exception, TypeError)  # -v lets the traceback through
