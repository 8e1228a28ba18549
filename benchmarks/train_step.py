"""What one training step costs on this CPU, and what each lever of the recipe changes: the loop's own step
(augmentation + forward + backward + AdamW) of the default model in the default precision, then one change
at a time. All cases run in one process, in turns of a few steps each, so that their ratios hold on a
machine that other work slows down; a figure is the median over the turns, per 128 images.

    python benchmarks/train_step.py [--threads 2] [--turns 8] [--json PATH]
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/train_step.py    # as on a CPU with AVX2 only (fp32)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from digitsum_edge.bench.report import cpu_name
from digitsum_edge.files import write_json
from digitsum_edge.model import DigitSumNet, ModelConfig
from digitsum_edge.timing import cpu_snapshot, others_cpu_share
from digitsum_edge.train.config import TrainConfig
from digitsum_edge.train.device import cpu_isa, keep_freed_memory, use_bf16
from digitsum_edge.train.loop import seeded
from digitsum_edge.train.step import batch_images, make_optimizer, train_step

Step = Callable[[int], None]  # one training step on the turn's batch number


def make_step(pixels: torch.Tensor, bf16: bool, batch: int = 128, size: int | None = None,
              compiled: bool = False, channels_last: bool = True, fused: bool = True, **model: object) -> Step:
    """The loop's own augmentation and step (train/step.py) on a fresh model with the given choices."""
    torch.manual_seed(0)
    net = DigitSumNet(ModelConfig(**model))  # type: ignore[arg-type]
    net = net.to(memory_format=torch.channels_last) if channels_last else net
    cfg = TrainConfig()
    optimizer = make_optimizer(net, cfg, fused=fused)
    forward = torch.compile(net) if compiled else net
    images = pixels[:batch] if batch <= len(pixels) else pixels.repeat(batch // len(pixels) + 1, 1, 1, 1)[:batch]
    digit, rand = torch.randint(0, 10, (batch,)), torch.randint(0, 10, (batch,))

    def step(i: int) -> None:
        x = batch_images(images, cfg, seeded(0, 0, i), size)
        if not channels_last:
            x = x.contiguous()
        train_step(forward, optimizer, x, digit, rand, cfg.label_smoothing, bf16)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--turns", type=int, default=8, help="turns of 6 timed steps per case")
    parser.add_argument("--compile", action="store_true", help="also torch.compile'd (its compile time printed)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the training loop does
    bf16 = use_bf16("auto", torch.device("cpu"))
    pixels = torch.randint(0, 256, (128, 1, 28, 28)).float()  # (B, 1, 28, 28), 0-255
    other = "fp32" if bf16 else "bf16 autocast"
    cases: dict[str, tuple[Step, int]] = {
        f"default ({'bf16' if bf16 else 'fp32'})": (make_step(pixels, bf16), 128),
        f"  in {other}": (make_step(pixels, not bf16), 128),
        "  contiguous, not channels_last": (make_step(pixels, bf16, channels_last=False), 128),
        "  batch 256 (per 128 images)": (make_step(pixels, bf16, batch=256), 256),
        "  stride-2 stem (--stem-stride 2)": (make_step(pixels, bf16, stem_stride=2), 128),
        "  at 20x20 (--low-res 20 epochs)": (make_step(pixels, bf16, size=20), 128),
        "  pool after BN+ReLU (0.2's order)": (make_step(pixels, bf16, pool_first=False), 128),
        "  AdamW not fused": (make_step(pixels, bf16, fused=False), 128),
    }
    if args.compile:
        started = time.perf_counter()
        compiled = make_step(pixels, bf16, compiled=True)
        compiled(0)  # compiles forward and backward
        print(f"torch.compile: first step (compiling) {time.perf_counter() - started:.1f} s")
        cases["  torch.compile'd"] = (compiled, 128)
    times: dict[str, list[float]] = {name: [] for name in cases}
    before = cpu_snapshot()
    for turn in range(args.turns + 1):  # turn 0 warms up
        for name, (step, batch) in cases.items():
            for i in range(7):
                start = time.perf_counter()
                step(i)
                if turn and i:
                    times[name].append((time.perf_counter() - start) * 128 / batch)
    others = others_cpu_share(before, cpu_snapshot())
    base = statistics.median(next(iter(times.values())))
    print(f"{cpu_name()} ({cpu_isa()}), {args.threads} threads; other processes used {others or 0:.0%} of the CPU")
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        rows.append({"case": name.strip(), "ms_per_128_images": round(1000 * median, 3),
                     "ratio": round(median / base, 3), "seconds_per_epoch": round(median * 60_000 / 128, 2)})
        print(f"{name:<36} {1000 * median:7.2f} ms  x{median / base:.2f}  {median * 60_000 / 128:6.1f} s an epoch")
    if args.json:
        write_json(args.json, {"cpu": cpu_name(), "isa": cpu_isa(), "threads": args.threads,
                               "others_cpu_share": others, "torch": str(torch.__version__), "rows": rows})


if __name__ == "__main__":
    main()
