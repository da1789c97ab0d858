"""Tests for the image dataset readers (siamese.datasets.images and tfds_images)."""

from __future__ import annotations

import gzip
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from siamese.datasets.files import resize_images
from siamese.datasets.images import (
    FASHION_MNIST_CLASSES,
    load_image_dataset,
    read_fashion_mnist,
    read_idx,
    read_image_folder,
    read_omniglot_background,
    read_omniglot_runs,
)
from siamese.datasets.records import LabelledImages, with_rotated_classes
from siamese.datasets.splits import class_split, group_split, stratified_split
from siamese.errors import ConfigError, DataError

# --------------------------------------------------------------------------- helpers


def real_data_dir() -> Path:
    value = os.environ.get("SIAMESE_DATA_DIR")
    if not value or not Path(value, "images").is_dir():
        pytest.skip("SIAMESE_DATA_DIR not set / folder absent")
    return Path(value)


def png_bytes(mode: str = "L", size: tuple[int, int] = (6, 5), value: int | tuple = 0) -> bytes:
    """A PNG of ``size`` (width, height) filled with ``value``."""
    buffer = io.BytesIO()
    Image.new(mode, size, value).save(buffer, format="PNG")
    return buffer.getvalue()


def write_image(path: Path, mode: str = "L", size=(6, 5), value=0, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path, format=fmt)
    return path


def idx_bytes(magic: int, dims: tuple[int, ...], data: bytes) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + data


def omniglot_zip(path: Path, top: str, members: dict[str, bytes]) -> Path:
    """A zip laid out like Omniglot's: ``top/<Alphabet>/characterNN/XXXX_YY.png``."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{top}/", b"")
        for name, data in members.items():
            archive.writestr(f"{top}/{name}", data)
    return path


def tiny_background(tmp_path: Path) -> tuple[Path, Path]:
    """Two zips sharing alphabet 'Greek' byte for byte, as in the real small sets."""
    greek = {
        f"Greek/character0{c}/000{c}_0{d}.png": png_bytes("1", (4, 4), (c + d) % 2)
        for c in (1, 2)
        for d in (1, 2, 3)
    }
    first = dict(greek)
    first.update({f"Alpha/character01/0100_0{d}.png": png_bytes("1", (4, 4), 1) for d in (1, 2)})
    second = dict(greek)
    second.update({f"Beta/character03/0200_0{d}.png": png_bytes("1", (4, 4), 0) for d in (1, 2)})
    return (
        omniglot_zip(tmp_path / "small1.zip", "bg1", first),
        omniglot_zip(tmp_path / "small2.zip", "bg2", second),
    )


def runs_zip(path: Path, labels: dict[str, str], n: int = 3, extra: dict | None = None) -> Path:
    """A one-shot runs zip with n exemplars and n queries per run."""
    with zipfile.ZipFile(path, "w") as archive:
        for run, text in labels.items():
            archive.writestr(f"{run}/class_labels.txt", text)
            for i in range(1, n + 1):
                archive.writestr(f"{run}/training/class{i:02d}.png", png_bytes("1", (4, 4), 1))
                archive.writestr(f"{run}/test/item{i:02d}.png", png_bytes("1", (4, 4), i % 2))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


# --------------------------------------------------------------------------- idx files


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_images_and_labels(tmp_path, compress):
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8)
    images = idx_bytes(2051, (2, 3, 4), pixels.tobytes())
    labels = idx_bytes(2049, (2,), bytes([7, 3]))
    if compress:
        images, labels = gzip.compress(images), gzip.compress(labels)
    (tmp_path / "img").write_bytes(images)
    (tmp_path / "lab").write_bytes(labels)
    got = read_idx(tmp_path / "img")
    assert got.dtype == np.uint8 and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got.ravel(), pixels)
    np.testing.assert_array_equal(read_idx(tmp_path / "lab"), [7, 3])


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(idx_bytes(2052, (1,), b"\x00"))
    with pytest.raises(DataError, match="magic number 2052") as info:
        read_idx(path)
    assert info.value.path == str(path)


def test_read_idx_truncated_data(tmp_path):
    path = tmp_path / "short.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(2051, (10, 28, 28), b"\x00" * 100)))
    with pytest.raises(DataError, match="size mismatch") as info:
        read_idx(path)
    assert info.value.path == str(path)


def test_read_idx_trailing_garbage(tmp_path):
    path = tmp_path / "long.idx"
    path.write_bytes(idx_bytes(2049, (2,), b"\x01\x02garbage"))
    with pytest.raises(DataError, match="size mismatch"):
        read_idx(path)


def test_read_idx_truncated_header_and_empty(tmp_path):
    (tmp_path / "header").write_bytes(idx_bytes(2051, (5,), b""))  # needs 3 dims
    with pytest.raises(DataError, match="header truncated"):
        read_idx(tmp_path / "header")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(DataError, match="too short"):
        read_idx(tmp_path / "empty")


def test_read_idx_corrupt_gzip_and_missing(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(2049, (50,), bytes(50)))[:20])
    with pytest.raises(DataError, match="gzip") as info:
        read_idx(path)
    assert info.value.path == str(path)
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "nope.gz")


def test_fashion_mnist_count_mismatch(tmp_path, monkeypatch):
    folder = tmp_path / "images" / "fashion-mnist"
    folder.mkdir(parents=True)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(2051, (3, 2, 2), bytes(12))))
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(2049, (2,), bytes([0, 1]))))
    monkeypatch.setenv("SIAMESE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="2 labels for 3 images") as info:
        read_fashion_mnist("train")
    assert info.value.path.endswith("train-labels-idx1-ubyte.gz")


def test_fashion_mnist_bad_label_and_split(tmp_path, monkeypatch):
    folder = tmp_path / "images" / "fashion-mnist"
    folder.mkdir(parents=True)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(2051, (3, 2, 2), bytes(12))))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(2049, (3,), bytes([0, 12, 1])))
    )
    monkeypatch.setenv("SIAMESE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="label 12") as info:
        read_fashion_mnist("test")
    assert info.value.line == 2
    with pytest.raises(ConfigError, match="'dev'"):
        read_fashion_mnist("dev")


def test_fashion_mnist_real():
    real_data_dir()
    train = read_fashion_mnist("train")
    test = read_fashion_mnist("test")
    assert train.images.shape == (60000, 28, 28, 1) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28, 1)
    assert train.labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(train.labels), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(test.labels), [1000] * 10)
    assert train.class_names[0] == "T-shirt/top" and train.class_names[9] == "Ankle boot"
    assert train.groups is None and len(train) == 60000
    assert 0 < train.images.mean() < 255


def test_load_fashion_mnist_splits():
    real_data_dir()
    data = load_image_dataset("fashion-mnist", seed=3)
    assert {k: len(v) for k, v in data.items()} == {"train": 54000, "dev": 6000, "test": 10000}
    np.testing.assert_array_equal(np.bincount(data["dev"].labels), [600] * 10)
    np.testing.assert_array_equal(np.bincount(data["train"].labels), [5400] * 10)
    assert data["dev"].class_names == FASHION_MNIST_CLASSES
    full = read_fashion_mnist("train")
    # train + dev is a partition of the 60,000 training images (same pixel total).
    total = int(data["train"].images.sum(dtype=np.int64) + data["dev"].images.sum(dtype=np.int64))
    assert total == int(full.images.sum(dtype=np.int64))


# --------------------------------------------------------------------------- Omniglot


def test_omniglot_background_dedup_tiny(tmp_path):
    first, second = tiny_background(tmp_path)
    data = read_omniglot_background([first, second])
    # Greek: 2 characters x 3 drawers once, plus Alpha and Beta: 2 each.
    assert len(data) == 10
    assert data.class_names == [
        "Alpha/character01",
        "Beta/character03",
        "Greek/character01",
        "Greek/character02",
    ]
    assert data.group_names == ["Alpha", "Beta", "Greek"]
    np.testing.assert_array_equal(np.bincount(data.labels), [2, 2, 3, 3])
    np.testing.assert_array_equal(data.groups, [0, 0, 1, 1, 2, 2, 2, 2, 2, 2])
    assert data.images.shape == (10, 4, 4, 1)
    assert set(np.unique(data.images)) == {0, 255}
    assert len(read_omniglot_background(first)) == 8


def test_omniglot_background_resize_tiny(tmp_path):
    first, _ = tiny_background(tmp_path)
    assert read_omniglot_background(first, size=(2, 3)).images.shape == (8, 2, 3, 1)


def test_omniglot_wrong_layout(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pictures/cat.png", png_bytes())
    with pytest.raises(DataError, match="Alphabet>/characterNN") as info:
        read_omniglot_background(path)
    assert "pictures/cat.png" in str(info.value) and info.value.path == str(path)


def test_omniglot_empty_zip_and_not_a_zip(tmp_path):
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("top/", b"")
    with pytest.raises(DataError, match="no images"):
        read_omniglot_background(empty)
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"this is not a zip")
    with pytest.raises(DataError, match="not a readable zip") as info:
        read_omniglot_background(garbage)
    assert info.value.path == str(garbage)
    with pytest.raises(DataError, match="not found"):
        read_omniglot_background(tmp_path / "missing.zip")


def test_omniglot_corrupt_png(tmp_path):
    path = omniglot_zip(
        tmp_path / "bad.zip",
        "top",
        {
            "Greek/character01/0001_01.png": png_bytes("1", (4, 4)),
            "Greek/character01/0001_02.png": b"\x89PNG\r\n\x1a\nnot really",
        },
    )
    with pytest.raises(DataError, match="0001_02.png") as info:
        read_omniglot_background(path)
    assert info.value.path == str(path)


def test_omniglot_size_mismatch(tmp_path):
    path = omniglot_zip(
        tmp_path / "sizes.zip",
        "top",
        {
            "Greek/character01/0001_01.png": png_bytes("1", (4, 4)),
            "Greek/character01/0001_02.png": png_bytes("1", (5, 4)),
        },
    )
    with pytest.raises(DataError, match=r"0001_02.png is 4x5.*size=\(h, w\)"):
        read_omniglot_background(path)
    assert read_omniglot_background(path, size=(4, 4)).images.shape == (2, 4, 4, 1)


def test_omniglot_background_real():
    root = real_data_dir() / "images" / "omniglot"
    small1 = read_omniglot_background(root / "images_background_small1.zip")
    small2 = read_omniglot_background(root / "images_background_small2.zip")
    assert len(small1) == 2720 and len(small2) == 3120
    data = read_omniglot_background()
    assert len(data) == 4840 and data.num_classes == 242 and len(data.group_names) == 8
    assert data.images.shape == (4840, 105, 105, 1) and data.images.dtype == np.uint8
    assert set(np.unique(data.images)) == {0, 255}
    assert "Greek/character01" in data.class_names
    assert "Japanese_(katakana)" in data.group_names
    np.testing.assert_array_equal(np.bincount(data.labels), [20] * 242)
    # every character belongs to exactly one alphabet, the one in its name
    for label in (0, 100, 241):
        groups = np.unique(data.groups[data.labels == label])
        assert len(groups) == 1
        assert data.class_names[label].split("/")[0] == data.group_names[groups[0]]


def test_load_omniglot_alphabet_split():
    real_data_dir()
    data = load_image_dataset("omniglot", size=(28, 28), seed=1)
    assert set(data) == {"train", "dev"}
    train, dev = data["train"], data["dev"]
    assert train.num_classes == 216 and dev.num_classes == 26  # Latin, a whole alphabet
    assert len(train) + len(dev) == 4840 and len(dev) == 26 * 20
    assert not set(train.class_names) & set(dev.class_names)
    assert {dev.group_names[g] for g in dev.groups} == {"Latin"}
    assert "Latin" not in {train.group_names[g] for g in train.groups}
    assert train.images.shape[1:] == (28, 28, 1)
    again = load_image_dataset("omniglot", size=(28, 28), seed=1)["dev"]
    assert again.class_names == dev.class_names
    other = load_image_dataset("omniglot", size=(28, 28), seed=2)["dev"]
    assert other.class_names != dev.class_names


def test_omniglot_runs_tiny(tmp_path):
    text = (
        "run01/test/item01.png run01/training/class03.png\n"
        "run01/test/item02.png run01/training/class01.png\r\n"
        "\n"
        "run01/test/item03.png run01/training/class02.png\n"
    )
    path = runs_zip(tmp_path / "runs.zip", {"run01": text})
    (run,) = read_omniglot_runs(path)
    assert run.name == "run01"
    assert run.exemplars.shape == (3, 4, 4, 1) and run.queries.shape == (3, 4, 4, 1)
    np.testing.assert_array_equal(run.answers, [2, 0, 1])


@pytest.mark.parametrize(
    ("text", "pattern", "line"),
    [
        ("run01/test/item01.png\n", "2 fields", 1),
        (
            "run01/test/item01.png run01/training/class01.png\n"
            "run01/test/item02.png run01/training/class09.png\n",
            "class09.png",
            2,
        ),
        ("run01/test/item07.png run01/training/class01.png\n", "item07.png", 1),
        (
            "run01/test/item01.png run01/training/class01.png\n"
            "run01/test/item02.png run01/training/class01.png\n",
            "no answer for query",
            None,
        ),
    ],
)
def test_omniglot_runs_bad_labels(tmp_path, text, pattern, line):
    path = runs_zip(tmp_path / "runs.zip", {"run01": text})
    with pytest.raises(DataError, match=pattern) as info:
        read_omniglot_runs(path)
    assert info.value.path == str(path) and info.value.line == line
    assert "run01/class_labels.txt" in str(info.value)


def test_omniglot_runs_bad_layout(tmp_path):
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images/a.png", png_bytes())
    with pytest.raises(DataError, match="class_labels.txt"):
        read_omniglot_runs(path)
    text = "run01/test/item01.png run01/training/class01.png\n"
    bad = runs_zip(tmp_path / "bad.zip", {"run01": text}, n=1, extra={"run01/test/item02.png": b"garbage"})
    with pytest.raises(DataError, match="item02.png"):
        read_omniglot_runs(bad)


def test_omniglot_runs_real():
    root = real_data_dir() / "images" / "omniglot"
    runs = read_omniglot_runs()
    assert len(runs) == 20 and [r.name for r in runs][:2] == ["run01", "run02"]
    for run in runs:
        assert run.exemplars.shape == (20, 105, 105, 1) and run.queries.shape == (20, 105, 105, 1)
        assert run.answers.dtype == np.int64 and sorted(run.answers) == list(range(20))
    # By hand from run01/class_labels.txt: item01 -> class08, item02 -> class09,
    # item03 -> class02, item04 -> class19, ..., item20 -> class16.
    assert list(runs[0].answers[:4]) == [7, 8, 1, 18] and runs[0].answers[19] == 15
    with zipfile.ZipFile(root / "all_runs.zip") as archive:
        line = archive.read("run05/class_labels.txt").decode().splitlines()[9]
    query, exemplar = line.split()
    assert query == "run05/test/item10.png"
    assert runs[4].answers[9] == int(exemplar[-6:-4]) - 1
    assert len(read_omniglot_runs(size=(28, 28))[0].queries[0]) == 28


# --------------------------------------------------------------------------- image folders


def test_image_folder_grayscale(tmp_path):
    for i in range(3):
        write_image(tmp_path / "cats" / f"c{i}.png", "L", (6, 5), 10 * i)
    for i in range(2):
        write_image(tmp_path / "dogs" / f"d{i}.png", "L", (6, 5), 200)
    (tmp_path / "dogs" / "notes.txt").write_text("ignored")
    data = read_image_folder(tmp_path)
    assert data.images.shape == (5, 5, 6, 1)
    assert data.class_names == ["cats", "dogs"]
    np.testing.assert_array_equal(data.labels, [0, 0, 0, 1, 1])
    assert data.images[1].max() == 10 and data.images[4].min() == 200


def test_image_folder_rgba_mixed_and_forced(tmp_path):
    write_image(tmp_path / "a" / "1.png", "RGBA", (4, 4), (255, 0, 0, 128))
    write_image(tmp_path / "a" / "2.png", "RGB", (4, 4), (0, 255, 0))
    write_image(tmp_path / "b" / "1.png", "L", (4, 4), 77)
    write_image(tmp_path / "b" / "2.jpg", "L", (4, 4), 77, fmt="JPEG")
    data = read_image_folder(tmp_path)
    assert data.images.shape == (4, 4, 4, 3)  # mixed -> RGB, alpha dropped
    np.testing.assert_array_equal(data.images[0, 0, 0], [255, 0, 0])
    np.testing.assert_array_equal(data.images[2, 0, 0], [77, 77, 77])
    gray = read_image_folder(tmp_path, channels=1)
    assert gray.images.shape == (4, 4, 4, 1) and gray.images[2, 0, 0, 0] == 77
    with pytest.raises(ConfigError, match="channels"):
        read_image_folder(tmp_path, channels=2)


def test_image_folder_sizes_differ(tmp_path):
    write_image(tmp_path / "a" / "1.png", size=(4, 4))
    write_image(tmp_path / "a" / "2.png", size=(4, 4))
    odd = write_image(tmp_path / "b" / "1.png", size=(8, 3))
    write_image(tmp_path / "b" / "2.png", size=(4, 4))
    with pytest.raises(DataError, match=r"3x8.*size=\(h, w\).*--image-size") as info:
        read_image_folder(tmp_path)
    assert info.value.path == str(odd)
    resized = read_image_folder(tmp_path, size=(7, 9))
    assert resized.images.shape == (4, 7, 9, 1)


def test_image_folder_small_class(tmp_path):
    write_image(tmp_path / "a" / "1.png")
    write_image(tmp_path / "a" / "2.png")
    write_image(tmp_path / "lonely" / "1.png")
    with pytest.raises(DataError, match="at least 2") as info:
        read_image_folder(tmp_path)
    assert info.value.path == str(tmp_path / "lonely")


def test_image_folder_empty_and_missing(tmp_path):
    with pytest.raises(DataError, match="no class sub-folders"):
        read_image_folder(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("no images here")
    with pytest.raises(DataError, match="no PNG or JPEG"):
        read_image_folder(tmp_path)
    with pytest.raises(DataError, match="not a folder"):
        read_image_folder(tmp_path / "absent")


def test_image_folder_corrupt_image(tmp_path):
    write_image(tmp_path / "a" / "1.png")
    bad = tmp_path / "a" / "2.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    with pytest.raises(DataError, match="cannot decode") as info:
        read_image_folder(tmp_path)
    assert info.value.path == str(bad)
    # valid header but truncated pixel data: caught when decoding
    bad.write_bytes(png_bytes("L", (6, 5), 3)[:-30])
    with pytest.raises(DataError, match="cannot decode") as info:
        read_image_folder(tmp_path)
    assert info.value.path == str(bad)


def test_load_folder_stratified(tmp_path):
    for cls, count in (("a", 10), ("b", 20)):
        for i in range(count):
            write_image(tmp_path / cls / f"{i:02d}.png", "L", (3, 3), i)
    data = load_image_dataset(str(tmp_path), dev_fraction=0.2, seed=5)
    assert set(data) == {"train", "dev"}
    np.testing.assert_array_equal(np.bincount(data["dev"].labels), [2, 4])
    np.testing.assert_array_equal(np.bincount(data["train"].labels), [8, 16])
    same = load_image_dataset(str(tmp_path), dev_fraction=0.2, seed=5)["dev"]
    np.testing.assert_array_equal(same.images, data["dev"].images)
    resized = load_image_dataset(str(tmp_path), size=(5, 5))["train"]
    assert resized.images.shape[1:] == (5, 5, 1)


# --------------------------------------------------------------------------- splits and options


def toy(n_per_class=(5, 5, 5, 5)) -> LabelledImages:
    labels = np.repeat(np.arange(len(n_per_class)), n_per_class).astype(np.int64)
    images = np.arange(len(labels), dtype=np.uint8).reshape(-1, 1, 1, 1)
    return LabelledImages(
        images, labels, [f"c{i}" for i in range(len(n_per_class))], labels // 2, ["g0", "g1"], "toy"
    )


def test_stratified_split_keeps_one_in_train():
    train, dev = stratified_split(toy((1, 2, 10)), dev_fraction=0.5, seed=0)
    np.testing.assert_array_equal(np.bincount(train.labels), [1, 1, 5])
    np.testing.assert_array_equal(np.bincount(dev.labels, minlength=3), [0, 1, 5])
    assert sorted(np.concatenate([train.images.ravel(), dev.images.ravel()])) == list(range(13))


def test_class_split_relabels():
    train, dev = class_split(toy(), dev_fraction=0.25, seed=0)
    assert dev.num_classes == 1 and train.num_classes == 3
    assert set(dev.labels) == {0} and set(train.labels) == {0, 1, 2}
    assert not set(train.class_names) & set(dev.class_names)
    assert dev.group_names == ["g0", "g1"]
    with pytest.raises(DataError, match="at least 2 classes"):
        class_split(toy((5,)), dev_fraction=0.5)


def test_group_split_holds_out_whole_groups():
    labels = np.repeat(np.arange(12), 2).astype(np.int64)
    groups = labels // 4  # three groups of four classes
    data = LabelledImages(
        np.zeros((24, 1, 1, 1), np.uint8), labels, [f"c{i}" for i in range(12)], groups, ["a", "b", "c"], "t"
    )
    for seed in range(5):
        train, dev = group_split(data, dev_fraction=0.1, seed=seed)
        dev_groups = {dev.group_names[g] for g in dev.groups}
        train_groups = {train.group_names[g] for g in train.groups}
        assert len(dev_groups) == 1 and not dev_groups & train_groups
        assert dev.num_classes == 4 and train.num_classes == 8
    train, dev = group_split(data, dev_fraction=0.5, seed=0)  # 6 classes asked: two groups
    assert dev.num_classes == 8 and train.num_classes == 4
    train, dev = group_split(data, dev_fraction=0.99, seed=0)  # one group always stays in train
    assert train.num_classes == 4
    flat = LabelledImages(data.images, labels, data.class_names, None, None, "t")
    train, dev = group_split(flat, dev_fraction=0.25, seed=0)  # no groups: split by class
    assert dev.num_classes == 3 and train.num_classes == 9


def test_rotated_classes_are_new_classes_in_new_groups():
    base = toy((2, 3))
    base.images = np.arange(len(base) * 4, dtype=np.uint8).reshape(-1, 2, 2, 1)
    rotated = with_rotated_classes(base)
    assert len(rotated) == 4 * len(base) and rotated.num_classes == 8
    np.testing.assert_array_equal(rotated.labels[5:10], base.labels + 2)
    np.testing.assert_array_equal(rotated.images[5], np.rot90(base.images[0], 1))
    np.testing.assert_array_equal(rotated.images[10], base.images[0][::-1, ::-1])
    assert rotated.class_names[:3] == ["c0", "c1", "c0@90"] and rotated.class_names[-1] == "c1@270"
    np.testing.assert_array_equal(rotated.groups[5:10], base.groups + 2)
    assert rotated.group_names[2] == "g0@90"
    wide = toy((2, 2))
    wide.images = np.zeros((4, 2, 3, 1), np.uint8)
    with pytest.raises(ConfigError, match="square"):
        with_rotated_classes(wide)


def test_resize_images():
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    images[1] = 200
    out = resize_images(images, (2, 6))
    assert out.shape == (2, 2, 6, 3) and out[1].min() == 200
    assert resize_images(images, None) is images
    with pytest.raises(ConfigError, match="positive"):
        resize_images(images, (0, 3))


def test_load_unknown_name_and_bad_options(tmp_path):
    with pytest.raises(ConfigError, match="'cifar'.*fashion-mnist.*omniglot.*tfds:mnist"):
        load_image_dataset("cifar")
    with pytest.raises(ConfigError, match="tfds:cifar10.*tfds:fashion_mnist"):
        load_image_dataset("tfds:cifar10")
    with pytest.raises(ConfigError, match="dev_fraction"):
        load_image_dataset("omniglot", dev_fraction=1.0)
    with pytest.raises(ConfigError, match="image size"):
        load_image_dataset("omniglot", size=(28,))
    (tmp_path / "file.zip").write_bytes(b"")
    with pytest.raises(DataError, match="not a folder"):
        load_image_dataset(str(tmp_path / "file.zip"))


# --------------------------------------------------------------------------- tensorflow-datasets


@pytest.fixture(scope="module")
def tfds():
    return pytest.importorskip("tensorflow_datasets")


def test_tfds_fashion_mnist_mock(tfds):
    with tfds.testing.mock_data(num_examples=40):
        data = load_image_dataset("tfds:fashion_mnist", seed=0)
    assert len(data["train"]) + len(data["dev"]) == 40 and len(data["test"]) == 40
    assert len(data["dev"]) > 0
    assert data["train"].images.shape[1:] == (28, 28, 1)
    assert data["train"].images.dtype == np.uint8 and data["train"].labels.dtype == np.int64
    assert data["test"].class_names[0] == "T-shirt/top" and data["test"].num_classes == 10


def test_tfds_mnist_mock_resized(tfds):
    with tfds.testing.mock_data(num_examples=12):
        data = load_image_dataset("tfds:mnist", size=(14, 14))
    assert data["test"].images.shape == (12, 14, 14, 1)
    assert data["test"].name == "tfds:mnist/test"


def test_tfds_omniglot_mock(tfds):
    with tfds.testing.mock_data(num_examples=30):
        data = load_image_dataset("tfds:omniglot", size=(28, 28), dev_fraction=0.2)
    train, dev, test = data["train"], data["dev"], data["test"]
    assert train.images.shape[1:] == (28, 28, 1) and len(test) == 30
    assert len(train) + len(dev) == 30
    assert not set(train.class_names) & set(dev.class_names)
    assert train.labels.max() == train.num_classes - 1
    assert train.groups is not None and len(train.group_names) == 50
