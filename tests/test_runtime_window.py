"""The live window for real, under a virtual X display (Xvfb); skipped where Xvfb is not installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from digitsum_edge.runtime.synth import pick_digits, write_video


@pytest.fixture
def xvfb_display() -> Iterator[str]:
    """Start Xvfb on a free display number (it reports the number itself) and stop it afterwards."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb); the window is tested only under it")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "800x600x24", "-nolisten",
                               "tcp"], pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as pipe:
            number = pipe.readline().strip()  # written once the server accepts connections
        if not number:
            pytest.skip("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_window_mode_plays_a_video_to_its_end(xvfb_display: str, tiny_onnx: Path, tmp_path: Path) -> None:
    video = tmp_path / "short.mp4"
    digits, labels = pick_digits(3, seed=8)
    write_video(video, digits, labels, seed=8, fps=30, hold=4)
    out = tmp_path / "window.jsonl"
    env = {**os.environ, "DISPLAY": xvfb_display, "QT_QPA_PLATFORM": "xcb"}
    env.pop("WAYLAND_DISPLAY", None)
    done = subprocess.run(
        [sys.executable, "-c", "from digitsum_edge.cli import main; main()", "live", "--window", "--source",
         str(video), "--model", str(tiny_onnx), "--rand", "4", "--jsonl", str(out)],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "| window" in done.stderr and "Traceback" not in done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 12 and all(line["rand"] == 4 for line in lines)
