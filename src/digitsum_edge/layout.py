"""The run folder's layout, owned here alone: where train writes, where export and bench look.

    runs/model.pt  ->  runs/model.onnx  (+ runs/model.int8.onnx, runs/model.fp16.onnx)

Imports nothing heavy: the CLI reads these defaults for --help.
"""

from __future__ import annotations

import os
from pathlib import Path

RUNS = "runs"  # train's default output folder
CHECKPOINT_NAME = "model.pt"
DEFAULT_CHECKPOINT = f"{RUNS}/{CHECKPOINT_NAME}"
DEFAULT_MODEL = f"{RUNS}/model.onnx"  # where `digitsum-edge export runs/model.pt` writes by default
MODEL_SUFFIXES = (".onnx", ".tflite")  # the exported files' types
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")  # what train writes (.pt), and PyTorch's other usual names
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's file format is a zip archive; an ONNX or .tflite file never starts so


def checkpoint_path(out: str | os.PathLike) -> Path:
    """The checkpoint a training run writes into its output folder."""
    return Path(out) / CHECKPOINT_NAME


def exported_path(checkpoint: str | os.PathLike, suffix: str = ".onnx") -> Path:
    """runs/model.pt -> runs/model.onnx: where export writes a checkpoint's file by default, bench finds it."""
    return Path(checkpoint).with_suffix(suffix)


def variant_path(fp32: str | os.PathLike, precision: str) -> Path:
    """runs/model.onnx -> runs/model.int8.onnx (or .fp16.onnx; model.tflite -> model.int8.tflite): where export
    writes a variant, bench finds it."""
    fp32 = Path(fp32)
    suffix = fp32.suffix if fp32.suffix in MODEL_SUFFIXES else ".onnx"
    return fp32.with_name(f"{fp32.name.removesuffix(suffix)}.{precision}{suffix}")
