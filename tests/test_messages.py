"""Messages that say what to do instead: a checkpoint given as a model, a model given as a checkpoint, and bench
of an exported file alone (no checkpoint here, torch installed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import invoke, one_line_error

BENCH_FAST = ("--providers", "cpu", "--batch-sizes", "1", "--threads", "1", "--budget", "0.01", "--warmup", "0",
              "--min-runs", "1", "--no-compile", "--no-live", "--eval-images", "20")


@pytest.mark.parametrize("command", ["predict", "live"])
def test_a_checkpoint_given_as_the_model_says_to_export_it(command: str, tiny_checkpoint: Path, tmp_path: Path,
                                                            ) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"")  # never opened: the model is refused first
    args = [photo] if command == "predict" else ["--source", photo, "--no-window"]
    result = invoke(command, *args, "--model", tiny_checkpoint, "--provider", "cpu")
    one_line_error(result, f"{tiny_checkpoint} is a PyTorch checkpoint, not an exported model: run "
                           f"`digitsum-edge export {tiny_checkpoint}` and pass the .onnx file it writes")


def test_a_model_given_to_export_says_what_export_reads(tiny_onnx: Path, tmp_path: Path) -> None:
    result = invoke("export", tiny_onnx, "--out", tmp_path / "again.onnx")
    one_line_error(result, f"{tiny_onnx} is an exported model, not a checkpoint", "`digitsum-edge train`")
    assert not list(tmp_path.iterdir())


def test_bench_of_an_onnx_file_alone_skips_pytorch_with_a_note(tiny_onnx: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no runs/model.pt here; torch is installed
    result = invoke("bench", "--onnx", tiny_onnx, *BENCH_FAST, "--json", tmp_path / "bench.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "bench.json").read_text())
    assert {r["backend"] for r in report["rows"]} == {"onnxruntime"}
    assert any(n.startswith("no checkpoint (runs/model.pt does not exist here): PyTorch rows skipped")
               for n in report["notes"]), report["notes"]
    named = invoke("bench", "--onnx", tiny_onnx, "--checkpoint", tmp_path / "gone.pt", *BENCH_FAST)
    one_line_error(named, "gone.pt not found")
