"""`digitsum-edge export`: checkpoint -> verified, self-describing ONNX (+ int8 / fp16) or LiteRT file.

    run(cfg) = check the outputs -> prepare (checkpoint, data, contract, PyTorch's reference logits)
               -> the format's writer (ONNX here, LiteRT in export/litert.py) -> summary (+ cfg.json)
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx

from digitsum_edge import checkpoint, mnist, onnx_contract
from digitsum_edge.errors import DigitsumError
from digitsum_edge.evaluate import torch_exhaustive
from digitsum_edge.export.config import FORMATS, ExportConfig
from digitsum_edge.export.onnx_file import export_model, now_utc, save_checked, simplify, stamp
from digitsum_edge.export.quantize import to_fp16, to_int8
from digitsum_edge.export.results import ExportResult, Prepared, Written, log_comparison
from digitsum_edge.export.triton import check_repository, write_repository
from digitsum_edge.export.verify import compare
from digitsum_edge.files import atomic_path, check_writable, temp_name, write_json
from digitsum_edge.layout import exported_path, variant_path
from digitsum_edge.model import DigitSumNet

log = logging.getLogger(__name__)


def output_paths(cfg: ExportConfig) -> dict[str, Path]:
    """fp32 file (default: beside the checkpoint, with the format's suffix), and OUT.int8.* / OUT.fp16.onnx."""
    if cfg.format == "c":
        raise DigitsumError("--format c converts the int8 .tflite: export.c_export.run does it")
    if cfg.format not in FORMATS:
        raise DigitsumError(f"unknown format {cfg.format!r} (choose from {', '.join(FORMATS)})")
    fp32 = Path(cfg.out) if cfg.out else exported_path(cfg.checkpoint, FORMATS[cfg.format])
    if (fp32.suffix.lower() == ".tflite") != (cfg.format != "onnx"):  # LiteRT writes .tflite, ONNX anything else
        raise DigitsumError(f"--out {fp32}: --format {cfg.format} writes a {FORMATS[cfg.format]} file (the runtime "
                            "chooses by the suffix)")
    wanted = {"int8": cfg.int8, "fp16": cfg.fp16}
    return {"fp32": fp32, **{p: variant_path(fp32, p) for p in onnx_contract.VARIANTS if wanted[p]}}


def run(cfg: ExportConfig) -> ExportResult:
    """Export, check, verify against PyTorch; write only what passed (+ cfg.json)."""
    started = time.perf_counter()
    cfg = _normalised(cfg)
    paths = _check_outputs(cfg)
    prepared = prepare(cfg)
    if cfg.format == "litert":
        from digitsum_edge.export.litert import write_litert

        exported = write_litert(cfg, paths, prepared)
    else:
        exported = _write_onnx(cfg, paths, prepared)
        if cfg.triton:  # the fp32 file, now verified and in place
            write_repository(cfg.triton, paths["fp32"], prepared.info, cfg.static_batch)
    exported.seconds = round(time.perf_counter() - started, 2)
    log.info(f"exported and verified in {exported.seconds:.1f} s")
    if cfg.json:
        write_json(cfg.json, exported.to_dict())
    return exported


def _normalised(cfg: ExportConfig) -> ExportConfig:
    """--format litert-int8 is --format litert --int8; options that one format cannot honour are errors."""
    if cfg.format == "litert-int8":
        cfg = replace(cfg, format="litert", int8=True)
    if cfg.format == "litert":
        for option, given in (("--fp16", cfg.fp16), ("--triton", cfg.triton), ("--static-batch", cfg.static_batch),
                              ("--no-simplify", not cfg.simplify)):
            if given:
                raise DigitsumError(f"{option} is for ONNX files; --format litert writes batch-1 and "
                                    "batch-N signatures itself")
    return cfg


def _check_outputs(cfg: ExportConfig) -> dict[str, Path]:
    """Before any work: options in range, every output writable and not replaced without --force."""
    if cfg.static_batch is not None and cfg.static_batch < 1:
        raise DigitsumError("--static-batch must be at least 1")
    paths = output_paths(cfg)
    for path in paths.values():
        check_writable(path, force=cfg.force)
    if cfg.json:
        check_writable(cfg.json, force=True)
    if cfg.triton:
        check_repository(cfg.triton, force=cfg.force)
    if cfg.format == "litert":
        from digitsum_edge.export.litert import check_outputs

        check_outputs(paths, force=cfg.force)
    return paths


def prepare(cfg: ExportConfig) -> Prepared:
    """Load the checkpoint and the data, write down the contract, and compute PyTorch's reference logits."""
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
        num_digits=model.config.num_digits, num_rand=model.config.num_rand, precision="fp32",
        weights_sha256=checkpoint.weights_sha256(ckpt["state_dict"]), model_config=ckpt["model_config"],
        test_metrics={k: metrics[k] for k in ("digit_accuracy", "sum_accuracy", "sum_consistency", "pairs")
                      if k in metrics},
        versions={**checkpoint.versions(), "onnx": onnx.__version__}, exported_at=now_utc())
    torch_metrics, digit_logits, sum_logits = torch_exhaustive(model, images, labels)
    return Prepared(model, info, images, labels, calibration, torch_metrics, (digit_logits, sum_logits), notes)


def _onnx_proto(cfg: ExportConfig, model: DigitSumNet) -> tuple[onnx.ModelProto, int, int | None]:
    """torch.onnx export, then onnxsim when asked: (proto, nodes exported, nodes after onnxsim or None)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = export_model(model, cfg.opset, cfg.static_batch)
    nodes_exported, nodes_simplified = len(proto.graph.node), None
    if cfg.simplify:
        proto = simplify(proto)
        nodes_simplified = len(proto.graph.node)
    log.info(f"exported with torch.onnx (dynamo, opset {cfg.opset}): {nodes_exported} nodes"
             + (f", {nodes_simplified} after onnxsim" if nodes_simplified is not None else ""))
    return proto, nodes_exported, nodes_simplified


def _write_onnx(cfg: ExportConfig, paths: dict[str, Path], p: Prepared) -> ExportResult:
    """The fp32 .onnx file, verified, then its variants; the variants are published only once all passed."""
    proto, nodes_exported, nodes_simplified = _onnx_proto(cfg, p.model)
    written: list[Written] = []
    with atomic_path(paths["fp32"]) as fp32_tmp:
        save_checked(stamp(proto, p.info), fp32_tmp)
        result = compare(fp32_tmp, p.reference, p.images, p.labels)
        verdict = result.verdict(paths["fp32"], "fp32", tolerance=cfg.tolerance)
        log_comparison("verified on onnxruntime CPU", result, verdict)
        verdict.require()
        written.append(Written(paths["fp32"], "fp32", fp32_tmp.stat().st_size, len(proto.graph.node), result,
                               verdict))
        try:
            for precision in onnx_contract.VARIANTS:
                if precision in paths:
                    written.append(_variant(precision, paths[precision], fp32_tmp, proto, p, cfg.static_batch,
                                            result.metrics))
            for variant in written[1:]:  # publish the variants only once everything passed
                _staged(variant.path).rename(variant.path)
        except BaseException:
            for variant in written[1:]:
                _staged(variant.path).unlink(missing_ok=True)
            raise
    return ExportResult(written, nodes_exported, nodes_simplified, cfg.opset, p.torch_metrics, 0.0, p.notes)


def _staged(path: Path) -> Path:
    return temp_name(path, "verified")


def _variant(precision: str, path: Path, fp32_file: Path, proto: onnx.ModelProto, p: Prepared,
             static_batch: int | None, fp32_metrics: dict) -> Written:
    """Write, stamp and verify an int8 or fp16 file; it stays under a hidden name until all passed."""
    with atomic_path(_staged(path)) as tmp:
        if precision == "int8":
            assert p.calibration is not None  # loaded (and checked) before any work
            rand = np.random.default_rng(0).integers(0, p.info.num_rand, len(p.calibration))
            to_int8(fp32_file, tmp, p.calibration, rand, p.info.mean, p.info.std, static_batch)
            variant = onnx.load(tmp)
        else:
            variant = to_fp16(proto)
        save_checked(stamp(variant, replace(p.info, precision=precision)), tmp)
        result = compare(tmp, p.reference, p.images, p.labels)
        verdict = result.verdict(path, precision, fp32_metrics)
        log_comparison(f"{precision} on onnxruntime CPU (fp32: digit {fp32_metrics['digit_accuracy']:.2%}, sum "
                       f"{fp32_metrics['sum_accuracy']:.2%})", result, verdict)
        verdict.require()
        size = tmp.stat().st_size
    return Written(path, precision, size, len(variant.graph.node), result, verdict)
