"""`digitsum-edge export`: checkpoint -> verified, simplified, self-describing ONNX (+ int8 / fp16)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
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
from digitsum_edge.export.verify import Comparison, compare, require_close
from digitsum_edge.files import atomic_path, check_writable

FP16_TOLERANCE = 0.05  # fp16 has ~3 significant digits; logits reach about 20


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

    def to_dict(self) -> dict:
        return {"files": [f.to_dict() for f in self.files], "nodes_exported": self.nodes_exported,
                "nodes_simplified": self.nodes_simplified, "opset": self.opset,
                "torch_metrics": self.torch_metrics, "seconds": self.seconds, "notes": self.notes}


def output_paths(cfg: ExportConfig) -> dict[str, Path]:
    """fp32 file (default: beside the checkpoint), and OUT.int8.onnx / OUT.fp16.onnx when asked."""
    fp32 = Path(cfg.out) if cfg.out else Path(cfg.checkpoint).with_suffix(".onnx")
    paths = {"fp32": fp32}
    for precision, wanted in (("int8", cfg.int8), ("fp16", cfg.fp16)):
        if wanted:
            paths[precision] = fp32.with_name(f"{fp32.name.removesuffix('.onnx')}.{precision}.onnx")
    return paths


def _require_no_drop(path: Path, got: dict, fp32: dict, max_drop: float) -> None:
    for key in ("digit_accuracy", "sum_accuracy"):
        if fp32[key] - got[key] > max_drop:
            raise DigitsumError(f"{path}: {key} {got[key]:.4%} is more than {max_drop:.2%} below fp32's "
                                f"{fp32[key]:.4%}")


def run(cfg: ExportConfig, log: Callable[[str], None] = lambda message: None) -> ExportResult:
    """Export, simplify, stamp metadata, check, verify against PyTorch; write only what passed."""
    started = time.perf_counter()
    if cfg.static_batch is not None and cfg.static_batch < 1:
        raise DigitsumError("--static-batch must be at least 1")
    paths = output_paths(cfg)
    for path in paths.values():
        check_writable(path, force=cfg.force)
    model, ckpt = checkpoint.load_model(cfg.checkpoint)
    notes = [] if ckpt.get("complete") else [f"{cfg.checkpoint} is from an unfinished run"]
    test = mnist.load("test", cfg.data_dir)
    images, labels = test.images[:cfg.verify_images], test.labels[:cfg.verify_images]

    metrics = ckpt.get("metrics", {})
    info = onnx_contract.ModelInfo(
        mean=mnist.MEAN, std=mnist.STD, input_size=mnist.IMAGE_SIZE, num_digits=model.config.num_digits,
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
    log(f"exported with torch.onnx (dynamo, opset {cfg.opset}): {nodes_exported} nodes"
        + (f", {nodes_simplified} after onnxsim" if nodes_simplified is not None else ""))
    torch_metrics, *reference = torch_exhaustive(model, images, labels)
    images_np, labels_np = images.numpy(), labels.numpy()

    written: list[Written] = []
    with atomic_path(paths["fp32"]) as fp32_tmp:
        save_checked(stamp(proto, info), fp32_tmp)
        result = compare(fp32_tmp, tuple(reference), images_np, labels_np, info, cfg.static_batch)
        log(f"verified on onnxruntime CPU, {result.pairs:,} pairs: largest difference "
            + ", ".join(f"{k} {v:.1e}" for k, v in result.max_abs_diff.items())
            + f" (tolerance {cfg.tolerance:.0e}), argmax agreement "
            + ", ".join(f"{v:.2%}" for v in result.argmax_agreement.values()))
        require_close(fp32_tmp, result, cfg.tolerance)
        written.append(Written(paths["fp32"], "fp32", fp32_tmp.stat().st_size, len(proto.graph.node), result))
        try:
            for precision in ("int8", "fp16"):
                if precision in paths:
                    written.append(_variant(precision, paths[precision], fp32_tmp, proto, info, cfg,
                                            tuple(reference), images_np, labels_np, result.metrics, log))
            for variant in written[1:]:  # publish the variants only once everything passed
                _staged(variant.path).rename(variant.path)
        except BaseException:
            for variant in written[1:]:
                _staged(variant.path).unlink(missing_ok=True)
            raise
    return ExportResult(written, nodes_exported, nodes_simplified, cfg.opset, torch_metrics,
                        round(time.perf_counter() - started, 2), notes)


def _staged(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified")


def _variant(precision: str, path: Path, fp32_file: Path, proto: onnx.ModelProto,
             info: onnx_contract.ModelInfo, cfg: ExportConfig, reference: tuple[np.ndarray, np.ndarray],
             images: np.ndarray, labels: np.ndarray, fp32_metrics: dict,
             log: Callable[[str], None]) -> Written:
    """Write, stamp and verify an int8 or fp16 file; it stays under a hidden name until all passed."""
    with atomic_path(_staged(path)) as tmp:
        if precision == "int8":
            train = mnist.load("train", cfg.data_dir)
            count = min(cfg.calibration_images, len(train))
            rand = np.random.default_rng(0).integers(0, info.num_rand, count)
            to_int8(fp32_file, tmp, train.images[:count].numpy(), rand, info.mean, info.std, cfg.static_batch)
            variant = onnx.load(tmp)
        else:
            variant = to_fp16(proto)
        save_checked(stamp(variant, replace(info, precision=precision)), tmp)
        result = compare(tmp, reference, images, labels, info, cfg.static_batch)
        log(f"{precision}: digit {result.metrics['digit_accuracy']:.2%}, sum {result.metrics['sum_accuracy']:.2%}"
            f" (fp32 {fp32_metrics['digit_accuracy']:.2%}, {fp32_metrics['sum_accuracy']:.2%}), largest "
            f"difference {max(result.max_abs_diff.values()):.2e}")
        _require_no_drop(path, result.metrics, fp32_metrics, cfg.max_drop)
        if precision == "fp16" and max(result.max_abs_diff.values()) > FP16_TOLERANCE:
            raise DigitsumError(f"{path}: fp16 logits differ by up to {max(result.max_abs_diff.values()):.3f}"
                                f" (tolerance {FP16_TOLERANCE})")
        size = tmp.stat().st_size
    return Written(path, precision, size, len(variant.graph.node), result)
