"""Run folders written before the tasks became plugins (config.json with every task's section)
still resume, evaluate and index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import eval_in_a_fresh_process, pairs_file, train_text_pairs

from siamese import cli

LEGACY_CONFIG = Path(__file__).parent / "data" / "legacy_text_run_config.json"


@pytest.mark.slow
def test_a_legacy_run_folder_resumes_evaluates_and_indexes(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv")
    run = tmp_path / "run"
    run.mkdir()
    legacy = json.loads(LEGACY_CONFIG.read_text())
    assert {"text", "image", "basketball"} <= set(legacy)  # as the earlier version wrote every config
    legacy["data"] = str(data)
    (run / "config.json").write_text(json.dumps(legacy))

    # The folder holds the config alone (killed before its first epoch ended): --resume runs it.
    first = train_text_pairs(["--out", str(run), "--resume", "--epochs", "2"], catch=True)
    assert first.exit_code == 0, first.output
    saved = json.loads((run / "config.json").read_text())
    assert "image" not in saved and "basketball" not in saved
    assert {k: saved["text"][k] for k in legacy["text"]} == legacy["text"]  # new settings at their defaults
    assert saved["head"] == "concat" and saved["epochs"] == 2

    # Extended by one epoch from its checkpoint.
    more = train_text_pairs(["--out", str(run), "--resume", "--epochs", "3"], catch=True)
    assert more.exit_code == 0, more.output
    assert len(json.loads((run / "history.json").read_text())["loss"]) == 3

    metrics = json.loads((run / "metrics.json").read_text())
    # siamese-eval prints 4 decimals: equal up to that rounding (a relative tolerance failed
    # once the figure was near 0: 0.0501 printed for 0.050125)
    np.testing.assert_allclose(
        eval_in_a_fresh_process(run, "dev")["pearson"], metrics["dev"]["pearson"], rtol=0, atol=5.1e-5
    )

    index = tmp_path / "idx"
    built = CliRunner().invoke(
        cli.index, ["build", "--run", str(run), "--input", str(data), "--out", str(index)]
    )
    assert built.exit_code == 0, built.output
    query = data.read_text().splitlines()[1].split("\t")[0]
    found = CliRunner().invoke(cli.index, ["query", "--index", str(index), query, "-k", "1", "--json"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)[0]["payload"] == query
