"""What one training step costs on this CPU: the augmentation, and forward + backward + AdamW in fp32 and
under bf16 autocast, for the default model at the default batch size (median of 50 steps after 5).

    python benchmarks/train_step.py [--batch-size 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from digitsum_edge.model import DigitSumNet, ModelConfig
from digitsum_edge.train.augment import random_affine
from digitsum_edge.train.device import cpu_has_bf16
from digitsum_edge.train.loop import seeded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = DigitSumNet(ModelConfig()).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.param_groups(4e-3, 10.0), lr=4e-3)
    n = args.batch_size
    images = torch.randint(0, 256, (n, 1, 28, 28)).float().contiguous(memory_format=torch.channels_last)
    rand, digit = torch.randint(0, 10, (n,)), torch.randint(0, 10, (n,))

    def step(bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            digit_logits, sum_logits = model(images, rand)
            loss = F.cross_entropy(digit_logits.float(), digit) + F.cross_entropy(sum_logits.float(), digit + rand)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    cases = {"augmentation (random_affine)": lambda: random_affine(images, seeded(0, 1, 2)),
             "step fp32": lambda: step(False), "step bf16 autocast": lambda: step(True)}
    print(f"batch {n}, {args.threads} threads, CPU with native bf16: {cpu_has_bf16()}")
    for name, fn in cases.items():
        for _ in range(5):
            fn()
        times = []
        for _ in range(50):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        print(f"{name:<30} median {1e3 * statistics.median(times):.2f} ms")


if __name__ == "__main__":
    main()
