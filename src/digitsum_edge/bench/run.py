"""`digitsum-edge bench`: every backend's latency, throughput and exhaustive accuracy, in one report."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from digitsum_edge import checkpoint, mnist
from digitsum_edge.bench.backends import (
    Backend,
    OnnxRuntime,
    TorchCompiled,
    TorchEager,
    cuda_usable,
    live_row,
    resolve_providers,
    timed_first_call,
)
from digitsum_edge.bench.config import BenchConfig
from digitsum_edge.bench.report import header
from digitsum_edge.bench.timing import cpu_snapshot, measure, others_cpu_share
from digitsum_edge.errors import DigitsumError, first_line
from digitsum_edge.evaluate import compare_logits
from digitsum_edge.files import check_writable

SCHEMA = "digitsum-edge.bench/1"
FP32_TOLERANCE = 1e-4  # largest logit difference from PyTorch an fp32 backend may show
INT8_MAX_DROP = 0.001  # int8 may lose at most 0.1 percentage point of accuracy against ONNX fp32
SPEEDUP_TARGET = 4.0  # onnxruntime batch-1 latency at least 4x below PyTorch eager, same threads


def _validate(cfg: BenchConfig) -> None:
    if not cfg.batch_sizes or min(cfg.batch_sizes) < 1:
        raise DigitsumError(f"batch sizes must be positive integers, got {list(cfg.batch_sizes)}")
    if cfg.threads is not None and cfg.threads < 1:
        raise DigitsumError(f"--threads must be at least 1, got {cfg.threads}")
    if cfg.budget <= 0:
        raise DigitsumError(f"--budget must be positive, got {cfg.budget}")
    if cfg.warmup < 0 or cfg.min_runs < 1 or cfg.live_frames < 1:
        raise DigitsumError(f"--warmup must be >= 0, --min-runs and --live-frames >= 1, got {cfg.warmup}, "
                            f"{cfg.min_runs}, {cfg.live_frames}")
    if cfg.eval_images is not None and cfg.eval_images < 1:
        raise DigitsumError(f"--eval-images must be at least 1, got {cfg.eval_images}")
    if cfg.min_accuracy is not None and not 0 <= cfg.min_accuracy <= 1:
        raise DigitsumError(f"--min-accuracy is a fraction between 0 and 1, got {cfg.min_accuracy}")


def resolve_paths(cfg: BenchConfig) -> tuple[Path, Path, Path | None]:
    """(checkpoint, fp32 .onnx, int8 .onnx or None); a file that was named but is missing is an error."""
    ckpt = Path(cfg.checkpoint)
    if not ckpt.is_file():
        raise DigitsumError(f"checkpoint {ckpt} not found (train one with `digitsum-edge train`, "
                            "or pass --checkpoint)")
    fp32 = Path(cfg.onnx) if cfg.onnx else ckpt.with_suffix(".onnx")
    if not fp32.is_file():
        raise DigitsumError(f"ONNX file {fp32} not found (export it with `digitsum-edge export {ckpt}`, "
                            "or pass --onnx)")
    if cfg.int8:
        int8 = Path(cfg.int8)
        if not int8.is_file():
            raise DigitsumError(f"int8 ONNX file {int8} not found")
        return ckpt, fp32, int8
    beside = fp32.with_name(f"{fp32.name.removesuffix('.onnx')}.int8.onnx")
    return ckpt, fp32, beside if beside.is_file() else None


def _same_model(backend: OnnxRuntime, ckpt_path: Path, sha: str, precision: str, option: str) -> None:
    """The ONNX file must come from this checkpoint (metadata weights_sha256) and hold `precision`."""
    if backend.info.weights_sha256 != sha:
        raise DigitsumError(
            f"{backend.source} and {ckpt_path} are different models: the file's metadata says it was "
            f"exported from weights {backend.info.weights_sha256[:12]}, the checkpoint holds {sha[:12]} "
            f"(export the checkpoint again, or pass the matching {option})")
    if backend.precision != precision:
        raise DigitsumError(f"{backend.source} holds an {backend.precision} model; {option} takes an {precision} file")


def _latency_rows(backend: Backend, cfg: BenchConfig, images: np.ndarray, threads_for,
                  log: Callable[[str], None]) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for batch in cfg.batch_sizes:
        threads = threads_for(batch)
        backend.set_threads(threads)
        x = np.ascontiguousarray(np.resize(images, (batch, *images.shape[1:])))  # (batch, 1, 28, 28)
        r = rng.integers(0, 10, batch).astype(np.int64)
        first = timed_first_call(backend, x, r)  # torch.compile compiles here, outside the timings
        timing = measure(lambda x=x, r=r: backend.run(x, r), batch, cfg.budget, cfg.warmup, cfg.min_runs,
                         sync=backend.sync)
        rows.append({**backend.describe(), "status": "ok", "batch": batch, "threads": threads,
                     "first_call_s": round(first, 4), **timing.to_dict()})
        log(f"{backend.label:<28} batch {batch:>5} | {threads} thread(s) | median {timing.median_ms:.3f} ms | "
            f"{timing.images_per_s:,.0f} images/s")
    return rows


def _parity(backend: Backend, test_images: np.ndarray, test_labels: np.ndarray, reference) -> dict:
    metrics, digit_logits, sum_logits = backend.exhaustive(test_images, test_labels)
    if reference is None:  # this is the reference
        reference = (digit_logits, sum_logits)
    max_abs_diff, argmax_agreement = compare_logits((digit_logits, sum_logits), reference)
    entry = {**backend.describe(), **metrics, "argmax_agreement": argmax_agreement, "max_abs_diff": max_abs_diff}
    return entry, reference


def _verdicts(parity: list[dict]) -> None:
    """Mark each parity entry pass/fail: fp32 identical argmax and < 1e-4; int8 within 0.1 pp of fp32."""
    fp32_onnx = next((p for p in parity if p["backend"] == "onnxruntime" and p["precision"] == "fp32"), None)
    for p in parity:
        if p["precision"] == "int8" and fp32_onnx is not None:
            drop = max(fp32_onnx[k] - p[k] for k in ("digit_accuracy", "sum_accuracy"))
            p["check"] = f"accuracy drop vs fp32 {100 * drop:+.3f} pp (max {100 * INT8_MAX_DROP:.1f} pp)"
            p["pass"] = drop <= INT8_MAX_DROP
        else:
            worst = max(p["max_abs_diff"].values())
            agree = min(p["argmax_agreement"].values())
            p["check"] = f"argmax agreement {agree:.2%}, max diff {worst:.1e} (< {FP32_TOLERANCE:.0e})"
            p["pass"] = agree == 1.0 and worst < FP32_TOLERANCE


def _speedup(rows: list[dict]) -> dict:
    """onnxruntime fp32 against PyTorch eager on the same device, batch by batch, same threads."""
    def median(backend: str, device: str, batch: int) -> tuple[float, int] | None:
        return next(((r["median_ms"], r["threads"]) for r in rows if r["status"] == "ok" and r["backend"] == backend
                     and r["device"] == device and r["precision"] == "fp32" and r["batch"] == batch), None)

    result, parts = {}, []
    for device in ("cpu", "cuda"):
        by_batch = {}
        for batch in sorted({r["batch"] for r in rows if r["status"] == "ok"}):
            torch_ms, ort_ms = median("pytorch", device, batch), median("onnxruntime", device, batch)
            if torch_ms and ort_ms:
                by_batch[str(batch)] = {"speedup": torch_ms[0] / ort_ms[0], "threads": ort_ms[1],
                                        "pytorch_ms": torch_ms[0], "onnxruntime_ms": ort_ms[0]}
        if by_batch:
            result[device] = by_batch
            parts.append(f"{device.upper()}: " + ", ".join(
                f"{v['speedup']:.1f}x at batch {b} ({v['threads']} thread{'s' * (v['threads'] > 1)})"
                for b, v in by_batch.items()))
    line = ("ONNX Runtime fp32 over PyTorch eager, same threads: " + "; ".join(parts)) if parts else \
        "no ONNX Runtime fp32 and PyTorch eager rows on the same device to compare"
    return {"baseline": "pytorch fp32", "backend": "onnxruntime fp32", "by_device": result, "line": line}


def _backends(cfg: BenchConfig, ckpt: dict, paths: tuple[Path, Path, Path | None], providers: list[str],
              threads: int, notes: list[str]) -> tuple[list[Backend], list[dict]]:
    """PyTorch eager (+ torch.compile) per torch device, onnxruntime fp32 per provider, int8 on CPU."""
    import torch

    ckpt_path, onnx_path, int8_path = paths
    sha = checkpoint.weights_sha256(ckpt["state_dict"])
    devices = ["cpu", *(["cuda"] if "cuda" in providers and torch.cuda.is_available() else [])]
    backends: list[Backend] = [TorchEager(checkpoint.build_model(ckpt), d, ckpt_path) for d in devices]
    skipped = []
    for device in devices if cfg.compile else []:
        try:
            backends.append(TorchCompiled(checkpoint.build_model(ckpt), device, ckpt_path, max(cfg.batch_sizes)))
        except Exception as e:  # torch.compile unsupported on this Python/platform
            skipped.append({"label": f"torch.compile {device} fp32", "backend": "torch.compile", "device": device,
                            "precision": "fp32", "source": str(ckpt_path), "status": "skipped",
                            "reason": first_line(e, 200)})
    for provider in providers:
        backends.append(OnnxRuntime(onnx_path, provider, threads))
        _same_model(backends[-1], ckpt_path, sha, "fp32", "--onnx")
    if int8_path is not None and "cpu" in providers:
        backends.append(OnnxRuntime(int8_path, "cpu", threads))
        _same_model(backends[-1], ckpt_path, sha, "int8", "--int8")
    elif int8_path is not None:  # QDQ int8 is a CPU format; the CUDA provider would run most of it in fp32
        notes.append(f"{int8_path} not run: int8 runs on the CPU provider only")
    return backends, skipped


def _measure(backends: list[Backend], cfg: BenchConfig, test, threads_for, parity_threads: int,
             log: Callable[[str], None]) -> tuple[list[dict], list[dict]]:
    """Latency rows and parity entries of every backend; an optional backend that fails is one skipped row."""
    count = min(cfg.eval_images or len(test), len(test))
    test_images, test_labels = test.images[:count].numpy(), test.labels[:count].numpy().astype(np.int64)
    timing_images = mnist.normalize(test.images[:max(cfg.batch_sizes)]).numpy()  # (B, 1, 28, 28) float32
    log(f"benchmarking {len(backends)} backends at batch sizes {', '.join(map(str, cfg.batch_sizes))}, "
        f"{cfg.budget:g} s each; parity on {count * 10:,} pairs")
    rows, parity, reference = [], [], None
    for backend in backends:
        try:
            backend_rows = _latency_rows(backend, cfg, timing_images, threads_for, log)
            backend.set_threads(parity_threads)
            entry, reference = _parity(backend, test_images, test_labels, reference)
        except DigitsumError:
            raise
        except Exception as e:
            if not backend.optional:
                raise DigitsumError(f"{backend.label} failed: {first_line(e, 200)}") from None
            rows.append({**backend.describe(), "status": "skipped", "reason": first_line(e, 200)})
            log(f"{backend.label}: skipped ({rows[-1]['reason']})")
            continue
        parity.append(entry)
        rows += [{**row, "digit_accuracy": entry["digit_accuracy"], "sum_accuracy": entry["sum_accuracy"]}
                 for row in backend_rows]
    _verdicts(parity)
    return rows, parity


def run(cfg: BenchConfig, log: Callable[[str], None] = lambda message: None) -> dict:
    """Measure every backend at every batch size, check accuracy parity; the whole report as a dict."""
    started = time.perf_counter()
    cpu_at_start = cpu_snapshot()  # other work on the machine skews timings: measure how much there was
    _validate(cfg)
    paths = resolve_paths(cfg)
    for out in (cfg.json, cfg.plot):
        if out:
            check_writable(out, force=True)
    providers, notes = resolve_providers(cfg.providers, cuda_usable())
    model, ckpt = checkpoint.load_model(paths[0])
    if not ckpt.get("complete", True):
        notes.append(f"{paths[0]} is from an unfinished run")
    cores = os.cpu_count() or 1
    parity_threads = cfg.threads or cores

    def threads_for(batch: int) -> int:
        return cfg.threads or (1 if batch == 1 else cores)

    import torch

    with contextlib.suppress(RuntimeError):  # it can be set only once per process
        torch.set_num_interop_threads(1)
    backends, skipped = _backends(cfg, ckpt, paths, providers, parity_threads, notes)
    test = mnist.load("test", cfg.data_dir)
    rows, parity = _measure(backends, cfg, test, threads_for, parity_threads, log)
    live = {"status": "skipped", "reason": "--no-live"}
    if cfg.live:
        try:
            live = live_row(paths[1], test, cfg.live_frames)
        except Exception as e:  # the live row is extra: a broken camera pipeline must not hide the rest
            live = {"status": "skipped", "reason": f"the live pipeline failed: {first_line(e, 200)}"}
    if live["status"] == "ok":
        log(f"live pipeline: median {live['median_ms']:.2f} ms per 640x480 frame")
    speedup = _speedup(rows)
    batch1 = speedup["by_device"].get("cpu", {}).get("1")
    targets = {
        "onnxruntime_batch1_speedup": {"target": f">= {SPEEDUP_TARGET:g}x on CPU",
                                       "value": batch1["speedup"] if batch1 else None,
                                       "met": bool(batch1 and batch1["speedup"] >= SPEEDUP_TARGET)},
        "parity": {"target": f"fp32: identical argmax, max diff < {FP32_TOLERANCE:.0e}; int8: within "
                             f"{100 * INT8_MAX_DROP:.1f} pp of fp32", "met": all(p["pass"] for p in parity)},
    }
    below = [f"{p['label']} {key.split('_')[0]} {p[key]:.2%}" for p in parity
             for key in ("digit_accuracy", "sum_accuracy")
             if cfg.min_accuracy is not None and p[key] < cfg.min_accuracy]
    info = header(_model_facts(model, ckpt, *paths), "cuda" in providers)
    share = others_cpu_share(cpu_at_start, cpu_snapshot())
    info["machine"]["other_processes_cpu_share"] = None if share is None else round(share, 3)
    return {"schema": SCHEMA, "config": cfg.to_dict(), "header": info,
            "threads": {"batch_1": threads_for(1), "larger_batches": threads_for(2), "parity": parity_threads,
                        "fixed": cfg.threads is not None},
            "rows": rows + skipped, "parity": parity, "live": live, "speedup": speedup, "targets": targets,
            "below_min_accuracy": below, "notes": notes, "seconds": round(time.perf_counter() - started, 1)}



def _model_facts(model, ckpt: dict, ckpt_path: Path, onnx_path: Path, int8_path: Path | None) -> dict:
    from digitsum_edge.model import count_macs, count_params

    metrics = ckpt.get("metrics", {})
    files = {"checkpoint": ckpt_path, "onnx": onnx_path, "int8": int8_path}
    return {"params": metrics.get("params") or count_params(model), "macs": metrics.get("macs") or count_macs(model),
            "model_config": ckpt["model_config"], "weights_sha256": checkpoint.weights_sha256(ckpt["state_dict"]),
            "files": {k: {"path": str(p), "bytes": p.stat().st_size} for k, p in files.items() if p is not None}}
