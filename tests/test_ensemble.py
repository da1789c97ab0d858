"""Ensembles: the layer arithmetic, and ``siamese-train --task text-pairs --members N``."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import SMALL, eval_in_a_fresh_process, pairs_file, tagged_pairs_file, train_text_pairs

import siamese
from siamese import ensemble
from siamese.encode import embed
from siamese.metrics import evaluators as evaluation
from siamese.models import build_siamese, load_model, load_tower, tower_of
from siamese.tasks import text_pairs
from siamese.tasks.text_pairs import TextOptions
from siamese.towers import text_tower
from siamese.training import RunConfig, RunDir

TEXTS = ["a cat sat", "a dog ran", "the man plays guitar", "a woman cooks food", "two dogs"]


def _members(heads=("concat", "concat"), units=(4, 6)):
    models = []
    for k, (head, width) in enumerate(zip(heads, units, strict=True)):
        tower = text_tower(TEXTS, vocab_size=50, embedding_dim=8, units=width, sequence_pooling="max", seed=k)
        options = {"hidden_units": 3} if head == "concat" else {}
        models.append(build_siamese(tower, head, **options))
    return models


@pytest.mark.parametrize("heads", [("concat", "concat"), ("abs-diff", "manhattan", "concat")])
def test_the_ensemble_scores_the_mean_and_encodes_the_concatenation(heads, tmp_path):
    models = _members(heads, units=(4, 6, 5)[: len(heads)])
    a, b = TEXTS, TEXTS[::-1]
    alone = [evaluation.pair_outputs(model, a, b) for model in models]
    joined = ensemble.ensemble_model(models)
    np.testing.assert_allclose(evaluation.pair_outputs(joined, a, b), np.mean(alone, axis=0), rtol=1e-6)
    encoding = embed(tower_of(joined), TEXTS)
    expected = np.concatenate([embed(tower_of(model), TEXTS) for model in models], axis=1)
    np.testing.assert_allclose(encoding, expected, rtol=1e-6)
    assert encoding.shape[1] == sum((4, 6, 5)[: len(heads)])
    # Saved, the pair model and its tower reload (safe mode) and compute the same.
    joined.save(tmp_path / "model.keras")
    tower_of(joined).save(tmp_path / "tower.keras")
    again = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(evaluation.pair_outputs(again, a, b), np.mean(alone, axis=0), rtol=1e-6)
    np.testing.assert_allclose(embed(load_tower(tmp_path / "tower.keras"), TEXTS), expected, rtol=1e-6)


def test_a_member_counts_once_and_its_weights_are_shared_not_copied():
    models = _members()
    joined = ensemble.ensemble_model(models)
    assert joined.count_params() == sum(model.count_params() for model in models)
    tower_of(models[0]).get_layer("embedding").embeddings.assign(
        np.zeros_like(tower_of(models[0]).get_layer("embedding").embeddings)
    )
    encoding = embed(tower_of(joined), TEXTS)
    np.testing.assert_allclose(encoding[:, :4], embed(tower_of(models[0]), TEXTS))


def test_members_of_different_inputs_are_refused():
    image = build_siamese(siamese.image_tower((8, 8, 1), filters=(2,), embedding_dim=3), "abs-diff")
    with pytest.raises(ValueError, match="different inputs"):
        ensemble.ensemble_model([_members()[0], image])
    with pytest.raises(ValueError, match="at least one"):
        ensemble.ensemble_model([])


@pytest.mark.slow
def test_members_train_as_runs_of_their_own_and_are_saved_as_one(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv")
    out = tmp_path / "run"
    result = train_text_pairs(
        ["--data", str(data), "--epochs", "2", "--members", "2", "--out", str(out), *SMALL]
    )
    assert result.exit_code == 0, result.output
    members = [RunDir(out / "members" / str(k)) for k in range(2)]
    member_configs = [RunConfig.from_dict(json.loads(m.config.read_text()), TextOptions) for m in members]
    assert [c.seed for c in member_configs] == [0, 1] and all(m.is_complete() for m in members)
    config = RunConfig.from_dict(json.loads((out / "config.json").read_text()), TextOptions)
    # Every member holds out the ensemble's dev pairs (the file's dev is carved by a seed): no
    # member trains on the pairs the ensemble is chosen and scored on.
    ensemble_dev = text_pairs.load_splits(config)["dev"]
    assert [text_pairs.load_splits(c)["dev"].a == ensemble_dev.a for c in member_configs] == [True, True]
    assert config.options.members == 2 and config.objective == "regression"
    # The run's model is the mean of its members' models, and its metrics are that model's.
    splits = text_pairs.load_splits(config)
    dev = splits["dev"]
    alone = [evaluation.pair_outputs(load_model(m.model), dev.a, dev.b) for m in members]
    saved = load_model(out / "model.keras")
    np.testing.assert_allclose(
        evaluation.pair_outputs(saved, dev.a, dev.b), np.mean(alone, axis=0), rtol=1e-5
    )
    metrics = json.loads((out / "metrics.json").read_text())
    truth = evaluation.graded_metrics(evaluation.to_scale(np.mean(alone, axis=0), dev.scale), dev.labels)
    assert metrics["dev"]["pearson"] == pytest.approx(truth["pearson"], abs=1e-5)
    history = json.loads((out / "history.json").read_text())
    for k, member in enumerate(members):
        own = json.loads(member.history.read_text())
        assert history[f"member_{k}/loss"] == own["loss"]
    assert siamese.load_tower(out).outputs[0].shape[-1] == 16
    # The concatenated tower indexes like any other: each sentence finds itself first.
    sentences = sorted(set(dev.a))
    index = siamese.Index.build(None, sentences, tower_path=out / "tower.keras", progress=False)
    assert index.dim == 16
    assert [hits[0].payload for hits in index.search(sentences, k=1)] == sentences
    # siamese-eval in a fresh process reproduces the run's figures.
    shown = eval_in_a_fresh_process(out, "dev")
    assert float(shown["pearson"]) == pytest.approx(metrics["dev"]["pearson"], abs=1e-4)


@pytest.mark.slow
def test_an_ensemble_stopped_in_a_member_resumes_to_the_uninterrupted_run(tmp_path, monkeypatch):
    from siamese.training import TrainingError

    data = pairs_file(tmp_path / "pairs.tsv")
    args = ["--data", str(data), "--epochs", "3", "--patience", "0", "--members", "2", *SMALL]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert train_text_pairs([*args, "--out", str(whole)]).exit_code == 0
    real = text_pairs.fit_epochs

    def dies_in_the_second_member(model, epoch_data, dev_data, run, config, **kwargs):
        if run.path.name != "1":
            return real(model, epoch_data, dev_data, run, config, **kwargs)
        real(model, epoch_data, dev_data, run, dataclasses.replace(config, epochs=1), **kwargs)
        raise TrainingError("stopped")

    monkeypatch.setattr(text_pairs, "fit_epochs", dies_in_the_second_member)
    stopped = train_text_pairs([*args, "--out", str(split)], catch=True)
    assert stopped.exit_code == 2 and not (split / "metrics.json").exists()
    assert RunDir(split / "members" / "0").is_complete()
    assert RunDir(split / "members" / "1").read_state()["epoch"] == 1
    monkeypatch.setattr(text_pairs, "fit_epochs", real)
    resumed = train_text_pairs(["--out", str(split), "--epochs", "3", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    a = json.loads((whole / "history.json").read_text())
    b = json.loads((split / "history.json").read_text())
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-4)
    ma = json.loads((whole / "metrics.json").read_text())
    mb = json.loads((split / "metrics.json").read_text())
    np.testing.assert_allclose(mb["dev"]["pearson"], ma["dev"]["pearson"], rtol=1e-4)


@pytest.mark.slow
def test_each_member_starts_from_its_own_member_of_an_ensemble_init_tower(tmp_path):
    graded = pairs_file(tmp_path / "graded.tsv")
    binary = pairs_file(tmp_path / "binary.tsv", n=80, binary=True, seed=1)
    first, second = tmp_path / "first", tmp_path / "second"
    pooled = ["--rnn", "bilstm", "--sequence-pooling", "max"]
    assert (
        train_text_pairs(
            ["--data", str(graded), "--epochs", "1", "--members", "2", "--out", str(first), *SMALL, *pooled]
        ).exit_code
        == 0
    )
    # Three members from two: member 2 starts from member 0 again. A tiny learning rate keeps
    # the loaded weights.
    args = ["--data", str(binary), "--epochs", "1", "--members", "3", "--init-tower", str(first)]
    result = train_text_pairs([*args, "--out", str(second), "--learning-rate", "1e-9", "--batch-size", "16"])
    assert result.exit_code == 0, result.output
    for k, source in ((0, 0), (1, 1), (2, 0)):
        before = siamese.load_tower(first / "members" / str(source))
        after = siamese.load_tower(second / "members" / str(k))
        for old, new in zip(before.get_weights(), after.get_weights(), strict=True):
            np.testing.assert_allclose(old, new, atol=1e-5)
    # A single run cannot start from the ensemble's concatenated tower: one line says what to do.
    single = train_text_pairs(
        ["--data", str(binary), "--init-tower", str(first), "--out", str(tmp_path / "s")], catch=True
    )
    assert single.exit_code == 2 and "is an ensemble run" in single.output
    assert len(single.output.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


@pytest.mark.slow
def test_a_refit_ensemble_reports_the_mean_of_its_members_dev_figures(tmp_path):
    data = tagged_pairs_file(tmp_path / "pairs.tsv")
    out = tmp_path / "run"
    refit = ["--epochs", "3", "--patience", "0", "--learning-rate", "0.01", "--refit", *SMALL]
    result = train_text_pairs(["--data", str(data), "--members", "2", "--out", str(out), *refit])
    assert result.exit_code == 0, result.output
    devs = [json.loads((out / "members" / str(k) / "metrics.json").read_text())["dev"] for k in range(2)]
    assert all((out / "members" / str(k) / "refit" / "history.json").is_file() for k in range(2))
    dev = json.loads((out / "metrics.json").read_text())["dev"]
    assert dev["pearson"] == pytest.approx(np.mean([d["pearson"] for d in devs]), abs=1e-9)
    assert dev["n"] == devs[0]["n"]


def test_members_must_be_a_positive_count(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv")
    result = train_text_pairs(
        ["--data", str(data), "--members", "0", "--out", str(tmp_path / "r")], catch=True
    )
    assert result.exit_code == 2 and "--members" in result.output and not (tmp_path / "r").exists()
    with pytest.raises(siamese.errors.ConfigError, match="members"):
        RunConfig(task="text-pairs", data="sick", options=TextOptions(members=0))


def test_a_bad_start_is_refused_before_any_folder(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv")
    starts = (
        (["--init-tower", str(tmp_path / "nowhere")], "not found"),
        (["--word-vectors", str(tmp_path / "none.txt")], "not a file"),
        (["--init-tower", str(tmp_path / "unfinished")], "not a finished run"),
    )
    (tmp_path / "unfinished" / "members" / "0").mkdir(parents=True)  # an ensemble that never ended
    for k, (start, words) in enumerate(starts):
        out = tmp_path / f"r{k}"
        result = train_text_pairs(
            ["--data", str(data), "--members", "2", *start, "--out", str(out)], catch=True
        )
        assert result.exit_code == 2 and words in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and not out.exists()
