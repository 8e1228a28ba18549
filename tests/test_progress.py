"""Progress bars on a terminal only: a log file gets one line per epoch, not a bar's redraws."""

from __future__ import annotations

import re
from pathlib import Path

from newcomer_helpers import cli, cli_on_a_terminal

TRAIN_FAST = ("train", "--epochs", "2", "--limit", "256", "--batch-size", "16", "--channels", "4,8", "--no-augment",
              "--device", "cpu", "--threads", "1", "--eval-images", "100")


def test_train_into_a_log_file_writes_one_line_per_epoch(tmp_path: Path) -> None:
    done = cli(*TRAIN_FAST, "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "it/s" not in done.stderr and "%|" not in done.stderr
    epochs = [line for line in done.stderr.splitlines() if re.match(r"^epoch \d/2: loss \d", line)]
    assert len(epochs) == 2, done.stderr
    assert len(done.stderr) < 2000  # a few lines, not a bar redrawn 16 times an epoch


def test_train_on_a_terminal_shows_the_bar(tmp_path: Path) -> None:
    status, shown, _ = cli_on_a_terminal(*TRAIN_FAST, "--out", tmp_path / "run", stream="stderr")
    assert status == 0, shown
    assert "%|" in shown and "epoch 1/2" in shown  # tqdm's bar, drawn on the terminal
