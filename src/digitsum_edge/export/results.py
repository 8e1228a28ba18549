"""What export produces and how it says so, shared by every format's writer (ONNX in pipeline.py, LiteRT in
litert.py): the starting point `Prepared`, each file `Written`, the run's `ExportResult`, the comparison's log line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitsum_edge import onnx_contract
from digitsum_edge.export.verify import Comparison
from digitsum_edge.model import DigitSumNet

log = logging.getLogger("digitsum_edge.export.pipeline")  # one logger for the export's lines


@dataclass
class Written:
    """One file export wrote, with how it compares to PyTorch and the verdict on it."""

    path: Path
    precision: str
    size_bytes: int
    nodes: int  # graph nodes (ONNX) or operators (LiteRT)
    comparison: Comparison
    verdict: onnx_contract.Verdict | None = None
    extra: dict = field(default_factory=dict)  # format-specific facts (LiteRT: signatures, TFLite Micro arena)

    def to_dict(self) -> dict:
        return {"path": str(self.path), "precision": self.precision, "size_bytes": self.size_bytes,
                "nodes": self.nodes, **self.comparison.to_dict(),
                **({"verdict": self.verdict.to_dict()} if self.verdict else {}), **self.extra}


@dataclass
class ExportResult:
    files: list[Written]  # fp32 first, then int8 / fp16 when asked
    nodes_exported: int
    nodes_simplified: int | None  # None with --no-simplify (and for LiteRT)
    opset: int | None  # ONNX opset (None for LiteRT)
    torch_metrics: dict
    seconds: float
    notes: list[str] = field(default_factory=list)
    format: str = "onnx"

    def summary(self) -> str:
        """One line per file written: path, precision, size, nodes, difference from PyTorch, accuracy."""
        kind = f"opset {self.opset}" if self.opset is not None else self.format
        return "\n".join(
            f"{f.path} | {f.precision} | {f.size_bytes / 1024:.1f} KiB | {f.nodes} nodes | {kind} | "
            f"max diff {max(f.comparison.max_abs_diff.values()):.1e} | digit "
            f"{f.comparison.metrics['digit_accuracy']:.2%} sum {f.comparison.metrics['sum_accuracy']:.2%} on "
            f"{f.comparison.pairs:,} pairs" + _micro(f.extra) for f in self.files)

    def to_dict(self) -> dict:
        return {"format": self.format, "files": [f.to_dict() for f in self.files],
                "nodes_exported": self.nodes_exported, "nodes_simplified": self.nodes_simplified,
                "opset": self.opset, "torch_metrics": self.torch_metrics, "seconds": self.seconds,
                "notes": self.notes}


def _micro(extra: dict) -> str:
    """The TFLite Micro figures of an int8 .tflite file, for its summary line."""
    micro = extra.get("tflite_micro")
    return "" if micro is None else (f" | TFLite Micro: digit {micro['metrics']['digit_accuracy']:.2%} sum "
                                     f"{micro['metrics']['sum_accuracy']:.2%}, arena {micro['arena_bytes']:,} bytes")


@dataclass
class Prepared:
    """What every format's writer starts from: the model, its contract and PyTorch's answers."""

    model: DigitSumNet
    info: onnx_contract.ModelInfo  # the contract stamped into every file (precision fp32)
    images: np.ndarray  # (N, 28, 28) uint8 test images to verify on, each with every rand
    labels: np.ndarray
    calibration: np.ndarray | None  # (K, 28, 28) uint8 training images for int8, when asked
    torch_metrics: dict
    reference: tuple[np.ndarray, np.ndarray]  # PyTorch's digit and sum logits, exhaustive_pairs order
    notes: list[str]


def log_comparison(what: str, result: Comparison, verdict: onnx_contract.Verdict) -> None:
    """The figures of one verification, as the log shows them."""
    log.info(f"{what}, {result.pairs:,} pairs: largest difference "
             + ", ".join(f"{k} {v:.1e}" for k, v in result.max_abs_diff.items()) + ", argmax agreement "
             + ", ".join(f"{v:.2%}" for v in result.argmax_agreement.values())
             + f", digit {result.metrics['digit_accuracy']:.2%}, sum {result.metrics['sum_accuracy']:.2%}: "
             + ("pass" if verdict.passed else "FAIL") + f" ({verdict.summary()})")
