"""MNIST from the four IDX files (gzip or not): the copy shipped in the package, or any folder."""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from digitsum_edge.errors import DigitsumError
from digitsum_edge.onnx_contract import IMAGE_SIZE

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MAGIC = {3: 0x0803, 1: 0x0801}  # IDX magic for unsigned bytes with 3 (images) or 1 (labels) dimensions


@dataclass(frozen=True)
class Split:
    """One MNIST split as uint8 arrays (numpy: the runtime install reads it without torch)."""

    images: np.ndarray  # (N, 28, 28) uint8, white digit on black
    labels: np.ndarray  # (N,) uint8, 0-9

    def __len__(self) -> int:
        return len(self.labels)


def bundled_dir() -> Path:
    """The folder of MNIST files shipped inside the package."""
    return Path(str(resources.files("digitsum_edge") / "data"))


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise DigitsumError(f"MNIST file {name}[.gz] not found in {folder}")


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes (gzip or raw), checking its magic number and size."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DigitsumError(f"cannot read {path}: {'corrupt gzip data' if isinstance(e, zlib.error) else e}") from None
    header = 4 + 4 * ndim
    if len(raw) < header or int.from_bytes(raw[:4], "big") != _MAGIC[ndim]:
        raise DigitsumError(f"{path} is not an IDX file of {ndim}-d unsigned bytes (bad header)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header != int(np.prod(shape)):
        raise DigitsumError(f"{path} is truncated or padded: header says {shape}, data has "
                            f"{len(raw) - header} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load(split: str, data_dir: str | os.PathLike | None = None) -> Split:
    """Load the 'train' or 'test' split from `data_dir` (default: the bundled copy)."""
    folder = Path(data_dir) if data_dir is not None else bundled_dir()
    if not folder.is_dir():
        raise DigitsumError(f"MNIST folder {folder} does not exist")
    image_name, label_name = FILES[split]
    images = read_idx(_find(folder, image_name), 3)
    labels = read_idx(_find(folder, label_name), 1)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DigitsumError(f"{image_name} holds {images.shape[1:]} images, expected 28x28")
    if len(images) != len(labels):
        raise DigitsumError(f"{split}: {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DigitsumError(f"{label_name} holds label {labels.max()}, expected 0-9")
    return Split(images=images.copy(), labels=labels.copy())  # writable copies of the read-only buffers
