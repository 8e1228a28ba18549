"""Open the written file with onnxruntime (CPU) and prove it computes what PyTorch computes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from digitsum_edge import onnx_contract
from digitsum_edge.errors import DigitsumError
from digitsum_edge.evaluate import backend_exhaustive, compare_logits
from digitsum_edge.runtime.backend import open_model


@dataclass
class Comparison:
    """One ONNX file against a reference on the same (image, rand) pairs."""

    pairs: int
    max_abs_diff: dict[str, float]  # per head, largest |onnx - reference| logit difference
    argmax_agreement: dict[str, float]  # per head, fraction of pairs with the same argmax
    metrics: dict[str, float]  # digit/sum accuracy and consistency of the ONNX file

    def to_dict(self) -> dict:
        return {"pairs": self.pairs, "max_abs_diff": self.max_abs_diff,
                "argmax_agreement": self.argmax_agreement, "metrics": self.metrics}


def compare(path: str | os.PathLike, reference: tuple[np.ndarray, ...], images: np.ndarray,
            labels: np.ndarray, info: onnx_contract.ModelInfo, static_batch: int | None) -> Comparison:
    """Names and shapes (the runtime's own check, on the CPU provider), then values of `path` against
    reference logits (exhaustive_pairs order)."""
    metrics, digit_logits, sum_logits = backend_exhaustive(open_model(path, provider="cpu"), images, labels)
    for name, got, want in zip(onnx_contract.OUTPUTS, (digit_logits, sum_logits), reference, strict=True):
        if got.shape != want.shape:
            raise DigitsumError(f"{path}: {name} has shape {got.shape}, PyTorch gives {want.shape}")
    diffs, agreement = compare_logits((digit_logits, sum_logits), reference)
    return Comparison(len(digit_logits), diffs, agreement, metrics)


def require_no_drop(path: str | os.PathLike, got: dict, fp32: dict) -> None:
    """int8/fp16 verdict: digit and sum accuracy at most onnx_contract.MAX_ACCURACY_DROP below fp32's."""
    for key in ("digit_accuracy", "sum_accuracy"):
        if fp32[key] - got[key] > onnx_contract.MAX_ACCURACY_DROP:
            raise DigitsumError(f"{path}: {key} {got[key]:.4%} is more than {onnx_contract.MAX_ACCURACY_DROP:.2%} "
                                f"below fp32's {fp32[key]:.4%}")


def require_close(path: str | os.PathLike, result: Comparison, tolerance: float) -> None:
    """fp32 verdict: every logit within `tolerance` and every argmax equal."""
    worst = max(result.max_abs_diff.values())
    if worst > tolerance or min(result.argmax_agreement.values()) < 1.0:
        raise DigitsumError(
            f"verification failed for {path}: largest logit difference {worst:.2e} (tolerance "
            f"{tolerance:.0e}), argmax agreement {min(result.argmax_agreement.values()):.4%}")
