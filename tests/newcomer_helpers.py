"""Pictures a newcomer would point the tool at, made by the tests: digits on paper, and files that are not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from digitsum_edge import mnist

HEIC_HEAD = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"  # the first bytes of an iPhone photo


def paper_digit(index: int, size: tuple[int, int] = (240, 200)) -> tuple[np.ndarray, int]:
    """MNIST test digit `index` as dark ink on white paper, a (H, W, 3) BGR photo of `size` (W, H); its label."""
    test = mnist.load("test")
    ink = cv2.resize(255 - test.images[index], (min(size) * 3 // 4,) * 2, interpolation=cv2.INTER_LINEAR)
    photo = np.full((size[1], size[0]), 255, np.uint8)
    y, x = (size[1] - ink.shape[0]) // 2, (size[0] - ink.shape[1]) // 2
    photo[y:y + ink.shape[0], x:x + ink.shape[1]] = ink
    return cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR), int(test.labels[index])


def write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def digits_folder(folder: Path, count: int, suffix: str = ".jpg", sizes: list[tuple[int, int]] | None = None,
                  ) -> list[int]:
    """`count` paper digits as folder/digit_1.jpg ...; their labels."""
    labels = []
    for i in range(count):
        photo, label = paper_digit(i, sizes[i % len(sizes)] if sizes else (240, 200))
        write(folder / f"digit_{i + 1}{suffix}", photo)
        labels.append(label)
    return labels


def cli(*args: object, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`digitsum-edge ARGS` in a child process, as a user's terminal runs it (stdout a pipe): what native
    libraries print on file descriptor 2 is in stderr too."""
    code = "import sys; from digitsum_edge.cli import main; sys.argv[0] = 'digitsum-edge'; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False, cwd=cwd, env={**os.environ, **(env or {})})


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def cli_on_a_terminal(*args: object, cwd: Path | None = None, stream: str = "stdout") -> tuple[int, str, str]:
    """`digitsum-edge ARGS` with `stream` (stdout or stderr) on a pseudo-terminal, as a person at a terminal runs
    it: (exit status, what the terminal showed, the other stream)."""
    import fcntl
    import pty
    import struct
    import termios

    code = "import sys; from digitsum_edge.cli import main; sys.argv[0] = 'digitsum-edge'; main()"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns (a new pty has 0)
    pipes = {"stdout": slave, "stderr": subprocess.PIPE} if stream == "stdout" else \
        {"stdout": subprocess.PIPE, "stderr": slave}
    with subprocess.Popen([sys.executable, "-c", code, *map(str, args)], text=True, cwd=cwd, **pipes) as child:
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        other = child.stderr if stream == "stdout" else child.stdout
        rest = other.read() if other else ""
        child.wait(timeout=120)
    os.close(master)
    return child.returncode, shown.decode(errors="replace").replace("\r\n", "\n"), rest
