"""Shared fixtures: one tiny real training run and its ONNX export, made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

# Markers by test module, so that a developer can run a quick subset (`make test-quick`); CI runs them all.
MODULE_MARKS = {
    "test_serve": ("serve",),  # starts `digitsum-edge serve` (Ray) once per module
    "test_serve_page": ("serve", "browser"),  # and drives headless Chromium
    "test_runtime_window": ("display",),  # a real window under Xvfb
    "test_runtime_install": ("install",),  # builds the wheel, installs it into a fresh venv
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        marks = MODULE_MARKS.get(module) or next((m for name, m in MODULE_MARKS.items()
                                                  if module.startswith(name + "_")), ())
        for mark in marks:
            item.add_marker(mark)

# ~3 s: evaluated on the first 2,000 test images (20,000 pairs) after each epoch
TINY = {"epochs": 3, "limit": 4000, "channels": (8, 16, 32), "batch_size": 32, "seed": 0, "threads": 1,
        "eval_images": 2000}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/model.pt of a narrow network trained on 4,000 MNIST images (about 95 % test accuracy)."""
    from digitsum_edge.train.config import TrainConfig
    from digitsum_edge.train.loop import run

    out = tmp_path_factory.mktemp("tiny_run")
    return run(TrainConfig(out=str(out), **TINY)).checkpoint


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported, simplified and verified: model.onnx (fp32, dynamic batch)."""
    from digitsum_edge.export.config import ExportConfig
    from digitsum_edge.export.pipeline import run

    out = tmp_path_factory.mktemp("tiny_onnx") / "model.onnx"
    return run(ExportConfig(checkpoint=str(tiny_checkpoint), out=str(out), verify_images=500)).files[0].path


@pytest.fixture(scope="session")
def tiny_run(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """runs/ as a user has it after `train` and `export --int8 --fp16`: model.pt, model.onnx, model.int8.onnx and
    model.fp16.onnx, exported once for the export and bench tests; returns the folder and the ExportResult."""
    import shutil

    from digitsum_edge.export.config import ExportConfig
    from digitsum_edge.export.pipeline import run

    out = tmp_path_factory.mktemp("tiny_run")
    shutil.copy(tiny_checkpoint, out / "model.pt")
    result = run(ExportConfig(checkpoint=str(out / "model.pt"), int8=True, fp16=True, verify_images=300,
                              calibration_images=128))
    return out, result


@pytest.fixture(scope="session")
def tiny_litert(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder after `export model.pt --format litert --int8`: model.tflite (fp32), model.int8.tflite,
    model_data.cc/.h and export.json; skipped where the litert-export extra cannot install."""
    import shutil

    for module in ("litert_torch", "ai_edge_litert", "ai_edge_quantizer", "tflite_micro"):
        pytest.importorskip(module, reason="the litert-export extra is not installed")
    from digitsum_edge.export.config import ExportConfig
    from digitsum_edge.export.pipeline import run

    out = tmp_path_factory.mktemp("tiny_litert")
    shutil.copy(tiny_checkpoint, out / "model.pt")
    run(ExportConfig(checkpoint=str(out / "model.pt"), format="litert", int8=True, verify_images=500,
                     calibration_images=200, json=str(out / "export.json")))
    return out
