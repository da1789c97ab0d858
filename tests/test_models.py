from __future__ import annotations

import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import run_python

import siamese
from siamese import heads

TEXTS = ["a man is playing a guitar", "a woman is slicing an onion", "two dogs run on the grass"]


def test_pair_model_calls_one_tower_object_on_both_inputs():
    tower = siamese.categorical_tower(10, 3)
    model = siamese.build_siamese(tower, "abs-diff")
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert nested == [tower]
    assert siamese.tower_of(model) is tower
    assert model.get_layer(tower.name) is tower
    # Both inputs flow through the same layer object: it has two inbound calls.
    assert len(tower._inbound_nodes) == 2
    # Weights exist once: the model's variables are the tower's plus the head's.
    ids = [id(w) for w in model.weights]
    assert len(ids) == len(set(ids))
    assert model.count_params() == tower.count_params() + model.get_layer("head").count_params()
    assert model.count_params() == 10 * 3 + 3 + 1


def test_summary_lists_the_tower_once():
    tower = siamese.text_tower(TEXTS, units=4, embedding_dim=3)
    model = siamese.build_siamese(tower, "manhattan")
    lines = []
    model.summary(line_length=150, print_fn=lambda line, **_: lines.append(line))
    text = "\n".join(lines)
    assert text.count("text_tower (Functional)") == 1
    assert f"Total params: {tower.count_params()}" in text.replace(",", "")


def test_update_through_one_input_changes_the_other_side():
    tower = siamese.categorical_tower(5, 2, seed=1)
    model = siamese.build_siamese(tower, "euclidean")
    before = siamese.embed(tower, np.array([[3]]))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=siamese.losses.get("contrastive"))
    # Train only with id 3 on side A and id 4 on side B: both sides' rows move, in one matrix.
    model.fit([np.array([[3]]), np.array([[4]])], np.array([0.0]), epochs=3, verbose=0)
    after = siamese.embed(tower, np.array([[3]]))
    assert not np.allclose(before, after)
    assert len(tower.get_layer("embedding").weights) == 1


@pytest.mark.parametrize("head", sorted(heads.HEADS))
def test_every_head_builds_a_pair_model(head):
    model = siamese.build_siamese(siamese.categorical_tower(4, 2), head)
    out = model.predict([np.array([[0], [1]]), np.array([[1], [1]])], verbose=0)
    assert out.shape == (2, 1)


@pytest.mark.slow  # a fresh Python process
def test_save_and_load_in_a_fresh_process(tmp_path):
    rng = np.random.default_rng(0)
    cases = {
        "text": (siamese.text_tower(TEXTS, units=4, embedding_dim=3), "abs-diff"),
        "image": (siamese.image_tower((12, 10, 1), filters=(3,), embedding_dim=4), "concat"),
        "categorical": (siamese.categorical_tower(6, 2), "manhattan"),
    }
    inputs = {
        "text": [["a man is playing", "two dogs", "an unseen word"], ["a woman", "dogs run", "guitar"]],
        "image": [rng.integers(0, 256, (3, 12, 10, 1), dtype=np.uint8).tolist()] * 2,
        "categorical": [[[0], [3], [5]], [[1], [3], [2]]],
    }
    expected = {}
    for kind, (tower, head) in cases.items():
        model = siamese.build_siamese(tower, head)
        if kind == "image":
            inputs[kind][1] = rng.integers(0, 256, (3, 12, 10, 1), dtype=np.uint8).tolist()
        a, b = (siamese.encode.as_model_input(x, tower) for x in inputs[kind])
        expected[kind] = {
            "tower": siamese.embed(tower, a).tolist(),
            "model": np.asarray(model([a, b])).tolist(),
        }
        model.save(tmp_path / f"{kind}_model.keras")
        tower.save(tmp_path / f"{kind}_tower.keras")
    (tmp_path / "inputs.json").write_text(json.dumps(inputs))
    run_python(
        """
        import json, keras, numpy as np
        import siamese  # registers the toolkit's layers; safe mode stays on
        inputs = json.load(open("inputs.json"))
        out = {}
        for kind in ("text", "image", "categorical"):
            # The tower loads with plain Keras: only Keras's own layers inside.
            tower = keras.saving.load_model(f"{kind}_tower.keras")
            model = keras.saving.load_model(f"{kind}_model.keras")
            a, b = (siamese.encode.as_model_input(x, tower) for x in inputs[kind])
            assert siamese.tower_of(model).name == tower.name
            out[kind] = {
                "tower": siamese.embed(siamese.load_tower(f"{kind}_tower.keras"), a).tolist(),
                "model": np.asarray(model([a, b])).tolist(),
            }
        json.dump(out, open("outputs.json", "w"))
        """,
        cwd=tmp_path,
    )
    got = json.loads((tmp_path / "outputs.json").read_text())
    for kind in cases:
        np.testing.assert_allclose(got[kind]["tower"], expected[kind]["tower"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[kind]["model"], expected[kind]["model"], rtol=1e-5, atol=1e-6)


def test_saved_text_tower_keeps_its_vocabulary(tmp_path):
    tower = siamese.text_tower(TEXTS, units=3, embedding_dim=3)
    path = tmp_path / "tower.keras"
    tower.save(path)
    again = siamese.load_tower(tmp_path)
    assert again.get_layer("vectorize").get_vocabulary() == tower.get_layer("vectorize").get_vocabulary()


def test_a_tower_saved_with_an_optimizer_loads_without_it(tmp_path):
    """A tower file written while the tower was compiled and trained (as distillation's towers
    were) still loads as a tower: same outputs, no optimizer, no Keras warning about its
    variables."""
    tower = siamese.text_tower(TEXTS, units=3, embedding_dim=3, projection=2)
    tower.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    tower.train_on_batch(tf.constant(TEXTS), np.ones((len(TEXTS), 2), "float32"))
    tower.save(tmp_path / "tower.keras")
    assert keras.saving.load_model(tmp_path / "tower.keras").optimizer is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = siamese.load_tower(tmp_path)
    assert getattr(again, "optimizer", None) is None
    np.testing.assert_allclose(siamese.embed(again, TEXTS), siamese.embed(tower, TEXTS), rtol=1e-6)


def test_no_lambda_layers_anywhere():
    for tower in (
        siamese.text_tower(TEXTS, units=2, embedding_dim=2),
        siamese.image_tower((8, 8, 1), filters=(2,), embedding_dim=2),
        siamese.categorical_tower(3),
    ):
        for head in heads.HEADS:
            model = siamese.build_siamese(tower, head)
            names = {type(layer).__name__ for layer in model._flatten_layers()}
            assert "Lambda" not in names


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(siamese.ConfigError, match="not found"):
        siamese.load_tower(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(siamese.ConfigError, match="cannot load"):
        siamese.load_model(bad)
