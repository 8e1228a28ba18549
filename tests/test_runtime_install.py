"""The runtime-only install: build the wheel, install it without extras into a fresh venv, read digits there.

The packages come through pip's own configuration (the local mirror first), so this takes seconds; the wheel is
built once, and the litert extra is added to the base venv after the base-only tests (pip resolves it on top, as
in a fresh venv); a machine without `venv` skips with the reason printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from digitsum_edge.synth.frames import pick_digits, write_images, write_video
from newcomer_helpers import paper_digit, write

ROOT = Path(__file__).resolve().parents[1]
# The fresh venvs see only what is installed in them: a PYTHONPATH pointing at this checkout's src/ (and the
# digitsum_edge.egg-info that building the wheel leaves there) would make pip skip the wheel as installed.
VENV_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _run(*args: object, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False,
                          **kwargs)


class Installs:
    """The wheel of this checkout, built once, and the venvs installed from it: a fresh venv with its base
    dependencies only, and the same with the litert extra added (pip resolves the extra's packages on top)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                     tmp / "wheels", ROOT)
        assert built.returncode == 0, built.stderr
        self.wheel = next((tmp / "wheels").glob("digitsum_edge-*.whl"))
        self.venvs = 0
        self.base: Path | None = None  # a venv with the wheel alone, while it holds no extra
        self.litert: Path | None = None

    def install(self, bin_dir: Path, extra: str = "") -> subprocess.CompletedProcess:
        """pip install WHEEL[extra] into the venv at bin_dir (this pip, aimed at that venv's Python)."""
        return _run(sys.executable, "-m", "pip", "--python", bin_dir / "python", "install", "-q",
                    f"{self.wheel}{extra}", env=VENV_ENV)

    def fresh(self) -> Path:
        """A new empty venv (no pip of its own: this pip installs into it, seconds sooner); its bin folder."""
        self.venvs += 1
        try:
            venv.EnvBuilder(with_pip=False).create(self.tmp / f"venv{self.venvs}")
        except Exception as e:  # no venv module on this Python
            pytest.skip(f"cannot create a venv here: {e}")
        return self.tmp / f"venv{self.venvs}" / "bin"

    def runtime(self) -> Path:
        """The venv holding the wheel and its base dependencies only (a new one if the last got an extra)."""
        if self.base is None:
            bin_dir = self.fresh()
            installed = self.install(bin_dir)
            assert installed.returncode == 0, installed.stderr[-2000:]
            self.base = bin_dir
        return self.base

    def with_litert(self) -> Path:
        """A venv holding the wheel and its litert extra only: the base venv with the extra added."""
        if self.litert is None:
            bin_dir = self.runtime()
            self.base = None  # it holds an extra now: a later base-only test gets a venv of its own
            installed = self.install(bin_dir, "[litert]")
            if installed.returncode != 0 and "ai-edge-litert" in installed.stderr:  # no wheel for this platform
                print(f"skip: ai-edge-litert cannot install here: {installed.stderr.strip().splitlines()[-1]}")
                pytest.skip("ai-edge-litert cannot install on this platform")
            assert installed.returncode == 0, installed.stderr[-2000:]
            self.litert = bin_dir
        return self.litert


@pytest.fixture(scope="module")
def installs(tmp_path_factory: pytest.TempPathFactory) -> Installs:
    return Installs(tmp_path_factory.mktemp("runtime_install"))


@pytest.fixture
def runtime_venv(installs: Installs) -> Path:
    """A fresh venv holding the wheel of this checkout and its base dependencies only; its bin folder."""
    return installs.runtime()


def _cli(bin_dir: Path, *args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return _run(bin_dir / "digitsum-edge", *args, timeout=120, cwd=cwd, env=VENV_ENV)


def test_the_wheel_holds_no_training_stack(runtime_venv: Path) -> None:
    probe = ("import importlib.util as u, json; "
             "print(json.dumps({m: u.find_spec(m) is not None for m in "
             "['torch', 'onnx', 'onnxsim', 'matplotlib', 'tqdm', 'ai_edge_litert', 'onnxruntime', 'cv2', 'numpy', "
             "'click']}))")
    found = json.loads(_run(runtime_venv / "python", "-c", probe, env=VENV_ENV).stdout)
    assert found == {"torch": False, "onnx": False, "onnxsim": False, "matplotlib": False, "tqdm": False,
                     "ai_edge_litert": False, "onnxruntime": True, "cv2": True, "numpy": True, "click": True}


@pytest.mark.parametrize("command", ["train", "export"])
def test_training_commands_name_the_extra(runtime_venv: Path, command: str, tmp_path: Path) -> None:
    args = [command, *(["model.pt"] if command == "export" else [])]
    done = _cli(runtime_venv, *args, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f'error: {command} needs the train extra: pip install "digitsum-edge[train]"'
    assert list(tmp_path.iterdir()) == []


def test_predict_reads_what_the_full_install_reads(runtime_venv: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    digits, labels = pick_digits(12, seed=5)
    write_images(tmp_path / "shots", digits, labels, seed=5)
    readings = _same_readings(runtime_venv, "predict", tmp_path / "shots", "--model", tiny_onnx, "--rand", "6",
                              "--provider", "cpu")
    assert len(readings) == 12
    read = [r["digit"] for r in readings]
    assert sum(d == t for d, t in zip(read, labels, strict=True)) >= 9  # the tiny model reads most frames


def test_predict_reads_a_photo_with_the_model_in_the_wheel(runtime_venv: Path, tmp_path: Path) -> None:
    photo, label = paper_digit(3)
    write(tmp_path / "photo.jpg", photo)
    done = _cli(runtime_venv, "predict", "photo.jpg", "--rand", "2", cwd=tmp_path)  # no --model, no runs/
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout)
    assert (line["digit"], line["sum"]) == (label, label + 2)
    assert "note: model: the one built into digitsum-edge" in done.stderr and "site-packages" in done.stderr


def _same_readings(bin_dir: Path, *args: object) -> list[dict]:
    """The JSON lines of a command in the venv at `bin_dir`, which must equal the full install's (times aside)."""
    here = _cli(bin_dir, *args)
    full = _run(sys.executable, "-c", "from digitsum_edge.cli import main; main()", *args)
    assert here.returncode == 0 and full.returncode == 0, here.stderr + full.stderr

    def readings(out: str) -> list[dict]:
        return [{k: v for k, v in json.loads(line).items() if not k.endswith("ms")} for line in out.splitlines()]

    assert readings(here.stdout) == readings(full.stdout)
    return readings(here.stdout)


def test_live_headless_on_a_video(runtime_venv: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    digits, labels = pick_digits(4, seed=2)
    video = tmp_path / "clip.mp4"
    write_video(video, digits, labels, seed=2, hold=3)
    done = _cli(runtime_venv, "live", "--source", video, "--model", tiny_onnx, "--rand", "3", "--no-window",
                "--jsonl", tmp_path / "live.jsonl", "--save-video", tmp_path / "live.avi")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and all(line["rand"] == 3 for line in lines)
    found = [line for line in lines if line["found"]]
    assert len(found) >= 9 and all(line["sum"] == line["digit"] + 3 for line in found)
    assert (tmp_path / "live.avi").stat().st_size > 0


def test_bench_without_torch_runs_onnx_runtime_alone(runtime_venv: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    done = _cli(runtime_venv, "bench", "--onnx", tiny_onnx, "--checkpoint", tmp_path / "absent.pt",
                "--batch-sizes", "1,4", "--budget", "0.02", "--warmup", "1", "--min-runs", "2",
                "--eval-images", "50", "--live-frames", "5", "--json", tmp_path / "bench.json")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    assert {r["backend"] for r in report["rows"]} == {"onnxruntime"}
    assert report["header"]["versions"]["torch"] is None
    assert any("PyTorch is not installed" in note for note in report["notes"])
    assert [p["label"] for p in report["parity"]] == ["onnxruntime cpu fp32"] and report["parity"][0]["pass"]
    assert report["live"]["status"] == "ok"
    plot = _cli(runtime_venv, "bench", "--onnx", tiny_onnx, "--plot", tmp_path / "b.png")
    assert plot.returncode == 1 and plot.stderr.strip().endswith('pip install "digitsum-edge[train]"')


def test_api_in_the_runtime_install(runtime_venv: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    import numpy as np

    import digitsum_edge
    from digitsum_edge import mnist

    images, rand = mnist.load("test").images[:64], np.arange(64) % 10
    np.save(tmp_path / "images.npy", images)
    code = ("import sys, json, numpy as np, digitsum_edge as d; r = d.load(sys.argv[1], provider='cpu'); "
            "p = r.predict(np.load(sys.argv[2]), rand=np.arange(64) % 10); assert 'torch' not in sys.modules; "
            "print(json.dumps([p.digits.tolist(), p.sums.tolist()]))")
    done = _run(runtime_venv / "python", "-c", code, tiny_onnx, tmp_path / "images.npy", env=VENV_ENV)
    assert done.returncode == 0, done.stderr
    here = digitsum_edge.load(tiny_onnx, provider="cpu").predict(images, rand)
    assert json.loads(done.stdout) == [here.digits.tolist(), here.sums.tolist()]


def test_a_tflite_without_the_litert_extra_names_it(runtime_venv: Path, tiny_litert: Path, tmp_path: Path) -> None:
    digits, labels = pick_digits(2, seed=1)
    write_images(tmp_path / "shots", digits, labels, seed=1)
    done = _cli(runtime_venv, "predict", tmp_path / "shots", "--model", tiny_litert / "model.tflite",
                "--provider", "cpu")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == ('error: model.tflite is a LiteRT model: it needs the litert extra: '
                                                    'pip install "digitsum-edge[litert]"')


@pytest.fixture
def litert_venv(installs: Installs) -> Path:
    """A venv with the wheel and its litert extra only (ai-edge-litert): its bin folder."""
    return installs.with_litert()


def test_the_litert_extra_reads_tflite_files_without_torch(litert_venv: Path, tiny_litert: Path, tiny_onnx: Path,
                                                             tmp_path: Path) -> None:
    probe = ("import importlib.util as u, json; "
             "print(json.dumps({m: u.find_spec(m) is not None for m in ['torch', 'onnx', 'litert_torch', "
             "'tflite_micro', 'ai_edge_litert']}))")
    assert json.loads(_run(litert_venv / "python", "-c", probe, env=VENV_ENV).stdout) == {
        "torch": False, "onnx": False, "litert_torch": False, "tflite_micro": False, "ai_edge_litert": True}
    digits, labels = pick_digits(8, seed=3)
    write_images(tmp_path / "shots", digits, labels, seed=3)
    assert len(_same_readings(litert_venv, "predict", tmp_path / "shots", "--model", tiny_litert / "model.tflite",
                              "--rand", "5", "--provider", "cpu")) == 8
    done = _cli(litert_venv, "bench", "--onnx", tiny_onnx, "--litert", tiny_litert / "model.tflite", "--litert-int8",
                tiny_litert / "model.int8.tflite", "--checkpoint", tmp_path / "absent.pt", "--batch-sizes", "1",
                "--budget", "0.02", "--warmup", "1", "--min-runs", "2", "--eval-images", "20", "--no-live",
                "--json", tmp_path / "bench.json")
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert {(r["backend"], r["precision"], r["status"]) for r in rows} == {
        ("onnxruntime", "fp32", "ok"), ("litert", "fp32", "ok"), ("litert", "int8", "ok"),
        ("tflite-micro", "int8", "skipped")}
    assert next(r for r in rows if r["backend"] == "tflite-micro")["reason"].endswith('"digitsum-edge[litert-export]"')
