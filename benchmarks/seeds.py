"""Accuracy over seeds: train the default recipe (or one with changed options) with several seeds, then
mean, std, min and max of digit accuracy, sum accuracy, consistency and training time, and the worst seed.

    python benchmarks/seeds.py [--seeds 5] [--json runs/seeds.json] [-- TRAIN OPTIONS...]

Options after `--` go to `digitsum-edge train` for every seed (e.g. `-- --channels 8,16,32`, or
`-- --holdout 10000` to tune on held-out training images and leave the test set unseen). Each run is a
fresh process, one after the other; the machine (CPU, threads, torch) is in the JSON beside the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from digitsum_edge.bench.report import cpu_name
from digitsum_edge.files import write_json
from digitsum_edge.timing import cpu_snapshot, others_cpu_share
from digitsum_edge.train.device import cpu_isa

KEYS = ("digit_accuracy", "sum_accuracy", "sum_consistency", "train_seconds")


def train_seed(seed: int, options: list[str], out: Path) -> dict:
    """One `digitsum-edge train` run in its own process; its metrics.json."""
    command = [sys.executable, "-c", "from digitsum_edge.cli import main; main()", "-q", "train", "--seed",
               str(seed), "--out", str(out), "--force", *options]
    before = cpu_snapshot(children=True)  # the training runs in a child process: its CPU is not "others"
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"seed {seed} failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}")
    share = others_cpu_share(before, cpu_snapshot(children=True))  # what skewed this seed's time
    metrics = json.loads((out / "metrics.json").read_text())
    return {**metrics, "others_cpu_share": None if share is None else round(share, 3)}


def summarize(runs: list[dict]) -> dict:
    """mean / std / min / max per key over the runs, and the seed with the lowest sum accuracy."""
    stats = {}
    for key in KEYS:
        values = [r[key] for r in runs]
        stats[key] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                      "min": min(values), "max": max(values)}
    worst = min(runs, key=lambda r: (r["sum_accuracy"], r["digit_accuracy"]))
    return {"stats": stats, "worst_seed": worst["seed"]}


def table(runs: list[dict], summary: dict) -> str:
    lines = [f"{'seed':>6} {'digit %':>8} {'sum %':>8} {'consist %':>10} {'train s':>8}"]
    for r in runs:
        lines.append(f"{r['seed']:>6} {100 * r['digit_accuracy']:>8.2f} {100 * r['sum_accuracy']:>8.2f} "
                     f"{100 * r['sum_consistency']:>10.2f} {r['train_seconds']:>8.1f}")
    s = summary["stats"]
    for name in ("mean", "std", "min", "max"):
        scale = [100, 100, 100, 1]
        lines.append(f"{name:>6} " + " ".join(f"{scale[i] * s[k][name]:>{w}.{2 if i < 3 else 1}f}"
                                               for i, (k, w) in enumerate(zip(KEYS, (8, 8, 10, 8), strict=True))))
    lines.append(f"worst seed: {summary['worst_seed']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("train_options", nargs="*", help="options for `digitsum-edge train`, after --")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            metrics = train_seed(seed, args.train_options, Path(tmp) / f"seed{seed}")
            runs.append({"seed": seed, **{k: metrics[k] for k in (*KEYS, "params", "macs", "precision", "threads")},
                         "cpu_isa": metrics.get("cpu_isa"),
                         "epochs": metrics["epochs"], "others_cpu_share": metrics["others_cpu_share"]})
            r = runs[-1]
            print(f"seed {seed}: digit {100 * r['digit_accuracy']:.2f}%, sum {100 * r['sum_accuracy']:.2f}%, "
                  f"consistency {100 * r['sum_consistency']:.2f}%, {r['train_seconds']:.1f} s ({r['cpu_isa']}, "
                  f"{r['precision']}; other processes used "
                  f"{r['others_cpu_share'] or 0:.0%} of the CPU meanwhile)", flush=True)
    summary = summarize(runs)
    print(table(runs, summary))
    if args.json:
        import torch

        write_json(args.json, {"schema": "digitsum-edge.seeds/1", "train_options": args.train_options,
                               "machine": {"cpu": cpu_name(), "isa": cpu_isa(), "platform": platform.platform(),
                                           "torch": str(torch.__version__)},
                               "runs": runs, **summary})


if __name__ == "__main__":
    main()
