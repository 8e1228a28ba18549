"""The command line as a user meets it: help, version, train, and bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from digitsum_edge import __version__
from digitsum_edge.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def _one_line_error(result, *fragments: str) -> None:
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_every_stage_and_version() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "export", "live", "predict", "bench"):
        assert command in result.output
    assert invoke("--version").output.strip().endswith(__version__)


def test_train_runs_and_prints_a_summary(tmp_path: Path) -> None:
    result = invoke("train", "--epochs", "1", "--limit", "256", "--channels", "4,8", "--batch-size", "32",
                    "--out", str(tmp_path), "--quiet")
    assert result.exit_code == 0, result.output
    assert "digit" in result.output and "sum" in result.output and "params" in result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 <= metrics["digit_accuracy"] <= 1 and (tmp_path / "model.pt").is_file()


@pytest.mark.parametrize(("args", "fragments"), [
    (["--data-dir", "/no/such/folder"], ["/no/such/folder"]),
    (["--device", "gpu"], ["--device", "gpu"]),
    (["--channels", "8,x"], ["--channels"]),
    (["--epochs", "0"], ["--epochs"]),
])
def test_train_bad_input_is_one_line(tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    _one_line_error(invoke("train", "--out", str(tmp_path), *args), *fragments)


def test_train_corrupt_resume_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x00" * 100)
    _one_line_error(invoke("train", "--out", str(tmp_path), "--resume", str(bad)), "broken.pt")
