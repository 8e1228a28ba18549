"""Bench's chart and table say what they were measured under: the machine, the load of other processes (and a
warning when it was high), and how each parity row is judged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from digitsum_edge.bench.report import write_plot
from newcomer_helpers import cli

BENCH_FAST = ("--providers", "cpu", "--batch-sizes", "1,4", "--threads", "1", "--budget", "0.01", "--warmup", "0",
              "--min-runs", "1", "--no-compile", "--no-live", "--eval-images", "30")


@pytest.fixture(scope="module")
def bench(tiny_run: tuple[Path, object], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, Path]:
    """One small bench of the tiny model (PyTorch, fp32 and int8 ONNX): what it printed, its JSON, a folder."""
    folder, _ = tiny_run
    out = tmp_path_factory.mktemp("bench")
    done = cli("bench", "--checkpoint", folder / "model.pt", *BENCH_FAST, "--json", out / "bench.json",
               "--plot", out / "bench.png")
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads((out / "bench.json").read_text()), out


def test_the_parity_table_says_how_each_row_is_judged(bench: tuple[str, dict, Path]) -> None:
    printed, report, _ = bench
    rows = {p["label"]: p["precision"] for p in report["parity"]}
    assert "onnxruntime cpu int8" in rows.values() or "int8" in rows.values()
    table = printed[printed.index("judged by"):].splitlines()
    int8 = next(line for line in table if " int8 " in line)
    fp32 = next(line for line in table if line.startswith("onnxruntime cpu fp32"))
    assert "accuracy vs fp32 (its logits differ)" in int8 and "accuracy drop vs fp32" in int8
    assert "max |diff| and argmax vs the reference" in fp32 and "max diff" in fp32


@pytest.mark.parametrize("share", [0.5, 0.02])
def test_the_chart_carries_the_machine_and_the_load(share: float, bench: tuple[str, dict, Path]) -> None:
    _, report, out = bench
    report["header"]["machine"]["other_processes_cpu_share"] = share
    write_plot(report, out / f"load{share}.png")
    text = Image.open(out / f"load{share}.png").text["Description"]
    machine = report["header"]["machine"]
    assert machine["cpu"] in text and f"{machine['cores']} cores" in text and machine["platform"] in text
    assert f"other processes used {share:.0%} of the CPU" in text
    assert ("WARNING" in text) == (share > 0.1)
    assert Image.open(out / "bench.png").text["Description"].count("other processes") >= 1  # the real run's too
