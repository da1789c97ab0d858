"""siamese-export: each format, run by its own runtime, gives the tower's embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import siamese
from siamese import cli, encode
from siamese.ensemble import ensemble_tower
from siamese.errors import ConfigError
from siamese.export import export_tower, tokenize

ODD = [
    "A man is playing a GUITAR!!",
    "  tabs\tand\nnew lines   and  spaces ",
    "ÉCOLE and Ünïcode stay as they are, but ASCII lowers",
    "punctuation: don't, (can't) [won't] {x} a-b_c @home #tag 50% $5 ~tilde~ `tick` \"q\" back\\slash",
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen",
    "",
    "!!!",
    "wordsnotinthevocabulary zzzqqq",
]


@pytest.fixture(scope="module")
def sentences(data_dir) -> list[str]:
    from siamese.datasets.text import load_text_dataset

    pairs = load_text_dataset("sick")["test"]
    texts = list(dict.fromkeys([*pairs.a, *pairs.b]))
    return texts[:1500]


def test_the_documented_rule_gives_the_towers_token_ids_on_real_sentences(sentences):
    tower = siamese.text_tower(sentences[:700], vocab_size=1500, sequence_length=12, embedding_dim=8, units=8)
    vectorizer = encode.text_vectorizer(tower)
    texts = [*sentences, *ODD]
    want = encode.token_ids(vectorizer, texts)
    got = tokenize(texts, vectorizer.get_vocabulary(), 12)
    assert (want == 1).any() and (want == 0).any()  # unknown words and padding are exercised
    np.testing.assert_array_equal(got, want)


def test_refusals_are_one_line(tmp_path):
    tower = siamese.text_tower(["a b c", "c d e"], vocab_size=20, sequence_length=4, embedding_dim=4, units=4)
    tower.save(tmp_path / "tower.keras")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(ConfigError, match="already exists"):
        export_tower(tmp_path / "tower.keras", "onnx", tmp_path / "taken")
    with pytest.raises(ConfigError, match="choose one of"):
        export_tower(tmp_path / "tower.keras", "pickle", tmp_path / "new")
    ensemble = ensemble_tower([tower, tower])
    ensemble.save(tmp_path / "ensemble.keras")
    with pytest.raises(ConfigError, match="saved-model"):
        export_tower(tmp_path / "ensemble.keras", "onnx", tmp_path / "e")
    result = CliRunner().invoke(
        cli.export,
        ["--run", str(tmp_path / "tower.keras"), "--format", "onnx", "--out", str(tmp_path / "taken")],
    )
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "Examples" in CliRunner().invoke(cli.export, ["--help"]).output
    assert not list(tmp_path.glob(".tmp-*"))


# ---------------------------------------------------------------------- parity, by each runtime


def _run_saved_model(folder: Path, inputs: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))
    return np.asarray(loaded.serve(tf.constant(inputs)))


def _run_onnx(folder: Path, inputs: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime", reason="the export extra (onnxruntime) is not installed")
    session = ort.InferenceSession(str(folder / "tower.onnx"), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: inputs})[0]


def _run_litert(folder: Path, inputs: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(folder / "tower.tflite"))
    (detail,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(detail["index"], list(inputs.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], inputs.astype(detail["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


RUNNERS = {"saved-model": _run_saved_model, "onnx": _run_onnx, "litert": _run_litert}


#: The text towers exported: the toolkit's default shape (a BiLSTM, max-pooled, projected as a
#: distilled tower is) and a one-way LSTM read at its last state.
TEXT_TOWERS = {
    "bilstm-max-projected": {"rnn": "bilstm", "sequence_pooling": "max", "projection": 12},
    "lstm-max": {"rnn": "lstm", "sequence_pooling": "max"},
    "bilstm-last": {"rnn": "bilstm", "sequence_pooling": "last"},
}


@pytest.fixture(scope="module", params=list(TEXT_TOWERS))
def text_tower_file(request, tmp_path_factory, sentences) -> Path:
    path = tmp_path_factory.mktemp("text") / "tower.keras"
    siamese.text_tower(
        sentences[:800],
        vocab_size=1200,
        sequence_length=16,
        embedding_dim=16,
        units=16,
        seed=3,
        **TEXT_TOWERS[request.param],
    ).save(path)
    return path


@pytest.fixture(scope="module")
def images(data_dir) -> np.ndarray:
    from siamese.datasets.images import load_image_dataset

    return load_image_dataset("fashion-mnist")["test"].images[:64]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(RUNNERS))
def test_an_exported_text_tower_gives_the_towers_embeddings(tmp_path, fmt, text_tower_file, sentences):
    texts = sentences[-200:]
    tower = siamese.load_tower(text_tower_file)
    want = siamese.embed(tower, texts)
    record = export_tower(text_tower_file, fmt, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "export.json").read_text()) == record
    if fmt == "saved-model":
        got = RUNNERS[fmt](tmp_path / "out", np.asarray(texts, dtype=object))
    else:
        settings = json.loads((tmp_path / "out" / "tokenizer.json").read_text())
        ids = tokenize(texts, settings["vocabulary"], settings["sequence_length"])
        got = RUNNERS[fmt](tmp_path / "out", ids)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(RUNNERS))
def test_an_exported_image_tower_gives_the_towers_embeddings(tmp_path, fmt, images):
    tower = siamese.image_tower(images.shape[1:], filters=(8, 16), embedding_dim=16, batch_norm=True)
    tower.save(tmp_path / "tower.keras")
    want = siamese.embed(tower, images)
    export_tower(tmp_path / "tower.keras", fmt, tmp_path / "out")
    spec_dtype = tower.inputs[0].dtype
    got = RUNNERS[fmt](tmp_path / "out", images.astype(spec_dtype))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)
