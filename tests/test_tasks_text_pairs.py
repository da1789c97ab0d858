"""siamese-train --task text-pairs and siamese-eval, end to end on small seeded data."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import (
    SMALL,
    WORDS,
    eval_in_a_fresh_process,
    pairs_file,
    tagged_pairs_file,
    train_killed_at,
    train_text_pairs,
    without_speed,
)

import siamese
from siamese import cli
from siamese.tasks import text_pairs
from siamese.tasks.text_pairs import TextOptions
from siamese.training import RunConfig, RunDir


def test_graded_run_writes_a_complete_folder(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv")
    out = tmp_path / "run"
    result = train_text_pairs(["--data", str(data), "--epochs", "2", "--out", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    for name in ("model.keras", "tower.keras", "config.json", "metrics.json", "history.json", "history.png"):
        assert (out / name).is_file(), name
    assert (out / "checkpoints" / "state.json").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"train", "dev"}
    assert {"pearson", "spearman", "mse"} <= set(metrics["dev"])
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 2 and len(history["val_pearson"]) == 2
    config = RunConfig.from_dict(json.loads((out / "config.json").read_text()), TextOptions)
    assert (config.objective, config.head, config.loss) == ("regression", "concat", "mse")
    assert config.head_hidden_units == 128 and config.patience == 4  # the text task's defaults
    assert config.options.units == 8
    assert "dev: pearson" in result.output
    # the index's cosine beside the head's score, and what to run next
    assert {"cosine_pearson", "cosine_spearman"} <= set(metrics["dev"])
    assert -1.0 <= metrics["dev"]["cosine_pearson"] <= 1.0
    assert f"siamese-index build --run {out} --input {data} --out idx/pairs" in result.output
    assert 'siamese-index query --index idx/pairs "A man is playing a guitar" -k 5' in result.output


def test_the_defaults_are_the_good_settings_and_word_vectors_can_be_turned_off(tmp_path):
    config = text_pairs.TASK.configure(RunConfig(task="text-pairs"))
    options = config.options
    assert (config.data, config.epochs, config.patience, config.batch_size) == ("sick", 30, 4, 32)
    assert (options.word_vectors, options.vectors_vocabulary) == ("glove-6b-50d", 100000)
    assert (options.rnn, options.sequence_pooling, options.embedding_dim) == ("bilstm", "max", None)
    graded = text_pairs.resolve(config, "graded")
    assert (graded.head, graded.head_hidden_units) == ("concat", 128)
    assert (
        text_pairs.resolve(config, "binary").head,
        text_pairs.resolve(config, "binary").head_hidden_units,
    ) == (
        "abs-diff",
        0,
    )
    assert TextOptions(word_vectors="none").word_vectors is None
    plain = text_pairs.resolve(dataclasses.replace(config, options=TextOptions(word_vectors=None)), "graded")
    assert plain.options.embedding_dim == text_pairs.PLAIN_EMBEDDING_DIM
    data = pairs_file(tmp_path / "pairs.tsv")
    out = tmp_path / "run"
    small = [arg for arg in SMALL if arg not in ("--word-vectors", "none")]  # vectors left on
    result = train_text_pairs(["--data", str(data), "--epochs", "1", "--out", str(out), *small], catch=True)
    assert result.exit_code == 2 and not out.exists()
    assert (
        "--embedding-dim 8 disagrees with the 50 dimensions of --word-vectors glove-6b-50d" in result.output
    )


def test_resume_without_epochs_keeps_the_runs_own(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv")
    out = tmp_path / "run"
    assert train_text_pairs(["--data", str(data), "--epochs", "1", "--out", str(out), *SMALL]).exit_code == 0
    again = train_text_pairs(["--data", str(data), "--out", str(out), "--resume", *SMALL])
    assert again.exit_code == 0, again.output
    assert json.loads((out / "config.json").read_text())["epochs"] == 1  # not the task's 30
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 1


def test_binary_run_reports_threshold_metrics(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv", binary=True)
    out = tmp_path / "run"
    result = train_text_pairs(["--data", str(data), "--epochs", "1", "--out", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    dev = json.loads((out / "metrics.json").read_text())["dev"]
    assert {"accuracy", "f1", "roc_auc", "average_precision", "threshold"} <= set(dev)
    assert 0.0 <= dev["accuracy"] <= 1.0


@pytest.mark.slow
def test_resume_matches_an_uninterrupted_run(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv")
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert (
        train_text_pairs(["--data", str(data), "--epochs", "3", "--out", str(whole), *SMALL]).exit_code == 0
    )
    assert (
        train_text_pairs(["--data", str(data), "--epochs", "1", "--out", str(split), *SMALL]).exit_code == 0
    )
    resumed = train_text_pairs(["--data", str(data), "--epochs", "3", "--out", str(split), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    a = json.loads((whole / "history.json").read_text())
    b = json.loads((split / "history.json").read_text())
    assert len(b["loss"]) == 3
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-4)
    ma = json.loads((whole / "metrics.json").read_text())
    mb = json.loads((split / "metrics.json").read_text())
    np.testing.assert_allclose(mb["dev"]["pearson"], ma["dev"]["pearson"], rtol=1e-4)


@pytest.mark.slow
def test_resume_with_dropout_repeats_the_masks_of_an_uninterrupted_run(tmp_path):
    # Keras does not save the state of a layer's dropout generator; the epoch loop sets it from
    # (seed, epoch), so the resumed run's epochs 2 and 3 draw the masks of the run that went on
    data = pairs_file(tmp_path / "pairs.tsv")

    def config(epochs):
        options = TextOptions(units=8, embedding_dim=8, sequence_length=8, dropout=0.5, word_vectors=None)
        return RunConfig(
            task="text-pairs",
            data=str(data),
            epochs=epochs,
            batch_size=16,
            patience=0,
            seed=1,
            options=options,
        )

    text_pairs.TASK.train(config(3), tmp_path / "whole", verbose=0)
    text_pairs.TASK.train(config(1), tmp_path / "split", verbose=0)
    text_pairs.TASK.train(config(3), tmp_path / "split", resume=True, verbose=0)
    a = json.loads((tmp_path / "whole" / "history.json").read_text())
    b = json.loads((tmp_path / "split" / "history.json").read_text())
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
    np.testing.assert_allclose(b["val_pearson"], a["val_pearson"], rtol=1e-5)


def test_a_new_run_refuses_to_overwrite_and_resume_needs_a_run(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv")
    out = tmp_path / "run"
    assert train_text_pairs(["--data", str(data), "--epochs", "1", "--out", str(out), *SMALL]).exit_code == 0
    again = train_text_pairs(["--data", str(data), "--epochs", "1", "--out", str(out), *SMALL], catch=True)
    assert again.exit_code == 2 and "--resume" in again.output
    # --resume where nothing was started (no folder) starts the run
    started = train_text_pairs(
        ["--data", str(data), "--epochs", "1", "--out", str(tmp_path / "new"), "--resume", *SMALL], catch=True
    )
    assert started.exit_code == 0, started.output
    assert (tmp_path / "new" / "metrics.json").is_file()


def test_resume_refuses_a_setting_that_differs_from_the_runs(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv")
    out = tmp_path / "run"
    first = ["--data", str(data), "--epochs", "1", "--out", str(out), "--split-seed", "3", *SMALL]
    assert train_text_pairs(first).exit_code == 0
    saved = (out / "config.json").read_text()
    for changed in (["--split-seed", "4"], ["--learning-rate", "0.5"], ["--units", "9"]):
        refused = train_text_pairs(["--data", str(data), "--out", str(out), "--resume", *changed], catch=True)
        assert refused.exit_code != 0 and changed[0] in refused.output, refused.output
        assert "only --epochs can change" in refused.output
        assert (out / "config.json").read_text() == saved  # nothing was touched
    # The run's own settings, given again, and more epochs: it goes on.
    again = train_text_pairs([*first[:3], "2", *first[4:], "--resume"], catch=True)
    assert again.exit_code == 0, again.output
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 2


@pytest.mark.slow
def test_eval_in_a_fresh_process_reproduces_the_run(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv", binary=True)
    out = tmp_path / "run"
    assert train_text_pairs(["--data", str(data), "--epochs", "1", "--out", str(out), *SMALL]).exit_code == 0
    shown = eval_in_a_fresh_process(out, "dev")
    saved = json.loads((out / "metrics.json").read_text())["dev"]
    for key in ("accuracy", "f1", "roc_auc"):
        assert float(shown[key]) == pytest.approx(saved[key], abs=1e-4)


@pytest.mark.slow
def test_real_sick_one_epoch_and_eval(tmp_path, data_dir):
    out = tmp_path / "t"
    small = ["--units", "16", "--embedding-dim", "16", "--word-vectors", "none"]
    result = train_text_pairs(["--epochs", "1", "--out", str(out), *small])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["n"] == 4927 and metrics["dev"]["n"] == 500
    assert metrics["test"]["pearson"] > 0.3  # one small epoch already learns something
    again = text_pairs.TASK.evaluate(out)
    assert again["test"]["pearson"] == pytest.approx(metrics["test"]["pearson"], abs=1e-5)


BAD = [
    ("missing.tsv", None, ["not found", "missing.tsv"]),
    ("empty.tsv", b"", ["empty.tsv"]),
    ("columns.tsv", b"sentence1\tsentence2\tlabel\na b\tc d\t1\ne f\tg h\n", ["line 3"]),
    ("score.tsv", b"sentence1\tsentence2\tlabel\na b\tc d\t1.5\ne f\tg h\thigh\n", ["line 3", "high"]),
    ("blank.tsv", b"sentence1\tsentence2\tlabel\na b\tc d\t1\n  \tg h\t2\n", ["line 3"]),
    ("bytes.tsv", b"sentence1\tsentence2\tlabel\na b\tc d\t1\n\xff\xfe\tg\t2\n", ["line 3", "UTF-8"]),
]


@pytest.mark.parametrize("name, content, words", BAD)
def test_bad_input_is_one_line_exit_2_and_no_run_folder(tmp_path, name, content, words):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "run"
    result = train_text_pairs(["--data", str(path), "--out", str(out)], catch=True)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = result.output.strip().splitlines()[-1]
    for word in words:
        assert word in message
    assert not (out / "metrics.json").exists()
    assert not out.exists() or not any(out.iterdir())


def test_unknown_dataset_name(tmp_path):
    result = train_text_pairs(["--data", "snli-xl", "--out", str(tmp_path / "r")], catch=True)
    assert result.exit_code == 2
    assert "snli-xl" in result.output and "sick" in result.output


def test_offline_named_dataset_error_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_DATA_DIR", str(tmp_path / "nowhere"))
    result = train_text_pairs(["--data", "stsb", "--out", str(tmp_path / "r")], catch=True)
    assert result.exit_code == 2
    assert "SIAMESE_DATA_DIR" in result.output and "text/stsbenchmark/sts-train.csv" in result.output


def test_config_round_trip():
    config = RunConfig(task="text-pairs", data="sick", options=TextOptions(units=7))
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict())), TextOptions) == config
    with pytest.raises(ValueError, match="epochs"):
        RunConfig(task="text-pairs", data="sick", epochs=0)
    assert not RunDir(os.devnull).is_complete()


def test_word_vectors_initialise_the_tower_and_stay_frozen(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv")
    rng = np.random.default_rng(3)
    vectors = {word: rng.normal(size=6).round(4) for word in WORDS[:10]}
    glove = tmp_path / "tiny-glove.txt"
    glove.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vectors.items()), encoding="utf-8")
    out = tmp_path / "run"
    args = ["--data", str(data), "--epochs", "1", "--out", str(out), "--units", "4", "--batch-size", "16"]
    result = train_text_pairs([*args, "--word-vectors", str(glove), "--freeze-embeddings"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["text"]["embedding_dim"] == 6 and config["text"]["train_embeddings"] is False
    import siamese

    tower = siamese.load_tower(out)
    vocab = tower.get_layer("vectorize").get_vocabulary()
    matrix = tower.get_layer("embedding").get_weights()[0]
    for word in ("man", "guitar"):  # unchanged by training: the embedding is frozen
        np.testing.assert_allclose(matrix[vocab.index(word)], vectors[word], rtol=1e-6)


@pytest.mark.slow
def test_init_tower_starts_from_an_earlier_runs_tower(tmp_path):
    graded = pairs_file(tmp_path / "graded.tsv")
    binary = pairs_file(tmp_path / "binary.tsv", n=80, binary=True, seed=1)
    first, second = tmp_path / "first", tmp_path / "second"
    pooled = ["--rnn", "bilstm", "--sequence-pooling", "max"]
    assert (
        train_text_pairs(
            ["--data", str(graded), "--epochs", "1", "--out", str(first), *SMALL, *pooled]
        ).exit_code
        == 0
    )
    import siamese
    from siamese.models import load_model, tower_of

    before = siamese.load_tower(first)
    # A tiny learning rate keeps the weights as loaded (a zero one is refused).
    args = ["--data", str(binary), "--epochs", "1", "--out", str(second), "--init-tower", str(first)]
    result = train_text_pairs([*args, "--learning-rate", "1e-9", "--batch-size", "16"])
    assert result.exit_code == 0, result.output
    after = tower_of(load_model(second / "model.keras"))
    assert after.get_layer("vectorize").get_vocabulary() == before.get_layer("vectorize").get_vocabulary()
    for old, new in zip(before.get_weights(), after.get_weights(), strict=True):
        np.testing.assert_allclose(old, new, atol=1e-5)
    assert isinstance(after.layers[-1], siamese.towers.MaskedMaxPooling1D)
    config = json.loads((second / "config.json").read_text())
    assert config["text"]["init_tower"] == str(first) and config["head"] == "abs-diff"


def test_init_tower_that_is_missing_or_not_a_text_tower_is_one_line(tmp_path):
    import siamese

    data = pairs_file(tmp_path / "pairs.tsv")
    image_run = tmp_path / "images"
    image_run.mkdir()
    siamese.image_tower((8, 8, 1), filters=(2,), embedding_dim=3).save(image_run / "tower.keras")
    for given, words in ((tmp_path / "nowhere", "not found"), (image_run, "not a text tower")):
        out = tmp_path / f"r-{given.name}"
        result = train_text_pairs(
            ["--data", str(data), "--out", str(out), "--init-tower", str(given)], catch=True
        )
        assert result.exit_code == 2 and words in result.output and "--init-tower" in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert not out.exists()


def test_missing_word_vectors_file_is_one_line(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv")
    result = train_text_pairs(
        ["--data", str(data), "--out", str(tmp_path / "r"), "--word-vectors", "nope.txt"], catch=True
    )
    assert result.exit_code == 2 and "nope.txt" in result.output
    assert not (tmp_path / "r").exists()


def test_time_budget_stops_before_an_overrunning_epoch(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv")
    out = tmp_path / "run"
    result = train_text_pairs(
        ["--data", str(data), "--epochs", "5", "--out", str(out), "--time-budget", "0.001", *SMALL]
    )
    assert result.exit_code == 0, result.output
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 1  # the first epoch always runs; the second would overrun
    assert (out / "metrics.json").is_file()


def test_same_seed_same_run(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv", binary=True)
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        args = ["--data", str(data), "--epochs", "1", "--out", str(out), "--head", "concat", *SMALL]
        assert train_text_pairs(args).exit_code == 0
        runs.append(json.loads((out / "history.json").read_text()))
    np.testing.assert_allclose(runs[0]["loss"], runs[1]["loss"], rtol=1e-5)


REFIT = ["--epochs", "4", "--patience", "0", "--learning-rate", "0.01", "--refit", *SMALL]


@pytest.mark.slow
def test_refit_trains_again_on_train_and_dev_for_the_best_epoch_count(tmp_path, caplog):
    import siamese
    from siamese.datasets.text import load_text_dataset
    from siamese.models import load_model, tower_of

    data = tagged_pairs_file(tmp_path / "pairs.tsv")
    out = tmp_path / "run"
    result = train_text_pairs(["--data", str(data), "--out", str(out), *REFIT])
    assert result.exit_code == 0, result.output
    history = json.loads((out / "history.json").read_text())
    refit = json.loads((out / "refit" / "history.json").read_text())
    config = RunConfig.from_dict(json.loads((out / "config.json").read_text()), TextOptions)
    assert config.options.refit
    best = RunDir(out).read_state()["best_epoch"]  # the epoch early stopping restored
    assert best == int(np.argmax(history["val_pearson"])) + 1
    assert len(refit["loss"]) == best and not any(key.startswith("val_") for key in refit)
    # The saved tower's vocabulary was adapted on train + dev; the first model's on train only.
    splits = load_text_dataset(str(data), seed=0, dev_fraction=0.1)
    dev_words = {s.split()[-1] for s in splits["dev"].b}
    vocabulary = set(siamese.load_tower(out).get_layer("vectorize").get_vocabulary())
    assert dev_words <= vocabulary
    first = RunDir(out).load_checkpoint()[0]
    assert not dev_words & set(tower_of(first).get_layer("vectorize").get_vocabulary())
    # metrics.json: dev from the model chosen on dev (held out), train from the refit model.
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dev"]["pearson"] == pytest.approx(max(history["val_pearson"]), abs=1e-4)
    final = load_model(out / "model.keras")
    again = text_pairs.TASK.evaluate(out, split="train", retrieval=True)["train"]
    assert without_speed(again) == pytest.approx(without_speed(metrics["train"]), abs=1e-5)
    assert len(final.get_weights()[0]) == len(vocabulary)
    with caplog.at_level("WARNING"):
        text_pairs.TASK.evaluate(out, split="dev")
    assert "refit on train + dev" in caplog.text


@pytest.mark.slow
def test_refit_resumes_where_its_own_training_stopped(tmp_path, monkeypatch):
    from siamese.training import TrainingError

    data = tagged_pairs_file(tmp_path / "pairs.tsv")
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert train_text_pairs(["--data", str(data), "--out", str(whole), *REFIT]).exit_code == 0
    real = text_pairs.fit_epochs

    def dies_after_one_refit_epoch(model, epoch_data, dev_data, run, config, **kwargs):
        if run.path.name != text_pairs.REFIT_FOLDER:
            return real(model, epoch_data, dev_data, run, config, **kwargs)
        real(model, epoch_data, dev_data, run, dataclasses.replace(config, epochs=1), **kwargs)
        raise TrainingError("stopped")

    monkeypatch.setattr(text_pairs, "fit_epochs", dies_after_one_refit_epoch)
    stopped = train_text_pairs(["--data", str(data), "--out", str(split), *REFIT], catch=True)
    assert stopped.exit_code == 2 and not (split / "metrics.json").exists()
    assert len(json.loads((split / "refit" / "history.json").read_text())["loss"]) == 1
    monkeypatch.setattr(text_pairs, "fit_epochs", real)
    resumed = train_text_pairs(["--data", str(data), "--out", str(split), "--epochs", "4", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    a = json.loads((whole / "refit" / "history.json").read_text())
    b = json.loads((split / "refit" / "history.json").read_text())
    assert len(a["loss"]) >= 2
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-4)
    ma = json.loads((whole / "metrics.json").read_text())
    mb = json.loads((split / "metrics.json").read_text())
    np.testing.assert_allclose(mb["train"]["pearson"], ma["train"]["pearson"], rtol=1e-4)


def test_refit_of_binary_data_is_refused_before_any_folder(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv", binary=True)
    out = tmp_path / "run"
    result = train_text_pairs(["--data", str(data), "--out", str(out), *REFIT], catch=True)
    assert result.exit_code == 2 and "--refit needs graded data" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_threshold_metric_f1_picks_the_dev_threshold_with_the_best_f1(tmp_path):
    from siamese.metrics import evaluators as evaluation
    from siamese.models import load_model

    data = pairs_file(tmp_path / "pairs.tsv", n=300, binary=True)
    runs = {}
    for metric in ("accuracy", "f1"):
        out = tmp_path / metric
        args = ["--data", str(data), "--epochs", "1", "--out", str(out), "--threshold-metric", metric, *SMALL]
        assert train_text_pairs(args).exit_code == 0
        runs[metric] = json.loads((out / "metrics.json").read_text())
    config = RunConfig.from_dict(json.loads((tmp_path / "f1" / "config.json").read_text()), TextOptions)
    assert config.options.threshold_metric == "f1"
    dev = text_pairs.load_splits(config)["dev"]
    scores = evaluation.pair_outputs(load_model(tmp_path / "f1" / "model.keras"), dev.a, dev.b)
    # Brute force: every cut between sorted scores, and both ends.
    cuts = np.unique(np.r_[scores.min() - 1, scores, scores.max() + 1])
    best_f1 = max(evaluation.binary_metrics(scores, dev.labels, t)["f1"] for t in cuts)
    best_accuracy = max(evaluation.binary_metrics(scores, dev.labels, t)["accuracy"] for t in cuts)
    assert runs["f1"]["dev"]["f1"] == pytest.approx(best_f1)
    assert runs["accuracy"]["dev"]["accuracy"] == pytest.approx(best_accuracy)
    # Here the two rules disagree, so the test tells them apart.
    assert runs["accuracy"]["dev"]["f1"] < best_f1
    again = text_pairs.TASK.evaluate(tmp_path / "f1", split="dev", retrieval=True)["dev"]
    assert without_speed(again) == pytest.approx(without_speed(runs["f1"]["dev"]))


def test_unknown_threshold_metric_is_refused(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv", binary=True)
    result = train_text_pairs(
        ["--data", str(data), "--threshold-metric", "recall", "--out", str(tmp_path / "r")], catch=True
    )
    assert result.exit_code == 2 and "--threshold-metric" in result.output and not (tmp_path / "r").exists()
    config = RunConfig(task="text-pairs", data=str(data), options=TextOptions(threshold_metric="recall"))
    with pytest.raises(siamese.errors.ConfigError, match="threshold-metric"):
        text_pairs.TASK.train(config, tmp_path / "r2", verbose=0)
    assert not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_retrieval_figures_through_the_index_agree_in_training_eval_and_siamese_index(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv", n=200, binary=True)
    out = tmp_path / "run"
    result = train_text_pairs(["--data", str(data), "--epochs", "2", "--out", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    dev = metrics["dev"]
    for key in ("retrieval_recall@1", "retrieval_recall@10", "retrieval_mrr@10", "retrieval_ndcg@10"):
        assert 0.0 <= dev[key] <= 1.0, key
    assert dev["retrieval_recall@1"] <= dev["retrieval_recall@5"] <= dev["retrieval_recall@10"]
    assert dev["retrieval_queries"] > 0 and dev["retrieval_corpus"] > dev["retrieval_queries"]

    shown = eval_in_a_fresh_process(out, "dev", "--retrieval")
    assert without_speed(shown) == pytest.approx(without_speed(dev), abs=1e-4)

    # The same figures from an index built with siamese-index over the dev split's sentences.
    from siamese.datasets.text import load_text_dataset

    pairs = load_text_dataset(str(data))["dev"]
    dev_file = tmp_path / "dev.tsv"
    dev_file.write_text(
        "sentence1\tsentence2\tlabel\n"
        + "".join(f"{a}\t{b}\t{int(y)}\n" for a, b, y in zip(pairs.a, pairs.b, pairs.labels, strict=True))
    )
    index = tmp_path / "idx"
    built = CliRunner().invoke(
        cli.index, ["build", "--run", str(out), "--input", str(dev_file), "--out", str(index)]
    )
    assert built.exit_code == 0, built.output
    evaluated = CliRunner().invoke(
        cli.index, ["evaluate", "--index", str(index), "--pairs", str(dev_file), "--json"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    from_index = without_speed(json.loads(evaluated.output))
    assert from_index == pytest.approx(
        {k: v for k, v in without_speed(dev).items() if k.startswith("retrieval_")}
    )


def test_siamese_index_evaluate_refuses_pairs_outside_the_index(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv", n=60, binary=True)
    out = tmp_path / "run"
    assert train_text_pairs(["--data", str(data), "--epochs", "1", "--out", str(out), *SMALL]).exit_code == 0
    lines = data.read_text().splitlines()
    half = tmp_path / "half.tsv"
    half.write_text("\n".join(lines[:30]) + "\n")
    index = tmp_path / "idx"
    assert (
        CliRunner()
        .invoke(cli.index, ["build", "--run", str(out), "--input", str(half), "--out", str(index)])
        .exit_code
        == 0
    )
    result = CliRunner().invoke(cli.index, ["evaluate", "--index", str(index), "--pairs", str(data)])
    assert result.exit_code == 2
    assert "not in the index" in result.output and str(data) in result.output
    assert len(result.output.strip().splitlines()) == 1


# ---------------------------------------------------------------------- --objective retrieval


RETRIEVAL = ["--objective", "retrieval", "--learning-rate", "0.01", "--patience", "0", *SMALL]


def test_retrieval_objective_trains_the_space_the_index_searches(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv", n=300, binary=True)
    out = tmp_path / "run"
    result = train_text_pairs(["--data", str(data), "--epochs", "4", "--out", str(out), *RETRIEVAL])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert (config["objective"], config["head"], config["loss"]) == (
        "retrieval",
        "cosine",
        "multiple-negatives",
    )
    history = json.loads((out / "history.json").read_text())
    assert len(history["val_retrieval_mrr@10"]) == 4 and history["loss"][-1] < history["loss"][0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dev"]["retrieval_mrr@10"] == pytest.approx(max(history["val_retrieval_mrr@10"]), abs=1e-6)
    # siamese-eval --retrieval of a retrieval run on binary data: the threshold comes from dev,
    # as in training, for any split asked for
    shown = CliRunner().invoke(cli.evaluate, ["--run", str(out), "--split", "train", "--retrieval"])
    assert shown.exit_code == 0, shown.output
    train = metrics["train"]
    for key in ("threshold", "accuracy", "retrieval_mrr@10"):
        assert f"{key} {train[key]:.4f}" in shown.output, key
    # the saved pair model scores a pair by the cosine of its two embeddings: the index's score
    from siamese.models import load_model

    model, tower = load_model(out / "model.keras"), siamese.load_tower(out)
    a, b = ["man plays guitar red"], ["dog eats food"]
    u, v = siamese.embed(tower, a)[0], siamese.embed(tower, b)[0]
    cosine = float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))
    assert float(
        np.asarray(model([np.array(a, dtype=object), np.array(b, dtype=object)]))[0, 0]
    ) == pytest.approx(cosine, abs=1e-5)


@pytest.mark.slow
def test_mined_negatives_are_kept_and_a_run_killed_while_mining_resumes_to_the_same(tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv", n=300, binary=True)
    mining = ["--data", str(data), "--mine-every", "2", "--mine-ranks", "2:12", *RETRIEVAL]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert train_text_pairs([*mining, "--epochs", "4", "--out", str(whole)]).exit_code == 0
    # killed as the negatives mined before epoch 3 are being saved
    train_killed_at("mine:2", ["--task", "text-pairs", *mining, "--epochs", "4", "--out", str(killed)])
    assert json.loads((killed / "checkpoints" / "state.json").read_text())["epoch"] == 2
    assert not (killed / "checkpoints" / "negatives-0002.npy").exists()
    assert list((killed / "checkpoints").glob(".tmp-*negatives-0002.npy"))  # the save under way
    resumed = train_text_pairs(["--out", str(killed), "--resume", "--epochs", "4"], catch=True)
    assert resumed.exit_code == 0, resumed.output
    np.testing.assert_array_equal(
        np.load(killed / "checkpoints" / "negatives-0002.npy"),
        np.load(whole / "checkpoints" / "negatives-0002.npy"),
    )
    a = json.loads((whole / "history.json").read_text())
    b = json.loads((killed / "history.json").read_text())
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
    np.testing.assert_allclose(b["val_retrieval_mrr@10"], a["val_retrieval_mrr@10"], rtol=1e-5)
    # no mined negative is a known positive of its anchor
    from siamese.datasets.text import load_text_dataset

    train = load_text_dataset(str(data))["train"]
    similar = {(x, y) for x, y, label in zip(train.a, train.b, train.labels, strict=True) if label == 1}
    similar |= {(y, x) for x, y in similar}
    corpus = list(dict.fromkeys([*train.a, *train.b]))
    anchors = [x for x, label in zip(train.a, train.labels, strict=True) if label == 1]
    negatives = np.load(whole / "checkpoints" / "negatives-0002.npy")
    assert len(negatives) == len(anchors)
    assert not any(
        (x, corpus[n]) in similar or x == corpus[n] for x, n in zip(anchors, negatives, strict=True)
    )


@pytest.mark.parametrize(
    "args, words",
    [
        (["--objective", "retrieval", "--loss", "mse"], ["--objective retrieval", "multiple-negatives"]),
        (["--objective", "retrieval", "--head", "concat"], ["--head cosine"]),
        (["--loss", "multiple-negatives"], ["--objective retrieval"]),
        (["--mine-every", "2"], ["--mine-every", "--objective retrieval"]),
        (["--objective", "retrieval", "--mine-every", "0"], ["--mine-every"]),
        (["--objective", "retrieval", "--mine-ranks", "9:3"], ["--mine-ranks"]),
        (
            ["--objective", "retrieval", "--mine-every", "1", "--mine-ranks", "10:5000"],
            ["--mine-ranks", "beyond"],
        ),
        (["--objective", "retrieval", "--positive-threshold", "9"], ["no similar pair"]),
        (["--loss", "cosent"], ["--head cosine"]),
        (["--symmetric-loss"], ["--symmetric-loss", "--objective retrieval"]),
    ],
)
def test_bad_retrieval_settings_are_one_line_and_leave_no_folder(tmp_path, args, words):
    data = pairs_file(tmp_path / "pairs.tsv")  # graded
    out = tmp_path / "run"
    result = train_text_pairs(["--data", str(data), "--out", str(out), *args, *SMALL], catch=True)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    for word in words:
        assert word in result.output
    assert not out.exists()
