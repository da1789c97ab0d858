"""A trained tower outside the training stack: SavedModel, ONNX or LiteRT (``siamese-export``).

:func:`export_tower` writes, into a new folder:

``saved-model``
    A TensorFlow SavedModel of the whole tower (``tf.saved_model.load(OUT).serve(x)``; TF
    Serving's ``serving_default``): a text tower keeps its string input, ``TextVectorization``
    included; an image tower takes its images as the tower does.
``onnx`` (``tower.onnx``, for onnxruntime) and ``litert`` (``tower.tflite``, for the LiteRT /
TFLite interpreter)
    An image tower whole. A text tower from its token ids on: the converters do not take
    ``TextVectorization``'s string ops, so the model's input is ``ids``, ``int64``
    ``(batch, sequence_length)``, and ``tokenizer.json`` beside it holds the vocabulary and the
    rule that turns a text into those ids (:func:`tokenize`, tested against the tower's own
    ``TextVectorization`` on real sentences)::

        1. lowercase the ASCII letters A-Z (other characters stay as they are);
        2. delete each character of !"#$%&()*+,-./:;<=>?@[\\]^_`{|}~' ;
        3. split on runs of ASCII whitespace (space, tab, line feed, carriage return,
           vertical tab, form feed), dropping empty pieces;
        4. each piece's id is its position in ``vocabulary``; a piece not in it is 1
           ("[UNK]"); id 0 is padding;
        5. keep the first ``sequence_length`` ids, pad with 0 to ``sequence_length``.

Every export's folder also holds ``export.json``: the format, the input (name, dtype, shape),
the output width, and the tower file's SHA-256. An ensemble tower (several members, each with
its own vocabulary) exports as a SavedModel only; ONNX and LiteRT refuse it in one line.

The converters come with the optional extra ``export`` (``pip install "siamese[export]"``:
tf2onnx and onnxruntime); the LiteRT converter and interpreter are TensorFlow's.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from siamese import encode
from siamese.errors import ConfigError
from siamese.io import checksum
from siamese.models import load_tower

logger = logging.getLogger(__name__)

FORMATS = ("saved-model", "onnx", "litert")
ONNX_FILE = "tower.onnx"
LITERT_FILE = "tower.tflite"
TOKENIZER_FILE = "tokenizer.json"
EXPORT_FILE = "export.json"
#: The characters step 2 of the tokenisation rule deletes (TextVectorization's default).
PUNCTUATION = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'"
_STRIP = re.compile("[" + re.escape(PUNCTUATION) + "]")
_SPLIT = re.compile("[ \t\n\r\x0b\x0c]+")
#: The tokenisation rule, as ``tokenizer.json`` states it.
RULE = (
    "lowercase the ASCII letters A-Z (other characters stay as they are)",
    f"delete each of these characters: {PUNCTUATION}",
    "split on runs of ASCII whitespace (space, tab, line feed, carriage return, vertical tab, form feed), "
    "dropping empty pieces",
    'the id of each piece is its position in "vocabulary"; a piece not in it is 1 ("[UNK]"); 0 is padding',
    'keep the first "sequence_length" ids; pad with 0 to "sequence_length"',
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def standardize(text: str) -> str:
    """``text`` after steps 1 and 2 of the tokenisation rule (ASCII letters lowered, the
    punctuation of :data:`PUNCTUATION` deleted), as the tower's ``TextVectorization`` has it."""
    return _STRIP.sub("", text.translate(_ASCII_LOWER))


def tokenize(texts: Iterable[str], vocabulary: Sequence[str], sequence_length: int) -> np.ndarray:
    """Token ids of ``texts`` by the rule of the module docstring: what the tower's
    ``TextVectorization`` gives, without TensorFlow; ``(n, sequence_length)`` ``int64``."""
    lookup = {word: i for i, word in enumerate(vocabulary) if i >= 2}
    rows = []
    for text in texts:
        pieces = [p for p in _SPLIT.split(standardize(text)) if p]
        ids = [lookup.get(piece, 1) for piece in pieces[:sequence_length]]
        rows.append(ids + [0] * (sequence_length - len(ids)))
    return np.asarray(rows, dtype=np.int64).reshape(-1, sequence_length)


def _tokenizer_settings(tower: keras.Model) -> dict[str, Any]:
    vectorizer = encode.text_vectorizer(tower)
    config = vectorizer.get_config()
    if config.get("standardize") != "lower_and_strip_punctuation" or config.get("split") != "whitespace":
        raise ConfigError(
            f"the tower's TextVectorization uses standardize={config.get('standardize')!r}, "
            f"split={config.get('split')!r}: the token-id export documents the default rule only; "
            "export it as saved-model"
        )
    if config.get("output_mode") != "int" or not config.get("output_sequence_length"):
        raise ConfigError(
            "the tower's TextVectorization does not give fixed-length ids: export it as saved-model"
        )
    if config.get("ngrams"):
        raise ConfigError("the tower's TextVectorization makes n-grams: export it as saved-model")
    return {
        "vocabulary": [str(word) for word in vectorizer.get_vocabulary()],
        "sequence_length": int(config["output_sequence_length"]),
        "pad_id": 0,
        "oov_id": 1,
        "rule": [
            line.strip() for line in __doc__.split("::")[1].split("Every export")[0].strip().splitlines()
        ],
    }


def _id_model(tower: keras.Model, sequence_length: int) -> keras.Model:
    """The tower from its token ids on: the layers after ``TextVectorization``, each
    recurrent one unrolled over the fixed ``sequence_length`` (a copy with the same weights).

    Keras runs a recurrent layer as a ``while`` loop over TensorFlow tensor lists, which the
    LiteRT interpreter runs only with TensorFlow's own ops linked in (the Flex delegate);
    unrolled, the same computation is plain matrix products that every runtime has.
    """
    ids = keras.Input(shape=(sequence_length,), dtype="int64", name="ids")
    encoded = ids
    for layer in encode.text_chain(tower):
        if isinstance(layer, keras.layers.Bidirectional):
            encoded = _unrolled_bidirectional(layer, encoded)
        else:
            encoded = _unrolled(layer)(encoded)
    return keras.Model(ids, encoded, name=f"{tower.name}_ids")


def _unrolled(
    layer: keras.layers.Layer, called: keras.layers.Layer | None = None, **changes: Any
) -> keras.layers.Layer:
    """``layer`` itself, or for a recurrent layer an unrolled copy with its weights (and the
    config ``changes``), built for the input of ``called`` (default: ``layer``'s own)."""
    if not isinstance(layer, keras.layers.RNN):
        return layer
    given = (called or layer).input
    copy = type(layer).from_config({**layer.get_config(), "unroll": True, **changes})
    copy.build(given[0].shape if isinstance(given, (list, tuple)) else given.shape)
    copy.set_weights(layer.get_weights())
    return copy


def _unrolled_bidirectional(layer: keras.layers.Bidirectional, encoded: Any) -> Any:
    """A bidirectional RNN over right-padded, masked ids, unrolled: the backward direction runs
    forwards over each sequence reversed within its length (``tf.reverse_sequence``), and its
    outputs are reversed back. Keras's own unrolled ``go_backwards`` does not give the looped
    layer's backward states on padded sequences (0.17 apart on a BiLSTM-256 tower)."""
    if layer.merge_mode != "concat":
        raise ConfigError(
            f"the tower's bidirectional layer merges by {layer.merge_mode!r}: export it as saved-model"
        )
    forward = _unrolled(layer.forward_layer, layer)(encoded)
    backward_layer = _unrolled(layer.backward_layer, layer, go_backwards=False)
    backward = backward_layer(_ReverseWithinLength()(encoded))
    if layer.return_sequences:
        backward = _ReverseWithinLength()(backward)
    return keras.layers.Concatenate(axis=-1)([forward, backward])


class _ReverseWithinLength(keras.layers.Layer):
    """Each sequence's real steps (its mask) in reverse order, the padding left after them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any, mask: Any = None) -> Any:
        import tensorflow as tf

        lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        return tf.reverse_sequence(inputs, lengths, seq_axis=1, batch_axis=0)


def _is_text(tower: keras.Model) -> bool:
    return tower.inputs[0].dtype == "string"


def export_tower(source: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Export the tower of ``source`` (a run folder or a ``tower.keras``) as ``fmt`` (one of
    :data:`FORMATS`) into the new folder ``out``; returns what ``export.json`` records.

    Raises:
        ConfigError: An unknown format, ``out`` exists and is not empty, the tower cannot be
            exported in that format (one line saying why), or its converter is not installed.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} already exists: choose a new --out (an export never overwrites)")
    tower_file = Path(source) / "tower.keras" if Path(source).is_dir() else Path(source)
    tower = load_tower(source)
    text = _is_text(tower)
    if text and fmt != "saved-model" and not encode.trimmable(tower):
        raise ConfigError(
            f"{source}: this text tower is not one TextVectorization → Embedding chain (an ensemble "
            "has one vocabulary per member): export it as saved-model, or export each member's run"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        record: dict[str, Any] = {
            "format": fmt,
            "tower_sha256": checksum(tower_file, ConfigError),
            "output_width": encode.output_width(tower),
        }
        if fmt == "saved-model":
            _saved_model(tower, aside)
            spec = tower.inputs[0]
            record["input"] = {"name": "inputs", "dtype": str(spec.dtype), "shape": list(spec.shape)}
            record["signature"] = "serving_default (also the 'serve' function)"
        else:
            model = tower
            if text:
                settings = _tokenizer_settings(tower)
                (aside / TOKENIZER_FILE).write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
                model = _id_model(tower, settings["sequence_length"])
            spec = model.inputs[0]
            record["input"] = {"name": spec.name, "dtype": str(spec.dtype), "shape": list(spec.shape)}
            if fmt == "onnx":
                _onnx(model, aside / ONNX_FILE)
                record["file"] = ONNX_FILE
            else:
                _litert(model, aside / LITERT_FILE)
                record["file"] = LITERT_FILE
            if text:
                record["tokenizer"] = TOKENIZER_FILE
        (aside / EXPORT_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(aside, out)
    except BaseException:
        shutil.rmtree(aside, ignore_errors=True)
        raise
    logger.info("exported %s as %s to %s", tower_file, fmt, out)
    return record


def _saved_model(tower: keras.Model, folder: Path) -> None:
    tower.export(str(folder), format="tf_saved_model", verbose=False)


def _called(model: keras.Model) -> keras.Model:
    """The model after one call on zeros (Keras's converters refuse a model never called)."""
    spec = model.inputs[0]
    shape = [1 if d is None else int(d) for d in spec.shape]
    model(np.zeros(shape, dtype=spec.dtype))
    return model


def _onnx(model: keras.Model, path: Path) -> None:
    try:
        import tf2onnx  # noqa: F401
    except ImportError:
        raise ConfigError(
            'ONNX export needs the export extra (tf2onnx): pip install "siamese[export]"'
        ) from None
    with _quiet():
        _called(model).export(str(path), format="onnx", verbose=False)


def _litert(model: keras.Model, path: Path) -> None:
    with _quiet():
        _called(model).export(str(path), format="litert", verbose=False)


class _quiet:
    """Keep the converters' chatter (absl and TensorFlow loggers) below warnings."""

    def __enter__(self) -> None:
        self.levels = {}
        for name in ("absl", "tensorflow", "tf2onnx"):
            self.levels[name] = logging.getLogger(name).level
            logging.getLogger(name).setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)
