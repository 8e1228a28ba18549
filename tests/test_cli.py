"""The command line as a user meets it: help, version, train, and bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digitsum_edge import __version__, checkpoint
from helpers import invoke, one_line_error

STAGES = ("bench", "export", "live", "predict", "serve", "synth", "train", "web")


def test_help_lists_every_stage_and_version() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    listed = result.output.split("Commands:", 1)[1].splitlines()
    rows = {line.split()[0]: line.split(None, 1)[1] for line in listed if line.strip()}
    assert tuple(sorted(rows)) == STAGES  # every command in the Commands table, each with its help line
    assert all(len(text) > 10 for text in rows.values())
    overview = result.output.split("Commands:", 1)[0]
    assert all(f"digitsum-edge {command} " in overview for command in STAGES)  # and in the overview
    assert invoke("--version").output.strip().endswith(__version__)


@pytest.mark.parametrize("command", STAGES)
def test_every_stage_has_its_own_help(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0 and result.output.startswith(f"Usage: main {command} ")  # CliRunner: prog "main"
    assert "--help" in result.output


def test_train_runs_and_prints_a_summary(tmp_path: Path) -> None:
    result = invoke("-q", "train", "--epochs", "1", "--limit", "256", "--channels", "4,8", "--batch-size", "32",
                    "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    summary = result.stdout.strip().splitlines()[-1]  # -q: the result line alone, no progress
    digit, total = 100 * metrics["digit_accuracy"], 100 * metrics["sum_accuracy"]
    assert summary.startswith(f"digit {digit:.2f}% | sum {total:.2f}%")
    assert f"{metrics['params']:,} params" in summary and summary.endswith(str(tmp_path / "model.pt"))
    assert checkpoint.load(tmp_path / "model.pt")["metrics"] == metrics


@pytest.mark.parametrize(("args", "fragments"), [
    (["--data-dir", "/no/such/folder"], ["/no/such/folder"]),
    (["--device", "gpu"], ["--device", "gpu"]),
    (["--channels", "8,x"], ["--channels"]),
    (["--epochs", "0"], ["--epochs"]),
])
def test_train_bad_input_is_one_line(tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    one_line_error(invoke("train", "--out", str(tmp_path), *args), *fragments)


def test_train_corrupt_resume_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x00" * 100)
    one_line_error(invoke("train", "--out", str(tmp_path), "--resume", str(bad)), "broken.pt")
