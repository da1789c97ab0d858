"""Named datasets download for real, from a server on 127.0.0.1 that serves the staged files
at the paths of their public addresses (``$SIAMESE_DATA_MIRROR``)."""

from __future__ import annotations

import http.server
import importlib
import os
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import closed_port

from siamese import cli
from siamese.datasets.locate import SOURCES, md5sum
from siamese.errors import DatasetNotFoundError

# the module (siamese.datasets.locate is also the name of its main function)
locating = importlib.import_module("siamese.datasets.locate")

SICK = ("text/sick/SICK_train.txt", "text/sick/SICK_trial.txt", "text/sick/SICK_test_annotated.txt")


def _staged() -> Path:
    value = os.environ.get("SIAMESE_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("needs the staged datasets: set SIAMESE_DATA_DIR")
    return Path(value)


class _Mirror:
    """An HTTP server on 127.0.0.1 serving the staged files at ``/HOST/PATH`` of their
    addresses; ``corrupt`` names files served with one byte changed."""

    def __init__(self, staged: Path) -> None:
        self.files = {}
        for relative, source in SOURCES.items():
            parts = urllib.parse.urlsplit(source.url)
            self.files[f"/{parts.netloc}{parts.path}"] = (relative, staged / relative)
        self.staged = staged
        self.corrupt: set[str] = set()
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                mirror.requests.append(self.path)
                found = mirror.files.get(self.path)
                if found is None:
                    self.send_error(404)
                    return
                relative, path = found
                data = path.read_bytes()
                if relative in mirror.corrupt:
                    data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Mirror:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def mirror(monkeypatch, tmp_path):
    """A fresh, empty data folder and cache, and the mirror every download comes from."""
    staged = _staged()
    monkeypatch.setenv("SIAMESE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SIAMESE_CACHE_DIR", str(tmp_path / "cache"))
    with _Mirror(staged) as served:
        monkeypatch.setenv("SIAMESE_DATA_MIRROR", served.url)
        yield served


def _left(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_every_address_serves_the_staged_bytes_by_its_checksum():
    staged = _staged()
    for relative, source in SOURCES.items():
        path = staged / relative
        assert path.stat().st_size == source.size, relative
        assert md5sum(path) == source.md5, relative


@pytest.mark.slow
def test_a_fresh_data_folder_fills_and_the_main_job_runs(mirror, tmp_path):
    result = CliRunner().invoke(
        cli.train, ["--task", "text-pairs", "--epochs", "1", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 0, result.output
    assert _left(tmp_path / "data") == sorted(SICK)  # nothing else, no temporaries
    for relative in SICK:
        assert md5sum(tmp_path / "data" / relative) == SOURCES[relative].md5
    assert (tmp_path / "run" / "metrics.json").is_file()
    # read from the folder now, not downloaded again
    served = len(mirror.requests)
    assert locating.locate(SICK[0]) == tmp_path / "data" / SICK[0]
    assert len(mirror.requests) == served


def test_a_corrupted_download_is_refused_and_leaves_nothing(mirror, tmp_path):
    mirror.corrupt.add(SICK[1])
    with pytest.raises(DatasetNotFoundError, match="does not match its checksum") as info:
        locating.locate(SICK[1])
    assert "could not download" not in str(info.value)
    assert not (tmp_path / "data").exists() or _left(tmp_path / "data") == []
    result = CliRunner().invoke(
        cli.train, ["--task", "text-pairs", "--epochs", "1", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "checksum" in result.output
    assert SICK[1] not in _left(tmp_path / "data")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_a_killed_download_leaves_no_file_that_is_read_as_whole(mirror, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", SIAMESE_KILL_AT="download")
    code = f"from siamese.datasets import locate; locate({SICK[0]!r})"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]  # killed by the hook, mid-download
    folder = tmp_path / "data" / "text" / "sick"
    partial = list(folder.glob(".SICK_train.txt.download-*"))
    assert len(partial) == 1 and 0 < partial[0].stat().st_size < SOURCES[SICK[0]].size
    assert not (folder / "SICK_train.txt").exists()

    path = locating.locate(SICK[0])  # downloads it whole, and clears the dead download's file
    assert md5sum(path) == SOURCES[SICK[0]].md5
    assert [p.name for p in folder.iterdir()] == ["SICK_train.txt"]


def test_offline_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("SIAMESE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SIAMESE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SIAMESE_DATA_MIRROR", f"http://127.0.0.1:{closed_port()}")
    result = CliRunner().invoke(
        cli.train, ["--task", "text-pairs", "--epochs", "1", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "could not download" in lines[0] and "offline" in lines[0], lines
    assert "SICK_train.txt" in lines[0]
    assert not (tmp_path / "run").exists()
    for folder in (tmp_path / "data", tmp_path / "cache"):
        assert not folder.exists() or _left(folder) == []


def test_a_read_only_data_folder_is_read_and_downloads_go_to_the_cache(mirror, monkeypatch, tmp_path):
    data, cache = tmp_path / "data", tmp_path / "cache"
    (data / "text" / "sick").mkdir(parents=True)
    (data / SICK[0]).write_bytes((mirror.staged / SICK[0]).read_bytes())
    # root may write anywhere, so "read-only" is what the toolkit sees of the folder
    real = locating.writable
    monkeypatch.setattr(locating, "writable", lambda folder: folder != data and real(folder))
    assert locating.locate(SICK[0]) == data / SICK[0]  # read where it is
    assert locating.locate(SICK[1]) == cache / SICK[1]  # downloaded to the cache
    assert _left(data) == [SICK[0]]
    assert locating.locate(SICK[1]) == cache / SICK[1]  # found in the cache next time
