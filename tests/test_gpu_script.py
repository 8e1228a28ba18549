"""benchmarks/gpu.py, the GPU check, run as it is on a CPU (--device cpu --quick), so that it cannot rot between
the runs on a GPU: every stage runs, and the JSON it writes must hold sane figures."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.py"


def _module():
    """benchmarks/gpu.py as a module, loaded afresh (benchmarks/ is on sys.path, as when it runs as a script)."""
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    """One quick CPU run of the whole script: (its JSON, its printed output, its work folder)."""
    tmp = tmp_path_factory.mktemp("gpu")
    out = tmp / "gpu.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--seeds", "2", "--json",
                           str(out), "--work", str(tmp / "work"), "--step-budget", "0.05"],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout, tmp / "work"


def test_every_stage_runs_and_the_training_figures_are_sane(quick_run) -> None:
    report, printed, work = quick_run
    assert report["schema"] == "digitsum-edge.gpu/1" and report["machine"]["device"] == "cpu"
    assert {name: stage["status"] for name, stage in report["stages"].items()} == dict.fromkeys(
        ("train", "profile", "levers", "lever_runs", "export", "infer", "live"), "ok")
    train = report["stages"]["train"]
    assert [r["seed"] for r in train["runs"]] == [0, 1] and train["skipped_seeds"] == []
    for run in train["runs"]:
        assert run["device"] == "cpu" and run["epochs"] == 1 and run["train_seconds"] > 0
        assert 0 <= run["digit_accuracy"] <= 1 and 0 <= run["sum_accuracy"] <= 1
        assert (work / f"seed{run['seed']}" / "model.pt").is_file()
    stats = train["stats"]["sum_accuracy"]
    assert stats["min"] <= stats["mean"] <= stats["max"] and train["worst_seed"] in (0, 1)
    assert "train, 2 seeds (cpu, fp32, 1 epochs)" in printed


def test_the_step_profile_and_the_levers_are_measured(quick_run) -> None:
    report, printed, _ = quick_run
    profile = report["stages"]["profile"]
    assert profile["wall_ms_per_step"] > 0 and profile["busy_share"] > 0
    assert profile["top"] and all(t["ms_per_step"] > 0 and t["name"] for t in profile["top"])
    rows = report["stages"]["levers"]["rows"]
    assert rows[0]["speed_vs_default"] == 1.0 and len(rows) == 5  # the default, then four levers
    assert {r["lever"] for r in rows[1:]} == {"no host sync per step", "data resident on the device",
                                              "bf16 autocast", "larger batch"}
    for row in rows:
        assert row["status"] == "ok" and row["ms_per_128_images"] > 0, row
    larger = report["stages"]["lever_runs"]["rows"][0]
    assert larger["case"].startswith("batch 256") and larger["verdict"] in ("keep", "drop")
    assert "lever host read per step" in printed


def test_export_parity_latency_and_live_rows(quick_run) -> None:
    report, printed, _ = quick_run
    export = report["stages"]["export"]
    assert Path(export["file"]).suffix == ".onnx" and export["simplified"] is True
    infer = report["stages"]["infer"]
    assert infer["pairs"] == 100 * 10 and infer["reference"] == "pytorch cpu fp32"
    ort = next(p for p in infer["parity"] if p["label"] == "onnxruntime cpu fp32")
    assert ort["argmax_identical"] is True and max(ort["max_abs_diff_vs_pytorch"].values()) < 1e-4
    labels = {(r["label"], r["batch"]) for r in infer["rows"]}
    assert labels == {(b, n) for b in ("pytorch cpu fp32", "onnxruntime cpu fp32") for n in (1, 64)}
    assert all(r["median_ms"] > 0 and r["images_per_s"] > 0 for r in infer["rows"])
    assert set(infer["speedup"]) == {"1", "64"} and infer["tensorrt"]["status"] == "skipped"
    live = report["stages"]["live"]
    assert live["provider"] == "cpu" and live["frames"] >= 5 and live["found"] >= 1
    assert live["prepare_ms_median"] > 0 and live["infer_ms_median"] > 0
    assert live["ms_median"] >= live["prepare_ms_median"]
    assert "live --provider cpu" in printed


def test_a_missing_package_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    gpu = _module()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    assert gpu.main(["--device", "cpu", "--json", str(tmp_path / "gpu.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "onnxscript" in err and "\n" not in err
    assert not (tmp_path / "gpu.json").exists()


def test_a_failing_stage_leaves_the_json_of_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = _module()

    def boom(check):
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore lines")

    monkeypatch.setattr(gpu, "machine", lambda check: {"device": "cpu"})
    monkeypatch.setattr(gpu, "STAGES", [("train", lambda check: {"status": "ok", "runs": []}, ()),
                                        ("export", boom, ("train",)), ("infer", boom, ("export",)),
                                        ("lever_runs", lambda check: {"status": "ok", "rows": []}, ())])
    out = tmp_path / "gpu.json"
    assert gpu.main(["--device", "cpu", "--json", str(out)]) == 1
    stages = json.loads(out.read_text())["stages"]
    assert stages["train"]["status"] == "ok" and stages["lever_runs"]["status"] == "ok"  # it needs no export
    assert stages["export"] == {"status": "failed",
                                "reason": "RuntimeError: CUDA error: an illegal memory access was encountered"}
    assert stages["infer"] == {"status": "skipped", "reason": "needs export"}


def test_the_time_guard_stops_adding_seeds_and_names_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeds that would not end within the training share of the budget are skipped and recorded."""
    gpu = _module()
    from digitsum_edge.train import loop

    def fake_run(cfg):
        time.sleep(1.0)
        history = [{"train_seconds": 0.2}]
        return SimpleNamespace(metrics={"digit_accuracy": 0.99, "sum_accuracy": 0.99, "sum_consistency": 0.99,
                                        "train_seconds": 0.2, "epochs": 1, "device": "cpu", "precision": "fp32",
                                        "history": history})

    monkeypatch.setattr(loop, "run", fake_run)
    args = gpu.parse_args(["--device", "cpu", "--seeds", "5", "--budget", "5", "--json", str(tmp_path / "g.json")])
    check = gpu.Check(args, tmp_path)
    check.report = {"stages": {}}
    result = gpu.train(check)  # it imports benchmarks/seeds.py's summary
    # half of 5 s is the training share: after the first seed's 1 s there is room for one more, not three
    assert [r["seed"] for r in result["runs"]] == [0, 1] and result["skipped_seeds"] == [2, 3, 4]
    assert "time guard" in result["skipped_reason"]


def _entry(arch: int, payload: bytes) -> bytes:
    """A fat-binary entry: a 64-byte header (kind 2: cubin, padded and compressed sizes, arch) and its payload."""
    header = struct.pack("<HHIQIIHHI", 2, 257, 64, len(payload), len(payload), 0, 8, 1, arch)
    return header + bytes(64 - len(header)) + payload


def _container(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


def test_pruning_keeps_the_hopper_entries_in_place_and_leaves_other_containers(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """scripts/prune_fatbin.py on a synthetic fat binary: each container that has sm_90 keeps only it, at the
    container's start and with the container's new size; a container without sm_90 is left byte for byte."""
    import prune_fatbin
    hopper, blackwell = _entry(90, b"H" * 24), _entry(120, b"B" * 40)
    first = _container(_entry(75, b"T" * 32), hopper, blackwell)
    second = _container(blackwell)
    lib = tmp_path / "lib.so"
    lib.write_bytes(first + bytes(8) + second)  # alignment padding between the containers
    monkeypatch.setattr(prune_fatbin, "fatbin_section", lambda path: (0, path.stat().st_size))
    seen = prune_fatbin.prune(lib, keep=90)
    data = lib.read_bytes()
    assert len(data) == len(first) + 8 + len(second)  # nothing moves
    assert data[:len(first)] == _container(hopper)[:16 + len(hopper)] + bytes(len(first) - 16 - len(hopper))
    assert data[len(first) + 8:] == second
    assert seen == {("kept", 90): len(hopper), ("dropped", 75): 96, ("dropped", 120): len(blackwell),
                    ("untouched", 120): len(blackwell)}
