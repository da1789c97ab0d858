"""The README's Python runs as written, and what it says about loading towers is true."""

from __future__ import annotations

import re
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
