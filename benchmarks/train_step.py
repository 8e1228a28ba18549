"""What one training step costs on this CPU, and what each choice of the recipe saves: the augmentation,
then forward + backward + AdamW of the default model in fp32 and under bf16 autocast, and bf16 with one
choice undone at a time (pooling after BatchNorm and ReLU as in 0.2, AdamW without the fused kernel).
Default batch size, median of 50 steps after 5, all in one run so that the figures compare.

    python benchmarks/train_step.py [--batch-size 128] [--threads 2]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from digitsum_edge.model import DigitSumNet, ModelConfig
from digitsum_edge.timing import measure
from digitsum_edge.train.config import TrainConfig
from digitsum_edge.train.device import cpu_has_bf16
from digitsum_edge.train.loop import seeded
from digitsum_edge.train.step import batch_images, make_optimizer, train_step


def make_step(images: torch.Tensor, rand: torch.Tensor, digit: torch.Tensor, bf16: bool, pool_first: bool = True,
              fused: bool = True) -> Callable[[], None]:
    """The training loop's own step (train/step.py) on a fresh default model with the given choices."""
    torch.manual_seed(0)
    model = DigitSumNet(ModelConfig(pool_first=pool_first)).to(memory_format=torch.channels_last)
    cfg = TrainConfig()
    optimizer = make_optimizer(model, cfg, fused=fused)

    def step() -> None:
        train_step(model, optimizer, images, digit, rand, cfg.label_smoothing, bf16)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n = args.batch_size
    pixels = torch.randint(0, 256, (n, 1, 28, 28)).float()  # (B, 1, 28, 28), 0-255
    images = batch_images(pixels, TrainConfig(augment=False), None)  # what the step gets: normalised
    rand, digit = torch.randint(0, 10, (n,)), torch.randint(0, 10, (n,))
    cases = {
        "augmentation (default)": lambda: batch_images(pixels, TrainConfig(), seeded(0, 1, 2)),
        "  with --stroke 0.5": lambda: batch_images(pixels, TrainConfig(stroke=0.5), seeded(0, 1, 3)),
        "step fp32": make_step(images, rand, digit, bf16=False),
        "step bf16 autocast (default)": make_step(images, rand, digit, bf16=True),
        "  bf16, pool after BN+ReLU": make_step(images, rand, digit, bf16=True, pool_first=False),
        "  bf16, AdamW not fused": make_step(images, rand, digit, bf16=True, fused=False),
    }
    print(f"batch {n}, {args.threads} threads, CPU with native bf16: {cpu_has_bf16()}")
    for name, fn in cases.items():
        timing = measure(fn, n, budget=0, warmup=5, min_runs=50, max_runs=50)
        print(f"{name:<30} median {timing.median_ms:.2f} ms")


if __name__ == "__main__":
    main()
