"""The whole GPU check in one run: the default recipe trained over seeds on CUDA, where a training step spends
its time there, the levers that fit a model this small, export from the GPU-trained checkpoint, ONNX Runtime's
CUDA (and TensorRT) provider against PyTorch eager and compiled on the same GPU, and `live --provider cuda`.
Prints a table and writes the JSON (default docs/gpu.json) after every stage, so a failure midway keeps what
was measured; a stage that would not fit the time left is skipped and named.

    python benchmarks/gpu.py [--seeds 5] [--epochs N] [--budget 400] [--json docs/gpu.json]
    python benchmarks/gpu.py --device cpu --quick --json /tmp/gpu.json   # the same stages, tiny, on a CPU

Training goes through train.loop.run with the default TrainConfig (device auto), the function `digitsum-edge
train` calls; the levers time the loop's own step (train/step.py); inference goes through bench's backends and
the runtime's one door; the live row is live.run, what `digitsum-edge live` calls. docs/gpu.md says how to run
it on a remote GPU machine without network (scripts/gpu-wheels.sh brings onnxruntime-gpu and onnxsim).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import functools
import importlib.util
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = "digitsum-edge.gpu/1"
NEEDED = ("torch", "numpy", "onnx", "onnxscript", "onnxruntime", "cv2", "click", "tqdm", "matplotlib")
FLOORS = {"mean": 0.9955, "worst": 0.995}  # the 5-seed accuracy floors the CPU recipe meets (README)
# The quick run (--quick, the test suite's): a tiny network on a few images, every stage still run once.
QUICK = {"train": {"channels": (4, 8), "limit": 256, "batch_size": 64, "eval_images": 100},
         "epochs": 1, "parity_images": 100, "batches": (1, 64), "steps": 2, "turns": 1, "warmup": 2, "frames": 6}
FULL = {"train": {}, "epochs": None, "parity_images": 10_000, "batches": (1, 256, 4096), "steps": 40, "turns": 5,
        "warmup": 10, "frames": 150}
# Shares of the budget at which each stage must have ended (the rest waits for what comes after it).
DEADLINES = {"train": 0.5, "profile": 0.53, "levers": 0.66, "lever_runs": 0.76, "export": 0.8, "infer": 0.95,
             "live": 1.0}


@dataclass
class Check:
    """The run's settings, clock and report; `save()` writes the report as it stands."""

    args: argparse.Namespace
    work: Path
    started: float = field(default_factory=time.perf_counter)
    report: dict = field(default_factory=dict)

    @property
    def sizes(self) -> dict:
        return QUICK if self.args.quick else FULL

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self, stage: str) -> float:
        """Seconds until `stage` must have ended."""
        return DEADLINES[stage] * self.args.budget - self.elapsed()

    def save(self) -> None:
        from digitsum_edge.files import write_json

        self.report["seconds"] = round(self.elapsed(), 1)
        write_json(self.args.json, self.report)


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:300] if text else ''}"


def sync_for(device: str) -> Callable[[], None]:
    import torch

    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


# ---------------------------------------------------------------------------------------------- machine


def machine(check: Check) -> dict:
    """GPU, driver, library versions, CPU: what every figure below was measured on."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from digitsum_edge import __version__
    from digitsum_edge.bench.report import cpu_name

    info = {"device": check.args.device, "cpu": cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "digitsum_edge": __version__, "torch": str(torch.__version__),
            "torch_cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "numpy": np.__version__,
            "onnxruntime": ort.__version__, "onnxruntime_providers": ort.get_available_providers(),
            "gpu": None, "driver": None}
    if check.args.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=torch.cuda.get_device_name(0), gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count, capability=f"{props.major}.{props.minor}")
        if shutil.which("nvidia-smi"):
            done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                  capture_output=True, text=True, check=False, timeout=30)
            info["driver"] = done.stdout.strip() or None
    return info


# ---------------------------------------------------------------------------------------------- training


def train(check: Check) -> dict:
    """The default recipe (device auto on the GPU run) over seeds 0..N-1, each a fresh run of train.loop.run."""
    from digitsum_edge.train.config import TrainConfig
    from digitsum_edge.train.loop import run
    from seeds import summarize

    runs, skipped, walls = [], [], []
    device = "auto" if check.args.device == "cuda" else "cpu"
    for seed in range(check.args.seeds):
        expected = max(walls) if walls else 0.0
        if walls and check.left("train") < expected:
            skipped.append(seed)
            continue
        cfg = TrainConfig(seed=seed, out=str(check.work / f"seed{seed}"), force=True, device=device,
                          epochs=check.args.epochs or check.sizes["epochs"], **check.sizes["train"])
        start = time.perf_counter()
        metrics = run(cfg).metrics
        walls.append(time.perf_counter() - start)
        runs.append({"seed": seed, **{k: metrics[k] for k in ("digit_accuracy", "sum_accuracy", "sum_consistency",
                                                               "train_seconds", "epochs", "device", "precision")},
                     "wall_seconds": round(walls[-1], 2),
                     "epoch_seconds": [h["train_seconds"] for h in metrics["history"]]})
        print(f"seed {seed}: digit {runs[-1]['digit_accuracy']:.2%} sum {runs[-1]['sum_accuracy']:.2%} "
              f"consistency {runs[-1]['sum_consistency']:.2%} | {runs[-1]['train_seconds']:.1f} s training, "
              f"{walls[-1]:.1f} s in all | {metrics['device']} {metrics['precision']}", flush=True)
        check.report["stages"]["train"] = {"status": "running", "runs": runs}
        check.save()
    result = {"status": "ok", "runs": runs, **summarize(runs), "skipped_seeds": skipped,
              "train_options": {k: list(v) if isinstance(v, tuple) else v for k, v in check.sizes["train"].items()}}
    if skipped:
        result["skipped_reason"] = (f"time guard: seeds {skipped} would not have ended within the training share "
                                    f"of the {check.args.budget:.0f} s budget")
    if not check.args.quick:
        sums = [r["sum_accuracy"] for r in runs]
        result["floors"] = {**FLOORS, "met": bool(runs) and statistics.fmean(sums) >= FLOORS["mean"]
                            and min(sums) >= FLOORS["worst"] and min(r["digit_accuracy"] for r in runs)
                            >= FLOORS["worst"]}
    return result


# ---------------------------------------------------------------------------------------------- the step


@dataclass
class Case:
    """One way to run the loop's training step, timed per 128 images."""

    name: str
    step: Callable[[int], None]
    batch: int
    first_step_s: float = 0.0  # the first call: torch.compile's compile time


@functools.cache
def train_split():
    from digitsum_edge import mnist

    return mnist.load("train")


def make_step(check: Check, batch_scale: int = 1, lr_scale: float = 1.0, host_read: bool = False,
              data_on_host: bool = False, bf16: bool | None = None, compile_mode: str | None = None) -> Case:
    """The loop's augmentation and step (train/step.py) on a fresh default model, with one lever changed."""
    import torch

    from digitsum_edge.model import DigitSumNet, ModelConfig
    from digitsum_edge.train.config import TrainConfig
    from digitsum_edge.train.device import use_bf16
    from digitsum_edge.train.loop import seeded
    from digitsum_edge.train.step import batch_images, make_optimizer, train_step

    device = torch.device(check.args.device)
    batch = check.sizes["train"].get("batch_size", TrainConfig.batch_size) * batch_scale
    cfg = TrainConfig(**{**check.sizes["train"], "batch_size": batch, "lr": TrainConfig.lr * lr_scale})
    train_set = train_split()
    n = 8 * batch
    generator = torch.Generator().manual_seed(0)
    # as the loop holds them: images, labels, this epoch's order and rands, all on the device
    tensors = [torch.from_numpy(train_set.images[:n, None]), torch.from_numpy(train_set.labels[:n]).long(),
               torch.randperm(n, generator=generator), torch.randint(0, 10, (n,), generator=generator)]
    images, labels, order, rands = tensors if data_on_host else [t.to(device) for t in tensors]
    torch.manual_seed(0)
    net = DigitSumNet(ModelConfig(channels=tuple(cfg.channels))).to(device).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(net, cfg)
    forward = torch.compile(net, mode=compile_mode) if compile_mode else net
    bf16 = use_bf16("auto", device) if bf16 is None else bf16

    def step(i: int) -> None:
        start = (i * batch) % (n - batch)
        idx = order[start:start + batch]
        pixels, digit, rand = images[idx], labels[idx], rands[idx]
        if data_on_host:  # what a loader from host memory does: three copies a step, each waiting for the GPU
            pixels, digit, rand = pixels.to(device), digit.to(device), rand.to(device)
        x = batch_images(pixels.float(), cfg, seeded(0, 0, i))
        loss, _, _ = train_step(forward, optimizer, x, digit, rand, cfg.label_smoothing, bf16)
        if host_read:  # what the loop did before it kept its sums on the device
            float(loss)

    label = "default" if compile_mode is None else f"torch.compile {compile_mode or 'default'}"
    case = Case(label, step, batch)
    sync = sync_for(check.args.device)
    start = time.perf_counter()
    step(0)
    sync()
    case.first_step_s = time.perf_counter() - start
    return case


def time_cases(check: Check, cases: list[Case]) -> dict[str, float]:
    """Milliseconds per 128 images of each case: the median over turns of `steps` consecutive steps each, the
    cases taking turns so that their ratios hold while the machine's state drifts."""
    sync = sync_for(check.args.device)
    steps, per_case = check.sizes["steps"], {c.name: [] for c in cases}
    for turn in range(check.sizes["turns"] + 1):  # turn 0 warms up
        for case in cases:
            sync()
            start = time.perf_counter()
            for i in range(steps):
                case.step(turn * steps + i + 1)
            sync()
            if turn:
                per_case[case.name].append((time.perf_counter() - start) / steps * 128 / case.batch)
    return {name: 1000 * statistics.median(values) for name, values in per_case.items()}


def profile(check: Check) -> dict:
    """Where a default step spends its time: the profiler's top kernels (GPU) or operators (CPU), launches per
    step, and how busy the device is while the CPU issues the step."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    case = make_step(check)
    for i in range(check.sizes["warmup"]):
        case.step(i)
    sync = sync_for(check.args.device)
    sync()
    steps = max(2, check.sizes["steps"] // 2)
    cuda = check.args.device == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    start = time.perf_counter()
    with torch_profile(activities=activities) as prof:
        for i in range(steps):
            case.step(100 + i)
        sync()
    wall_ms = (time.perf_counter() - start) * 1000 / steps

    per_name: dict[str, list[float]] = {}  # microseconds of each run of each kernel (GPU) or operator (CPU)
    if cuda:  # the device's own records: kernels, copies and fills, each with its duration on the GPU
        for event in prof.events():
            if str(getattr(event, "device_type", "")).endswith("CUDA"):
                per_name.setdefault(event.name, []).append(event.time_range.elapsed_us())
    else:
        for average in prof.key_averages():
            if average.self_cpu_time_total > 0:
                per_name[average.key] = [average.self_cpu_time_total / average.count] * average.count
    busy_ms = sum(map(sum, per_name.values())) / 1000 / steps
    top = sorted(per_name.items(), key=lambda item: sum(item[1]), reverse=True)[:10]
    return {"status": "ok", "steps": steps, "wall_ms_per_step": round(wall_ms, 3),
            "device_busy_ms_per_step": round(busy_ms, 3), "busy_share": round(busy_ms / wall_ms, 3),
            "kernel_launches_per_step": round(sum(map(len, per_name.values())) / steps, 1) if cuda else None,
            "what": "CUDA kernels, copies and fills (time on the GPU)" if cuda else "CPU operators (self CPU time)",
            "top": [{"name": name[:90], "ms_per_step": round(sum(times) / 1000 / steps, 4),
                     "calls_per_step": round(len(times) / steps, 1)} for name, times in top]}


def levers(check: Check) -> dict:
    """Each lever against the loop's default step, timed in turns in one process; kept when it saves time."""
    import torch

    from digitsum_edge.train.device import use_bf16

    cuda = check.args.device == "cuda"
    cases = [make_step(check)]
    builders: list[tuple[str, Callable[[], Case], str]] = [
        ("host read per step (the loop before: float(loss))", lambda: make_step(check, host_read=True),
         "no host sync per step"),
        ("data on the host, copied per batch", lambda: make_step(check, data_on_host=True),
         "data resident on the device"),
        ("fp32" if use_bf16("auto", torch.device(check.args.device)) else "bf16 autocast",
         lambda: make_step(check, bf16=not use_bf16("auto", torch.device(check.args.device))), "bf16 autocast"),
        ("batch x4, lr x2 (per 128 images)", lambda: make_step(check, batch_scale=4, lr_scale=2.0), "larger batch"),
    ]
    if cuda:
        builders += [("torch.compile", lambda: make_step(check, compile_mode="default"), "torch.compile"),
                     ("torch.compile reduce-overhead (CUDA graphs)",
                      lambda: make_step(check, compile_mode="reduce-overhead"), "CUDA graphs")]
    rows, failed = [], []
    for name, build, lever in builders:
        if check.left("levers") < 30 and not check.args.quick:
            failed.append({"case": name, "lever": lever, "status": "skipped", "reason": "time guard"})
            continue
        try:
            case = build()
            case.name = name
            cases.append(case)
            rows.append({"case": name, "lever": lever, "first_step_s": round(case.first_step_s, 2)})
        except Exception as e:  # torch.compile can fail on a platform; the row says why
            failed.append({"case": name, "lever": lever, "status": "failed", "reason": first_line(e)})
    times = time_cases(check, cases)
    base = times[cases[0].name]
    for row in rows:
        ms = times[row["case"]]
        faster = base / ms
        row.update(status="ok", ms_per_128_images=round(ms, 3), speed_vs_default=round(faster, 3))
    baseline = {"case": "default (the loop's step: data on the device, sums kept there, bf16 where it pays)",
                "status": "ok", "ms_per_128_images": round(base, 3), "speed_vs_default": 1.0,
                "epoch_seconds_estimate": round(base * 60_000 / 128 / 1000, 2)}
    return {"status": "ok", "steps_per_turn": check.sizes["steps"], "turns": check.sizes["turns"],
            "rows": [baseline, *rows, *failed]}


def lever_runs(check: Check) -> dict:
    """The levers that change a whole run, trained in full on seed 0 beside the default seed 0: a larger batch
    with the learning rate scaled (accuracy must hold), and torch.compile with its compile time counted."""
    from digitsum_edge.train.config import TrainConfig
    from digitsum_edge.train.loop import run

    default = next((r for r in check.report["stages"].get("train", {}).get("runs", []) if r["seed"] == 0), None)
    batch = 4 * check.sizes["train"].get("batch_size", TrainConfig.batch_size)
    options = [(f"batch {batch}, lr x2 (square-root scaling)", {"batch_size": batch, "lr": 2 * TrainConfig.lr})]
    if check.args.device == "cuda":
        options.append(("--compile", {"compile": True}))
    rows = []
    for name, changed in options:
        if default and check.left("lever_runs") < 2 * default["wall_seconds"] and not check.args.quick:
            rows.append({"case": name, "status": "skipped", "reason": "time guard"})
            continue
        cfg = TrainConfig(**{"seed": 0, "out": str(check.work / "lever"), "force": True,
                             "device": "auto" if check.args.device == "cuda" else "cpu",
                             "epochs": check.args.epochs or check.sizes["epochs"], **check.sizes["train"], **changed})
        try:
            metrics = run(cfg).metrics
        except Exception as e:
            rows.append({"case": name, "status": "failed", "reason": first_line(e)})
            continue
        row = {"case": name, "status": "ok", **{k: metrics[k] for k in ("digit_accuracy", "sum_accuracy",
                                                                         "sum_consistency", "train_seconds")}}
        if default:
            row["train_seconds_default_seed0"] = default["train_seconds"]
            faster = default["train_seconds"] > metrics["train_seconds"] * 1.05
            holds = metrics["sum_accuracy"] >= FLOORS["worst"] or check.args.quick
            row["verdict"] = "keep" if faster and holds else "drop"
        rows.append(row)
        print(f"{name}: {metrics['train_seconds']:.1f} s, sum {metrics['sum_accuracy']:.2%}", flush=True)
    return {"status": "ok", "rows": rows}


# ---------------------------------------------------------------------------------------------- inference


def export(check: Check) -> dict:
    """Export the seed-0 checkpoint trained above (export verifies the file against PyTorch itself)."""
    from digitsum_edge.export.config import ExportConfig
    from digitsum_edge.export.pipeline import run

    ckpt = check.work / "seed0" / "model.pt"
    if not ckpt.is_file():
        raise RuntimeError(f"{ckpt} was not trained")
    simplify = importlib.util.find_spec("onnxsim") is not None
    result = run(ExportConfig(checkpoint=str(ckpt), verify_images=check.sizes["parity_images"], force=True,
                              simplify=simplify))
    notes = [] if simplify else ["onnxsim is not installed: exported without simplification"]
    return {"status": "ok", "file": str(result.files[0].path), **result.to_dict(), "simplified": simplify,
            "notes": [*result.notes, *notes]}


def _device_rows(check: Check, onnx_path: Path, model, batches: tuple[int, ...]) -> list[dict]:
    """Inputs and outputs left on the GPU: ONNX Runtime through IOBinding, PyTorch on device tensors."""
    import numpy as np
    import torch

    from digitsum_edge.engine.onnx_runtime import open_onnx
    from digitsum_edge.onnx_contract import INPUTS, OUTPUTS
    from digitsum_edge.timing import measure

    session = open_onnx(onnx_path, "cuda").session
    rows = []
    for batch in batches:
        image = torch.randn(batch, 1, 28, 28, device="cuda")
        rand = torch.randint(0, 10, (batch,), device="cuda")
        digit_out = torch.empty(batch, 10, device="cuda")
        sum_out = torch.empty(batch, 19, device="cuda")
        binding = session.io_binding()
        for name, tensor, dtype in zip(INPUTS, (image, rand), (np.float32, np.int64), strict=True):
            binding.bind_input(name, "cuda", 0, dtype, tuple(tensor.shape), tensor.data_ptr())
        for name, tensor in zip(OUTPUTS, (digit_out, sum_out), strict=True):
            binding.bind_output(name, "cuda", 0, np.float32, tuple(tensor.shape), tensor.data_ptr())
        torch.cuda.synchronize()
        timing = measure(lambda binding=binding: session.run_with_iobinding(binding), batch, check.args.step_budget,
                         sync=torch.cuda.synchronize)
        rows.append({"label": "onnxruntime cuda fp32, data on the GPU", "batch": batch, **timing.to_dict()})
        with torch.inference_mode():
            timing = measure(lambda image=image, rand=rand: model(image, rand), batch, check.args.step_budget,
                             sync=torch.cuda.synchronize)
        rows.append({"label": "pytorch cuda fp32, data on the GPU", "batch": batch, **timing.to_dict()})
    return rows


def _tensorrt(onnx_path: Path) -> dict:
    """Whether the TensorRT provider that onnxruntime-gpu lists can really run the model here."""
    import numpy as np
    import onnxruntime as ort

    name = "TensorrtExecutionProvider"
    if name not in ort.get_available_providers():
        return {"status": "skipped", "reason": f"onnxruntime {ort.__version__} does not list {name}"}
    try:
        session = ort.InferenceSession(str(onnx_path), providers=[name, "CUDAExecutionProvider"])
        if session.get_providers()[0] != name:
            return {"status": "skipped", "reason": f"{name} is listed but fell back to {session.get_providers()[0]} "
                    "(TensorRT's own libraries, libnvinfer, are not installed: they do not travel in the 64 MiB "
                    "carry)"}
        session.run(None, {"image": np.zeros((1, 1, 28, 28), np.float32), "rand": np.zeros(1, np.int64)})
    except Exception as e:
        return {"status": "skipped", "reason": first_line(e)}
    return {"status": "ok", "note": "TensorRT runs the model; not timed by this script"}


def infer(check: Check) -> dict:
    """Parity on every test pair and latency/throughput: onnxruntime on the device's provider beside PyTorch
    eager and torch.compile on the same device (bench's backends: host arrays in, host arrays out)."""
    import numpy as np
    import torch

    from digitsum_edge import checkpoint, mnist
    from digitsum_edge.bench.backends import Exported, TorchCompiled, TorchEager
    from digitsum_edge.engine.onnx_runtime import cuda_usable
    from digitsum_edge.evaluate import compare_logits
    from digitsum_edge.onnx_contract import normalize
    from digitsum_edge.timing import measure

    onnx_path = Path(check.report["stages"]["export"]["file"])
    ckpt_path = check.work / "seed0" / "model.pt"
    device = check.args.device
    if device == "cuda" and not cuda_usable():
        import onnxruntime as ort

        raise RuntimeError(f"onnxruntime {ort.__version__} cannot run on CUDA here (providers "
                           f"{ort.get_available_providers()}): carry onnxruntime-gpu, see scripts/gpu-wheels.sh")
    ckpt = checkpoint.load(ckpt_path)
    backends = [TorchEager(checkpoint.build_model(ckpt), device, ckpt_path)]
    skipped = []
    if device == "cuda":
        backends.append(TorchCompiled(checkpoint.build_model(ckpt), device, ckpt_path, max(check.sizes["batches"])))
    else:
        skipped.append({"label": "torch.compile cpu fp32", "reason": "not timed on a CPU (compile time)"})
    backends.append(Exported(onnx_path, device, os.cpu_count() or 1))
    test = mnist.load("test")
    count = check.sizes["parity_images"]
    images, labels = test.images[:count], test.labels[:count].astype(np.int64)
    rows, parity, logits = [], [], {}
    largest = max(check.sizes["batches"])
    timing_images = np.ascontiguousarray(np.resize(normalize(test.images[:largest, None]), (largest, 1, 28, 28)))
    rng = np.random.default_rng(0)
    for backend in backends:
        try:
            metrics, *out = backend.exhaustive(images, labels)
            logits[backend.label] = tuple(out)
            parity.append({"label": backend.label, **metrics})
            for batch in check.sizes["batches"]:
                x, r = timing_images[:batch], rng.integers(0, 10, batch).astype(np.int64)
                first = backend.first_call(x, r)
                timing = measure(lambda x=x, r=r, b=backend: b.run(x, r), batch, check.args.step_budget,
                                 sync=backend.sync)
                rows.append({"label": backend.label, "batch": batch, "first_call_s": round(first, 3),
                             **timing.to_dict()})
                print(f"{backend.label:<28} batch {batch:>5}: median {timing.median_ms:.3f} ms, "
                      f"{timing.images_per_s:,.0f} images/s", flush=True)
        except Exception as e:
            skipped.append({"label": backend.label, "reason": first_line(e)})
    reference = f"pytorch {device} fp32"
    ort_label = f"onnxruntime {device} fp32"
    for entry in parity:
        if entry["label"] != reference and reference in logits:
            diff, agreement = compare_logits(logits[entry["label"]], logits[reference])
            entry.update(max_abs_diff_vs_pytorch=diff, argmax_agreement_vs_pytorch=agreement,
                         argmax_identical=all(a == 1.0 for a in agreement.values()))
    if device == "cuda":
        cpu_logits = TorchEager(checkpoint.build_model(ckpt), "cpu", ckpt_path).exhaustive(images, labels)[1:]
        for entry in parity:
            diff, agreement = compare_logits(logits[entry["label"]], tuple(cpu_logits))
            entry.update(max_abs_diff_vs_pytorch_cpu=diff, argmax_agreement_vs_pytorch_cpu=agreement)
    result = {"status": "ok", "pairs": count * 10, "reference": reference, "parity": parity, "rows": rows,
              "skipped": skipped, "tf32": {"onnxruntime_cuda_use_tf32": 0, "torch_cudnn_allow_tf32":
                                          bool(torch.backends.cudnn.allow_tf32)}}
    result["speedup"] = {str(b): round(_median(rows, reference, b) / _median(rows, ort_label, b), 3)
                         for b in check.sizes["batches"] if _median(rows, reference, b) and _median(rows, ort_label, b)}
    if device == "cuda":
        model = backends[0].model
        try:
            result["device_rows"] = _device_rows(check, onnx_path, model, check.sizes["batches"])
        except Exception as e:
            result["device_rows_skipped"] = first_line(e)
        result["tensorrt"] = _tensorrt(onnx_path)
    else:
        result["tensorrt"] = {"status": "skipped", "reason": "a CPU run"}
    return result


def _median(rows: list[dict], label: str, batch: int) -> float | None:
    return next((r["median_ms"] for r in rows if r["label"] == label and r["batch"] == batch), None)


def live(check: Check) -> dict:
    """`live --provider <device>` (live.run, as the command calls it) over a generated video, headless: ms a
    frame, split into preparation (frame -> 28x28) and inference."""
    import numpy as np

    from digitsum_edge.apps.live import LiveConfig
    from digitsum_edge.apps.live import run as live_run
    from digitsum_edge.synth.frames import SynthConfig
    from digitsum_edge.synth.frames import run as synth_run

    video = check.work / "live.mp4"
    frames = check.sizes["frames"]
    synth_run(SynthConfig(out=str(video), count=max(1, frames // 5), hold=5, blank=0.0, force=True))
    jsonl = check.work / "live.jsonl"
    result = live_run(LiveConfig(source=str(video), model=check.report["stages"]["export"]["file"],
                                 provider=check.args.device, window=False, jsonl=str(jsonl), force=True, seed=0,
                                 max_frames=frames))
    lines = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    found = [x for x in lines if x["found"]]
    warm = lines[5:] if len(lines) > 10 else lines  # the first frames open the session's kernels

    def median(key: str, rows: list[dict]) -> float | None:
        return round(float(np.median([x[key] for x in rows])), 3) if rows else None

    return {"status": "ok", "provider": result.provider, "frames": result.frames, "found": result.found,
            "ms_median": median("ms", warm), "prepare_ms_median": median("prepare_ms", warm),
            "infer_ms_median": median("infer_ms", [x for x in warm if x["found"]]),
            "infer_ms_first_frame": found[0]["infer_ms"] if found else None, "notes": result.notes}


# ---------------------------------------------------------------------------------------------- the run


STAGES: list[tuple[str, Callable[[Check], dict], tuple[str, ...]]] = [
    ("train", train, ()), ("profile", profile, ()), ("levers", levers, ()), ("lever_runs", lever_runs, ("train",)),
    ("export", export, ("train",)), ("infer", infer, ("export",)), ("live", live, ("export",))]
MINIMUM = {"train": 0, "profile": 5, "levers": 20, "lever_runs": 20, "export": 10, "infer": 30, "live": 5}


def table(report: dict) -> str:
    """The printed summary: machine, training over seeds, step profile, levers, inference, live."""
    m, stages = report.get("machine", {}), report.get("stages", {})
    lines = [f"{m.get('gpu') or m.get('cpu')} | torch {m.get('torch')} (CUDA {m.get('torch_cuda')}, cuDNN "
             f"{m.get('cudnn')}) | onnxruntime {m.get('onnxruntime')} | driver {m.get('driver')}"]
    tr = stages.get("train", {})
    if tr.get("status") == "ok" and tr.get("runs"):
        s = tr["stats"]
        lines.append(f"train, {len(tr['runs'])} seeds ({tr['runs'][0]['device']}, {tr['runs'][0]['precision']}, "
                     f"{tr['runs'][0]['epochs']} epochs): train s {s['train_seconds']['mean']:.1f} +- "
                     f"{s['train_seconds']['std']:.1f} | digit {100 * s['digit_accuracy']['mean']:.2f} +- "
                     f"{100 * s['digit_accuracy']['std']:.2f}% (worst {100 * s['digit_accuracy']['min']:.2f}) | "
                     f"sum {100 * s['sum_accuracy']['mean']:.2f} +- {100 * s['sum_accuracy']['std']:.2f}% (worst "
                     f"{100 * s['sum_accuracy']['min']:.2f}) | consistency {100 * s['sum_consistency']['mean']:.2f}%"
                     + (f" | floors met: {tr['floors']['met']}" if "floors" in tr else "")
                     + (f" | skipped seeds {tr['skipped_seeds']}" if tr.get("skipped_seeds") else ""))
    pr = stages.get("profile", {})
    if pr.get("status") == "ok":
        lines.append(f"step profile: {pr['wall_ms_per_step']:.2f} ms a step, device busy "
                     f"{pr['device_busy_ms_per_step']:.2f} ms ({pr['busy_share']:.0%}), "
                     f"{pr['kernel_launches_per_step']} launches a step; top: "
                     + "; ".join(f"{t['name'][:40]} {t['ms_per_step']:.3f}" for t in pr["top"][:3]))
    for row in stages.get("levers", {}).get("rows", []):
        lines.append(f"  lever {row['case'][:52]:<52} " + (
            f"{row['ms_per_128_images']:8.3f} ms/128 x{row['speed_vs_default']:.2f}" if row["status"] == "ok"
            else f"{row['status']}: {row['reason'][:60]}"))
    for row in stages.get("lever_runs", {}).get("rows", []):
        lines.append(f"  run   {row['case'][:52]:<52} " + (
            f"{row['train_seconds']:.1f} s, sum {100 * row['sum_accuracy']:.2f}% -> {row.get('verdict', '?')}"
            if row["status"] == "ok" else f"{row['status']}: {row['reason'][:60]}"))
    inf = stages.get("infer", {})
    for entry in inf.get("parity", []):
        if "max_abs_diff_vs_pytorch" in entry:
            lines.append(f"parity {entry['label']} vs {inf['reference']} on {inf['pairs']:,} pairs: max |diff| "
                         f"{max(entry['max_abs_diff_vs_pytorch'].values()):.1e}, argmax identical "
                         f"{entry['argmax_identical']}")
    for row in [*inf.get("rows", []), *inf.get("device_rows", [])]:
        lines.append(f"  {row['label'][:40]:<40} batch {row['batch']:>5} {row['median_ms']:9.3f} ms "
                     f"{row['images_per_s']:>14,.0f} images/s")
    if inf.get("tensorrt"):
        lines.append(f"tensorrt: {inf['tensorrt']['status']} {inf['tensorrt'].get('reason', '')}")
    lv = stages.get("live", {})
    if lv.get("status") == "ok":
        lines.append(f"live --provider {lv['provider']}: {lv['ms_median']} ms a frame (prepare "
                     f"{lv['prepare_ms_median']} + infer {lv['infer_ms_median']}), {lv['found']}/{lv['frames']} "
                     "frames with a digit")
    for name, stage in stages.items():
        if stage.get("status") not in ("ok", "running"):
            lines.append(f"{name}: {stage.get('status')} ({stage.get('reason', '')})")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 of the default recipe")
    parser.add_argument("--epochs", type=int, default=None, help="[default: the recipe's own]")
    parser.add_argument("--budget", type=float, default=400.0,
                        help="seconds for the whole check; stages that would not fit are skipped and named")
    parser.add_argument("--step-budget", type=float, default=1.0, help="seconds of timed runs per latency row")
    parser.add_argument("--quick", action="store_true", help="tiny model and few images (the test suite's run)")
    parser.add_argument("--json", default="docs/gpu.json")
    parser.add_argument("--work", default=None, help="folder for checkpoints and files [default: a temporary one]")
    args = parser.parse_args(argv)
    if args.seeds < 1 or (args.epochs is not None and args.epochs < 1) or args.budget <= 0:
        parser.error("--seeds and --epochs must be at least 1, --budget positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.suppress(io.UnsupportedOperation, AttributeError):  # stderr without a file (captured)
        faulthandler.enable()  # a crash in a native library still says where
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        print(f"error: benchmarks/gpu.py needs {', '.join(missing)} (pip install \"digitsum-edge[train]\"; on a remote "
              "GPU machine: scripts/gpu-wheels.sh, see docs/gpu.md)", file=sys.stderr)
        return 2
    import torch

    from digitsum_edge.files import check_writable

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: no usable CUDA device (torch.cuda.is_available() is False); run with --device cpu",
              file=sys.stderr)
        return 2
    check_writable(args.json, force=True)
    import torch._dynamo

    # Every lever builds its own model, and each new module is a recompilation of the same forward: past dynamo's
    # default limit (8) it would run eager without a word, and the compile rows would time the wrong thing.
    torch._dynamo.config.recompile_limit = 64
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        check = Check(args, work)
        check.report = {"schema": SCHEMA, "command": " ".join(["python", *sys.argv]),
                        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "budget_s": args.budget,
                        "quick": args.quick, "stages": {}}
        check.report["machine"] = machine(check)
        check.save()
        m = check.report["machine"]
        print(f"{m.get('gpu') or m.get('cpu')}, torch {m.get('torch')}, onnxruntime {m.get('onnxruntime')} "
              f"{m.get('onnxruntime_providers')}", flush=True)
        for name, stage, needs in STAGES:
            deadline = DEADLINES[name]
            missing_input = [n for n in needs if check.report["stages"].get(n, {}).get("status") != "ok"]
            if missing_input:
                check.report["stages"][name] = {"status": "skipped", "reason": f"needs {', '.join(missing_input)}"}
            elif not args.quick and deadline * args.budget - check.elapsed() < MINIMUM[name]:
                check.report["stages"][name] = {"status": "skipped", "reason": f"time guard ({check.elapsed():.0f} s "
                                                f"of {args.budget:.0f} s used)"}
            else:
                print(f"== {name} ({check.elapsed():.0f} s)", flush=True)
                started = time.perf_counter()
                try:
                    check.report["stages"][name] = {**stage(check), "seconds": round(time.perf_counter() - started, 1)}
                except Exception as e:  # one stage's failure is recorded; the stages that do not need it go on
                    check.report["stages"][name] = {"status": "failed", "reason": first_line(e)}
                    print(f"{name} failed: {first_line(e)}", file=sys.stderr, flush=True)
            check.save()
    print(table(check.report))
    print(f"wrote {args.json} ({check.elapsed():.0f} s)")
    failed = [n for n, s in check.report["stages"].items() if s.get("status") == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
