"""Tests of the sentence-pair readers in siamese.datasets.text (and the tfds path)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from siamese.datasets.records import TextPairs
from siamese.datasets.splits import hold_out
from siamese.datasets.text import (
    TEXT_DATASETS,
    load_text_dataset,
    read_mrpc,
    read_pairs_csv,
    read_paws,
    read_qqp,
    read_sick,
    read_stsb,
)
from siamese.errors import ConfigError, DataError, DatasetNotFoundError

# ----------------------------------------------------------------------------- real data


def _data_root() -> Path:
    value = os.environ.get("SIAMESE_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("SIAMESE_DATA_DIR not set / folder absent")
    return Path(value)


@pytest.fixture(scope="module")
def data_root() -> Path:
    return _data_root()


@pytest.fixture(scope="module")
def text_root(data_root: Path) -> Path:
    return data_root / "text"


def _positives(pairs: TextPairs) -> int:
    return int(pairs.labels.sum())


def test_sick_splits(data_root: Path) -> None:
    splits = load_text_dataset("sick")
    assert {k: len(v) for k, v in splits.items()} == {"train": 4500, "dev": 500, "test": 4927}
    for split, pairs in splits.items():
        assert pairs.name == f"sick/{split}"
        assert pairs.kind == "graded" and pairs.scale == (1.0, 5.0)
        assert pairs.labels.dtype == np.float32 and pairs.labels.shape == (len(pairs),)
        assert pairs.labels.min() >= 1.0 and pairs.labels.max() <= 5.0
        assert len(pairs.extra["entailment"]) == len(pairs.extra["pair_id"]) == len(pairs)
    train = splits["train"]
    assert train.a[0].startswith("A group of kids is playing in a yard")
    assert train.labels[0] == pytest.approx(4.5)
    assert train.extra["entailment"].count("NEUTRAL") == 2536
    assert train.extra["entailment"].count("ENTAILMENT") == 1299
    assert train.extra["entailment"].count("CONTRADICTION") == 665
    # the test file has CRLF endings and no final newline: nothing of \r may survive
    test = splits["test"]
    assert test.extra["pair_id"][-1] == "9996"
    assert not any("\r" in s for s in test.b)


def test_stsb_splits(data_root: Path) -> None:
    splits = load_text_dataset("stsb")
    assert {k: len(v) for k, v in splits.items()} == {"train": 5749, "dev": 1500, "test": 1379}
    for pairs in splits.values():
        assert pairs.kind == "graded" and pairs.scale == (0.0, 5.0)
        assert pairs.labels.min() >= 0.0 and pairs.labels.max() <= 5.0
    train = splits["train"]
    assert (train.a[0], train.b[0], float(train.labels[0])) == (
        "A plane is taking off.",
        "An air plane is taking off.",
        5.0,
    )
    assert train.extra["genre"].count("main-captions") == 2000
    assert float(train.labels.mean()) == pytest.approx(2.701, abs=1e-3)
    # raw quotes are kept, not eaten by CSV quoting
    assert any('"' in s for s in train.a + train.b)


def test_mrpc_splits(text_root: Path) -> None:
    full = read_mrpc(text_root / "mrpc" / "msr_paraphrase_train.txt")
    assert len(full) == 4076 and _positives(full) == 2753
    assert full.a[0] == (
        'Amrozi accused his brother, whom he called "the witness", of deliberately distorting his evidence.'
    )
    splits = load_text_dataset("mrpc")
    sizes = {k: (len(v), _positives(v)) for k, v in splits.items()}
    assert sizes == {"train": (3668, 2474), "dev": (408, 279), "test": (1725, 1147)}
    assert all(v.kind == "binary" and v.scale is None for v in splits.values())
    # the carved split equals GLUE's own train.tsv / dev.tsv
    for split in ("train", "dev"):
        glue = read_mrpc(text_root / "mrpc" / "glue" / f"{split}.tsv")
        assert glue.a == splits[split].a and glue.b == splits[split].b
        np.testing.assert_array_equal(glue.labels, splits[split].labels)


def test_paws_files_and_splits(text_root: Path) -> None:
    dev = read_paws(text_root / "paws" / "dev.tsv")
    test = read_paws(text_root / "paws" / "test.tsv")
    assert (len(dev), _positives(dev)) == (8000, 3539)
    assert (len(test), _positives(test)) == (8000, 3536)
    assert dev.extra["id"][0] == "1" and dev.extra["id"][-1] == "8000"
    splits = load_text_dataset("paws", seed=0, dev_fraction=0.1)
    assert {k: len(v) for k, v in splits.items()} == {"train": 7200, "dev": 800, "test": 8000}
    assert _positives(splits["dev"]) == 354  # stratified: round(3539 * 0.1)
    ids_train, ids_dev = set(splits["train"].extra["id"]), set(splits["dev"].extra["id"])
    assert not ids_train & ids_dev and len(ids_train | ids_dev) == 8000
    again = load_text_dataset("paws", seed=0)
    other = load_text_dataset("paws", seed=1)
    assert again["dev"].extra["id"] == splits["dev"].extra["id"]
    assert other["dev"].extra["id"] != splits["dev"].extra["id"]


def test_qqp_files_and_splits(text_root: Path) -> None:
    dev = read_qqp(text_root / "qqp-bimpm" / "dev.tsv")
    assert (len(dev), _positives(dev)) == (10000, 5000)
    assert dev.a[0] == "How do I get funding for my web based startup idea ?"
    assert dev.extra["pair_id"][0] == "327970"
    splits = load_text_dataset("QQP")  # names are case-insensitive
    sizes = {k: (len(v), _positives(v)) for k, v in splits.items()}
    assert sizes == {"train": (9000, 4500), "dev": (1000, 500), "test": (10000, 5000)}
    assert splits["train"].name == "qqp/train"


def test_real_tsv_as_plain_file(text_root: Path) -> None:
    path = text_root / "paws" / "dev.tsv"
    splits = load_text_dataset(str(path))
    assert set(splits) == {"train", "dev"}
    assert (len(splits["train"]), len(splits["dev"])) == (7200, 800)
    assert splits["train"].kind == "binary"
    # headerless file, columns by index (as strings, the way a command line gives them)
    qqp = read_pairs_csv(
        text_root / "qqp-bimpm" / "test.tsv",
        text_a_col="1",
        text_b_col=2,
        label_col=0,
        header=False,
    )
    assert (len(qqp), _positives(qqp), qqp.kind) == (10000, 5000, "binary")


def test_missing_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIAMESE_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="SICK_train.txt"):
        load_text_dataset("sick")


# ----------------------------------------------------------------------------- tiny files

SICK_HEAD = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
MRPC_HEAD = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
PAWS_HEAD = "id\tsentence1\tsentence2\tlabel\n"


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_tiny_sick_crlf(tmp_path: Path) -> None:
    body = SICK_HEAD + "1\tA dog runs\tA dog is running\t4.8\tentailment\n2\tX y\tZ w\t1\tNEUTRAL"
    path = _write(tmp_path, "s.txt", body.replace("\n", "\r\n"))
    pairs = read_sick(path)
    assert pairs.a == ["A dog runs", "X y"] and pairs.b == ["A dog is running", "Z w"]
    np.testing.assert_allclose(pairs.labels, [4.8, 1.0], rtol=1e-6)
    assert pairs.extra == {"pair_id": ["1", "2"], "entailment": ["ENTAILMENT", "NEUTRAL"]}
    assert pairs.name == "sick/s"


def test_tiny_mrpc_bom_crlf_quotes(tmp_path: Path) -> None:
    body = MRPC_HEAD + '1\t10\t11\tHe said "hi".\t"Hi", he said.\n0\t12\t13\tOne\tTwo\n\n'
    path = _write(tmp_path, "m.txt", b"\xef\xbb\xbf" + body.replace("\n", "\r\n").encode())
    pairs = read_mrpc(path)
    assert pairs.a == ['He said "hi".', "One"] and pairs.b == ['"Hi", he said.', "Two"]
    np.testing.assert_array_equal(pairs.labels, [1.0, 0.0])
    assert pairs.extra == {"id_a": ["10", "12"], "id_b": ["11", "13"]}


def test_tiny_stsb_extra_fields(tmp_path: Path) -> None:
    body = "g\tf\t2012\t1\t3.5\tA b\tC d\textra\tmore\ng\tf\t2012\t2\t0\tE\tF\n"
    pairs = read_stsb(_write(tmp_path, "sts.csv", body))
    assert pairs.a == ["A b", "E"] and pairs.b == ["C d", "F"]
    np.testing.assert_allclose(pairs.labels, [3.5, 0.0])


# reader, file name, content, line expected in the error, words expected in the message
BAD_FILES = [
    (read_sick, "empty.txt", "", 1, "empty"),
    (read_qqp, "blank.tsv", "\n\n", 1, "empty"),
    (read_sick, "head.txt", SICK_HEAD, 2, "no data rows"),
    (read_paws, "head.tsv", PAWS_HEAD.replace("\n", "\r\n"), 2, "no data rows"),
    (read_sick, "hdr.txt", "1\tA\tB\t3\tNEUTRAL\n", 1, "expected the header"),
    (read_sick, "cols.txt", SICK_HEAD + "1\tA\tB\t3\tNEUTRAL\n2\tA\tB\t3\n", 3, "5 tab-separated"),
    (read_sick, "score.txt", SICK_HEAD + "1\tA\tB\thigh\tNEUTRAL\n", 2, "not a number"),
    (read_sick, "range.txt", SICK_HEAD + "1\tA\tB\t0.5\tNEUTRAL\n", 2, "outside the range"),
    (read_sick, "ent.txt", SICK_HEAD + "1\tA\tB\t2\tMAYBE\n", 2, "MAYBE"),
    (read_sick, "sent.txt", SICK_HEAD + "1\tA\t  \t2\tNEUTRAL\n", 2, "empty sentence"),
    (read_stsb, "few.csv", "g\tf\t2012\t1\t3.5\tA b\n", 1, "at least 7"),
    (read_stsb, "nan.csv", "g\tf\t2012\t1\tnan\tA\tB\n", 1, "not finite"),
    (read_stsb, "big.csv", "g\tf\t2012\t1\t5.5\tA\tB\n", 1, "outside the range"),
    (read_mrpc, "lab.txt", MRPC_HEAD + "1\t1\t2\tA\tB\n2\t1\t2\tA\tB\n", 3, "0 or 1"),
    (read_mrpc, "mcols.txt", MRPC_HEAD + "1\t1\t2\tA\tB\textra\n", 2, "5 tab-separated"),
    (read_paws, "pempty.tsv", PAWS_HEAD + "1\t\tB\t0\n", 2, "empty sentence in column sentence1"),
    (read_paws, "plabel.tsv", PAWS_HEAD + "1\tA\tB\tyes\n", 2, "not a number"),
    (read_qqp, "qcols.tsv", "1\tA\tB\t7\n0\tA B\t9\n", 2, "4 tab-separated"),
    (read_qqp, "qlab.tsv", "1\tA\tB\t7\n-1\tA\tB\t9\n", 2, "0 or 1"),
]


@pytest.mark.parametrize(("reader", "name", "content", "line", "words"), BAD_FILES)
def test_bad_files(tmp_path: Path, reader, name: str, content: str, line: int, words: str) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(DataError) as info:
        reader(path)
    assert info.value.line == line
    assert info.value.path == str(path)
    assert words in str(info.value) and f"{path}, line {line}" in str(info.value)


@pytest.mark.parametrize("reader", [read_sick, read_stsb, read_mrpc, read_paws, read_qqp])
def test_missing_file(tmp_path: Path, reader) -> None:
    path = tmp_path / "nope.tsv"
    with pytest.raises(DataError, match="file not found") as info:
        reader(path)
    assert info.value.path == str(path)


@pytest.mark.parametrize("reader", [read_sick, read_mrpc, read_paws])
def test_bad_utf8_names_the_line(tmp_path: Path, reader) -> None:
    header = {read_sick: SICK_HEAD, read_mrpc: MRPC_HEAD, read_paws: PAWS_HEAD}[reader]
    good = {read_sick: "1\tA\tB\t3\tNEUTRAL\n", read_mrpc: "1\t1\t2\tA\tB\n"}.get(reader, "1\tA\tB\t1\n")
    content = (header + good).encode() + b"\xff" + good.encode()
    path = _write(tmp_path, "bad.txt", content)
    with pytest.raises(DataError, match="not valid UTF-8") as info:
        reader(path)
    assert info.value.line == 3


def test_bad_utf8_qqp_and_stsb(tmp_path: Path) -> None:
    qqp = _write(tmp_path, "q.tsv", b"1\tA\tB\t7\n0\tcaf\xe9\tB\t8\n")
    with pytest.raises(DataError) as info:
        read_qqp(qqp)
    assert info.value.line == 2
    sts = _write(tmp_path, "s.csv", b"g\tf\t2012\t1\t3\t\x80\tB\n")
    with pytest.raises(DataError) as info:
        read_stsb(sts)
    assert info.value.line == 1


# ----------------------------------------------------------------------------- generic CSV


def test_csv_quoted_comma_and_guessed_binary(tmp_path: Path) -> None:
    body = 'left,right,y\n"Hello, world",Hi,1\nA "raw" quote,B,0\n"multi\nline",C,1\n'
    pairs = read_pairs_csv(
        _write(tmp_path, "p.csv", body), text_a_col="left", text_b_col="right", label_col="y"
    )
    assert pairs.a == ["Hello, world", 'A "raw" quote', "multi\nline"]
    assert pairs.kind == "binary" and pairs.scale is None
    np.testing.assert_array_equal(pairs.labels, [1, 0, 1])
    assert pairs.name == "p"


def test_tsv_guessed_graded_and_forced_kind(tmp_path: Path) -> None:
    body = 'score\ta\tb\n0.5\tx "y\tz\n3\tu\tv\n1\tw\tq\n'
    path = _write(tmp_path, "g.tsv", body)
    pairs = read_pairs_csv(path, text_a_col="a", text_b_col="b", label_col="score")
    assert pairs.kind == "graded" and pairs.scale == (0.5, 3.0)
    assert pairs.a[0] == 'x "y'
    with pytest.raises(DataError, match="0 or 1") as info:
        read_pairs_csv(path, text_a_col=1, text_b_col=2, label_col=0, kind="binary")
    assert info.value.line == 2
    with pytest.raises(ConfigError, match="kind"):
        read_pairs_csv(path, text_a_col=1, text_b_col=2, label_col=0, kind="fuzzy")


def test_csv_headerless_by_index(tmp_path: Path) -> None:
    path = _write(tmp_path, "h.txt", "a;b;1\nc;d;0\n")
    pairs = read_pairs_csv(path, text_a_col=0, text_b_col=1, label_col=2, sep=";", header=False)
    assert (pairs.a, pairs.b) == (["a", "c"], ["b", "d"])
    with pytest.raises(ConfigError, match="no header"):
        read_pairs_csv(path, text_a_col="x", text_b_col=1, label_col=2, sep=";", header=False)


CSV_BAD = [
    ("a,b,label\nx,y,1\nx,y\n", 3, "expected 3 fields"),
    ("a,b,label\nx,y,maybe\n", 2, "not a number"),
    ("a,b,label\nx,,1\n", 2, "empty sentence in column b"),
    ("a,b,label\n", 2, "no data rows"),
    ("", 1, "empty"),
    ('a,b,label\n"open,y,1\nx,y,0\n', 3, "malformed CSV"),
    ("a,c,label\nx,y,1\n", 1, "no column named 'b'"),
]


@pytest.mark.parametrize(("content", "line", "words"), CSV_BAD)
def test_csv_bad_input(tmp_path: Path, content: str, line: int, words: str) -> None:
    path = _write(tmp_path, "bad.csv", content)
    with pytest.raises(DataError) as info:
        read_pairs_csv(path, text_a_col="a", text_b_col="b", label_col="label")
    assert info.value.line == line and info.value.path == str(path)
    assert words in str(info.value)


def test_csv_bad_utf8_and_index_range(tmp_path: Path) -> None:
    path = _write(tmp_path, "u.csv", b"a,b,label\nx,y,1\nx,\xc3(,0\n")
    with pytest.raises(DataError, match="UTF-8") as info:
        read_pairs_csv(path, text_a_col="a", text_b_col="b", label_col="label")
    assert info.value.line == 3
    ok = _write(tmp_path, "ok.csv", "a,b,label\nx,y,1\n")
    with pytest.raises(DataError, match="out of range"):
        read_pairs_csv(ok, text_a_col=0, text_b_col=1, label_col=5)


# ----------------------------------------------------------------------------- load / splits


def _tiny_binary_csv(tmp_path: Path, n: int = 20) -> Path:
    rows = [f"first {i},second {i},{i % 2}" for i in range(n)]
    return _write(tmp_path, "pairs.csv", "sentence1,sentence2,label\n" + "\n".join(rows) + "\n")


def test_load_plain_file_holds_out_dev(tmp_path: Path) -> None:
    path = _tiny_binary_csv(tmp_path)
    splits = load_text_dataset(str(path), dev_fraction=0.25, seed=3)
    assert set(splits) == {"train", "dev"}
    train, dev = splits["train"], splits["dev"]
    assert (len(train), len(dev)) == (15, 5)
    assert train.name == "pairs.csv/train" and dev.name == "pairs.csv/dev"
    assert sorted(train.a + dev.a) == sorted(f"first {i}" for i in range(20))
    # 5 = round(20 * 0.25), split over the two classes as 3 + 2
    assert _positives(dev) in (2, 3)
    assert load_text_dataset(str(path), dev_fraction=0.25, seed=3)["dev"].a == dev.a
    # order inside each part is the file's order
    assert train.a == sorted(train.a, key=lambda s: int(s.split()[1]))


def test_hold_out_graded_and_too_small() -> None:
    pairs = TextPairs(
        [f"a{i}" for i in range(10)],
        [f"b{i}" for i in range(10)],
        np.linspace(0, 5, 10),
        "graded",
        (0.0, 5.0),
        "x",
    )
    rest, held = hold_out(pairs, 0.3, seed=0)
    assert (len(rest), len(held)) == (7, 3)
    assert set(rest.a).isdisjoint(held.a)
    one = pairs.subset([0], name="one")
    with pytest.raises(ConfigError, match="too few"):
        hold_out(one, 0.3, seed=0)
    with pytest.raises(ConfigError, match="dev_fraction"):
        hold_out(pairs, 1.0, seed=0)


def test_textpairs_checks_lengths() -> None:
    with pytest.raises(ConfigError):
        TextPairs(["a"], ["b", "c"], np.zeros(1), "binary", None, "bad")
    with pytest.raises(ConfigError):
        TextPairs(["a"], ["b"], np.zeros(1), "ordinal", None, "bad")


def test_unknown_spec_lists_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_text_dataset("snli")
    message = str(info.value)
    assert "'snli'" in message and all(name in message for name in TEXT_DATASETS)
    with pytest.raises(DataError, match="missing.csv: file not found"):
        load_text_dataset(str(tmp_path / "missing.csv"))
    with pytest.raises(ConfigError, match="dev_fraction"):
        load_text_dataset(str(_tiny_binary_csv(tmp_path)), dev_fraction=0.0)


# ----------------------------------------------------------------------------- tfds


@pytest.fixture(scope="module")
def tfds():
    return pytest.importorskip("tensorflow_datasets")


def _fake_splits(fields: dict[str, dict[str, list]]):
    """An ``as_dataset_fn`` for tfds.testing.mock_data serving fixed examples per split."""
    import tensorflow as tf

    def as_dataset(self, split, **kwargs):
        columns = fields[str(split)]
        return tf.data.Dataset.from_tensor_slices(
            {
                key: tf.constant(values, tf.int64) if key == "label" else tf.constant(values)
                for key, values in columns.items()
            }
        )

    return as_dataset


def _glue_split(prefix: str, labels: list[int], keys=("sentence1", "sentence2")) -> dict:
    n = len(labels)
    return {
        keys[0]: [f"{prefix} a{i}" for i in range(n)],
        keys[1]: [f"{prefix} b{i}" for i in range(n)],
        "label": labels,
        "idx": list(range(n)),
    }


def test_tfds_glue_unlabelled_test_uses_validation(tfds) -> None:
    fields = {
        "train": _glue_split("train", [0, 1] * 5),
        "validation": _glue_split("val", [1, 0, 1]),
        "test": _glue_split("test", [-1, -1]),
    }
    fields["train"]["sentence1"][3] = "   "  # an empty text is dropped
    with tfds.testing.mock_data(as_dataset_fn=_fake_splits(fields)):
        splits = load_text_dataset("tfds:glue/mrpc", dev_fraction=0.25, seed=0)
    assert set(splits) == {"train", "dev", "test"}
    test = splits["test"]
    assert test.name == "tfds:glue/mrpc/test"
    assert test.a == ["val a0", "val a1", "val a2"] and test.labels.tolist() == [1, 0, 1]
    train, dev = splits["train"], splits["dev"]
    assert len(train) + len(dev) == 9 and len(dev) == 2  # round(9 * .25) = 2, one per class
    assert all(s.startswith("train") for s in train.a + dev.a)
    assert "train a3" not in train.a + dev.a
    assert train.kind == "binary" and train.scale is None


def test_tfds_labelled_test_maps_directly(tfds) -> None:
    fields = {
        "train": _glue_split("train", [0, 1, 1]),
        "validation": _glue_split("val", [1, 0]),
        "test": _glue_split("test", [0, 0, 1, 1]),
    }
    for columns in fields.values():
        del columns["idx"]
    with tfds.testing.mock_data(as_dataset_fn=_fake_splits(fields)):
        splits = load_text_dataset("tfds:paws_wiki")
    assert {k: len(v) for k, v in splits.items()} == {"train": 3, "dev": 2, "test": 4}
    assert splits["dev"].a == ["val a0", "val a1"]
    assert splits["test"].labels.tolist() == [0, 0, 1, 1]


def test_tfds_qqp_question_features(tfds) -> None:
    keys = ("question1", "question2")
    fields = {
        "train": _glue_split("train", [0, 1] * 10, keys),
        "validation": _glue_split("val", [1, 0], keys),
        "test": _glue_split("test", [-1], keys),
    }
    with tfds.testing.mock_data(as_dataset_fn=_fake_splits(fields)):
        splits = load_text_dataset("tfds:glue/qqp")
    assert splits["test"].b == ["val b0", "val b1"]
    assert (len(splits["train"]), len(splits["dev"])) == (18, 2)


def test_tfds_rte_labels_flipped_so_one_means_similar(tfds) -> None:
    fields = {
        "train": _glue_split("train", [0, 0, 0, 1, 1, 1, 0, 1, 0, 1]),
        "validation": _glue_split("val", [0, 1, 1]),
        "test": _glue_split("test", [-1]),
    }
    with tfds.testing.mock_data(as_dataset_fn=_fake_splits(fields)):
        splits = load_text_dataset("tfds:glue/rte")  # names: entailment, not_entailment
    assert splits["test"].labels.tolist() == [1.0, 0.0, 0.0]


def test_tfds_stsb_mocked_is_graded(tfds) -> None:
    with tfds.testing.mock_data(num_examples=9):
        splits = load_text_dataset("tfds:glue/stsb")
    assert set(splits) == {"train", "dev", "test"}
    for pairs in splits.values():
        assert pairs.kind == "graded" and pairs.scale == (0.0, 5.0)
        assert pairs.labels.dtype == np.float32 and 0 < len(pairs) <= 9
    # mocked test labels are all >= 0, so tfds' test counts as labelled and is kept
    assert splits["test"].name == "tfds:glue/stsb/test"
    assert splits["train"].a == splits["test"].a  # the mock serves the same examples


def test_tfds_download_failure(tfds, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(self, *args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(DatasetNotFoundError, match="network is unreachable") as info:
        load_text_dataset("tfds:glue/stsb")
    assert "glue/stsb" in str(info.value)


def test_tfds_rejects_unknown_and_non_pair_datasets(tfds, monkeypatch) -> None:
    def never(self, *args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", never)
    with pytest.raises(ConfigError, match="no_such_dataset"):
        load_text_dataset("tfds:no_such_dataset")
    with pytest.raises(ConfigError, match="3 classes"):
        load_text_dataset("tfds:glue/mnli")


def test_joined_pairs_keep_order_and_shared_side_information() -> None:
    first = TextPairs(
        ["a1", "a2"], ["b1", "b2"], [1.0, 2.0], "graded", (0.0, 5.0), "x/train", {"id": ["1", "2"]}
    )
    second = TextPairs(["a3"], ["b3"], [3.0], "graded", (0.0, 5.0), "x/dev", {"id": ["3"], "genre": ["news"]})
    both = first.joined(second)
    assert (both.a, both.b, both.labels.tolist()) == (["a1", "a2", "a3"], ["b1", "b2", "b3"], [1.0, 2.0, 3.0])
    assert both.extra == {"id": ["1", "2", "3"]} and both.name == "x/train+x/dev"
    assert (both.kind, both.scale) == ("graded", (0.0, 5.0))
    other_scale = TextPairs(["c"], ["d"], [4.0], "graded", (1.0, 5.0), "sick")
    with pytest.raises(ConfigError, match="differ in kind or scale"):
        first.joined(other_scale)
