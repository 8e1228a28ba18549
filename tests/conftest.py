"""Shared fixtures: one tiny real training run and its exports, made once per test run (once for all the
pytest-xdist workers of `make test`, which runs each file on one worker: a module's own server, venv or export is
made once, and its tests run in their order)."""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

# Markers by test module, so that a developer can run a quick subset (`make test-quick`); CI runs them all.
MODULE_MARKS = {
    "test_serve": ("serve",),  # starts `digitsum-edge serve` (Ray) once per module
    "test_serve_page": ("serve", "browser"),  # and drives headless Chromium
    "test_serve_ingress": ("serve",),
    "test_runtime_window": ("display",),  # a real window under Xvfb
    "test_runtime_install": ("install",),  # builds the wheel, installs it into a fresh venv
}


# The longest files first, longest first (`make test` keeps this order: --no-loadscope-reorder). With --dist loadfile a
# file runs whole on one worker, and the workers take files in order: a long file taken last would leave the other
# worker idle until it ends. The first needs no tiny model for its first seconds (it builds the wheel) while the
# second trains it; the rest of the files follow in their usual order.
LONGEST_FIRST = ("test_runtime_install", "test_serve", "test_arm64", "test_bad_input", "test_serve_page",
                 "test_web_parity", "test_gpu_script", "test_serve_abuse", "test_train", "test_export", "test_web",
                 "test_bench", "test_onnx_contract", "test_camera_conditions")


def _module(item: pytest.Item) -> str:
    return item.module.__name__.rsplit(".", 1)[-1] if item.module else ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = _module(item)
        marks = MODULE_MARKS.get(module) or next((m for name, m in MODULE_MARKS.items()
                                                  if module.startswith(name + "_")), ())
        for mark in marks:
            item.add_marker(mark)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_module(item), len(rank)))  # stable: each file's tests keep their order


def once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], T]) -> T:
    """`make(folder)` once per test run: alone, in a new temporary folder; under pytest-xdist, the first worker to
    ask makes it in the run's shared folder while the others wait for it, then all read its pickled result."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return make(factory.mktemp(name))
    shared = factory.getbasetemp().parent  # pytest-N/, the parent of every worker's own popen-gwK/
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also when make() fails
        made = shared / f"{name}.pickle"  # beside the folder: tests list the folder's files
        if made.exists():
            return pickle.loads(made.read_bytes())
        folder = shared / name
        shutil.rmtree(folder, ignore_errors=True)  # what a worker that failed to make it left behind
        folder.mkdir()
        value = make(folder)
        made.write_bytes(pickle.dumps(value))
        return value


# ~3 s: evaluated on the first 2,000 test images (20,000 pairs) after each epoch
TINY = {"epochs": 3, "limit": 4000, "channels": (8, 16, 32), "batch_size": 32, "seed": 0, "threads": 1,
        "eval_images": 2000}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/model.pt of a narrow network trained on 4,000 MNIST images (about 95 % test accuracy)."""
    from digitsum_edge.train.config import TrainConfig
    from digitsum_edge.train.loop import run

    return once(tmp_path_factory, "tiny_train", lambda out: run(TrainConfig(out=str(out), **TINY)).checkpoint)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported, simplified and verified: model.onnx (fp32, dynamic batch)."""
    from digitsum_edge.export.config import ExportConfig
    from digitsum_edge.export.pipeline import run

    def export(out: Path) -> Path:
        return run(ExportConfig(checkpoint=str(tiny_checkpoint), out=str(out / "model.onnx"),
                                verify_images=500)).files[0].path

    return once(tmp_path_factory, "tiny_onnx", export)


@pytest.fixture(scope="session")
def tiny_run(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """runs/ as a user has it after `train` and `export --int8 --fp16`: model.pt, model.onnx, model.int8.onnx and
    model.fp16.onnx, exported once for the export and bench tests; returns the folder and the ExportResult."""
    from digitsum_edge.export.config import ExportConfig
    from digitsum_edge.export.pipeline import run

    def export(out: Path) -> tuple[Path, object]:
        shutil.copy(tiny_checkpoint, out / "model.pt")
        return out, run(ExportConfig(checkpoint=str(out / "model.pt"), int8=True, fp16=True, verify_images=300,
                                     calibration_images=128))

    return once(tmp_path_factory, "tiny_run", export)


@pytest.fixture(scope="session")
def tiny_litert_cli(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """`digitsum-edge export runs/model.pt --format litert-int8 --json runs/export.json` run once (the one LiteRT
    conversion of a test run): the folder, the exit status and the output; skipped where the litert-export extra
    cannot install."""
    for module in ("litert_torch", "ai_edge_litert", "ai_edge_quantizer", "tflite_micro"):
        pytest.importorskip(module, reason="the litert-export extra is not installed")
    from helpers import invoke

    def export(out: Path) -> tuple[Path, int, str]:
        shutil.copy(tiny_checkpoint, out / "model.pt")
        result = invoke("export", out / "model.pt", "--format", "litert-int8", "--verify-images", "500",
                        "--calibration-images", "200", "--json", out / "export.json")
        return out, result.exit_code, result.output

    return once(tmp_path_factory, "tiny_litert", export)


@pytest.fixture(scope="session")
def tiny_litert(tiny_litert_cli: tuple[Path, int, str]) -> Path:
    """A run folder after `export model.pt --format litert --int8`: model.tflite (fp32), model.int8.tflite,
    model_data.cc/.h and export.json."""
    out, exit_code, output = tiny_litert_cli
    assert exit_code == 0, output
    return out
