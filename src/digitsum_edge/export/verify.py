"""Open the written file through the runtime's one door (CPU) and prove it computes what PyTorch computes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from digitsum_edge import onnx_contract
from digitsum_edge.engine.backend import Backend
from digitsum_edge.engine.factory import open_model
from digitsum_edge.errors import DigitsumError
from digitsum_edge.evaluate import backend_exhaustive, compare_logits


@dataclass
class Comparison:
    """One exported file against a reference on the same (image, rand) pairs."""

    pairs: int
    max_abs_diff: dict[str, float]  # per head, largest |file - reference| logit difference
    argmax_agreement: dict[str, float]  # per head, fraction of pairs with the same argmax
    metrics: dict[str, float]  # digit/sum accuracy and consistency of the file

    def verdict(self, source: str | os.PathLike, precision: str, fp32_metrics: dict | None = None,
                tolerance: float = onnx_contract.FP32_TOLERANCE) -> onnx_contract.Verdict:
        """The one verdict (onnx_contract.check_exported) on these figures."""
        return onnx_contract.check_exported(str(source), precision, self.max_abs_diff, self.argmax_agreement,
                                            self.metrics, fp32_metrics, tolerance)

    def to_dict(self) -> dict:
        return {"pairs": self.pairs, "max_abs_diff": self.max_abs_diff,
                "argmax_agreement": self.argmax_agreement, "metrics": self.metrics}


def compare(path: str | os.PathLike, reference: tuple[np.ndarray, ...], images: np.ndarray,
            labels: np.ndarray, backend: Backend | None = None) -> Comparison:
    """Names and shapes (the runtime's own check, on the CPU), then values of `path` against reference logits
    (exhaustive_pairs order); `backend`: an already opened runtime for the file (default: open_model)."""
    backend = backend or open_model(path, provider="cpu")
    metrics, digit_logits, sum_logits = backend_exhaustive(backend, images, labels)
    for name, got, want in zip(onnx_contract.OUTPUTS, (digit_logits, sum_logits), reference, strict=True):
        if got.shape != want.shape:
            raise DigitsumError(f"{path}: {name} has shape {got.shape}, PyTorch gives {want.shape}")
    diffs, agreement = compare_logits((digit_logits, sum_logits), reference)
    return Comparison(len(digit_logits), diffs, agreement, metrics)
