"""bench: run as a user would on the tiny model with a tiny time budget; structure and parity, never speed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from digitsum_edge import checkpoint
from digitsum_edge.timing import measure, summarize
from helpers import invoke, one_line_error

# One thread: under load from other processes, two torch threads on two cores stall for ~100 ms per call.
QUICK = ("--budget", "0.02", "--warmup", "1", "--min-runs", "2", "--eval-images", "100", "--threads", "1",
         "--no-compile", "--no-live")


@pytest.fixture(scope="module")
def run_dir(tiny_run: tuple[Path, object]) -> Path:
    """runs/ as a user has it after `train` and `export --int8 --fp16` (the session's one export)."""
    return tiny_run[0]


@pytest.fixture(scope="module")
def report(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, object, Path]:
    """One bench run finding its files from the checkpoint alone, with the live row, JSON and plot."""
    out = tmp_path_factory.mktemp("bench_out")
    result = invoke("bench", "--checkpoint", run_dir / "model.pt", "--batch-sizes", "1,8", "--budget", "0.05",
                    "--eval-images", "300", "--no-compile", "--live-frames", "20",
                    "--json", out / "bench.json", "--plot", out / "bench.png")
    assert result.exit_code == 0, result.output
    return json.loads((out / "bench.json").read_text()), result, out


def test_json_holds_header_rows_for_every_backend_and_batch(report) -> None:
    data, _, _ = report
    header = data["header"]
    assert header["machine"]["cpu"] and header["machine"]["cores"] == os.cpu_count()
    assert 0 <= header["machine"]["other_processes_cpu_share"] <= 1  # what else ran during the timings
    assert {"torch", "onnxruntime", "onnx", "numpy", "digitsum_edge"} <= set(header["versions"])
    assert header["model"]["params"] > 0 and header["model"]["macs"] > 0
    assert set(header["model"]["files"]) == {"checkpoint", "onnx", "int8"}  # int8 found beside model.onnx
    rows = {(r["backend"], r["precision"], r["batch"]): r for r in data["rows"]}
    assert set(rows) == {(b, p, n) for b, p in (("pytorch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8"))
                         for n in (1, 8)}
    for (_, _, batch), row in rows.items():
        assert row["status"] == "ok" and row["device"] == "cpu"
        assert row["threads"] == (1 if batch == 1 else os.cpu_count())  # same for every backend
        assert row["runs"] >= 10 and 0 < row["median_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert row["images_per_s"] == pytest.approx(batch / row["median_ms"] * 1e3)
        assert 0.5 < row["digit_accuracy"] <= 1 and 0.5 < row["sum_accuracy"] <= 1
    speedup = data["speedup"]["by_device"]["cpu"]
    assert set(speedup) == {"1", "8"} and "targets" not in data  # measurements, no project targets
    for batch, entry in speedup.items():  # the ratio of the two rows' medians, same threads
        torch_row, ort_row = rows["pytorch", "fp32", int(batch)], rows["onnxruntime", "fp32", int(batch)]
        assert entry["speedup"] == pytest.approx(torch_row["median_ms"] / ort_row["median_ms"])
        assert entry["threads"] == ort_row["threads"] == torch_row["threads"]


def test_fp32_parity_is_exact_and_int8_is_close(report) -> None:
    data, _, _ = report
    parity = {(p["backend"], p["precision"]): p for p in data["parity"]}
    assert set(parity) == {("pytorch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")}
    fp32 = parity["onnxruntime", "fp32"]
    assert fp32["pairs"] == 3000
    assert fp32["argmax_agreement"] == {"digit_logits": 1.0, "sum_logits": 1.0}
    assert max(fp32["max_abs_diff"].values()) < 1e-4 and fp32["pass"]
    assert fp32["digit_accuracy"] == parity["pytorch", "fp32"]["digit_accuracy"]
    int8 = parity["onnxruntime", "int8"]
    assert abs(int8["digit_accuracy"] - fp32["digit_accuracy"]) < 0.02
    assert min(int8["argmax_agreement"].values()) > 0.95


def test_terminal_table_live_row_and_plot(report) -> None:
    data, result, out = report
    table = result.stdout
    assert "median ms" in table and "images/s" in table and "accuracy parity on 3,000 pairs" in table
    assert table.strip().splitlines()[-1].startswith("ONNX Runtime fp32 over PyTorch eager, same threads: CPU: ")
    live = data["live"]
    assert live["status"] == "ok" and live["frames"] == 20 and live["threads"] == 1 and live["median_ms"] > 0
    assert live["digit_accuracy"] >= 0.6 and live["no_digit"] <= 0.2  # the tiny model reads synthetic frames
    assert (out / "bench.png").read_bytes()[:4] == b"\x89PNG"
    from digitsum_edge.bench.report import write_plot

    write_plot(json.loads((out / "bench.json").read_text()), out / "again.png")  # plots come from the JSON
    assert (out / "again.png").stat().st_size > 10_000


def test_min_accuracy_floor_fails_with_one_line(run_dir: Path, tmp_path: Path) -> None:
    result = invoke("bench", "--checkpoint", run_dir / "model.pt", "--batch-sizes", "1", *QUICK,
                    "--min-accuracy", "0.9999", "--json", tmp_path / "b.json")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: below --min-accuracy 99.99%: ") and "onnxruntime cpu fp32 digit" in last
    assert json.loads((tmp_path / "b.json").read_text())["below_min_accuracy"]  # the report is still written
    ok = invoke("bench", "--checkpoint", run_dir / "model.pt", "--batch-sizes", "1", *QUICK, "--min-accuracy", "0.5")
    assert ok.exit_code == 0, ok.output


def test_checkpoint_and_onnx_from_different_models(run_dir: Path, tmp_path: Path) -> None:
    model, ckpt = checkpoint.load_model(run_dir / "model.pt")
    with torch.no_grad():
        model.reader.classifier.bias.add_(0.01)
    checkpoint.save(tmp_path / "other.pt", model, train_config=ckpt["train_config"], metrics=ckpt["metrics"])
    result = invoke("bench", "--checkpoint", tmp_path / "other.pt", "--onnx", run_dir / "model.onnx", *QUICK)
    one_line_error(result, "different models", "other.pt", "model.onnx")


def test_wrong_precision_for_the_option(run_dir: Path) -> None:
    result = invoke("bench", "--checkpoint", run_dir / "model.pt", "--onnx", run_dir / "model.int8.onnx", *QUICK)
    one_line_error(result, "model.int8.onnx holds an int8 model; --onnx takes an fp32 file")


def test_torch_compile_failure_is_a_skipped_row(run_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from digitsum_edge.bench.backends import TorchCompiled

    def no_compiler(self, image, rand):
        raise RuntimeError("InductorError: no working C++ compiler\nmore detail")

    monkeypatch.setattr(TorchCompiled, "_forward", no_compiler)
    args = [a for a in QUICK if a != "--no-compile"]
    result = invoke("bench", "--checkpoint", run_dir / "model.pt", "--batch-sizes", "1", *args,
                    "--json", tmp_path / "b.json")
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    skipped = [r for r in rows if r["backend"] == "torch.compile"]
    assert len(skipped) == 1 and skipped[0]["status"] == "skipped"
    assert skipped[0]["reason"] == "InductorError: no working C++ compiler"
    assert "torch.compile   cpu    fp32  skipped: InductorError" in result.stdout


@pytest.mark.parametrize("args, fragments", [
    (("--providers", "tpu"), ("unknown provider 'tpu'", "auto, cpu, cuda or cpu,cuda")),
    (("--batch-sizes", "0,8"), ("--batch-sizes", "positive batch sizes")),
    (("--batch-sizes", "1,x"), ("--batch-sizes", "'1,x'")),
    (("--threads", "0"), ("--threads",)),
    (("--min-accuracy", "1.5"), ("--min-accuracy",)),
])
def test_bad_options_are_one_line(run_dir: Path, args: tuple[str, ...], fragments: tuple[str, ...]) -> None:
    one_line_error(invoke("bench", "--checkpoint", run_dir / "model.pt", *QUICK, *args), *fragments)


def test_cuda_provider_that_is_not_usable(run_dir: Path) -> None:
    from digitsum_edge.engine.onnx_runtime import cuda_usable

    if cuda_usable():
        pytest.skip("CUDA is usable here")
    result = invoke("bench", "--checkpoint", run_dir / "model.pt", "--providers", "cuda", *QUICK)
    one_line_error(result, "--providers cuda", "not usable")


def test_missing_files_are_one_line(run_dir: Path, tmp_path: Path) -> None:
    one_line_error(invoke("bench", "--checkpoint", tmp_path / "nope.pt", *QUICK), "checkpoint", "nope.pt not found")
    shutil.copy(run_dir / "model.pt", tmp_path / "alone.pt")
    one_line_error(invoke("bench", "--checkpoint", tmp_path / "alone.pt", *QUICK),
                    "alone.onnx not found", "digitsum-edge export")
    one_line_error(invoke("bench", "--checkpoint", run_dir / "model.pt", "--int8", tmp_path / "q.onnx", *QUICK),
                    "q.onnx not found")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    one_line_error(invoke("bench", "--checkpoint", run_dir / "model.pt", "--onnx", tmp_path / "bad.onnx", *QUICK),
                    "bad.onnx")


def test_timer_warms_up_then_times_until_the_budget() -> None:
    calls = []
    timing = measure(lambda: calls.append(1), batch=4, budget=0.01, warmup=3, min_runs=5)
    assert timing.warmup == 3 and timing.runs >= 5 and len(calls) == timing.runs + 3
    slow = measure(lambda: None, batch=1, budget=0.0, warmup=0, min_runs=7)
    assert slow.runs == 7  # at least min_runs even when the budget is spent
    stats = summarize([0.001] * 98 + [0.002, 0.010], batch=10)
    assert stats.median_ms == pytest.approx(1.0) and stats.p99_ms > stats.p90_ms == pytest.approx(1.0)
    assert stats.images_per_s == pytest.approx(10_000)


def test_bench_judges_with_exports_verdict_and_tolerance(run_dir: Path, tmp_path: Path) -> None:
    """--tolerance is export's: a tolerance below the fp32 file's real difference fails it, with export's words."""
    strict = invoke("bench", "--checkpoint", run_dir / "model.pt", "--batch-sizes", "1", *QUICK,
                    "--tolerance", "1e-12", "--json", tmp_path / "strict.json")
    assert strict.exit_code == 0, strict.output  # the verdict is reported, not an exit status
    data = json.loads((tmp_path / "strict.json").read_text())
    assert data["config"]["tolerance"] == 1e-12
    parity = {(p["backend"], p["precision"]): p for p in data["parity"]}
    fp32 = parity["onnxruntime", "fp32"]
    assert max(fp32["max_abs_diff"].values()) > 1e-12 and not fp32["pass"]
    assert "over the tolerance 1e-12" in fp32["check"] and "FAIL: largest logit difference" in strict.stdout
    assert parity["pytorch", "fp32"]["pass"]  # the reference itself differs by 0
    loose = invoke("bench", "--checkpoint", run_dir / "model.pt", "--batch-sizes", "1", *QUICK,
                   "--tolerance", str(max(fp32["max_abs_diff"].values())), "--json", tmp_path / "loose.json")
    assert loose.exit_code == 0, loose.output
    at = {(p["backend"], p["precision"]): p for p in json.loads((tmp_path / "loose.json").read_text())["parity"]}
    assert at["onnxruntime", "fp32"]["pass"]  # exactly at the tolerance passes, as in export


def test_run_returns_a_result_whose_dict_is_the_json(run_dir: Path, tmp_path: Path) -> None:
    from digitsum_edge.bench.config import BenchConfig
    from digitsum_edge.bench.run import BenchResult, run

    result = run(BenchConfig(checkpoint=str(run_dir / "model.pt"), batch_sizes=(1,), budget=0.02, warmup=1,
                             min_runs=2, eval_images=20, threads=1, compile=False, live=False,
                             json=str(tmp_path / "b.json")))
    assert isinstance(result, BenchResult) and result.below_min_accuracy == []
    assert json.loads((tmp_path / "b.json").read_text()) == json.loads(json.dumps(result.to_dict()))
    assert list(result.to_dict())[:3] == ["schema", "config", "header"]


def test_pytorch_cuda_rows_are_full_fp32() -> None:
    """cuDNN's default TF32 convolutions move logits by ~1e-3, over the fp32 tolerance each row is checked against:
    a PyTorch CUDA backend turns TF32 off (a stand-in model, so that this runs without a GPU)."""
    import torch

    from digitsum_edge.bench.backends import TorchEager

    class Placed:
        def to(self, device):
            self.device = device
            return self

        def eval(self):
            return self

    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        TorchEager(Placed(), "cpu", Path("model.pt"))
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32  # the CPU leaves them
        assert TorchEager(Placed(), "cuda", Path("model.pt")).model.device == "cuda"
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
