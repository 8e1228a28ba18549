"""The bundled MNIST copy and the IDX loader."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from digitsum_edge import mnist
from digitsum_edge.errors import DigitsumError

TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # from the data's README


def test_bundled_test_split_has_documented_shape_and_label_counts() -> None:
    test = mnist.load("test")
    assert test.images.shape == (10000, 28, 28) and test.images.dtype == np.uint8
    assert np.bincount(test.labels, minlength=10).tolist() == TEST_COUNTS


def test_bundled_train_split_shape() -> None:
    train = mnist.load("train")
    assert train.images.shape == (60000, 28, 28)
    assert np.bincount(train.labels, minlength=10)[0] == 5923


def _copy_split(dst: Path, *, decompress: bool) -> None:
    for name in mnist.FILES["test"] + mnist.FILES["train"]:
        src = mnist.bundled_dir() / f"{name}.gz"
        if decompress:
            (dst / name).write_bytes(gzip.decompress(src.read_bytes()))
        else:
            shutil.copy(src, dst / src.name)


def test_data_dir_with_uncompressed_files_gives_same_data(tmp_path: Path) -> None:
    _copy_split(tmp_path, decompress=True)
    assert np.array_equal(mnist.load("test", tmp_path).images, mnist.load("test").images)


def test_missing_folder_and_file_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DigitsumError, match="does not exist"):
        mnist.load("test", tmp_path / "nowhere")
    with pytest.raises(DigitsumError, match=r"t10k-images-idx3-ubyte.*not found"):
        mnist.load("test", tmp_path)


@pytest.mark.parametrize("damage", ["magic", "truncate", "not_gzip"])
def test_malformed_file_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    _copy_split(tmp_path, decompress=True)
    target = tmp_path / "t10k-images-idx3-ubyte"
    raw = target.read_bytes()
    if damage == "magic":
        target.write_bytes(b"\x00\x00\x08\x01" + raw[4:])
    elif damage == "truncate":
        target.write_bytes(raw[:-100])
    else:
        target.unlink()
        (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DigitsumError, match="t10k-images-idx3-ubyte"):
        mnist.load("test", tmp_path)


@pytest.mark.parametrize("seed", range(12))
def test_gzip_header_then_garbage_is_a_clear_error(tmp_path: Path, seed: int) -> None:
    # a valid gzip header followed by random bytes: zlib.error for some garbage, BadGzipFile/EOF for other
    header = gzip.compress(b"")[:10]
    garbage = np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    _copy_split(tmp_path, decompress=False)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(header + garbage)
    with pytest.raises(DigitsumError, match="t10k-labels-idx1-ubyte"):
        mnist.load("test", tmp_path)
