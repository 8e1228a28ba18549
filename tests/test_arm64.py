"""The runtime on ARM64 under QEMU emulation (a short `make arm64`): the checkout's wheel installed into the cached
bookworm arm64 userland (benchmarks/emulation.py), then against this machine on the same inputs: logits of 1,000
(test image, rand) pairs (fp32 and int8 ONNX), the reader's 28x28 images, digits and boxes frame by frame through
the Python API, and `predict`'s JSON lines. The userland is built once per machine (~/.cache/digitsum-edge/arm64,
a few minutes cold); without mmdebstrap, qemu-user-static (scripts/install-test-deps.sh installs them as root) or
the registries, the test skips with the reason printed.

Cost on this machine (AMD EPYC, 2 cores, shared), the file alone: warm 47 s (25 s the comparison, 19 s setup: the
tiny model, the wheel, its install); cold 87 s (an empty DIGITSUM_EDGE_CACHE: the userland built in the setup, 66
s), and on a fresh machine apt-get installing the two packages first.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import arm64
import emulation
from digitsum_edge.synth import conditions
from digitsum_edge.vision import settings as defaults

pytestmark = pytest.mark.install
CPU = "cortex-a72"  # Raspberry Pi 4: the older core (no dot product), which every ARM64 board's code must run on
PAIRS = 1000


def _skip(reason: str) -> None:
    print(f"skip: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def userland(tmp_path_factory: pytest.TempPathFactory) -> emulation.Userland:
    """The cached userland with this checkout's wheel installed beside it."""
    missing = [tool for tool in ("qemu-aarch64-static", "mmdebstrap") if shutil.which(tool) is None]
    if missing:
        _skip(f"{' and '.join(missing)} not installed (apt-get install qemu-user-static mmdebstrap): no ARM64 test")
    tmp = tmp_path_factory.mktemp("arm64")
    wheel = emulation.build_wheel(tmp / "wheel")
    land = emulation.Userland(emulation.requirements(wheel))
    try:
        land.ensure(wheel)
    except emulation.Unavailable as e:
        _skip(f"cannot build the ARM64 userland here: {e}")
    land.install(wheel, tmp / "project")
    return land


def test_arm64_reads_what_x86_reads(userland: emulation.Userland, tiny_run: tuple[Path, object],
                                    tmp_path: Path) -> None:
    run_dir = tiny_run[0]
    models = [str(run_dir / "model.onnx"), str(run_dir / "model.int8.onnx")]
    shots = tmp_path / "shots"
    shots.mkdir()
    for name in ("plain", "shadow", "pen", "lined", "dark", "small"):  # a few camera conditions
        for i, (frame, _) in enumerate(conditions.sample(name, 1, seed=7)):
            cv2.imwrite(str(shots / f"{name}_{i}.png"), frame)
    files = sorted(str(p) for p in shots.glob("*.png"))
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"models": models, "pairs": PAIRS, "reader_model": models[0], "rand": 3,
                                   "frames": [[f, r] for r in (defaults.STILL_ROI, defaults.ROI) for f in files]}))
    x86 = arm64.probe_native(request, tmp_path / "x86.npz")
    done = userland.python([arm64.PROBE, request, tmp_path / "arm.npz"], CPU, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    arm = dict(np.load(tmp_path / "arm.npz"))
    assert json.loads(str(arm["info"]))["machine"] == "aarch64"
    report = arm64.compare_probe(x86, arm, models, ["fp32", "int8"])
    print(json.dumps(report, indent=1))
    fp32, int8 = report["models"]
    assert fp32["pairs"] == PAIRS and fp32["digit_argmax_differs"] == fp32["sum_argmax_differs"] == 0
    assert fp32["digit_max_abs_diff"] < 1e-4 and fp32["sum_max_abs_diff"] < 1e-4
    # int8: 7-bit weights (export's reduce_range), so that x86's AVX2 u8 x s8 products cannot saturate their 16
    # bits: both machines' integer kernels then give the same sums (with full-range weights, 27 of these 2,000
    # argmaxes went the other way)
    assert int8["digit_argmax_differs"] == int8["sum_argmax_differs"] == 0, int8
    assert int8["digit_max_abs_diff"] < 1e-4 and int8["sum_max_abs_diff"] < 1e-4, int8
    frames = report["frames"]
    assert frames["found_differs"] == frames["mnist_differs"] == frames["digit_differs"] == 0, frames
    assert frames["box_differs"] == 0 and x86["found"].sum() >= len(files)  # most frames hold a digit

    command = ["predict", *files, "--model", models[0], "--rand", "3", "--provider", "cpu"]
    here = arm64.host_cli(command)
    there = userland.cli(command, CPU, timeout=600)
    assert here.returncode == 0 and there.returncode == 0, here.stderr[-2000:] + there.stderr[-2000:]
    lines = arm64.json_lines(there.stdout)
    assert len(lines) == len(files) and lines == arm64.json_lines(here.stdout)


def test_an_extra_without_arm64_wheels_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """On ARM64, `export --format litert` names the missing wheels instead of a pip command that would fail."""
    from digitsum_edge import extras
    from digitsum_edge.errors import DigitsumError

    monkeypatch.setattr(extras, "missing", lambda extra: ["litert_torch"])
    monkeypatch.setattr(extras.platform, "machine", lambda: "aarch64")
    with pytest.raises(DigitsumError) as raised:
        extras.require("litert-export", "export --format litert")
    assert str(raised.value) == ("export --format litert needs the litert-export extra, which has no wheels for "
                                 "aarch64 (litert-converter and tflite-micro have no Linux aarch64 wheels): run it "
                                 "on an x86-64 machine")
    with pytest.raises(DigitsumError, match=r'pip install "digitsum-edge\[litert\]"'):  # litert has the wheels
        extras.require("litert", "a .tflite file")
    monkeypatch.setattr(extras.platform, "machine", lambda: "x86_64")
    with pytest.raises(DigitsumError, match=r'pip install "digitsum-edge\[litert-export\]"'):
        extras.require("litert-export", "export --format litert")
