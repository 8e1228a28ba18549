"""The generated C model on this machine: built with the system C compiler into a shared library and called through
ctypes, beside TFLite Micro's interpreter on the same .tflite; both give raw int8 logits to compare bit for bit."""

from __future__ import annotations

import ctypes
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from digitsum_edge import onnx_contract
from digitsum_edge.errors import DigitsumError

log = logging.getLogger(__name__)
HOST_FLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")  # what the host build must pass


@dataclass
class Int8Logits:
    """Raw int8 outputs for every (image, rand) pair: digit (N, R, 10) and sum (N, R, 19)."""

    digit: np.ndarray
    sum: np.ndarray

    def mismatches(self, other: Int8Logits) -> int:
        """Pairs where either head differs in any bit."""
        return int(np.sum(np.any(self.digit != other.digit, axis=2) | np.any(self.sum != other.sum, axis=2)))

    def accuracy(self, labels: np.ndarray) -> dict[str, float]:
        """Digit and sum accuracy of the int8 argmax over all pairs (sum = digit + rand)."""
        rands = np.arange(self.digit.shape[1])
        digit_ok = self.digit.argmax(axis=2) == labels[:, None]
        sum_ok = self.sum.argmax(axis=2) == labels[:, None] + rands[None, :]
        return {"digit_accuracy": float(digit_ok.mean()), "sum_accuracy": float(sum_ok.mean())}


def compiler() -> str:
    """The system C compiler, or one clear error."""
    found = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if found is None:
        raise DigitsumError("--format c verifies the generated code with the system C compiler, and there is none "
                            "(apt-get install gcc)")
    return found


class HostModel:
    """NAME.c built for this machine (-O2, strict C99 warnings as errors), with a batch driver."""

    def __init__(self, source: Path, workdir: Path):
        library = workdir / "digitsum_host.so"
        driver = files("digitsum_edge.export").joinpath("c_kernels/host_batch.c")
        command = [compiler(), *HOST_FLAGS, "-fPIC", "-shared", "-o", str(library), str(source), str(driver)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise DigitsumError(f"the generated C code does not compile here: {(done.stderr or done.stdout)[:300]}")
        self.lib = ctypes.CDLL(str(library))
        self.lib.ds_host_batch.restype = ctypes.c_int
        self.lib.ds_host_batch.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                           ctypes.c_void_p, ctypes.c_int, ctypes.c_int]

    def logits(self, images: np.ndarray, num_rand: int, num_digits: int, num_sums: int) -> Int8Logits:
        """(N, 28, 28) uint8 -> every image with every rand, as the C code computes it."""
        pixels = np.ascontiguousarray(images, np.uint8)
        n, size = len(pixels), int(np.prod(pixels.shape[1:]))
        digit = np.zeros((n, num_rand, num_digits), np.int8)
        total = np.zeros((n, num_rand, num_sums), np.int8)
        status = self.lib.ds_host_batch(pixels.ctypes.data, n, size, num_rand, digit.ctypes.data, total.ctypes.data,
                                        num_digits, num_sums)
        if status != 0:
            raise DigitsumError(f"the generated C code returned {status}")
        return Int8Logits(digit, total)


def tflite_micro_logits(tflite: Path, images: np.ndarray, progress_every: int = 1000) -> Int8Logits:
    """TFLite Micro's interpreter on the int8 .tflite, every image with every rand, raw int8 outputs."""
    from digitsum_edge.engine.litert import open_micro, quantize

    micro = open_micro(tflite)
    info, sig = micro.info, micro.signature
    assert sig is not None and sig.image_quant is not None
    x = quantize(onnx_contract.normalize(images[:, None], info.mean, info.std), *sig.image_quant)
    digit = np.zeros((len(images), info.num_rand, info.num_digits), np.int8)
    total = np.zeros((len(images), info.num_rand, info.num_sums), np.int8)
    interpreter, started = micro.interpreter, time.perf_counter()
    for i in range(len(images)):
        for r in range(info.num_rand):  # both inputs every call: TFLite Micro reuses their memory for activations
            interpreter.set_input(x[i:i + 1], 0)
            interpreter.set_input(np.array([r], np.int32), 1)
            interpreter.invoke()
            digit[i, r], total[i, r] = interpreter.get_output(0)[0], interpreter.get_output(1)[0]
        if progress_every and (i + 1) % progress_every == 0 and i + 1 < len(images):
            log.info(f"TFLite Micro: {i + 1:,} of {len(images):,} images ({time.perf_counter() - started:.0f} s)")
    return Int8Logits(digit, total)
