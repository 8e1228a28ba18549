"""`digitsum-edge bench`: options (named like BenchConfig's fields) -> bench.run.run; torch and onnxruntime load
only then."""

from __future__ import annotations

import click

from digitsum_edge.bench.config import BenchConfig
from digitsum_edge.layout import DEFAULT_CHECKPOINT
from digitsum_edge.options import positive_ints

_D = BenchConfig()


@click.command()
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help=f"The PyTorch checkpoint (from `digitsum-edge train`) [default: {DEFAULT_CHECKPOINT}; with --onnx "
                   "and no checkpoint there, the PyTorch rows are skipped with a note].")
@click.option("--onnx", type=click.Path(dir_okay=False), default=None,
              help="The fp32 .onnx file [default: CHECKPOINT with the .onnx suffix].")
@click.option("--int8", type=click.Path(dir_okay=False), default=None,
              help="The int8 .onnx file [default: NAME.int8.onnx beside the fp32 file, if it exists].")
@click.option("--litert", type=click.Path(dir_okay=False), default=None,
              help="The fp32 .tflite file [default: CHECKPOINT with the .tflite suffix, if it exists].")
@click.option("--litert-int8", type=click.Path(dir_okay=False), default=None,
              help="The int8 .tflite file, run on LiteRT and TFLite Micro [default: NAME.int8.tflite, if it exists].")
@click.option("--providers", default=_D.providers, show_default=True,
              help="onnxruntime providers: auto (CPU, plus CUDA when usable), cpu, cuda or cpu,cuda.")
@click.option("--batch-sizes", callback=positive_ints("batch sizes like 1,32,256", unique=True),
              default=",".join(map(str, _D.batch_sizes)), show_default=True, help="Images per call, comma-separated.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads for every backend [default: 1 at batch 1, all cores for larger batches].")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), default=_D.budget, show_default=True,
              help="Seconds of timed calls per backend and batch size, after the warm-up.")
@click.option("--warmup", type=click.IntRange(min=0), default=_D.warmup, show_default=True,
              help="Untimed calls before each measurement.")
@click.option("--min-runs", type=click.IntRange(min=1), default=_D.min_runs, show_default=True,
              help="Timed calls per measurement even when the budget runs out sooner.")
@click.option("--compile/--no-compile", default=_D.compile, show_default=True, help="Add torch.compile rows.")
@click.option("--eval-images", type=click.IntRange(min=1), default=None,
              help="Test images for the accuracy parity, each with rand 0-9 [default: all 10,000].")
@click.option("--live/--no-live", default=_D.live, show_default=True, help="Time the live pipeline.")
@click.option("--live-frames", type=click.IntRange(min=1), default=_D.live_frames, show_default=True,
              help="Synthetic 640x480 camera frames timed in the live-pipeline row.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=_D.tolerance, show_default=True,
              help="Largest allowed fp32 logit difference (export's --tolerance).")
@click.option("--min-accuracy", type=click.FloatRange(0, 1), default=None,
              help="Exit 1 when any backend's digit or sum accuracy is below this fraction (e.g. 0.99).")
@click.option("--data-dir", type=click.Path(), default=None,
              help="MNIST folder [default: the copy in the package].")
@click.option("--json", type=click.Path(dir_okay=False), default=None,
              help="Write the whole report (header, every row, parity, live, speed-up) as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG of latency and throughput per backend and batch size.")
def bench(**options: object) -> None:
    """PyTorch against ONNX Runtime and LiteRT: latency and throughput beside exhaustive accuracy, in one table."""
    from digitsum_edge.bench.report import format_table
    from digitsum_edge.bench.run import run
    from digitsum_edge.errors import DigitsumError

    result = run(BenchConfig(**options))  # type: ignore[arg-type]  # click checked the types
    click.echo(format_table(result.to_dict()))
    if result.below_min_accuracy:  # the exit status says it too, for scripts
        raise DigitsumError(f"below --min-accuracy {options['min_accuracy']:.2%}: "
                            + ", ".join(result.below_min_accuracy))
