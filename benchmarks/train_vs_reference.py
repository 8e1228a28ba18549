"""Time-to-accuracy: the best reference notebook recipe against `digitsum-edge train`, in one run.

The reference: 7 conv layers (about 220k parameters), a 10-way digit output concatenated with a one-hot
rand through two fully connected layers, Adam, batch 256, a per-sample Dataset + DataLoader with
per-sample ToTensor + Normalize. Both are timed on the same machine in the same process, training time only
(evaluation excluded), and evaluated exhaustively (10,000 test images x rand 0-9) after every epoch.

    python benchmarks/train_vs_reference.py [--target 0.993] [--reference-epochs 8] [--threads N] [--json PATH]

`ONEDNN_MAX_CPU_ISA=AVX2` in front runs both as on a CPU with AVX2 only (fp32).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from digitsum_edge import mnist
from digitsum_edge.bench.report import cpu_name
from digitsum_edge.evaluate import exhaustive_pairs, score
from digitsum_edge.onnx_contract import MEAN, STD, normalize
from digitsum_edge.timing import cpu_snapshot, others_cpu_share
from digitsum_edge.train.config import TrainConfig
from digitsum_edge.train.device import cpu_isa
from digitsum_edge.train.loop import run as train_ours


class ReferenceNet(nn.Module):
    """7 conv layers + digit FC, then [digit logits, one-hot rand] -> FC -> ReLU -> FC for the sum."""

    def __init__(self) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.features = nn.Sequential(
            *block(1, 32), *block(32, 32), nn.MaxPool2d(2),
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
            *block(64, 96), *block(96, 96), *block(96, 16), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.digit = nn.Linear(16, 10)
        self.sum = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 19))

    def forward(self, image: torch.Tensor, rand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        digit_logits = self.digit(self.features(image))
        return digit_logits, self.sum(torch.cat([digit_logits, F.one_hot(rand, 10).float()], 1))


class PairDataset(Dataset):
    """One (image, rand, digit, sum) sample at a time, as the notebooks did."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels
        # per sample, like the notebooks' transforms.Compose([ToTensor(), Normalize(mean, std)])
        self.transform = lambda image: normalize(torch.from_numpy(image)[None], MEAN, STD)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int, int]:
        rand = int(np.random.randint(0, 10))
        digit = int(self.labels[i])
        return self.transform(self.images[i]), rand, digit, digit + rand


@torch.no_grad()
def evaluate_reference(model: ReferenceNet, test: mnist.Split) -> dict:
    model.eval()
    image_index, rand = exhaustive_pairs(len(test))
    digit_chunks, sum_chunks = [], []
    for start in range(0, len(rand), 10000):
        images = normalize(torch.from_numpy(test.images[image_index[start:start + 10000], None]))
        d, s = model(images, torch.from_numpy(rand[start:start + 10000]))
        digit_chunks.append(d.numpy())
        sum_chunks.append(s.numpy())
    model.train()
    return score(np.concatenate(digit_chunks), np.concatenate(sum_chunks), test.labels[image_index], rand)


def train_reference(epochs: int, target: float, seed: int = 0) -> list[dict]:
    torch.manual_seed(seed)
    np.random.seed(seed)
    train, test = mnist.load("train"), mnist.load("test")
    model = ReferenceNet()
    print(f"reference: {sum(p.numel() for p in model.parameters()):,} parameters, 7 conv layers")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(PairDataset(train.images, train.labels), batch_size=256, shuffle=True)
    history, seconds = [], 0.0
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        for image, rand, digit, total in loader:
            digit_logits, sum_logits = model(image, rand)
            loss = F.cross_entropy(digit_logits, digit) + F.cross_entropy(sum_logits, total)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds += time.perf_counter() - started
        history.append({"epoch": epoch, "train_seconds": round(seconds, 2), **evaluate_reference(model, test)})
        print(f"  reference epoch {epoch}: {history[-1]}")
        if history[-1]["sum_accuracy"] >= target:
            break
    return history


def time_to(history: list[dict], target: float) -> float | None:
    return next((h["train_seconds"] for h in history if h["sum_accuracy"] >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.993, help="sum accuracy to reach (fraction)")
    parser.add_argument("--reference-epochs", type=int, default=8, help="stop the reference after this many")
    parser.add_argument("--json", default=None, help="write the report here")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for both (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    header = {"cpu": cpu_name(), "isa": cpu_isa(), "cores": os.cpu_count(),
              "torch": torch.__version__, "threads": torch.get_num_threads()}
    print(header)
    started = cpu_snapshot()
    with tempfile.TemporaryDirectory() as out:
        ours = train_ours(TrainConfig(out=out, threads=args.threads)).metrics
    for h in ours["history"]:
        print(f"  ours epoch {h['epoch']}: {h['train_seconds']} s, sum {h['sum_accuracy']:.4f}")
    reference = train_reference(args.reference_epochs, args.target)
    t_ours, t_ref = time_to(ours["history"], args.target), time_to(reference, args.target)
    header["others_cpu_share"] = others_cpu_share(started, cpu_snapshot())  # what else ran meanwhile
    report = {
        "header": header, "target_sum_accuracy": args.target,
        "ours": {"seconds_to_target": t_ours, "params": ours["params"], "macs": ours["macs"],
                 "precision": ours["precision"],
                 "final": {k: ours[k] for k in ("digit_accuracy", "sum_accuracy", "sum_consistency")},
                 "train_seconds": ours["train_seconds"], "history": ours["history"]},
        "reference": {"seconds_to_target": t_ref, "history": reference},
    }
    if t_ours and t_ref:
        report["speedup"] = round(t_ref / t_ours, 2)
        verdict = (f"ours reaches {args.target:.1%} sum accuracy {t_ref / t_ours:.1f}x sooner "
                   f"({t_ours:.0f} s vs {t_ref:.0f} s)")
    elif t_ours:
        last = reference[-1]["train_seconds"]
        report["speedup_at_least"] = round(last / t_ours, 2)
        verdict = (f"ours reaches {args.target:.1%} in {t_ours:.0f} s; the reference had not after "
                   f"{len(reference)} epochs ({last:.0f} s): at least {last / t_ours:.1f}x sooner")
    else:
        verdict = f"ours did not reach {args.target:.1%} sum accuracy"
    print(verdict)
    report["verdict"] = verdict
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
