"""One door to the model: every caller (the reader, exhaustive evaluation, bench, serve, export's verification)
runs an exported file through a `Backend`, opened by `engine.factory.open_model`, and nothing else calls a
runtime itself. This module is the base class and the checks every runtime makes before opening a file.

    backend = open_model("runs/model.onnx", provider="cpu", threads=1)
    digit_logits, sum_logits = backend.logits(pixels, rand)   # uint8 (N, 28, 28) white on black, (N,) ints

A new runtime is one subclass of `Backend` in a module of its own (its `run`, how it opens: see onnx_runtime.py
and litert.py) and one suffix in `factory.open_model`. numpy only at import: the runtime install opens a model
without torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitsum_edge import onnx_contract
from digitsum_edge.errors import DigitsumError, InvalidInput
from digitsum_edge.evaluate import batched_logits
from digitsum_edge.layout import CHECKPOINT_SUFFIXES, ZIP_MAGIC

PROVIDERS = ("auto", "cuda", "cpu")
MAX_BATCH = 4096  # rows per runtime call when a caller hands over more (exhaustive evaluation: 100,000)


@dataclass
class Backend:
    """A checked digitsum-edge model loaded in one runtime: its metadata, where it runs, and `run`."""

    info: onnx_contract.ModelInfo
    provider: str  # "cuda" or "cpu": where the runtime really runs it
    path: Path
    threads: int | None = None  # intra-op threads asked for (None: the runtime's default)
    notes: list[str] = field(default_factory=list)  # e.g. the one-line CUDA fallback message
    static_batch: int | None = None  # a file exported for exactly this batch size (None: any)
    runtime = "backend"  # the runtime's name, as bench and serve report it

    def run(self, image: np.ndarray, rand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One runtime call: image (N, 1, 28, 28) float32 normalised, rand (N,) int64 ->
        digit_logits (N, 10), sum_logits (N, num_sums), float32."""
        raise NotImplementedError

    def reopen(self, threads: int) -> Backend:
        """The same file, provider and runtime with `threads` intra-op threads."""
        raise NotImplementedError

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (N, 28, 28) pixels -> (N, 1, 28, 28) float32, with the normalisation in the file's metadata."""
        return onnx_contract.normalize(np.asarray(pixels)[:, None], self.info.mean, self.info.std)

    def logits(self, pixels: np.ndarray, rand: np.ndarray | int,
               batch_size: int = MAX_BATCH) -> tuple[np.ndarray, np.ndarray]:
        """Any number of uint8 (N, 28, 28) images with one rand or one each -> (N, 10) and (N, num_sums) logits,
        in calls of at most `batch_size` rows (exactly `static_batch` rows for a static-batch file)."""
        pixels = np.asarray(pixels)
        size = self.info.input_size
        if pixels.ndim != 3 or pixels.shape[1:] != (size, size) or pixels.dtype != np.uint8:
            raise InvalidInput(f"images must be uint8 (N, {size}, {size}), got {pixels.dtype} {pixels.shape}")
        if np.ndim(rand) == 0:  # one rand for every image (a camera frame: one image, checked as one integer)
            onnx_contract.check_rand(rand, self.info.num_rand)
            rands = np.full(len(pixels), rand, np.int64)
        else:
            rands = np.asarray(rand)
            if rands.shape != (len(pixels),):
                raise InvalidInput(f"rand must be one integer or one per image ({len(pixels)}), got shape "
                                   f"{rands.shape}")
            onnx_contract.check_rand(rands, self.info.num_rand)
        if not len(pixels):
            return (np.zeros((0, self.info.num_digits), np.float32), np.zeros((0, self.info.num_sums), np.float32))
        if self.static_batch is None and len(pixels) <= batch_size:  # one call, nothing to split or pad
            return self.run(self.normalize(pixels), rands.astype(np.int64, copy=False))
        return batched_logits(self.run, pixels, rands, self.info.mean, self.info.std,
                              self.static_batch or batch_size, pad=self.static_batch is not None)


def check_open(path: str | os.PathLike, provider: str, threads: int | None, default: str | None = None) -> Path:
    """The checks every runtime makes before opening a file: provider, threads, the file itself."""
    path = Path(path)
    if provider not in PROVIDERS:
        raise DigitsumError(f"unknown provider {provider!r} (choose from {', '.join(PROVIDERS)})")
    if threads is not None and threads < 1:
        raise DigitsumError(f"threads must be at least 1, got {threads}")
    if not path.is_file():
        hint = " (run `digitsum-edge export runs/model.pt` first)" if default and str(path) == default else ""
        raise DigitsumError(f"model {path} does not exist{hint}" if not path.exists()
                            else f"model {path} is not a file")
    if path.suffix.lower() in CHECKPOINT_SUFFIXES or _starts_with(path, ZIP_MAGIC):
        raise DigitsumError(f"{path} is a PyTorch checkpoint, not an exported model: run `digitsum-edge export "
                            f"{path}` and pass the .onnx file it writes")
    return path


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return False
