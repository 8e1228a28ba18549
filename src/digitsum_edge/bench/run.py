"""`digitsum-edge bench`: every backend's latency, throughput and exhaustive accuracy, in one report.

With the train extra (torch) it compares PyTorch eager and torch.compile against ONNX Runtime; in the
runtime-only install it benchmarks the ONNX files alone, against the fp32 file.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitsum_edge import mnist, onnx_contract
from digitsum_edge.bench.backends import Backend, Exported, TorchCompiled, TorchEager, resolve_providers
from digitsum_edge.bench.config import BenchConfig
from digitsum_edge.bench.litert import LITERT_FILES, litert_backends
from digitsum_edge.bench.report import header, model_facts, write_plot
from digitsum_edge.engine.onnx_runtime import cuda_usable
from digitsum_edge.errors import DigitsumError, first_line
from digitsum_edge.evaluate import compare_logits
from digitsum_edge.files import check_writable, write_json
from digitsum_edge.layout import DEFAULT_CHECKPOINT, exported_path, variant_path
from digitsum_edge.timing import cpu_snapshot, measure, others_cpu_share

SCHEMA = "digitsum-edge.bench/1"
log = logging.getLogger(__name__)


def torch_installed() -> bool:
    """The train extra is installed: PyTorch rows can be measured."""
    return importlib.util.find_spec("torch") is not None


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
    if cfg.tolerance < 0:
        raise DigitsumError(f"--tolerance must be at least 0, got {cfg.tolerance}")
    if cfg.eval_images is not None and cfg.eval_images < 1:
        raise DigitsumError(f"--eval-images must be at least 1, got {cfg.eval_images}")
    if cfg.min_accuracy is not None and not 0 <= cfg.min_accuracy <= 1:
        raise DigitsumError(f"--min-accuracy is a fraction between 0 and 1, got {cfg.min_accuracy}")
    for out in (cfg.json, cfg.plot):
        if out:
            check_writable(out, force=True)
    if cfg.plot and importlib.util.find_spec("matplotlib") is None:
        raise DigitsumError('--plot needs matplotlib, part of the train extra: pip install "digitsum-edge[train]"')


def resolve_paths(cfg: BenchConfig, with_torch: bool,
                  notes: list[str] | None = None) -> tuple[Path | None, Path, Path | None]:
    """(checkpoint or None without one, fp32 .onnx, int8 .onnx or None); a named file that is missing is
    an error. --onnx given and no --checkpoint: runs/model.pt when it exists, else the PyTorch rows are skipped
    with a note (a model file alone is benchmarked on its own, torch or not)."""
    ckpt = Path(cfg.checkpoint or DEFAULT_CHECKPOINT)
    if with_torch and not ckpt.is_file():
        if cfg.checkpoint is not None or not cfg.onnx:
            raise DigitsumError(f"checkpoint {ckpt} not found (train one with `digitsum-edge train`, "
                                "or pass --checkpoint, or bench an exported file alone with --onnx FILE)")
        with_torch = False
        if notes is not None:
            notes.append(f"no checkpoint ({ckpt} does not exist here): PyTorch rows skipped, parity against "
                         f"{Path(cfg.onnx).name}; --checkpoint FILE adds them")
    fp32 = Path(cfg.onnx) if cfg.onnx else exported_path(ckpt)
    if not fp32.is_file():
        raise DigitsumError(f"ONNX file {fp32} not found (export it with `digitsum-edge export {ckpt}`, "
                            "or pass --onnx)")
    int8 = Path(cfg.int8) if cfg.int8 else variant_path(fp32, "int8")
    if cfg.int8 and not int8.is_file():
        raise DigitsumError(f"int8 ONNX file {int8} not found")
    return (ckpt if with_torch else None), fp32, (int8 if int8.is_file() else None)


def _check_same_model(backend: Exported, reference_sha: str, reference: Path, precision: str,
                      option: str) -> None:
    """The ONNX file must come from the same weights (metadata weights_sha256) and hold `precision`."""
    if backend.info.weights_sha256 != reference_sha:
        raise DigitsumError(
            f"{backend.source} and {reference} are different models: the file's metadata says it was "
            f"exported from weights {backend.info.weights_sha256[:12]}, {reference.name} from "
            f"{reference_sha[:12]} (export the checkpoint again, or pass the matching {option})")
    if backend.precision != precision:
        raise DigitsumError(f"{backend.source} holds an {backend.precision} model; {option} takes an {precision} file")


def build_backends(cfg: BenchConfig, paths: tuple[Path | None, Path, Path | None], providers: list[str],
                   threads: int, notes: list[str]) -> tuple[list[Backend], list[dict], dict]:
    """PyTorch eager (+ torch.compile) per torch device when torch is here, onnxruntime fp32 per provider,
    int8 on the CPU; the model facts for the header."""
    ckpt_path, onnx_path, int8_path = paths
    fp32 = [Exported(onnx_path, provider, threads) for provider in providers]
    int8 = [Exported(int8_path, "cpu", threads)] if int8_path is not None and "cpu" in providers else []
    if int8_path is not None and not int8:  # QDQ int8 is a CPU format; CUDA would run most of it in fp32
        notes.append(f"{int8_path} not run: int8 runs on the CPU provider only")
    torch_backends: list[TorchEager] = []
    skipped: list[dict] = []
    if ckpt_path is not None:
        from digitsum_edge import checkpoint

        torch_backends, skipped, ckpt = _torch_backends(cfg, ckpt_path, providers, notes)
        sha, reference = checkpoint.weights_sha256(ckpt["state_dict"]), ckpt_path
        facts = model_facts(paths, ckpt=ckpt, model=torch_backends[0].model)
    else:
        sha, reference = fp32[0].info.weights_sha256, onnx_path
        facts = model_facts(paths, onnx_path=onnx_path)
    for backend in fp32:
        _check_same_model(backend, sha, reference, "fp32", "--onnx")
    for backend in int8:
        _check_same_model(backend, sha, reference, "int8", "--int8")
    lite, lite_skipped, lite_paths = litert_backends(cfg, providers, threads, notes)
    for backend in lite:  # each found or given .tflite file must be this model, in the precision of its option
        int8_file = backend.source == lite_paths.get("int8")
        _check_same_model(backend, sha, reference, "int8" if int8_file else "fp32",
                          "--litert-int8" if int8_file else "--litert")
    facts["files"].update({LITERT_FILES[p]: {"path": str(path), "bytes": path.stat().st_size}
                           for p, path in lite_paths.items()})
    return [*torch_backends, *fp32, *int8, *lite], skipped + lite_skipped, facts


def _torch_backends(cfg: BenchConfig, ckpt_path: Path, providers: list[str],
                    notes: list[str]) -> tuple[list[TorchEager], list[dict], dict]:
    import torch

    from digitsum_edge import checkpoint

    ckpt = checkpoint.load(ckpt_path)
    if not ckpt.get("complete", True):
        notes.append(f"{ckpt_path} is from an unfinished run")
    with contextlib.suppress(RuntimeError):  # it can be set only once per process
        torch.set_num_interop_threads(1)
    devices = ["cpu", *(["cuda"] if "cuda" in providers and torch.cuda.is_available() else [])]
    backends = [TorchEager(checkpoint.build_model(ckpt), d, ckpt_path) for d in devices]
    skipped = []
    for device in devices if cfg.compile else []:
        try:
            backends.append(TorchCompiled(checkpoint.build_model(ckpt), device, ckpt_path, max(cfg.batch_sizes)))
        except Exception as e:  # torch.compile unsupported on this Python/platform
            skipped.append({"label": f"torch.compile {device} fp32", "backend": "torch.compile", "device": device,
                            "precision": "fp32", "source": str(ckpt_path), "status": "skipped",
                            "reason": first_line(e, 200)})
    return backends, skipped, ckpt


def _latency_rows(backend: Backend, cfg: BenchConfig, images: np.ndarray, threads_for) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for batch in cfg.batch_sizes:
        if backend.largest_batch is not None and batch > backend.largest_batch:
            continue  # TFLite Micro runs one image at a time: its row is batch 1
        threads = threads_for(batch)
        backend.set_threads(threads)
        x = np.ascontiguousarray(np.resize(images, (batch, *images.shape[1:])))  # (batch, 1, 28, 28)
        r = rng.integers(0, onnx_contract.NUM_RAND, batch).astype(np.int64)
        first = backend.first_call(x, r)  # torch.compile compiles here, outside the timings
        timing = measure(functools.partial(backend.run, x, r), batch, cfg.budget, cfg.warmup, cfg.min_runs,
                         sync=backend.sync)
        rows.append({**backend.describe(), "status": "ok", "batch": batch, "threads": threads,
                     "first_call_s": round(first, 4), **timing.to_dict()})
        log.info(f"{backend.label:<28} batch {batch:>5} | {threads} thread(s) | median {timing.median_ms:.3f} ms | "
                 f"{timing.images_per_s:,.0f} images/s")
    return rows


def _verdict(entry: dict, fp32_reference: dict | None, tolerance: float) -> None:
    """The one verdict (onnx_contract.check_exported), the same as export's: fp32 files against the reference's
    logits within `tolerance`, int8 files against fp32's accuracy."""
    verdict = onnx_contract.check_exported(entry["label"], entry["precision"], entry["max_abs_diff"],
                                           entry["argmax_agreement"], entry, fp32_reference, tolerance)
    entry["check"], entry["pass"] = verdict.summary(), verdict.passed


def measure_backends(backends: list[Backend], cfg: BenchConfig, test: mnist.Split, threads_for,
                     parity_threads: int) -> tuple[list[dict], list[dict]]:
    """Latency rows and parity entries (against the first backend) of every backend; an optional backend
    that fails is one skipped row."""
    count = min(cfg.eval_images or len(test), len(test))
    test_images, test_labels = test.images[:count], test.labels[:count].astype(np.int64)
    timing_images = onnx_contract.normalize(test.images[:max(cfg.batch_sizes), None])  # (B, 1, 28, 28) float32
    log.info(f"benchmarking {len(backends)} backends at batch sizes {', '.join(map(str, cfg.batch_sizes))}, "
             f"{cfg.budget:g} s each; parity on {count * onnx_contract.NUM_RAND:,} pairs")
    rows, parity, reference = [], [], None
    for backend in backends:
        try:
            backend_rows = _latency_rows(backend, cfg, timing_images, threads_for)
            backend.set_threads(parity_threads)
            metrics, *logits = backend.exhaustive(test_images, test_labels)
        except DigitsumError:
            raise
        except Exception as e:
            if not backend.optional:
                raise DigitsumError(f"{backend.label} failed: {first_line(e, 200)}") from None
            rows.append({**backend.describe(), "status": "skipped", "reason": first_line(e, 200)})
            log.info(f"{backend.label}: skipped ({rows[-1]['reason']})")
            continue
        reference = reference or tuple(logits)
        max_abs_diff, argmax_agreement = compare_logits(tuple(logits), reference)
        parity.append({**backend.describe(), **metrics, "argmax_agreement": argmax_agreement,
                       "max_abs_diff": max_abs_diff})
        rows += [{**row, "digit_accuracy": metrics["digit_accuracy"], "sum_accuracy": metrics["sum_accuracy"]}
                 for row in backend_rows]
    fp32_onnx = next((p for p in parity if p["backend"] == "onnxruntime" and p["precision"] == "fp32"), None)
    for entry in parity:
        _verdict(entry, fp32_onnx, cfg.tolerance)
    return rows, parity


def live_pipeline(cfg: BenchConfig, onnx_path: Path, test: mnist.Split) -> dict:
    """The camera pipeline on synthetic 640x480 frames of test digits, one thread (a skipped row if it fails)."""
    if not cfg.live:
        return {"status": "skipped", "reason": "--no-live"}
    try:
        from digitsum_edge.apps.profile import time_pipeline
        from digitsum_edge.apps.reader import load
        from digitsum_edge.synth.frames import camera_frame

        rng = np.random.default_rng(0)
        count = min(cfg.live_frames, len(test))
        frames = [camera_frame(digit, rng, size=(640, 480)) for digit in test.images[:count]]
        live = time_pipeline(load(onnx_path, provider="cpu", threads=1), frames,
                             test.labels[:count].tolist(), rng.integers(0, onnx_contract.NUM_RAND, count).tolist())
    except Exception as e:  # the live row is extra: a broken camera pipeline must not hide the rest
        return {"status": "skipped", "reason": f"the live pipeline failed: {first_line(e, 200)}"}
    log.info(f"live pipeline: median {live['median_ms']:.2f} ms per 640x480 frame")
    return live


def speedup(rows: list[dict]) -> dict:
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


@dataclass
class BenchResult:
    """The whole bench report; `to_dict()` is the JSON (`--json`), `format_table(result.to_dict())` the text."""

    config: dict
    header: dict  # machine, versions, model facts
    threads: dict  # the thread counts used: batch_1, larger_batches, parity, fixed
    rows: list[dict]  # one per backend and batch size (and one per skipped backend)
    parity: list[dict]  # one per backend: accuracy, agreement with the reference, the verdict
    live: dict  # the live-pipeline row (or why it was skipped)
    speedup: dict
    below_min_accuracy: list[str]
    notes: list[str]
    seconds: float
    schema: str = SCHEMA

    def to_dict(self) -> dict:
        return {"schema": self.schema, "config": self.config, "header": self.header, "threads": self.threads,
                "rows": self.rows, "parity": self.parity, "live": self.live, "speedup": self.speedup,
                "below_min_accuracy": self.below_min_accuracy, "notes": self.notes, "seconds": self.seconds}


def run(cfg: BenchConfig) -> BenchResult:
    """Measure every backend at every batch size, check accuracy parity, time the live pipeline; write
    cfg.json / cfg.plot and return the whole report (`format_table(result.to_dict())` makes it text)."""
    started = time.perf_counter()
    cpu_at_start = cpu_snapshot()  # other work on the machine skews timings: measure how much there was
    _validate(cfg)
    with_torch = torch_installed()
    skipped_torch: list[str] = []
    paths = resolve_paths(cfg, with_torch, skipped_torch)
    providers, notes = resolve_providers(cfg.providers, cuda_usable())
    notes += skipped_torch
    if not with_torch:
        notes.append("PyTorch is not installed (runtime-only install): ONNX Runtime alone, parity against "
                     f"{paths[1].name}")
    cores = os.cpu_count() or 1

    def threads_for(batch: int) -> int:
        return cfg.threads or (1 if batch == 1 else cores)

    backends, skipped, facts = build_backends(cfg, paths, providers, cfg.threads or cores, notes)
    test = mnist.load("test", cfg.data_dir)
    rows, parity = measure_backends(backends, cfg, test, threads_for, cfg.threads or cores)
    live = live_pipeline(cfg, paths[1], test)
    below = [f"{p['label']} {key.split('_')[0]} {p[key]:.2%}" for p in parity
             for key in ("digit_accuracy", "sum_accuracy")
             if cfg.min_accuracy is not None and p[key] < cfg.min_accuracy]
    info = header(facts, "cuda" in providers)
    share = others_cpu_share(cpu_at_start, cpu_snapshot())
    info["machine"]["other_processes_cpu_share"] = None if share is None else round(share, 3)
    result = BenchResult(cfg.to_dict(), info, {"batch_1": threads_for(1), "larger_batches": threads_for(2),
                                               "parity": cfg.threads or cores, "fixed": cfg.threads is not None},
                         rows + skipped, parity, live, speedup(rows), below, notes,
                         round(time.perf_counter() - started, 1))
    if cfg.json:
        write_json(cfg.json, result.to_dict())
    if cfg.plot:
        write_plot(result.to_dict(), cfg.plot)
    return result
