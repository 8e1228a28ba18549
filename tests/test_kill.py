"""kill -9 in the middle of `train` and `export`: what is left is absent or whole, no temporary file stays
behind, and a rerun (`train --resume`, `export --force`) finishes the job.

The real CLI runs in a child process and is SIGKILLed at chosen moments. The moments are found, not
guessed: by polling the output folder (a file appears, a file changes), or by a stall hook in the child
(`DIGITSUM_TEST_STALL`, see CHILD) that freezes the process at the N-th move of a finished temporary file
onto a given name, just before or just after the rename; the test kills it there. Of the kills during
start-up, one is timed (while importing) and one waits for the output folder. Training settings are tiny
(two conv stages, 2,000 images, 3 epochs: about 1 s of training); most of the time is the start-up of the
14 child processes (torch, onnx, onnxruntime imports): about 60 s of CPU, 1-2.5 minutes on a busy 2-core
machine, hence `slow`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from digitsum_edge import checkpoint, mnist
from digitsum_edge.engine.factory import open_model
from digitsum_edge.evaluate import torch_exhaustive
from digitsum_edge.export.verify import compare

# `digitsum-edge ARGS` with a stall hook: DIGITSUM_TEST_STALL="before|after:GLOB:N" makes the N-th
# os.replace/os.rename onto a file whose name matches GLOB hang forever, before or after the move, once it
# has written the path of that file to DIGITSUM_TEST_STALL_MARK. Without the variable it is the plain CLI.
CHILD = r"""
import fnmatch, os, time

def _hook():
    spec = os.environ.get("DIGITSUM_TEST_STALL")
    if not spec:
        return
    when, pattern, nth = spec.split(":")
    mark, seen = os.environ["DIGITSUM_TEST_STALL_MARK"], [0]

    def stall(dst):
        with open(mark + ".part", "w") as f:
            f.write(os.fspath(dst))
        real_rename(mark + ".part", mark)
        while True:
            time.sleep(1)

    def wrap(real):
        def move(src, dst, *args, **kwargs):
            hit = fnmatch.fnmatchcase(os.path.basename(os.fspath(dst)), pattern)
            seen[0] += hit
            hit = hit and seen[0] == int(nth)
            if hit and when == "before":
                stall(dst)
            moved = real(src, dst, *args, **kwargs)
            if hit and when == "after":
                stall(dst)
            return moved
        return move

    real_rename = os.rename
    os.replace, os.rename = wrap(os.replace), wrap(os.rename)

_hook()
from digitsum_edge.cli import main
main()
"""

TRAIN = ("train", "--epochs", 3, "--limit", 2000, "--channels", "4,8", "--batch-size", 64, "--threads", 1,
         "--seed", 0)
EXPORT = ("--int8", "--verify-images", 500, "--calibration-images", 128, "--force")
OUTPUT_STEMS = ("model", "metrics", "curves", "errors")  # what train and export write, and their temporaries

pytestmark = pytest.mark.slow


STARTED: list[subprocess.Popen] = []  # every child, so that none outlives a failed test


@pytest.fixture(autouse=True)
def _no_child_left() -> Iterator[None]:
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Child:
    """`digitsum-edge ARGS` in a child process with a private TMPDIR; output captured in files."""

    def __init__(self, tmp_path: Path, name: str, args: tuple, stall: str | None = None):
        self.name, self.logs = name, tmp_path / "logs"
        self.logs.mkdir(exist_ok=True)
        self.mark = self.logs / f"{name}.stalled"
        env = {**os.environ, "TMPDIR": str(tmp_path / "tmpdir"), "PYTHONUNBUFFERED": "1"}
        env.pop("DIGITSUM_TEST_STALL", None)
        if stall:
            env.update(DIGITSUM_TEST_STALL=stall, DIGITSUM_TEST_STALL_MARK=str(self.mark))
        (tmp_path / "tmpdir").mkdir(exist_ok=True)
        with open(self.logs / f"{name}.out", "w") as out, open(self.logs / f"{name}.err", "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-c", CHILD, "-q", *map(str, args)], cwd=tmp_path,
                                         env=env, stdout=out, stderr=err)
        self.started = time.monotonic()
        STARTED.append(self.proc)

    def output(self) -> str:
        return "".join((self.logs / f"{self.name}.{kind}").read_text()[-2000:] for kind in ("out", "err"))

    def wait(self, timeout: float = 180) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"{self.name} ran longer than {timeout} s:\n{self.output()}")

    def kill_when(self, ready: Callable[[], bool], what: str, timeout: float = 180) -> None:
        """SIGKILL the child as soon as `ready()`; fail if it ended (or took too long) before that."""
        while not ready():
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} ended (exit {self.proc.returncode}) before {what}:\n{self.output()}")
            if time.monotonic() - self.started > timeout:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"{self.name}: no {what} within {timeout} s:\n{self.output()}")
            time.sleep(0.002)
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(30) == -signal.SIGKILL, f"{self.name} finished before it could be killed"

    def kill_after(self, seconds: float) -> None:
        self.kill_when(lambda: time.monotonic() - self.started >= seconds, f"{seconds} s")

    def kill_at_stall(self) -> str:
        """Kill the child where its stall hook froze it; returns the file it was about to move, or had moved."""
        self.kill_when(self.mark.exists, "its stall point")
        return Path(self.mark.read_text()).name


def hidden(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.startswith(".")} if folder.is_dir() else set()


def visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # renamed or swept while we looked
        return 0


def png_whole(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), f"{path} does not start like a PNG"
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82", f"{path} does not end with the IEND chunk"


def check_left(folder: Path, earlier_temps: set[str], wrote: bool, moment: str, stale: list[str],
               onnx_reference: Callable[[Path], None] | None = None) -> dict[str, Path]:
    """After a kill: every visible file whole; hidden ones only our own temporaries, and none of an earlier
    killed run once this one has written (or begun writing) a file. Leftovers are collected in `stale`."""
    files = {p.name: p for p in visible(folder)}
    for name, path in files.items():
        if name.endswith(".pt"):
            checkpoint.build_model(checkpoint.load(path), path)
        elif name.endswith(".json"):
            json.loads(path.read_text())
        elif name.endswith(".png"):
            png_whole(path)
        elif name.endswith(".onnx"):
            assert onnx_reference is not None, f"{path} written by train"
            onnx_reference(path)
        else:
            pytest.fail(f"after a kill {moment}: unexpected file {path}")
    left = hidden(folder)
    strangers = sorted(n for n in left if not n.lstrip(".").startswith(OUTPUT_STEMS))
    assert not strangers, f"after a kill {moment}: hidden files that are not ours: {strangers}"
    if wrote and left & earlier_temps:
        stale.append(f"after a kill {moment}: {sorted(left & earlier_temps)}, left by an earlier killed run, "
                     "are still there although this run had begun writing")
    return files


def epochs_done(ckpt_path: Path) -> int:
    return checkpoint.load(ckpt_path)["train_state"]["epoch"]


def test_kill_9_train_at_several_moments_then_resume(tmp_path: Path) -> None:
    out, ref = tmp_path / "run", tmp_path / "ref"
    reference = Child(tmp_path, "reference", (*TRAIN, "--out", ref))  # uninterrupted, on the other core
    ckpt = out / "model.pt"
    stale: list[str] = []  # temporaries an earlier killed run left, still there when they should be gone

    def kill(name: str, args: tuple, how: Callable[[Child], object], wrote: bool,
             stall: str | None = None) -> dict[str, Path]:
        before = hidden(out)
        how(Child(tmp_path, name, args, stall))
        return check_left(out, before, wrote, name, stale)

    # a resumed run takes its settings from the checkpoint; --threads is not one of them, and on a CPU the
    # same weights need the same thread count
    fresh, resume = (*TRAIN, "--out", out), ("train", "--resume", ckpt, "--out", out, "--threads", 1)

    # 1. during start-up: while importing, and once the output folder is made (before data and model):
    # nothing may be left, and the next fresh run starts without --force
    assert not kill("startup-0.3s", fresh, lambda c: c.kill_after(0.3), wrote=False)
    assert not kill("output-folder-made", fresh, lambda c: c.kill_when(out.is_dir, "the output folder"), wrote=False)

    # 2. frozen with the first checkpoint written to its temporary file, just before the rename
    assert not kill("first-checkpoint-before-rename", fresh, Child.kill_at_stall, True, "before:model.pt:1")

    # 3. a fresh run again (no model.pt, so no --force), killed right after model.pt first appears: in epoch 2
    files = kill("model.pt-appears", fresh, lambda c: c.kill_when(ckpt.exists, "model.pt"), wrote=True)
    assert set(files) == {"model.pt"}
    epoch = epochs_done(ckpt)
    assert epoch >= 1

    # 4. a resumed run, killed right after model.pt changes (a later epoch)
    key = stat_key(ckpt)
    files = kill("model.pt-changes", resume, lambda c: c.kill_when(lambda: stat_key(ckpt) != key, "a new model.pt"),
                 wrote=True)
    assert set(files) == {"model.pt"} and epochs_done(ckpt) > epoch

    # 5. all epochs trained, frozen before errors.png is renamed into place: model.pt is the epoch-3 checkpoint
    files = kill("errors.png-before-rename", resume, Child.kill_at_stall, True, "before:errors.png:1")
    assert set(files) == {"model.pt"} and epochs_done(ckpt) == 3
    assert not checkpoint.load(ckpt)["complete"]

    # 6. resuming a finished run writes its outputs: frozen before the final model.pt, after metrics.json
    files = kill("final-checkpoint-before-rename", resume, Child.kill_at_stall, True, "before:model.pt:1")
    assert set(files) == {"model.pt", "metrics.json", "curves.png", "errors.png"}
    assert not checkpoint.load(ckpt)["complete"]  # the complete checkpoint never got its name

    # 7. --resume finishes: exit 0, every output whole, the same weights as the uninterrupted run
    done = Child(tmp_path, "resume-to-the-end", resume)
    assert done.wait() == 0, done.output()
    assert reference.wait() == 0, reference.output()
    files = check_left(out, set(), True, "(none: the finished run)", stale)
    assert set(files) == {"model.pt", "metrics.json", "curves.png", "errors.png"}
    final, want = checkpoint.load(ckpt), checkpoint.load(ref / "model.pt")
    assert final["complete"] and final["train_state"]["epoch"] == 3
    assert final["state_dict"].keys() == want["state_dict"].keys()
    different = [k for k, v in want["state_dict"].items() if not torch.equal(final["state_dict"][k], v)]
    assert not different, f"resumed weights differ from the uninterrupted run's: {different}"
    metrics, ref_metrics = (json.loads((d / "metrics.json").read_text()) for d in (out, ref))
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    for name in ("digit_accuracy", "sum_accuracy", "sum_consistency"):
        assert metrics[name] == ref_metrics[name]
        assert [h[name] for h in metrics["history"]] == [h[name] for h in ref_metrics["history"]]

    left = hidden(out)
    if left:
        stale.append(f"after the resumed run finished: {sorted(left)}")
    assert not stale, "temporary files left behind by kill -9:\n" + "\n".join(stale)


@pytest.fixture(scope="module")
def onnx_check(tiny_checkpoint: Path) -> Callable[[Path], None]:
    """Check an .onnx file as export verifies it: the runtime's contract check, then fp32 within the
    tolerance and int8 within the accuracy budget of PyTorch on 500 test images x 10 rands."""
    model, ckpt = checkpoint.load_model(tiny_checkpoint)
    test = mnist.load("test")
    images, labels = test.images[:500], test.labels[:500]
    torch_metrics, *reference = torch_exhaustive(model, images, labels)
    fingerprint = checkpoint.weights_sha256(ckpt["state_dict"])

    def check(path: Path) -> None:
        loaded = open_model(path, provider="cpu")
        info = loaded.info
        assert info.weights_sha256 == fingerprint, f"{path} is not from this checkpoint"
        assert info.precision == ("int8" if path.name.endswith(".int8.onnx") else "fp32"), path
        result = compare(path, tuple(reference), images, labels)
        result.verdict(path, info.precision, torch_metrics).require()
        assert np.isfinite(list(result.max_abs_diff.values())).all()

    return check


def test_kill_9_export_at_several_moments_then_rerun(tiny_checkpoint: Path, onnx_check, tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    ckpt = folder / "model.pt"
    shutil.copyfile(tiny_checkpoint, ckpt)
    original = ckpt.read_bytes()
    tmpdir = tmp_path / "tmpdir"
    stale: list[str] = []
    args = ("export", ckpt, *EXPORT)

    def kill(name: str, how: Callable[[Child], object], wrote: bool, stall: str | None = None) -> set[str]:
        before = hidden(folder)
        how(Child(tmp_path, name, args, stall))
        files = check_left(folder, before, wrote, name, stale, onnx_check)
        assert ckpt.read_bytes() == original, f"export touched the checkpoint (kill {name})"
        return set(files) - {"model.pt"}

    def quantizing() -> bool:  # the int8 file's temporary is there and quantization has written a file
        work = any(tmpdir.rglob("*.onnx"))
        return any("int8" in n and (work or size(folder / n)) for n in hidden(folder))

    # 1. during start-up
    assert not kill("startup-0.3s", lambda c: c.kill_after(0.3), wrote=False)
    # 2. while int8 is being quantized (the fp32 file is held in its temporary meanwhile)
    assert not kill("int8-quantizing", lambda c: c.kill_when(quantizing, "int8 quantization"), wrote=True)
    # 3. int8 written, verified and staged under its hidden name, frozen before it is published
    assert not kill("int8-staged", Child.kill_at_stall, True, "after:.model.int8.onnx*:1")
    # 4. int8 published, frozen before model.onnx is renamed into place: model.int8.onnx alone, whole
    assert kill("fp32-before-rename", Child.kill_at_stall, True, "before:model.onnx:1") == {"model.int8.onnx"}

    # 5. a rerun with --force writes both, verified, and leaves no temporary file anywhere
    done = Child(tmp_path, "rerun", args)
    assert done.wait() == 0, done.output()
    files = check_left(folder, set(), True, "(none: the rerun)", stale, onnx_check)
    assert set(files) == {"model.pt", "model.onnx", "model.int8.onnx"}
    if hidden(folder):
        stale.append(f"after the rerun finished: {sorted(hidden(folder))} in {folder}")
    in_tmpdir = sorted(str(p.relative_to(tmpdir)) for p in tmpdir.rglob("*.onnx"))
    if in_tmpdir:
        stale.append(f"ONNX temporaries left in TMPDIR by the killed runs: {in_tmpdir}")
    assert not stale, "temporary files left behind by kill -9:\n" + "\n".join(stale)
