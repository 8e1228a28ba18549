"""Bench options: one dataclass, defaults in one place, each field a CLI option."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from digitsum_edge import onnx_contract


@dataclass
class BenchConfig:
    checkpoint: str | None = None  # the PyTorch model (None: runs/model.pt; without it and with --onnx, no torch rows)
    onnx: str | None = None  # fp32 .onnx; default: the checkpoint's name with the .onnx suffix
    int8: str | None = None  # int8 .onnx; default: NAME.int8.onnx beside the fp32 file, when it exists
    litert: str | None = None  # fp32 .tflite; default: the checkpoint's name with .tflite, when it exists
    litert_int8: str | None = None  # int8 .tflite (LiteRT and TFLite Micro); default: NAME.int8.tflite beside it
    providers: str = "auto"  # onnxruntime providers: auto (CPU, plus CUDA when usable) | cpu | cuda | cpu,cuda
    batch_sizes: tuple[int, ...] = (1, 32, 256, 1024)  # images per call in the latency rows
    threads: int | None = None  # threads for every backend; default: 1 at batch 1, all cores above
    budget: float = 2.0  # seconds of timed runs per (backend, batch size), after the warm-up
    warmup: int = 5  # untimed runs before each measurement
    min_runs: int = 10  # timed runs even when the budget is spent sooner
    compile: bool = True  # add a torch.compile row (skipped with its reason when it fails here)
    eval_images: int | None = None  # test images for the accuracy parity, each with rand 0-9 (None: all)
    live: bool = True  # time the live pipeline: 640x480 frame -> preprocessing + inference
    live_frames: int = 200  # synthetic camera frames in the live row
    tolerance: float = onnx_contract.FP32_TOLERANCE  # largest fp32 logit difference that passes (export's too)
    min_accuracy: float | None = None  # fail (exit 1) when any backend's digit or sum accuracy is below
    data_dir: str | None = None  # MNIST folder; default: the copy in the package
    json: str | None = None  # write the whole report here
    plot: str | None = None  # latency and throughput chart made from the report

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
