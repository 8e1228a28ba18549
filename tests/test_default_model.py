"""The model built into the package: the file its card describes, and what live, predict and load() use when no
model is named and ./runs/model.onnx does not exist."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

import digitsum_edge
from digitsum_edge import mnist
from digitsum_edge.engine import builtin
from digitsum_edge.engine.factory import open_model
from digitsum_edge.evaluate import backend_exhaustive
from newcomer_helpers import cli, digits_folder, json_lines


def test_the_built_in_model_is_the_file_its_card_describes() -> None:
    card = builtin.card()
    data = builtin.MODEL.read_bytes()
    assert hashlib.sha256(data).hexdigest() == card["sha256"] and len(data) == card["bytes"]
    backend = open_model(builtin.MODEL, provider="cpu", threads=1)
    assert backend.info.weights_sha256 == card["weights_sha256"] and backend.info.precision == "fp32"
    assert backend.info.model_config == card["model_config"]
    test = mnist.load("test")
    metrics, _, _ = backend_exhaustive(backend, test.images[:1000], test.labels[:1000])  # with every rand
    assert metrics["digit_accuracy"] >= 0.99 and metrics["sum_accuracy"] >= 0.99  # ~1 s; the card: all 10,000
    assert card["shipped_file"]["digit_accuracy"] >= 0.99 and card["shipped_file"]["pairs"] == 100_000
    assert card["verification"]["max_abs_diff"]["digit_logits"] <= 1e-4  # the export's fp32 verdict
    assert card["shipped_file"]["digit_accuracy"] == card["verification"]["torch_metrics"]["digit_accuracy"]


def test_predict_without_a_model_uses_the_built_in_one_and_says_so(tmp_path: Path) -> None:
    labels = digits_folder(tmp_path / "photos", 4)
    done = cli("predict", "photos", "--rand", "5", "--provider", "cpu", cwd=tmp_path)  # no runs/ here
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "built into digitsum-edge" in line]
    assert len(notes) == 1 and notes[0].startswith("note: model: the one built into digitsum-edge (the default "
                                                   "recipe, seed 0: 99.61% digits"), done.stderr
    read = json_lines(done.stdout)
    assert [r["digit"] for r in read] == labels and all(r["sum"] == r["digit"] + 5 for r in read)


def test_runs_model_onnx_in_the_folder_comes_first(tiny_onnx: Path, tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    shutil.copy(tiny_onnx, tmp_path / "runs" / "model.onnx")
    digits_folder(tmp_path / "photos", 1)
    done = cli("live", "--source", "photos", "--no-window", "--provider", "cpu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "note: model runs/model.onnx (found in this folder; --model chooses another)" in done.stderr
    assert "built into" not in done.stderr


def test_load_without_a_model_reads_with_the_built_in_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    reader = digitsum_edge.load(provider="cpu")
    assert reader.backend.path == builtin.MODEL
    test = mnist.load("test")
    prediction = reader.predict(test.images[:200], rand=np.arange(200) % 10)
    assert np.mean(prediction.digits == test.labels[:200]) >= 0.98
