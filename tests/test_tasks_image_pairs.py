"""siamese-train --task image-pairs (image_pairs.train / evaluate) on small seeded data."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest
from conftest import run_python, without_speed
from PIL import Image

import siamese
from siamese import encode
from siamese.augment import AffineAugment
from siamese.datasets.records import LabelledImages, OneShotRun
from siamese.errors import ConfigError, DataError
from siamese.tasks import image_pairs
from siamese.tasks.image_pairs import ImageOptions
from siamese.training import RunConfig

SIZE = 12
TINY = {"filters": (4, 8), "embedding_dim": 8, "pairs_per_epoch": 96}


def _pattern(label: int, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """A bright block whose place depends on the class, on a noisy dark background."""
    image = rng.integers(0, 60, size=(size, size)).astype(np.uint8)
    row, col = divmod(label, 3)
    image[row * 4 : row * 4 + 4, col * 4 : col * 4 + 4] = 220
    return image


def _folder(root, classes=4, per_class=20, seed=0, size=SIZE):
    rng = np.random.default_rng(seed)
    for label in range(classes):
        folder = root / f"class{label}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(_pattern(label, rng, size)).save(folder / f"{i:02d}.png")
    return root


def _config(data, **changes):
    image = ImageOptions(**{**TINY, **changes.pop("image", {})})
    values = {"epochs": 1, "batch_size": 16, "patience": 0, **changes}
    return RunConfig(task="image-pairs", data=str(data), options=image, **values)


def test_run_folder_is_complete(tmp_path):
    data = _folder(tmp_path / "shapes")
    out = tmp_path / "run"
    metrics = image_pairs.TASK.train(_config(data, epochs=2), out, verbose=0)
    for name in (
        "model.keras",
        "tower.keras",
        "config.json",
        "metrics.json",
        "history.json",
        "history.png",
        "neighbours.png",
    ):
        assert (out / name).is_file(), name
    assert (out / "checkpoints" / "state.json").is_file()
    saved = json.loads((out / "metrics.json").read_text())
    assert {split: pytest.approx(values) for split, values in metrics.items()} == saved
    assert set(metrics) == {"train", "dev"}
    dev = metrics["dev"]
    assert {"accuracy", "f1", "roc_auc", "threshold", "knn1_accuracy", "knn5_accuracy"} <= set(dev)
    assert dev["n"] == image_pairs.VERIFICATION_PAIRS
    assert dev["knn1_accuracy"] >= 0.75  # the classes are easy to tell apart
    # Through an index of the dev images, each querying the others of its class.
    assert 0.0 < dev["retrieval_map@r"] <= 1.0 and dev["retrieval_precision@1"] >= 0.75
    assert (
        dev["retrieval_queries"]
        == dev["retrieval_corpus"]
        == len(image_pairs.load_data(config_of(out)).splits["dev"])
    )
    assert "retrieval_map@r" not in metrics["train"]
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 2 and len(history["val_loss"]) == 2
    config = RunConfig.from_dict(json.loads((out / "config.json").read_text()), ImageOptions)
    assert (config.objective, config.head, config.loss) == ("binary", "abs-diff", "binary-crossentropy")
    evaluated = image_pairs.TASK.evaluate(out, split="dev", retrieval=True)["dev"]
    assert evaluated["retrieval_map@r"] == pytest.approx(dev["retrieval_map@r"], abs=1e-6)
    assert config.options.filters == (4, 8)
    tower = siamese.load_tower(out)
    assert siamese.embed(tower, np.zeros((3, SIZE, SIZE, 1), np.uint8)).shape == (3, 8)


def config_of(run):
    return RunConfig.from_dict(json.loads((run / "config.json").read_text()), ImageOptions)


@pytest.mark.slow
def test_resume_matches_an_uninterrupted_run(tmp_path):
    data = _folder(tmp_path / "shapes")
    whole, split = tmp_path / "whole", tmp_path / "split"
    options = {"image": {"augment": True}}
    expected = image_pairs.TASK.train(_config(data, epochs=3, **options), whole, verbose=0)
    image_pairs.TASK.train(_config(data, epochs=1, **options), split, verbose=0)
    keras.utils.set_random_seed(99)  # resume must not depend on the global state
    resumed = image_pairs.TASK.train(_config(data, epochs=3), split, resume=True, verbose=0)
    a = json.loads((whole / "history.json").read_text())
    b = json.loads((split / "history.json").read_text())
    assert len(b["loss"]) == 3
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-4)
    np.testing.assert_allclose(b["val_loss"], a["val_loss"], rtol=1e-4)
    for key in ("accuracy", "roc_auc", "knn1_accuracy"):
        assert resumed["dev"][key] == pytest.approx(expected["dev"][key], abs=1e-4)


def test_contrastive_head_and_bad_combinations(tmp_path):
    data = _folder(tmp_path / "shapes")
    out = tmp_path / "run"
    metrics = image_pairs.TASK.train(_config(data, head="euclidean", loss="contrastive"), out, verbose=0)
    config = json.loads((out / "config.json").read_text())
    assert (config["head"], config["loss"]) == ("euclidean", "contrastive")
    assert metrics["dev"]["threshold"] < 0  # similarity is the negated distance
    with pytest.raises(ConfigError, match="contrastive"):
        image_pairs.TASK.train(_config(data, head="euclidean", loss="binary-crossentropy"), tmp_path / "r2")
    with pytest.raises(ConfigError, match="regression"):
        image_pairs.TASK.train(_config(data, objective="regression"), tmp_path / "r3")
    with pytest.raises(ConfigError, match="filters"):
        image_pairs.TASK.train(_config(data, image={"filters": (0,)}), tmp_path / "r4")
    assert not any((tmp_path / name).exists() for name in ("r2", "r3", "r4"))


def _hand_made_run():
    """4 exemplars (one lit pixel each); queries 0-2 lie nearest their own, query 3 nearest exemplar 0."""
    exemplars = np.zeros((4, 2, 2, 1), np.float32)
    for i in range(4):
        exemplars[i].flat[i] = 10.0
    queries = exemplars[[2, 0, 3, 1]].copy()
    queries[:3] += 1.0  # still nearest their own exemplar
    queries[3] = 0.0
    queries[3, 0, 0, 0] = 9.0  # belongs to exemplar 1 but sits next to exemplar 0
    queries[3, 0, 1, 0] = 2.0
    return OneShotRun("hand", exemplars, queries, np.array([2, 0, 3, 1]))


def _flat_model(head):
    inputs = keras.Input((2, 2, 1))
    tower = keras.Model(inputs, keras.layers.Flatten()(inputs), name="flat")
    return siamese.build_siamese(tower, head)


def test_one_shot_scorers_on_a_hand_made_case():
    run = _hand_made_run()
    model = _flat_model("euclidean")
    figures = image_pairs.one_shot_figures(model, [run], "euclidean")
    assert figures == {
        "one_shot_pair": 0.75,
        "one_shot_embedding": 0.75,
        "one_shot_trials": 4,
        "one_shot_way": 4,
    }
    raw = image_pairs.embedding_scorer(lambda x: x.reshape(len(x), -1))
    assert image_pairs.one_shot_score([run], raw) == 0.75
    # A query exactly between its answer and another exemplar earns half a trial.
    tie = OneShotRun("tie", run.exemplars[:2], (run.exemplars[:1] + run.exemplars[1:2]) / 2, np.array([1]))
    assert image_pairs.one_shot_score([tie], raw) == 0.5


def test_built_one_shot_runs_stay_within_a_group():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(12), 3)
    images = (labels[:, None, None, None] * 10 + rng.integers(0, 3, (36, 2, 2, 1))).astype(np.uint8)
    groups = (labels >= 6).astype(np.int64)  # two "alphabets" of 6 classes
    data = LabelledImages(images, labels, [f"c{i}" for i in range(12)], groups, ["g0", "g1"], "toy")
    runs = image_pairs.build_one_shot_runs(data, n_way=5, n_runs=6, seed=1)
    assert len(runs) == 6
    for run in runs:
        assert run.exemplars.shape == (5, 2, 2, 1) and run.queries.shape == (5, 2, 2, 1)
        query_class = run.queries[:, 0, 0, 0] // 10
        exemplar_class = run.exemplars[:, 0, 0, 0] // 10
        np.testing.assert_array_equal(exemplar_class[run.answers], query_class)
        assert len(set(exemplar_class)) == 5 and len(set(exemplar_class >= 6)) == 1
    again = image_pairs.build_one_shot_runs(data, n_way=5, n_runs=6, seed=1)
    np.testing.assert_array_equal(again[3].queries, runs[3].queries)
    assert len(image_pairs.build_one_shot_runs(data, n_way=20, n_runs=1)[0].answers) == 12  # capped


def test_pair_batches_gather_by_index_and_augment_reproducibly():
    images = np.arange(5 * 6 * 6, dtype=np.uint8).reshape(5, 6, 6, 1)
    pairs = (np.array([0, 1, 2, 3, 4]), np.array([4, 3, 2, 1, 0]), np.array([0, 1, 1, 0, 0], np.float32))
    batches = list(image_pairs.pair_batches(images, pairs, 2).as_numpy_iterator())
    assert [len(y) for _, y in batches] == [2, 2, 1]
    (a, b), y = batches[1]
    np.testing.assert_array_equal(a, images[[2, 3]])
    np.testing.assert_array_equal(b, images[[2, 1]])
    np.testing.assert_array_equal(y, [1, 0])
    augment = AffineAugment(rotation=30, seed=3, component_probability=1.0)

    def distorted(first_step):
        batches = image_pairs.pair_batches(images, pairs, 2, augment=augment, first_step=first_step)
        return list(batches.as_numpy_iterator())

    first, again, other = distorted(4), distorted(4), distorted(7)
    np.testing.assert_array_equal(first[0][0][0], again[0][0][0])
    assert not np.allclose(first[0][0][0], images[[0, 1]])
    assert not np.allclose(first[0][0][0], other[0][0][0])


def test_unique_pair_batches_gather_each_image_once():
    images = np.arange(5 * 6 * 6, dtype=np.uint8).reshape(5, 6, 6, 1)
    pairs = (np.array([0, 1, 2, 3, 4]), np.array([1, 0, 2, 4, 3]), np.array([0, 0, 1, 0, 0], np.float32))
    batches = list(image_pairs.pair_batches(images, pairs, 3, unique=True).as_numpy_iterator())
    (items, position_a, position_b), y = batches[0]
    assert len(items) == 3  # images 0, 1, 2 for pairs (0, 1), (1, 0), (2, 2)
    np.testing.assert_array_equal(items[position_a], images[[0, 1, 2]])
    np.testing.assert_array_equal(items[position_b], images[[1, 0, 2]])
    np.testing.assert_array_equal(y, [0, 0, 1])
    augment = AffineAugment(rotation=30, seed=3, component_probability=1.0)
    distorted = image_pairs.pair_batches(images, pairs, 3, augment=augment, unique=True)
    (items, position_a, _), _ = next(distorted.as_numpy_iterator())
    assert items.dtype == np.float32 and items.shape == (3, 6, 6, 1)


@pytest.mark.slow
def test_eval_in_a_fresh_process_reproduces_the_metrics(tmp_path):
    data = _folder(tmp_path / "shapes")
    out = tmp_path / "run"
    saved = image_pairs.TASK.train(_config(data), out, verbose=0)["dev"]
    proc = run_python(
        f"""
        import json
        from siamese.tasks import image_pairs
        print(json.dumps(image_pairs.TASK.evaluate({str(out)!r}, split="dev", retrieval=True)))
        """
    )
    again = without_speed(json.loads(proc.stdout.strip().splitlines()[-1])["dev"])
    assert set(again) == set(without_speed(saved))
    for key, value in again.items():
        assert value == pytest.approx(saved[key], abs=1e-5), key
    with pytest.raises(ConfigError, match="available: train, dev"):
        image_pairs.TASK.evaluate(out, split="test")


def _corrupt(root):
    _folder(root)
    (root / "class1" / "03.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root, ["03.png", "cannot decode"]


def _mixed_sizes(root):
    _folder(root)
    Image.fromarray(np.zeros((SIZE + 2, SIZE), np.uint8)).save(root / "class2" / "05.png")
    return root, ["05.png", "--image-size"]


def _lonely_class(root):
    _folder(root)
    lonely = root / "lonely"
    lonely.mkdir()
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(lonely / "only.png")
    return root, ["lonely", "at least 2"]


def _tiny_dev(root):
    _folder(root, classes=2, per_class=10)  # dev: one image per class, so no positive pair
    return root, ["verification pairs", "dev"]


@pytest.mark.parametrize("make", [_corrupt, _mixed_sizes, _lonely_class, _tiny_dev])
def test_bad_folder_is_refused_before_the_run_folder(tmp_path, make):
    data, words = make(tmp_path / "images")
    out = tmp_path / "run"
    with pytest.raises(DataError) as caught:
        image_pairs.TASK.train(_config(data), out, verbose=0)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message
    assert not out.exists()


def test_mixed_sizes_load_when_an_image_size_is_given(tmp_path):
    data, _ = _mixed_sizes(tmp_path / "images")
    loaded = image_pairs.load_data(_config(data, image={"image_size": (10, 10)}))
    assert loaded.splits["train"].images.shape[1:] == (10, 10, 1)
    assert len(loaded.splits["train"]) + len(loaded.splits["dev"]) == 80


def test_a_zip_not_in_omniglot_layout_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "images" / "omniglot"
    folder.mkdir(parents=True)
    for name in ("images_background_small1.zip", "images_background_small2.zip"):
        with zipfile.ZipFile(folder / name, "w") as archive:
            archive.writestr("images_background_small1/Greek/alpha.png", b"x")
    monkeypatch.setenv("SIAMESE_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "run"
    with pytest.raises(DataError, match="does not follow Omniglot's layout"):
        image_pairs.TASK.train(_config("omniglot"), out, verbose=0)
    assert not out.exists()


def test_unknown_dataset_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="fashion-mnist"):
        image_pairs.TASK.train(_config("no-such-images"), tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_real_fashion_mnist_one_small_epoch(tmp_path, data_dir):
    out = tmp_path / "fm"
    config = _config("fashion-mnist", batch_size=64, image={"pairs_per_epoch": 1024})
    metrics = image_pairs.TASK.train(config, out, verbose=0)
    test = metrics["test"]
    assert test["n"] == image_pairs.VERIFICATION_PAIRS
    assert test["knn1_accuracy"] > 0.5 and test["knn5_accuracy"] > 0.5  # chance is 0.1
    assert 0.0 <= test["roc_auc"] <= 1.0 and metrics["dev"]["n"] == image_pairs.VERIFICATION_PAIRS
    assert (out / "neighbours.png").is_file()


@pytest.mark.slow
def test_real_omniglot_reports_the_official_20_way_figure(tmp_path, data_dir):
    out = tmp_path / "om"
    # the general settings, not Omniglot's own defaults (made for 40 epochs, not one short one)
    general = {"pairs_per_epoch": 1024, "augment": False, "batch_norm": False, "rotated_classes": False}
    config = _config("omniglot", batch_size=64, head="abs-diff", loss="binary-crossentropy", image=general)
    metrics = image_pairs.TASK.train(config, out, verbose=0)
    assert json.loads((out / "config.json").read_text())["image"]["image_size"] == [28, 28]
    test = metrics["test"]
    assert test["one_shot_trials"] == 400 and test["one_shot_way"] == 20
    assert test["one_shot_embedding"] > 0.1  # chance is 0.05
    assert 0.0 <= test["one_shot_pair"] <= 1.0
    assert metrics["dev"]["one_shot_trials"] == 400  # built from the dev alphabet's 24 characters
    again = image_pairs.TASK.evaluate(out)
    assert again["test"]["one_shot_pair"] == pytest.approx(test["one_shot_pair"], abs=1e-6)
    assert again["test"]["one_shot_embedding"] == pytest.approx(test["one_shot_embedding"], abs=1e-6)


def _cli(command, args):
    from click.testing import CliRunner

    from siamese import cli

    return CliRunner().invoke(getattr(cli, command), args)


def test_cli_trains_and_evaluates_an_image_folder(tmp_path):
    data = _folder(tmp_path / "shapes")
    out = tmp_path / "run"
    args = ["--task", "image-pairs", "--data", str(data), "--epochs", "1", "--batch-size", "16"]
    args += ["--filters", "4,8", "--embedding-dim", "8", "--pairs-per-epoch", "64", "--out", str(out)]
    args += ["--rotated-classes", "--augment", "--independent-pairs"]
    result = _cli("train", args)
    assert result.exit_code == 0, result.output
    assert "knn1_accuracy" in result.output and (out / "neighbours.png").is_file()
    config = json.loads((out / "config.json").read_text())["image"]
    assert config["filters"] == [4, 8] and config["embedding_dim"] == 8 and config["pairs_per_epoch"] == 64
    assert config["rotated_classes"] and config["augment"] and not config["pair_pools"]
    evaluated = _cli("evaluate", ["--run", str(out), "--split", "dev"])
    assert evaluated.exit_code == 0, evaluated.output
    saved = json.loads((out / "metrics.json").read_text())["dev"]
    assert f"knn1_accuracy {saved['knn1_accuracy']:.4f}" in evaluated.output


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--image-size", "big"], ["--image-size", "HxW"]),
        (["--filters", "4,x"], ["--filters", "integers"]),
        (["--filters", "4,0"], ["--filters", "at least one"]),
        (["--hard-negatives", "0.5"], ["--hard-negatives", "groups"]),
    ],
)
def test_cli_bad_image_options_are_one_line_exit_2(tmp_path, extra, words):
    data = _folder(tmp_path / "shapes", classes=2, per_class=4)
    out = str(tmp_path / "r")
    result = _cli("train", ["--task", "image-pairs", "--data", str(data), "--out", out, *extra])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    for word in words:
        assert word in result.output
    assert not (tmp_path / "r").exists()


def test_cli_bad_image_folder_is_one_line_exit_2(tmp_path):
    data, words = _lonely_class(tmp_path / "images")
    out = tmp_path / "r"
    result = _cli("train", ["--task", "image-pairs", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    for word in words:
        assert word in result.output
    assert not out.exists()


def test_test_time_augmentation_averages_the_embeddings_of_fixed_distortions():
    rng = np.random.default_rng(5)
    images = np.stack([_pattern(label, rng) for label in range(4)])[..., None]
    tower = siamese.image_tower((SIZE, SIZE, 1), filters=(4,), embedding_dim=3, seed=1)
    plain = encode.encoder(tower, 0)(images)
    np.testing.assert_allclose(plain, siamese.embed(tower, images), atol=1e-6)
    distort = AffineAugment(seed=encode.TTA_SEED)
    copies = [siamese.embed(tower, images)] + [
        siamese.embed(tower, np.asarray(distort(images, k))) for k in range(3)
    ]
    averaged = encode.encoder(tower, 3)(images)
    np.testing.assert_allclose(averaged, np.mean(copies, axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(averaged, plain, atol=1e-4)  # the distortions do change the embedding
    np.testing.assert_allclose(encode.encoder(tower, 3)(images), averaged, atol=1e-6)  # repeatable


def test_cli_eval_tta_changes_only_the_embedding_figures(tmp_path):
    data = _folder(tmp_path / "shapes")
    out = tmp_path / "run"
    image_pairs.TASK.train(_config(data), out, verbose=0)
    saved = json.loads((out / "metrics.json").read_text())["dev"]
    plain = image_pairs.TASK.evaluate(out, split="dev", retrieval=True)["dev"]
    tta = image_pairs.TASK.evaluate(out, split="dev", test_time_augment=4)["dev"]
    assert without_speed(plain) == pytest.approx(without_speed(saved))
    assert tta["accuracy"] == pytest.approx(saved["accuracy"]) and tta["roc_auc"] == pytest.approx(
        saved["roc_auc"]
    )
    shown = _cli("evaluate", ["--run", str(out), "--split", "dev", "--tta", "4"])
    assert shown.exit_code == 0, shown.output
    assert f"knn1_accuracy {tta['knn1_accuracy']:.4f}" in shown.output
    assert json.loads((out / "metrics.json").read_text())["dev"] == saved  # evaluation writes nothing
    config = _config(data, image={"test_time_augment": 2})
    assert RunConfig.from_dict(config.to_dict(), ImageOptions).options.test_time_augment == 2


def test_cli_eval_tta_on_a_text_run_is_one_line(tmp_path):
    run = tmp_path / "text"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(RunConfig(task="text-pairs", data="sick").to_dict()))
    result = _cli("evaluate", ["--run", str(run), "--tta", "2"])
    assert result.exit_code == 2 and "--tta" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_eval_refuses_a_basketball_run(tmp_path):
    run = tmp_path / "bb"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(RunConfig(task="basketball", data="real").to_dict()))
    result = _cli("evaluate", ["--run", str(run)])
    assert result.exit_code == 2 and "basketball" in result.output


def test_index_from_an_image_run_answers_an_image_query(tmp_path):
    data = _folder(tmp_path / "shapes")
    out = tmp_path / "run"
    image_pairs.TASK.train(_config(data), out, verbose=0)
    index_dir = tmp_path / "idx"
    built = _cli("index", ["build", "--run", str(out), "--input", str(data), "--out", str(index_dir)])
    assert built.exit_code == 0, built.output
    query = data / "class2" / "07.png"
    found = _cli("index", ["query", "--index", str(index_dir), "--image", str(query), "-k", "3", "--json"])
    assert found.exit_code == 0, found.output
    hits = json.loads(found.output)
    assert len(hits) == 3 and hits[0]["payload"] == str(query)  # an indexed image is its own top hit
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    loaded = siamese.Index.load(index_dir)
    (top,) = loaded.search([str(query)], k=1)
    assert top[0].payload == str(query)


@pytest.mark.parametrize("loss", ["batch-hard-triplet", "multiple-negatives"])
def test_retrieval_objective_on_class_labels(tmp_path, loss):
    data = _folder(tmp_path / "shapes")
    out = tmp_path / "run"
    config = _config(data, objective="retrieval", loss=loss, epochs=2, batch_size=12)
    metrics = image_pairs.TASK.train(config, out, verbose=0)
    saved = config_of(out)
    assert (saved.objective, saved.head, saved.loss) == ("retrieval", "cosine", loss)
    history = json.loads((out / "history.json").read_text())
    assert len(history["val_retrieval_map@r"]) == 2
    assert metrics["dev"]["retrieval_map@r"] == pytest.approx(max(history["val_retrieval_map@r"]), abs=1e-6)
    assert metrics["dev"]["retrieval_precision@1"] >= 0.75  # the classes are easy to tell apart
    again = image_pairs.TASK.evaluate(out, split="dev", retrieval=True)["dev"]
    assert again["retrieval_map@r"] == pytest.approx(metrics["dev"]["retrieval_map@r"], abs=1e-6)


def test_retrieval_objective_refuses_a_loss_that_does_not_fit(tmp_path):
    data = _folder(tmp_path / "shapes")
    with pytest.raises(ConfigError, match="batch-hard-triplet or multiple-negatives"):
        image_pairs.TASK.train(_config(data, objective="retrieval", loss="contrastive"), tmp_path / "r")
    with pytest.raises(ConfigError, match="--objective retrieval"):
        image_pairs.TASK.train(_config(data, loss="batch-hard-triplet"), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_named_dataset_brings_its_own_defaults_and_a_given_setting_wins():
    task = image_pairs.TASK
    omniglot = task.configure(RunConfig(task="image-pairs", data="omniglot"))
    o = omniglot.options
    assert (omniglot.epochs, omniglot.patience, omniglot.lr_patience) == (40, 30, 5)
    assert (omniglot.head, omniglot.loss, omniglot.batch_size) == ("euclidean", "contrastive", 128)
    assert (o.augment, o.batch_norm, o.rotated_classes, o.pair_pools) == (True, True, True, True)
    assert (o.embedding_dim, o.hard_negative_fraction, o.pairs_per_epoch) == (128, 0.5, 20000)
    fashion = task.configure(RunConfig(task="image-pairs"))  # the task's default data
    assert (fashion.data, fashion.epochs, fashion.patience, fashion.options.pairs_per_epoch) == (
        "fashion-mnist",
        12,
        5,
        54000,
    )
    assert (fashion.options.augment, fashion.options.embedding_dim, fashion.head) == (False, 64, None)
    folder = task.configure(RunConfig(task="image-pairs", data="photos/"))
    assert (folder.epochs, folder.patience, folder.lr_patience, folder.options.pairs_per_epoch) == (
        10,
        3,
        0,
        None,
    )
    # a setting the run gives is kept, even where it equals the general default
    given = task.configure(
        RunConfig(
            task="image-pairs",
            data="omniglot",
            epochs=3,
            lr_patience=0,
            head="abs-diff",
            options=ImageOptions(augment=False, rotated_classes=False, embedding_dim=64),
        )
    )
    assert (given.epochs, given.lr_patience, given.head, given.patience) == (3, 0, "abs-diff", 30)
    assert (given.options.augment, given.options.rotated_classes, given.options.embedding_dim) == (
        False,
        False,
        64,
    )
    assert given.options.batch_norm is True


def test_help_shows_the_datasets_own_defaults_and_flags_turn_them_off():
    from click.testing import CliRunner

    from siamese import cli

    shown = CliRunner().invoke(cli.train, ["--task", "image-pairs", "--help"]).output
    assert "[default: 10; fashion-mnist: 12; omniglot: 40]" in " ".join(shown.split())
    assert "--no-augment" in shown and "--no-rotated-classes" in shown and "--no-batch-norm" in shown
