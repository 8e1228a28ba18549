"""Training: a real short run, its artifacts, determinism, Ctrl-C + resume, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from digitsum_edge import checkpoint, mnist
from digitsum_edge.errors import DigitsumError, Interrupted
from digitsum_edge.evaluate import torch_exhaustive
from digitsum_edge.files import atomic_path
from digitsum_edge.train import loop, step
from digitsum_edge.train.config import TrainConfig

SMALL = {"epochs": 2, "limit": 512, "channels": (4, 8), "batch_size": 64, "eval_images": 500}


def test_short_real_training_beats_accuracy_floor(tiny_checkpoint: Path) -> None:
    metrics = json.loads((tiny_checkpoint.parent / "metrics.json").read_text())
    # 4,000 images, 3 epochs, 8k parameters: about 95 %; a broken loop or head stays near 10 % / 5 %
    assert metrics["digit_accuracy"] > 0.90
    assert metrics["sum_accuracy"] > 0.90
    assert metrics["sum_consistency"] > 0.95
    assert metrics["pairs"] == 2_000 * 10  # exhaustive: every evaluated test image (eval_images) with every rand
    # channels 8, 16, 32: 3x3 convs without bias + BatchNorm (2 per channel), linear 32 -> 10, sum table 100 x 19
    convs = (1 * 8 + 8 * 16 + 16 * 32) * 9 + 2 * (8 + 16 + 32)
    assert metrics["params"] == convs + 32 * 10 + 10 + 100 * 19 == 8_174
    assert metrics["macs"] > metrics["params"]
    assert metrics["device"] == "cpu" and metrics["train_seconds"] > 0
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    for name in ("curves.png", "errors.png"):
        assert (tiny_checkpoint.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checkpoint_loads_weights_only_and_rebuilds_the_same_model(tiny_checkpoint: Path) -> None:
    raw = torch.load(tiny_checkpoint, weights_only=True)
    assert raw["complete"] and raw["train_config"]["channels"] == [8, 16, 32]
    assert set(raw["versions"]) >= {"torch", "digitsum_edge"}
    model, ckpt = checkpoint.load_model(tiny_checkpoint)
    test, n = mnist.load("test"), raw["train_config"]["eval_images"]
    metrics, _, _ = torch_exhaustive(model, test.images[:n], test.labels[:n])
    assert metrics["digit_accuracy"] == ckpt["metrics"]["digit_accuracy"]
    assert metrics["sum_accuracy"] == ckpt["metrics"]["sum_accuracy"]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(path)["state_dict"]


def test_same_seed_same_weights(tmp_path: Path) -> None:
    a = loop.run(TrainConfig(out=str(tmp_path / "a"), **SMALL)).checkpoint
    b = loop.run(TrainConfig(out=str(tmp_path / "b"), **SMALL)).checkpoint
    c = loop.run(TrainConfig(out=str(tmp_path / "c"), seed=1, **SMALL)).checkpoint
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def _interrupt_on_tenth_batch(monkeypatch: pytest.MonkeyPatch):
    """Ctrl-C in the tenth batch of the next run (raised from its augmentation); returns the real function."""
    real_affine, calls = step.random_affine, []

    def interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return real_affine(*args, **kwargs)

    monkeypatch.setattr(step, "random_affine", interrupt)
    return real_affine


def test_ctrl_c_leaves_a_checkpoint_that_resume_finishes_exactly(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    straight = loop.run(TrainConfig(out=str(tmp_path / "straight"), **SMALL)).checkpoint

    real_affine = _interrupt_on_tenth_batch(monkeypatch)  # epoch 2 of 8 batches each
    with pytest.raises(Interrupted, match="--resume"):
        loop.run(TrainConfig(out=str(tmp_path / "cut"), **SMALL))
    partial = checkpoint.load(tmp_path / "cut" / "model.pt")
    assert partial["complete"] is False and partial["train_state"]["epoch"] == 1
    checkpoint.build_model(partial)  # usable as it is

    monkeypatch.setattr(step, "random_affine", real_affine)
    resumed = loop.run(TrainConfig(out=str(tmp_path / "cut"), resume=str(tmp_path / "cut" / "model.pt"))).checkpoint
    w_straight, w_resumed = _weights(straight), _weights(resumed)
    assert all(torch.equal(w_straight[k], w_resumed[k]) for k in w_straight)
    assert checkpoint.load(resumed)["complete"] is True



def test_epoch_train_figures_are_the_steps_own_summed_on_the_device(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop keeps each step's loss and hits on the device and reads them once an epoch; the history must still
    hold exactly what the steps computed, and an interrupted epoch's checkpoint what its finished steps did."""
    steps: list[tuple[float, int, int, int]] = []
    real_step = loop.train_step

    def recorded(model, optimizer, x, digit_true, rand, *args):
        loss, digit_logits, sum_logits = real_step(model, optimizer, x, digit_true, rand, *args)
        steps.append((float(loss) * len(rand), int((digit_logits.argmax(1) == digit_true).sum()),
                      int((sum_logits.argmax(1) == digit_true + rand).sum()), len(rand)))
        return loss, digit_logits, sum_logits

    monkeypatch.setattr(loop, "train_step", recorded)
    history = loop.run(TrainConfig(out=str(tmp_path / "run"), **SMALL)).metrics["history"]
    per_epoch = len(steps) // len(history)
    for epoch, h in enumerate(history):
        done = steps[epoch * per_epoch:(epoch + 1) * per_epoch]
        seen = sum(s[3] for s in done)
        assert h["train_loss"] == pytest.approx(sum(s[0] for s in done) / seen, rel=1e-9)
        assert h["train_digit_accuracy"] == sum(s[1] for s in done) / seen
        assert h["train_sum_accuracy"] == sum(s[2] for s in done) / seen

    steps.clear()
    _interrupt_on_tenth_batch(monkeypatch)  # two steps into epoch 2
    with pytest.raises(Interrupted):
        loop.run(TrainConfig(out=str(tmp_path / "cut"), **SMALL))
    state = checkpoint.load(tmp_path / "cut" / "model.pt")["train_state"]
    started = steps[per_epoch:]  # the interrupted epoch's finished steps
    assert state["batch"] == len(started) == 1 and state["seen"] == started[0][3]
    assert state["digit_correct"] == started[0][1] and state["sum_correct"] == started[0][2]
    assert state["loss_sum"] == pytest.approx(started[0][0], rel=1e-9)

def test_resume_of_a_checkpoint_from_0_2_keeps_its_layer_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """0.2 pooled after BatchNorm and ReLU and stored no pool_first; its runs must resume as they were."""
    from functools import partial

    from digitsum_edge.model import ModelConfig

    monkeypatch.setattr(loop, "ModelConfig", partial(ModelConfig, pool_first=False))
    _interrupt_on_tenth_batch(monkeypatch)
    with pytest.raises(Interrupted):
        loop.run(TrainConfig(out=str(tmp_path), **SMALL))
    monkeypatch.undo()
    path = tmp_path / "model.pt"
    old = torch.load(path, weights_only=True)
    del old["model_config"]["pool_first"]  # as 0.2 wrote it
    torch.save(old, path)
    resumed = checkpoint.load(loop.run(TrainConfig(out=str(tmp_path), resume=str(path))).checkpoint)
    assert resumed["complete"] is True and resumed["model_config"]["pool_first"] is False
    assert type(checkpoint.build_model(resumed).reader.features[1]).__name__ == "BatchNorm2d"


def test_existing_checkpoint_is_not_overwritten_without_force(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"precious")
    with pytest.raises(DigitsumError, match="exists"):
        loop.run(TrainConfig(out=str(tmp_path), **SMALL))
    assert (tmp_path / "model.pt").read_bytes() == b"precious"


def test_resume_from_a_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(DigitsumError, match="not a readable checkpoint"):
        loop.run(TrainConfig(out=str(tmp_path), resume=str(bad), **SMALL))
    assert bad.read_bytes() == b"not a checkpoint at all"


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_cuda_request_without_gpu_is_an_error_and_auto_falls_back() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(DigitsumError, match="CUDA"):
        loop.resolve_device("cuda")
    assert loop.resolve_device("auto").type == "cpu"


def test_resume_of_a_finished_run_writes_the_outputs_it_lacks(tmp_path: Path) -> None:
    """kill -9 after the last epoch's checkpoint, before metrics.json: --resume finishes the outputs."""
    done = loop.run(TrainConfig(out=str(tmp_path), **SMALL)).checkpoint
    weights = _weights(done)
    for name in ("metrics.json", "curves.png", "errors.png"):
        (tmp_path / name).unlink()
    result = loop.run(TrainConfig(out=str(tmp_path), resume=str(done)))
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"] == SMALL["epochs"]
    assert (tmp_path / "curves.png").is_file() and (tmp_path / "errors.png").is_file()
    assert result.metrics["history"] == checkpoint.load(done)["metrics"]["history"]
    assert all(torch.equal(weights[k], v) for k, v in _weights(done).items())  # nothing trained again


def test_unwritable_out_fails_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "afile").write_text("a file, not a folder")

    def no_data(*args, **kwargs):
        raise AssertionError("training data loaded before the output folder was checked")

    monkeypatch.setattr(mnist, "load", no_data)
    with pytest.raises(DigitsumError, match="cannot write"):
        loop.run(TrainConfig(out=str(tmp_path / "afile" / "runs"), **SMALL))


def test_per_batch_seed_does_not_depend_on_python_hashing() -> None:
    # the same (seed, epoch, batch) gives the same stream in every process; different batches differ
    assert torch.equal(torch.rand(4, generator=loop.seeded(0, 1, 2)), torch.rand(4, generator=loop.seeded(0, 1, 2)))
    assert not torch.equal(torch.rand(4, generator=loop.seeded(0, 1, 2)),
                           torch.rand(4, generator=loop.seeded(0, 2, 1)))
    assert loop.seeded(-1, 0).initial_seed() >= 0


def test_low_res_epochs_train_on_smaller_images_then_full_size(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[tuple[int, int]] = []  # (epoch, image side) of every step
    real_step = loop.train_step

    def spy(model, optimizer, x, *args, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append((len(loop_runs[-1].state.history), x.shape[-1]))
        return real_step(model, optimizer, x, *args, **kwargs)

    loop_runs: list[loop.Run] = []
    real_build = loop.build
    monkeypatch.setattr(loop, "build", lambda *a: loop_runs.append(real_build(*a)) or loop_runs[-1])
    monkeypatch.setattr(loop, "train_step", spy)
    result = loop.run(TrainConfig(out=str(tmp_path), low_res_epochs=1, low_res=16, **SMALL))
    assert {side for epoch, side in sizes if epoch == 0} == {16}
    assert {side for epoch, side in sizes if epoch == 1} == {28}
    assert len(result.metrics["history"]) == 2 and checkpoint.load(result.checkpoint)["train_config"]["low_res"] == 16


@pytest.mark.parametrize(("flags", "cap", "isa", "auto_bf16"), [
    ("fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile", None, "AMX", True),
    ("fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile", "AVX2", "AVX2", False),
    ("fpu avx2 avx512f avx512_bf16", None, "AVX-512+BF16", False),  # bf16 without AMX is slower than fp32
    ("fpu avx2 avx512f avx512_bf16", "avx512_core", "AVX-512", False),
    ("fpu avx2 fma", None, "AVX2", False),
])
def test_cpu_isa_reads_the_flags_and_honours_a_onednn_cap(flags: str, cap: str | None, isa: str, auto_bf16: bool,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from digitsum_edge.train import device

    monkeypatch.setattr(device, "_cpu_flags", lambda: set(flags.split()))
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if cap is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert device.cpu_isa() == isa
    assert device.use_bf16("auto", torch.device("cpu")) is auto_bf16  # an AVX2 cap: fp32, as on an AVX2 CPU
    assert device.use_bf16("bf16", torch.device("cpu")) and not device.use_bf16("fp32", torch.device("cpu"))


_MMAPPED = """
import ctypes, sys
if sys.argv[1] == "keep":
    from digitsum_edge.train.device import keep_freed_memory
    if not keep_freed_memory():
        sys.exit("keep_freed_memory() did not take")

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
before = libc.mallinfo2().hblkhd
activation = libc.malloc(128 * 16 * 28 * 28 * 4)  # 6.4 MB: the largest activation of a default training step
print(libc.mallinfo2().hblkhd - before)  # bytes of it in pages of its own (mmap): returned at free, faulted again
"""


def test_kept_freed_memory_takes_activations_from_the_heap_not_from_fresh_pages() -> None:
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's malloc settings: Linux only")

    def mmapped(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", _MMAPPED, mode], capture_output=True, text=True, check=False)
        if "mallinfo2" in done.stderr:
            pytest.skip("this C library has no mallinfo2 (glibc < 2.33)")
        assert done.returncode == 0, done.stderr
        return int(done.stdout)

    size = 128 * 16 * 28 * 28 * 4
    # glibc's defaults give a fresh activation pages of its own, faulted in again every step; kept: from the heap
    assert mmapped("default") >= size
    assert mmapped("keep") < size
