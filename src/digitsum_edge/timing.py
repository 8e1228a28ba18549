"""Latency measurement: warm up, then timed runs until a time budget; median, tail and throughput."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Wall-clock statistics of one function called with a fixed batch."""

    runs: int  # timed calls
    warmup: int  # untimed calls before them
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    images_per_s: float  # batch / median latency

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(seconds: list[float] | np.ndarray, batch: int, warmup: int = 0) -> Timing:
    """Per-call durations in seconds -> Timing (milliseconds, images per second)."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if ms.size == 0:
        raise ValueError("no timed runs")
    median = float(np.median(ms))
    return Timing(runs=int(ms.size), warmup=warmup, median_ms=median,
                  p90_ms=float(np.percentile(ms, 90)), p99_ms=float(np.percentile(ms, 99)),
                  mean_ms=float(ms.mean()), min_ms=float(ms.min()), max_ms=float(ms.max()),
                  images_per_s=batch / (median / 1e3) if median > 0 else float("inf"))


def measure(fn: Callable[[], object], batch: int, budget: float, warmup: int = 5, min_runs: int = 10,
            sync: Callable[[], None] | None = None, max_runs: int = 100_000) -> Timing:
    """Call `fn` `warmup` times untimed, then time single calls until `budget` seconds have passed.

    Each call is timed on its own, so the median and tail are of single calls. At least `min_runs` calls
    are timed even when that takes longer than the budget. `sync` (torch.cuda.synchronize for torch on
    CUDA) runs before the clock starts and before it stops, so queued GPU work is counted where it ran;
    onnxruntime's run() returns host arrays, so it needs none.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    durations: list[float] = []
    deadline = time.perf_counter() + budget
    while len(durations) < max_runs:
        start = time.perf_counter()
        fn()
        sync()
        end = time.perf_counter()
        durations.append(end - start)
        if end >= deadline and len(durations) >= min_runs:
            break
    return summarize(durations, batch, warmup)


def cpu_snapshot(children: bool = False) -> tuple[float, float, float] | None:
    """(wall seconds, busy CPU seconds of the whole machine, CPU seconds of this process, and with `children`
    of its finished child processes too); None off Linux."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user .. steal, without guest (counted in user)
    own = os.times()
    mine = own.user + own.system + (own.children_user + own.children_system if children else 0.0)
    return time.perf_counter(), busy, mine


BUSY_SHARE = 0.10  # other processes keeping more than this fraction of all cores busy skew a timing: say so


def load_warning(share: float | None) -> str | None:
    """The warning that goes beside timings taken while other processes used more than BUSY_SHARE of the CPU."""
    if share is None or share <= BUSY_SHARE:
        return None
    return (f"other processes used {share:.0%} of the CPU during the run (over {BUSY_SHARE:.0%}): the timings are "
            "slower than on a quiet machine and their ratios unreliable; rerun with the machine idle")


def others_cpu_share(start: tuple[float, float, float] | None, end: tuple[float, float, float] | None) -> float | None:
    """Fraction of all cores that other processes kept busy between two snapshots: what skewed the timings."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    others = (end[1] - start[1]) - (end[2] - start[2])
    return max(0.0, others / ((end[0] - start[0]) * (os.cpu_count() or 1)))
