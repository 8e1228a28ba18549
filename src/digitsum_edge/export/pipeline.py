"""`digitsum-edge export`: checkpoint -> verified, simplified, self-describing ONNX (+ int8 / fp16)."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from digitsum_edge import checkpoint, mnist, onnx_contract
from digitsum_edge.errors import DigitsumError
from digitsum_edge.evaluate import torch_exhaustive
from digitsum_edge.export.config import ExportConfig
from digitsum_edge.export.onnx_file import export_model, now_utc, save_checked, simplify, stamp
from digitsum_edge.export.quantize import to_fp16, to_int8
from digitsum_edge.export.triton import check_repository, write_repository
from digitsum_edge.export.verify import Comparison, compare, require_close, require_no_drop
from digitsum_edge.files import atomic_path, check_writable, temp_name, write_json
from digitsum_edge.layout import exported_path, variant_path

log = logging.getLogger(__name__)


@dataclass
class Written:
    """One file export wrote, with how it compares to PyTorch."""

    path: Path
    precision: str
    size_bytes: int
    nodes: int
    comparison: Comparison

    def to_dict(self) -> dict:
        return {"path": str(self.path), "precision": self.precision, "size_bytes": self.size_bytes,
                "nodes": self.nodes, **self.comparison.to_dict()}


@dataclass
class ExportResult:
    files: list[Written]  # fp32 first, then int8 / fp16 when asked
    nodes_exported: int
    nodes_simplified: int | None  # None with --no-simplify
    opset: int
    torch_metrics: dict
    seconds: float
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line per file written: path, precision, size, nodes, difference from PyTorch, accuracy."""
        return "\n".join(
            f"{f.path} | {f.precision} | {f.size_bytes / 1024:.1f} KiB | {f.nodes} nodes | opset {self.opset} | "
            f"max diff {max(f.comparison.max_abs_diff.values()):.1e} | digit "
            f"{f.comparison.metrics['digit_accuracy']:.2%} sum {f.comparison.metrics['sum_accuracy']:.2%} on "
            f"{f.comparison.pairs:,} pairs" for f in self.files)

    def to_dict(self) -> dict:
        return {"files": [f.to_dict() for f in self.files], "nodes_exported": self.nodes_exported,
                "nodes_simplified": self.nodes_simplified, "opset": self.opset,
                "torch_metrics": self.torch_metrics, "seconds": self.seconds, "notes": self.notes}


def output_paths(cfg: ExportConfig) -> dict[str, Path]:
    """fp32 file (default: beside the checkpoint), and OUT.int8.onnx / OUT.fp16.onnx when asked."""
    fp32 = Path(cfg.out) if cfg.out else exported_path(cfg.checkpoint)
    wanted = {"int8": cfg.int8, "fp16": cfg.fp16}
    return {"fp32": fp32, **{p: variant_path(fp32, p) for p in onnx_contract.VARIANTS if wanted[p]}}


def run(cfg: ExportConfig) -> ExportResult:
    """Export, simplify, stamp metadata, check, verify against PyTorch; write only what passed (+ cfg.json)."""
    started = time.perf_counter()
    if cfg.static_batch is not None and cfg.static_batch < 1:
        raise DigitsumError("--static-batch must be at least 1")
    paths = output_paths(cfg)
    for path in paths.values():
        check_writable(path, force=cfg.force)
    if cfg.json:
        check_writable(cfg.json, force=True)
    if cfg.triton:
        check_repository(cfg.triton, force=cfg.force)
    model, ckpt = checkpoint.load_model(cfg.checkpoint)
    notes = [] if ckpt.get("complete") else [f"{cfg.checkpoint} is from an unfinished run"]
    for note in notes:
        log.warning(note)
    test = mnist.load("test", cfg.data_dir)
    images, labels = test.images[:cfg.verify_images], test.labels[:cfg.verify_images]
    calibration = mnist.load("train", cfg.data_dir).images[:cfg.calibration_images] if cfg.int8 else None

    metrics = ckpt.get("metrics", {})
    info = onnx_contract.ModelInfo(
        mean=onnx_contract.MEAN, std=onnx_contract.STD, input_size=onnx_contract.IMAGE_SIZE,
        num_digits=model.config.num_digits,
        num_rand=model.config.num_rand, precision="fp32",
        weights_sha256=checkpoint.weights_sha256(ckpt["state_dict"]), model_config=ckpt["model_config"],
        test_metrics={k: metrics[k] for k in ("digit_accuracy", "sum_accuracy", "sum_consistency", "pairs")
                      if k in metrics},
        versions={**checkpoint.versions(), "onnx": onnx.__version__}, exported_at=now_utc())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = export_model(model, cfg.opset, cfg.static_batch)
    nodes_exported = len(proto.graph.node)
    nodes_simplified = None
    if cfg.simplify:
        proto = simplify(proto)
        nodes_simplified = len(proto.graph.node)
    log.info(f"exported with torch.onnx (dynamo, opset {cfg.opset}): {nodes_exported} nodes"
             + (f", {nodes_simplified} after onnxsim" if nodes_simplified is not None else ""))
    torch_metrics, *reference = torch_exhaustive(model, images, labels)

    written: list[Written] = []
    with atomic_path(paths["fp32"]) as fp32_tmp:
        save_checked(stamp(proto, info), fp32_tmp)
        result = compare(fp32_tmp, tuple(reference), images, labels, info, cfg.static_batch)
        log.info(f"verified on onnxruntime CPU, {result.pairs:,} pairs: largest difference "
                 + ", ".join(f"{k} {v:.1e}" for k, v in result.max_abs_diff.items())
                 + f" (tolerance {cfg.tolerance:.0e}), argmax agreement "
                 + ", ".join(f"{v:.2%}" for v in result.argmax_agreement.values()))
        require_close(fp32_tmp, result, cfg.tolerance)
        written.append(Written(paths["fp32"], "fp32", fp32_tmp.stat().st_size, len(proto.graph.node), result))
        try:
            for precision in onnx_contract.VARIANTS:
                if precision in paths:
                    written.append(_variant(precision, paths[precision], fp32_tmp, proto, info, cfg.static_batch,
                                            calibration, tuple(reference), images, labels, result.metrics))
            for variant in written[1:]:  # publish the variants only once everything passed
                _staged(variant.path).rename(variant.path)
        except BaseException:
            for variant in written[1:]:
                _staged(variant.path).unlink(missing_ok=True)
            raise
    if cfg.triton:  # the fp32 file, now verified and in place
        write_repository(cfg.triton, paths["fp32"], info, cfg.static_batch)
    exported = ExportResult(written, nodes_exported, nodes_simplified, cfg.opset, torch_metrics,
                            round(time.perf_counter() - started, 2), notes)
    log.info(f"exported and verified in {exported.seconds:.1f} s")
    if cfg.json:
        write_json(cfg.json, exported.to_dict())
    return exported


def _staged(path: Path) -> Path:
    return temp_name(path, "verified")


def _variant(precision: str, path: Path, fp32_file: Path, proto: onnx.ModelProto,
             info: onnx_contract.ModelInfo, static_batch: int | None, calibration: np.ndarray | None,
             reference: tuple[np.ndarray, ...],
             images: np.ndarray, labels: np.ndarray, fp32_metrics: dict) -> Written:
    """Write, stamp and verify an int8 or fp16 file; it stays under a hidden name until all passed."""
    with atomic_path(_staged(path)) as tmp:
        if precision == "int8":
            assert calibration is not None  # loaded (and checked) before any work
            rand = np.random.default_rng(0).integers(0, info.num_rand, len(calibration))
            to_int8(fp32_file, tmp, calibration, rand, info.mean, info.std, static_batch)
            variant = onnx.load(tmp)
        else:
            variant = to_fp16(proto)
        save_checked(stamp(variant, replace(info, precision=precision)), tmp)
        result = compare(tmp, reference, images, labels, info, static_batch)
        log.info(f"{precision}: digit {result.metrics['digit_accuracy']:.2%}, sum {result.metrics['sum_accuracy']:.2%}"
            f" (fp32 {fp32_metrics['digit_accuracy']:.2%}, {fp32_metrics['sum_accuracy']:.2%}), largest "
            f"difference {max(result.max_abs_diff.values()):.2e}")
        require_no_drop(path, result.metrics, fp32_metrics)
        if precision == "fp16" and max(result.max_abs_diff.values()) > onnx_contract.FP16_TOLERANCE:
            raise DigitsumError(f"{path}: fp16 logits differ by up to {max(result.max_abs_diff.values()):.3f}"
                                f" (tolerance {onnx_contract.FP16_TOLERANCE})")
        size = tmp.stat().st_size
    return Written(path, precision, size, len(variant.graph.node), result)
