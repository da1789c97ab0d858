"""The README's Python runs as written, and what it says about loading towers is true."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import siamese
from siamese.index import Index

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def _run(code: str, *, cwd: Path | None = None, args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_every_python_block_of_the_readme_runs(tmp_path):
    blocks = python_blocks()
    assert len(blocks) >= 2
    # the blocks that load idx/sick find a small index of the same kind there
    texts = ["a man plays a guitar", "a woman slices an onion", "two dogs run", "a cat sleeps"]
    tower = siamese.text_tower(texts, units=8, embedding_dim=8, seed=0)
    tower.save(tmp_path / "tower-for-idx.keras")
    Index.build(tower, texts, tower_path=tmp_path / "tower-for-idx.keras", progress=False).save(
        tmp_path / "idx" / "sick"
    )
    for block in blocks:
        proc = _run(block, cwd=tmp_path)
        assert proc.returncode == 0, f"README block failed:\n{block}\n{proc.stderr[-3000:]}"
    assert (tmp_path / "model.keras").is_file() and (tmp_path / "tower.keras").is_file()


@pytest.mark.slow  # fresh Python processes
def test_only_max_pooled_text_towers_need_the_toolkit_to_load(tmp_path):
    texts = ["a man plays a guitar", "two dogs run"]
    for pooling in ("last", "mean", "max"):
        siamese.text_tower(texts, units=4, embedding_dim=4, sequence_pooling=pooling).save(
            tmp_path / f"{pooling}.keras"
        )
    siamese.image_tower((8, 8, 1), filters=(4,), embedding_dim=4).save(tmp_path / "image.keras")
    code = textwrap.dedent(
        """
        import sys, keras
        for path in sys.argv[1:]:
            try:
                keras.saving.load_model(path)
            except Exception as exc:
                print(type(exc).__name__)
            else:
                print("loaded")
        """
    )
    names = ("last", "mean", "max", "image")
    proc = _run(code, args=tuple(str(tmp_path / f"{name}.keras") for name in names))
    plain = dict(zip(names, proc.stdout.split(), strict=True))
    assert plain == {"last": "loaded", "mean": "loaded", "max": plain["max"], "image": "loaded"}
    assert plain["max"] != "loaded"  # as the README says: import siamese first
    tower = siamese.load_tower(tmp_path / "max.keras")
    assert np.isfinite(siamese.embed(tower, texts)).all()


# ---------------------------------------------------------------------- the README's commands

#: Lines of the README's shell blocks that are not the toolkit's commands (installing, the
#: test suite itself, the linter), that need what a test machine has not (a Ray cluster,
#: GPUs, several hosts; tests/test_distribute.py runs those commands on logical CPU devices
#: and on 127.0.0.1), or that serve until stopped: not run here.
NOT_RUN = (
    "pip install",
    "pytest",
    "SIAMESE_FUZZ=",
    "SIAMESE_DATA_DIR=",
    "ruff ",
    "ray start",
    "siamese-train --task text-pairs --distribute",
    "TF_CONFIG=",
    "tensorboard ",  # servers that run until stopped: tests/test_serve.py starts and stops its own
    "siamese-index serve",
    "curl ",
)


def shell_commands() -> list[list[str]]:
    """The toolkit commands of each ``bash`` block of the README, one list per block:
    continuation lines joined, comments dropped, and of ``pip install ... && CMD`` the CMD."""
    blocks = re.findall(r"^```bash\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)
    found = []
    for block in blocks:
        commands = []
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if "&&" in line:
                line = line.split("&&")[-1].strip()
            if line and not line.startswith(NOT_RUN):
                commands.append(line)
        found.append(commands)
    return found


def test_the_readme_has_toolkit_commands_to_run():
    commands = [command for block in shell_commands() for command in block]
    assert commands[0] == "siamese-train --task text-pairs --out runs/sick"  # the first line's job
    assert all(command.split()[0].startswith("siamese-") for command in commands), commands
    assert len(commands) >= 15


def _shoe(path: Path, data_dir: Path) -> None:
    """A Fashion-MNIST test image of a sneaker as a PNG file (the README's ``shoe.png``)."""
    from PIL import Image

    from siamese.datasets.images import read_fashion_mnist

    test = read_fashion_mnist("test")
    sneaker = int(np.flatnonzero(np.asarray(test.labels) == 7)[0])
    Image.fromarray(np.asarray(test.images[sneaker]).squeeze().astype(np.uint8)).save(path)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the commands block trains 10 runs: ~9 minutes on an idle 2-core machine
@pytest.mark.parametrize("block", [1, 2], ids=["searching", "commands"])
def test_the_readme_commands_run_as_written(block, tmp_path, data_dir, monkeypatch):
    """Each toolkit command of the README's blocks, in order, on the staged data, with
    ``--epochs 1`` added to every training command (so a block takes minutes, not hours)."""
    monkeypatch.setenv("SIAMESE_DATA_DIR", str(data_dir))
    if block == 2:  # its first training run and the commands it prints come first
        first = shell_commands()[0][0]
        proc = subprocess.run(
            [*shlex.split(first), "--epochs", "1"], cwd=tmp_path, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        printed = proc.stdout.split("next: search with the run's tower:\n")[1].splitlines()
        assert [line.strip() for line in printed][:2] == [
            "siamese-index build --run runs/sick --input sick --out idx/sick",
            'siamese-index query --index idx/sick "A man is playing a guitar" -k 5',
        ]
        _shoe(tmp_path / "shoe.png", data_dir)
    for command in shell_commands()[block]:
        if block == 2 and command == shell_commands()[0][0]:
            continue  # trained above
        args = shlex.split(command)
        if args[0] == "siamese-train":
            args += ["--epochs", "1"]
        proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
        if args[:2] == ["siamese-index", "query"]:
            assert proc.stdout.count("\n") >= 5, proc.stdout  # five hits
