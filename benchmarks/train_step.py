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
import torch.nn.functional as F

from digitsum_edge.model import DigitSumNet, ModelConfig
from digitsum_edge.timing import measure
from digitsum_edge.train.augment import random_affine, random_stroke_width
from digitsum_edge.train.config import TrainConfig
from digitsum_edge.train.device import cpu_has_bf16
from digitsum_edge.train.loop import seeded


def make_step(images: torch.Tensor, rand: torch.Tensor, digit: torch.Tensor, bf16: bool, pool_first: bool = True,
              fused: bool = True) -> Callable[[], None]:
    """One optimizer step of a fresh default model with the given choices."""
    torch.manual_seed(0)
    model = DigitSumNet(ModelConfig(pool_first=pool_first)).to(memory_format=torch.channels_last)
    cfg = TrainConfig()
    optimizer = torch.optim.AdamW(model.param_groups(cfg.lr, cfg.sum_head_lr_scale), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay, fused=fused)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            digit_logits, sum_logits = model(images, rand)
            loss = F.cross_entropy(digit_logits.float(), digit) + F.cross_entropy(sum_logits.float(), digit + rand)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n = args.batch_size
    images = torch.randint(0, 256, (n, 1, 28, 28)).float().contiguous(memory_format=torch.channels_last)
    rand, digit = torch.randint(0, 10, (n,)), torch.randint(0, 10, (n,))
    cases = {
        "augmentation (random_affine)": lambda: random_affine(images, seeded(0, 1, 2)),
        "stroke width (--stroke)": lambda: random_stroke_width(images, seeded(0, 1, 3), 0.5),
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
