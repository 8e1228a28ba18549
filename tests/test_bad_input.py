"""Bad input to every command: one `error: ...` line, a non-zero exit, no traceback, nothing touched.

One table, one row per bad input. Every row builds its own files in its own tmp_path (the working folder
too, so a default output such as runs/ would land there) and then checks, beside the one-line contract of
`helpers.one_line_error`:

- no exception escaped the CLI (the click runner swallows it; a user would see a traceback);
- no file in tmp_path was created, changed or removed: an existing output is untouched (bytes and
  mtime), a failed command leaves no output and no temporary file (`.model.*`, `.out.*` ...);
- no work started: bad input is refused before a model forward pass (training, export, benchmark),
  before a frame is read and before a synthetic frame is drawn;
- a pickle that would run code never ran it.

Every option that is not under test makes the command as small as possible, so that a command that
wrongly starts working still ends in seconds.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import pickle
import shutil
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import ExecsCode, RunsCode, invoke, one_line_error

# Options that keep a run tiny when the bad option is not one of them; the bad option comes last and wins.
TRAIN_FAST = ("--epochs", "1", "--limit", "64", "--batch-size", "32", "--channels", "4,8", "--no-augment",
              "--device", "cpu", "--threads", "1")
EXPORT_FAST = ("--verify-images", "10", "--calibration-images", "16")
LIVE_FAST = ("--no-window", "--provider", "cpu", "--threads", "1", "--max-frames", "3")
PREDICT_FAST = ("--provider", "cpu", "--threads", "1")
BENCH_FAST = ("--providers", "cpu", "--batch-sizes", "1", "--threads", "1", "--budget", "0.01", "--warmup", "0",
              "--min-runs", "1", "--no-compile", "--no-live", "--eval-images", "5")
SYNTH_FAST = ("--count", "2", "--hold", "1", "--size", "64x48")

TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"  # magic, deflate, no flags, mtime 0, no xfl, Unix




def idx(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes (magic 0x0801 / 0x0803, big-endian sizes, data)."""
    magic = {1: 0x0801, 3: 0x0803}[array.ndim]
    return magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape) + array.tobytes()


def good_mnist() -> dict[str, bytes]:
    """Four small valid IDX files: 64 training and 32 test images of random pixels, labels 0-9."""
    rng = np.random.default_rng(0)
    arrays = {TRAIN_IMAGES: rng.integers(0, 256, (64, 28, 28), np.uint8),
              TRAIN_LABELS: rng.integers(0, 10, 64, np.uint8),
              TEST_IMAGES: rng.integers(0, 256, (32, 28, 28), np.uint8),
              TEST_LABELS: rng.integers(0, 10, 32, np.uint8)}
    return {name: idx(a) for name, a in arrays.items()}


def gzip_garbage(seed: int) -> bytes:
    """A valid gzip header followed by random bytes where the deflate stream should be."""
    return GZIP_HEADER + np.random.default_rng(seed).bytes(4096)


def bad_crc(data: bytes) -> bytes:
    """A complete gzip file of `data` whose CRC-32 trailer is wrong (the deflate stream itself is fine)."""
    packed = bytearray(gzip.compress(data))
    packed[-8] ^= 0xFF
    return bytes(packed)


class Env:
    """The files one case needs, made in its tmp_path on first use."""

    def __init__(self, tmp: Path, request: pytest.FixtureRequest) -> None:
        self.tmp = tmp
        self.request = request
        self.marker = tmp / "pickle-ran-code"  # a code-running pickle would create it

    def file(self, name: str, data: bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    @functools.cached_property
    def ckpt(self) -> Path:
        """A copy of the tiny trained checkpoint: model.pt."""
        return Path(shutil.copy(self.request.getfixturevalue("tiny_checkpoint"), self.tmp / "model.pt"))

    @functools.cached_property
    def onnx(self) -> Path:
        """A copy of its verified ONNX export: model.onnx."""
        return Path(shutil.copy(self.request.getfixturevalue("tiny_onnx"), self.tmp / "model.onnx"))

    @functools.cached_property
    def afile(self) -> Path:
        """A regular file: nothing can be created 'inside' it (unlike permission bits, this stops root)."""
        return self.file("afile", b"a regular file, not a folder\n")

    @functools.cached_property
    def image(self) -> Path:
        """A readable image of a white digit-like stroke on black."""
        frame = np.zeros((28, 28), np.uint8)
        cv2.line(frame, (14, 5), (14, 22), 255, 3)
        return self.file("digit.png", cv2.imencode(".png", frame)[1].tobytes())

    def png(self, name: str = "picture.png") -> Path:
        return self.file(name, cv2.imencode(".png", np.full((8, 8), 128, np.uint8))[1].tobytes())

    def foreign_onnx(self, name: str = "foreign.onnx", props: dict[str, str] | None = None) -> Path:
        """A valid ONNX model that is not a digitsum-edge model: Y = X + X (metadata `props` if given)."""
        from onnx import TensorProto, helper, save

        graph = helper.make_graph(
            [helper.make_node("Add", ["X", "X"], ["Y"])], "not_digitsum",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
        if props:
            helper.set_model_props(model, props)
        path = self.tmp / name
        save(model, str(path))
        return path

    def restamped_onnx(self, name: str, **changes: str | None) -> Path:
        """The tiny export with metadata_props changed (a value None: the key removed; no changes: all removed)."""
        import onnx

        model = onnx.load(str(self.request.getfixturevalue("tiny_onnx")))
        props = {p.key: p.value for p in model.metadata_props}
        props = {k: v for k, v in {**props, **changes}.items() if v is not None} if changes else {}
        del model.metadata_props[:]
        onnx.helper.set_model_props(model, props)
        path = self.tmp / name
        onnx.save(model, str(path))
        return path

    def onnx_props(self) -> dict[str, str]:
        import onnx

        return {p.key: p.value for p in onnx.load(str(self.request.getfixturevalue("tiny_onnx"))).metadata_props}

    def torch_file(self, name: str, obj: object) -> Path:
        import torch

        path = self.tmp / name
        torch.save(obj, path)
        return path

    def evil_torch(self) -> Path:
        """torch.save of a checkpoint-shaped dict whose weights run `touch MARKER` when unpickled."""
        return self.torch_file("evil.pt", {"format": "digitsum-edge.checkpoint", "format_version": 1,
                                           "state_dict": RunsCode(f"touch '{self.marker}'")})

    def evil_pickle(self) -> Path:
        """A plain (not zip) pickle that writes MARKER with exec when unpickled."""
        return self.file("evil_plain.pt", pickle.dumps(ExecsCode(f"open({str(self.marker)!r}, 'w').write('ran')"),
                                                       protocol=2))

    def half(self, source: Path, name: str) -> Path:
        """The first half of `source`'s bytes."""
        data = Path(source).read_bytes()
        return self.file(name, data[: len(data) // 2])

    def mnist(self, name: str, data: bytes | None) -> Path:
        """A folder of the four IDX files with `name` replaced by `data` (None: left out; NAME.gz: instead)."""
        folder = self.tmp / "mnist"
        for good_name, good in good_mnist().items():
            if good_name != name.removesuffix(".gz"):
                self.file(f"mnist/{good_name}", good)
        if data is not None:
            self.file(f"mnist/{name}", data)
        return folder

    def existing(self, name: str, data: bytes = b"an existing output that must survive\n") -> Path:
        return self.file(name, data)


def good(name: str) -> bytes:
    return good_mnist()[name]


# ---- the commands, with small settings; `args` come last and win over the defaults -------------------------

def train(e: Env, *args: object) -> list:
    return ["train", "--out", e.tmp / "run", *TRAIN_FAST, *args]


def export(e: Env, checkpoint: object, *args: object) -> list:
    return ["export", checkpoint, "--out", e.tmp / "out.onnx", *EXPORT_FAST, *args]


def live(e: Env, *args: object, model: object = None, source: object = None) -> list:
    return ["live", "--model", model or e.onnx, "--source", source or e.image, *LIVE_FAST, *args]


def predict(e: Env, *args: object, model: object = None, images: tuple = ()) -> list:
    return ["predict", *(images or (e.image,)), "--model", model or e.onnx, *PREDICT_FAST, *args]


def bench(e: Env, *args: object, checkpoint: object = None, onnx: object = None) -> list:
    return ["bench", "--checkpoint", checkpoint or e.ckpt, "--onnx", onnx or e.onnx, *BENCH_FAST, *args]


def synth(e: Env, out: object, *args: object) -> list:
    return ["synth", out, *SYNTH_FAST, *args]


@dataclass
class Bad:
    args: list  # the command line after `digitsum-edge`
    fragments: tuple[str, ...]  # what the error line must name
    started: bool = False  # live/predict: the model is open (a `provider:` line) before the source fails


Case = Callable[[Env], Bad]


def case(build: Case, name: str):
    return pytest.param(build, id=name)


CASES = [
    # ---- train: checkpoint to resume from -----------------------------------------------------------------
    case(lambda e: Bad(train(e, "--resume", e.tmp / "missing.pt"), ("missing.pt",)), "train-resume-missing"),
    case(lambda e: Bad(train(e, "--resume", e.file("empty.pt", b"")), ("empty.pt",)), "train-resume-empty"),
    case(lambda e: Bad(train(e, "--resume", e.half(e.ckpt, "half.pt")), ("half.pt",)), "train-resume-truncated"),
    case(lambda e: Bad(train(e, "--resume", e.file("noise.pt", np.random.default_rng(1).bytes(5000))),
                       ("noise.pt",)), "train-resume-corrupt"),
    case(lambda e: Bad(train(e, "--resume", e.png("picture.pt")), ("picture.pt",)), "train-resume-png"),
    case(lambda e: Bad(train(e, "--resume", e.onnx), ("model.onnx",)), "train-resume-onnx"),
    case(lambda e: Bad(train(e, "--resume", e.torch_file("other.pt", {"weights": [1, 2, 3]})), ("other.pt",)),
         "train-resume-foreign-torch-file"),
    case(lambda e: Bad(train(e, "--resume", e.torch_file("nostate.pt", {
        "format": "digitsum-edge.checkpoint", "format_version": 1, "model_config": {}, "state_dict": {},
        "train_state": {}})), ("nostate.pt",)), "train-resume-no-training-state"),
    case(lambda e: Bad(train(e, "--resume", e.evil_torch()), ("evil.pt",)), "train-resume-pickle-runs-code"),
    case(lambda e: Bad(train(e, "--resume", e.evil_pickle()), ("evil_plain.pt",)),
         "train-resume-plain-pickle-runs-code"),
    # ---- train: MNIST folder -------------------------------------------------------------------------------
    case(lambda e: Bad(train(e, "--data-dir", e.tmp / "no_such_folder"), ("no_such_folder",)),
         "train-data-dir-missing"),
    case(lambda e: Bad(train(e, "--data-dir", e.mnist(TRAIN_LABELS, None)), (TRAIN_LABELS,)),
         "train-mnist-file-missing"),
    case(lambda e: Bad(train(e, "--data-dir", e.mnist(TEST_IMAGES, b"")), (TEST_IMAGES,)),
         "train-mnist-file-empty"),
    case(lambda e: Bad(train(e, "--data-dir", e.mnist(TRAIN_IMAGES, good(TRAIN_IMAGES)[:5000])), (TRAIN_IMAGES,)),
         "train-mnist-file-truncated"),
    case(lambda e: Bad(train(e, "--data-dir", e.mnist(TEST_LABELS, b"\x00\x00\x09\x99" + good(TEST_LABELS)[4:])),
                       (TEST_LABELS,)), "train-mnist-bad-magic"),
    case(lambda e: Bad(train(e, "--data-dir", e.mnist(TRAIN_LABELS, idx(np.zeros(60, np.uint8)))), ("60 labels",)),
         "train-mnist-label-count-mismatch"),
    case(lambda e: Bad(train(e, "--data-dir", e.mnist(TRAIN_IMAGES + ".gz", gzip.compress(good(TRAIN_IMAGES))[:3000])),
                       (TRAIN_IMAGES,)), "train-mnist-gz-cut-short"),
    case(lambda e: Bad(train(e, "--data-dir", e.mnist(TEST_LABELS + ".gz", bad_crc(good(TEST_LABELS)))),
                       (TEST_LABELS,)), "train-mnist-gz-bad-crc"),
    *[case(lambda e, seed=seed: Bad(train(e, "--data-dir", e.mnist(TRAIN_IMAGES + ".gz", gzip_garbage(seed))),
                                    (TRAIN_IMAGES,)), f"train-mnist-gz-garbage-seed{seed}") for seed in range(6)],
    # ---- train: options ------------------------------------------------------------------------------------
    case(lambda e: Bad(train(e, "--epochs", "0"), ("--epochs",)), "train-epochs-0"),
    case(lambda e: Bad(train(e, "--batch-size", "1"), ("--batch-size",)), "train-batch-size-1"),
    case(lambda e: Bad(train(e, "--channels", "8,x"), ("--channels",)), "train-channels-8,x"),
    case(lambda e: Bad(train(e, "--channels", "0"), ("--channels",)), "train-channels-0"),
    case(lambda e: Bad(train(e, "--device", "gpu"), ("--device",)), "train-device-gpu"),
    case(lambda e: Bad(train(e, "--threads", "0"), ("--threads",)), "train-threads-0"),
    # ---- train: outputs ------------------------------------------------------------------------------------
    case(lambda e: Bad(train(e, "--out", e.afile / "train_out"), ("train_out",)), "train-out-under-a-file"),
    case(lambda e: Bad(train(e, "--out", "/proc/version/train_out"), ("train_out",)), "train-out-in-proc"),
    case(lambda e: Bad(train(e, "--out", e.afile), ("afile",)), "train-out-is-a-file"),
    case(lambda e: Bad(train(e, "--out", e.existing("old/model.pt").parent), ("model.pt",)),
         "train-out-has-model.pt-no-force"),
    # ---- export: checkpoint --------------------------------------------------------------------------------
    case(lambda e: Bad(export(e, e.tmp / "missing.pt"), ("missing.pt",)), "export-checkpoint-missing"),
    case(lambda e: Bad(export(e, e.file("empty.pt", b"")), ("empty.pt",)), "export-checkpoint-empty"),
    case(lambda e: Bad(export(e, e.half(e.ckpt, "half.pt")), ("half.pt",)), "export-checkpoint-truncated"),
    case(lambda e: Bad(export(e, e.file("noise.pt", np.random.default_rng(2).bytes(5000))), ("noise.pt",)),
         "export-checkpoint-corrupt"),
    case(lambda e: Bad(export(e, e.png("picture.png")), ("picture.png",)), "export-checkpoint-png"),
    case(lambda e: Bad(export(e, e.onnx), ("model.onnx",)), "export-checkpoint-onnx"),
    case(lambda e: Bad(export(e, e.torch_file("other.pt", {"weights": [1, 2, 3]})), ("other.pt",)),
         "export-checkpoint-foreign-torch-file"),
    case(lambda e: Bad(export(e, e.torch_file("noweights.pt", {
        "format": "digitsum-edge.checkpoint", "format_version": 1, "model_config": {"channels": [4, 8]},
        "state_dict": {}})), ("noweights.pt",)), "export-checkpoint-no-weights"),
    case(lambda e: Bad(export(e, e.torch_file("future.pt", {"format": "digitsum-edge.checkpoint",
                                                            "format_version": 99})), ("future.pt",)),
         "export-checkpoint-future-format"),
    case(lambda e: Bad(export(e, e.tmp), (e.tmp.name,)), "export-checkpoint-is-a-folder"),
    case(lambda e: Bad(export(e, e.evil_torch()), ("evil.pt",)), "export-pickle-runs-code"),
    case(lambda e: Bad(export(e, e.evil_pickle()), ("evil_plain.pt",)), "export-plain-pickle-runs-code"),
    # ---- export: MNIST folder (test files for verification, training files for int8 calibration) ----------
    case(lambda e: Bad(export(e, e.ckpt, "--data-dir", e.mnist(TEST_LABELS, None)), (TEST_LABELS,)),
         "export-mnist-file-missing"),
    case(lambda e: Bad(export(e, e.ckpt, "--data-dir", e.mnist(TEST_IMAGES, good(TEST_IMAGES)[:3000])),
                       (TEST_IMAGES,)), "export-mnist-file-truncated"),
    *[case(lambda e, seed=seed: Bad(export(e, e.ckpt, "--data-dir", e.mnist(TEST_IMAGES + ".gz", gzip_garbage(seed))),
                                    (TEST_IMAGES,)), f"export-mnist-gz-garbage-seed{seed}") for seed in range(6, 9)],
    case(lambda e: Bad(export(e, e.ckpt, "--int8", "--data-dir",
                              e.mnist(TRAIN_IMAGES, b"\x00\x00\x08\x01" + b"x" * 99)),
                       (TRAIN_IMAGES,)), "export-int8-mnist-train-bad-magic"),
    # ---- export: options -----------------------------------------------------------------------------------
    case(lambda e: Bad(export(e, e.ckpt, "--opset", "5"), ("--opset",)), "export-opset-5"),
    case(lambda e: Bad(export(e, e.ckpt, "--tolerance", "-1"), ("--tolerance",)), "export-tolerance--1"),
    case(lambda e: Bad(export(e, e.ckpt, "--static-batch", "0"), ("--static-batch",)), "export-static-batch-0"),
    # ---- export: outputs -----------------------------------------------------------------------------------
    case(lambda e: Bad(export(e, e.ckpt, "--out", e.afile / "out.onnx"), ("out.onnx",)), "export-out-under-a-file"),
    case(lambda e: Bad(export(e, e.ckpt, "--out", "/proc/version/out.onnx"), ("out.onnx",)), "export-out-in-proc"),
    case(lambda e: Bad(export(e, e.ckpt, "--json", e.afile / "export.json"), ("export.json",)),
         "export-json-under-a-file"),
    case(lambda e: Bad(export(e, e.ckpt, "--json", "/proc/version/export.json"), ("export.json",)),
         "export-json-in-proc"),
    case(lambda e: Bad(["export", e.ckpt, *EXPORT_FAST], (f"{e.onnx.name}",)), "export-over-existing-onnx-no-force"),
    case(lambda e: Bad(export(e, e.ckpt, "--int8", "--out", e.tmp / "new.onnx"), (e.existing("new.int8.onnx").name,)),
         "export-over-existing-int8-no-force"),
    # ---- live: model ---------------------------------------------------------------------------------------
    case(lambda e: Bad(live(e, model=e.tmp / "missing.onnx"), ("missing.onnx",)), "live-model-missing"),
    case(lambda e: Bad(live(e, model=e.file("empty.onnx", b"")), ("empty.onnx",)), "live-model-empty"),
    case(lambda e: Bad(live(e, model=e.half(e.onnx, "half.onnx")), ("half.onnx",)), "live-model-truncated"),
    case(lambda e: Bad(live(e, model=e.file("noise.onnx", np.random.default_rng(3).bytes(5000))), ("noise.onnx",)),
         "live-model-corrupt"),
    case(lambda e: Bad(live(e, model=e.ckpt), ("model.pt",)), "live-model-checkpoint"),
    case(lambda e: Bad(live(e, model=e.foreign_onnx()), ("foreign.onnx",)), "live-model-foreign-onnx"),
    case(lambda e: Bad(live(e, model=e.foreign_onnx("impostor.onnx", e.onnx_props())), ("impostor.onnx",)),
         "live-model-foreign-onnx-with-our-metadata"),
    case(lambda e: Bad(live(e, model=e.restamped_onnx("bare.onnx")), ("bare.onnx",)), "live-model-no-metadata"),
    # ---- live: source --------------------------------------------------------------------------------------
    case(lambda e: Bad(live(e, source="7"), ("7",), started=True), "live-source-camera-7-absent"),
    case(lambda e: Bad(live(e, source=e.tmp / "missing.mp4"), ("missing.mp4",), started=True), "live-source-missing"),
    case(lambda e: Bad(live(e, source=e.file("empty.mp4", b"")), ("empty.mp4",), started=True),
         "live-source-empty-video"),
    case(lambda e: Bad(live(e, source=e.file("noise.mp4", np.random.default_rng(4).bytes(20000))), ("noise.mp4",),
                       started=True), "live-source-garbage-mp4"),
    case(lambda e: Bad(live(e, source=e.file("notes.avi", b"not a video\n" * 100)), ("notes.avi",), started=True),
         "live-source-text-as-avi"),
    case(lambda e: Bad(live(e, source=e.file("noise.png", np.random.default_rng(5).bytes(3000))), ("noise.png",),
                       started=True), "live-source-garbage-png"),
    case(lambda e: Bad(live(e, source=e.file("empty_folder/notes.txt", b"x").parent), ("empty_folder",), started=True),
         "live-source-folder-without-images"),
    # ---- live: options -------------------------------------------------------------------------------------
    case(lambda e: Bad(live(e, "--rand", "10"), ("--rand",)), "live-rand-10"),
    case(lambda e: Bad(live(e, "--rand", "x"), ("--rand",)), "live-rand-x"),
    case(lambda e: Bad(live(e, "--roi", "0"), ("--roi",)), "live-roi-0"),
    case(lambda e: Bad(live(e, "--threads", "0"), ("--threads",)), "live-threads-0"),
    case(lambda e: Bad(live(e, "--provider", "tpu"), ("--provider",)), "live-provider-tpu"),
    case(lambda e: Bad(live(e, "--save-video", e.tmp / "out.gif"), ("out.gif",)), "live-save-video-gif"),
    # ---- live: outputs -------------------------------------------------------------------------------------
    case(lambda e: Bad(live(e, "--jsonl", e.afile / "live.jsonl"), ("live.jsonl",)), "live-jsonl-under-a-file"),
    case(lambda e: Bad(live(e, "--jsonl", "/proc/version/live.jsonl"), ("live.jsonl",)), "live-jsonl-in-proc"),
    case(lambda e: Bad(live(e, "--save-video", e.afile / "live.mp4"), ("live.mp4",)), "live-save-video-under-a-file"),
    case(lambda e: Bad(live(e, "--jsonl", e.existing("old.jsonl")), ("old.jsonl",)), "live-jsonl-existing-no-force"),
    case(lambda e: Bad(live(e, "--save-video", e.existing("old.mp4")), ("old.mp4",)),
         "live-save-video-existing-no-force"),
    # ---- predict -------------------------------------------------------------------------------------------
    case(lambda e: Bad(predict(e, model=e.file("empty.onnx", b"")), ("empty.onnx",)), "predict-model-empty"),
    case(lambda e: Bad(predict(e, model=e.half(e.onnx, "half.onnx")), ("half.onnx",)), "predict-model-truncated"),
    case(lambda e: Bad(predict(e, model=e.ckpt), ("model.pt",)), "predict-model-checkpoint"),
    case(lambda e: Bad(predict(e, model=e.foreign_onnx()), ("foreign.onnx",)), "predict-model-foreign-onnx"),
    case(lambda e: Bad(predict(e, model=e.restamped_onnx("v2.onnx", format_version="2")), ("v2.onnx",)),
         "predict-model-other-metadata-version"),
    case(lambda e: Bad(predict(e, images=(e.tmp / "missing.png",)), ("missing.png",)), "predict-image-missing"),
    case(lambda e: Bad(predict(e, images=(e.file("empty.png", b""),)), ("empty.png",), started=True),
         "predict-image-empty"),
    case(lambda e: Bad(predict(e, images=(e.file("noise.png", np.random.default_rng(6).bytes(3000)),)),
                       ("noise.png",), started=True), "predict-image-garbage"),
    case(lambda e: Bad(predict(e, images=(e.half(e.png("whole.png"), "cut.png"),)), ("cut.png",), started=True),
         "predict-image-truncated"),
    case(lambda e: Bad(predict(e, "--rand", "-1"), ("--rand",)), "predict-rand--1"),
    case(lambda e: Bad(predict(e, "--roi", "1.5"), ("--roi",)), "predict-roi-1.5"),
    case(lambda e: Bad(predict(e, "--jsonl", "/proc/version/p.jsonl"), ("p.jsonl",)), "predict-jsonl-in-proc"),
    case(lambda e: Bad(predict(e, "--jsonl", e.afile / "p.jsonl"), ("p.jsonl",)), "predict-jsonl-under-a-file"),
    case(lambda e: Bad(predict(e, "--jsonl", e.existing("old.jsonl")), ("old.jsonl",)),
         "predict-jsonl-existing-no-force"),
    # ---- synth ---------------------------------------------------------------------------------------------
    case(lambda e: Bad(synth(e, e.tmp / "s.mp4", "--size", "10x10"), ("--size",)), "synth-size-10x10"),
    case(lambda e: Bad(synth(e, e.tmp / "s.mp4", "--size", "abc"), ("--size",)), "synth-size-abc"),
    case(lambda e: Bad(synth(e, e.afile / "sample.mp4"), ("sample.mp4",)), "synth-video-under-a-file"),
    case(lambda e: Bad(synth(e, "/proc/version/sample.mp4"), ("sample.mp4",)), "synth-video-in-proc"),
    case(lambda e: Bad(synth(e, e.afile / "frames"), ("frames",)), "synth-folder-under-a-file"),
    case(lambda e: Bad(synth(e, e.existing("old.mp4")), ("old.mp4",)), "synth-video-existing-no-force"),
    case(lambda e: Bad(synth(e, e.existing("old_frames/frame_00000.png").parent), ("old_frames",)),
         "synth-folder-existing-no-force"),
    # ---- bench: files --------------------------------------------------------------------------------------
    case(lambda e: Bad(bench(e, checkpoint=e.tmp / "missing.pt"), ("missing.pt",)), "bench-checkpoint-missing"),
    case(lambda e: Bad(bench(e, checkpoint=e.file("empty.pt", b"")), ("empty.pt",)), "bench-checkpoint-empty"),
    case(lambda e: Bad(bench(e, checkpoint=e.half(e.ckpt, "half.pt")), ("half.pt",)), "bench-checkpoint-truncated"),
    case(lambda e: Bad(bench(e, checkpoint=e.png("picture.pt")), ("picture.pt",)), "bench-checkpoint-png"),
    case(lambda e: Bad(bench(e, checkpoint=e.onnx), ("model.onnx",)), "bench-checkpoint-onnx"),
    case(lambda e: Bad(bench(e, checkpoint=e.evil_torch()), ("evil.pt",)), "bench-checkpoint-pickle-runs-code"),
    case(lambda e: Bad(bench(e, checkpoint=e.evil_pickle()), ("evil_plain.pt",)),
         "bench-checkpoint-plain-pickle-runs-code"),
    case(lambda e: Bad(bench(e, onnx=e.tmp / "missing.onnx"), ("missing.onnx",)), "bench-onnx-missing"),
    case(lambda e: Bad(bench(e, onnx=e.file("empty.onnx", b"")), ("empty.onnx",)), "bench-onnx-empty"),
    case(lambda e: Bad(bench(e, onnx=e.file("noise.onnx", np.random.default_rng(7).bytes(5000))), ("noise.onnx",)),
         "bench-onnx-corrupt"),
    case(lambda e: Bad(bench(e, onnx=e.ckpt), ("model.pt",)), "bench-onnx-checkpoint"),
    case(lambda e: Bad(bench(e, onnx=e.foreign_onnx()), ("foreign.onnx",)), "bench-onnx-foreign-onnx"),
    case(lambda e: Bad(bench(e, onnx=e.restamped_onnx("other.onnx", weights_sha256="0" * 64)), ("other.onnx",)),
         "bench-onnx-from-another-checkpoint"),
    case(lambda e: Bad(bench(e, "--int8", e.tmp / "missing.int8.onnx"), ("missing.int8.onnx",)), "bench-int8-missing"),
    case(lambda e: Bad(bench(e, "--int8", e.half(e.onnx, "half.int8.onnx")), ("half.int8.onnx",)),
         "bench-int8-truncated"),
    case(lambda e: Bad(bench(e, "--int8", e.foreign_onnx("foreign.int8.onnx")), ("foreign.int8.onnx",)),
         "bench-int8-foreign-onnx"),
    case(lambda e: Bad(bench(e, "--int8", e.onnx), ("--int8",)), "bench-int8-given-fp32"),
    case(lambda e: Bad(bench(e, "--data-dir", e.mnist(TEST_IMAGES, b"\x00\x00\x08\x01" + good(TEST_IMAGES)[4:])),
                       (TEST_IMAGES,)), "bench-mnist-bad-magic"),
    # ---- bench: options ------------------------------------------------------------------------------------
    case(lambda e: Bad(bench(e, "--batch-sizes", "0,1"), ("--batch-sizes",)), "bench-batch-sizes-0,1"),
    case(lambda e: Bad(bench(e, "--batch-sizes", "a"), ("--batch-sizes",)), "bench-batch-sizes-a"),
    case(lambda e: Bad(bench(e, "--threads", "0"), ("--threads",)), "bench-threads-0"),
    case(lambda e: Bad(bench(e, "--providers", "tpu"), ("tpu",)), "bench-providers-tpu"),
    case(lambda e: Bad(bench(e, "--min-accuracy", "2"), ("--min-accuracy",)), "bench-min-accuracy-2"),
    # ---- bench: outputs ------------------------------------------------------------------------------------
    case(lambda e: Bad(bench(e, "--json", e.afile / "bench.json"), ("bench.json",)), "bench-json-under-a-file"),
    case(lambda e: Bad(bench(e, "--plot", e.afile / "bench.png"), ("bench.png",)), "bench-plot-under-a-file"),
    case(lambda e: Bad(bench(e, "--plot", "/proc/version/bench.png"), ("bench.png",)), "bench-plot-in-proc"),
    # ---- LiteRT (.tflite: the contract travels inside the file as TFLite metadata, so there is no sidecar) ---
    case(lambda e: Bad(live(e, model=e.half(e.request.getfixturevalue("tiny_litert") / "model.tflite", "half.tflite")),
                       ("half.tflite", "is not a readable LiteRT model")), "live-model-tflite-truncated"),
    case(lambda e: Bad(live(e, model=e.file("empty.tflite", b"")), ("empty.tflite", "not a readable LiteRT model")),
         "live-model-tflite-empty"),
    case(lambda e: Bad(predict(e, model=e.file("other.tflite", (e.request.getfixturevalue("tiny_litert") /
                                                                "model.tflite").read_bytes().replace(
        b"digitsum_edge\x00", b"digitsum_edgX\x00"))), ("other.tflite", "not a digitsum-edge LiteRT model")),
         "predict-model-tflite-not-digitsum"),
    case(lambda e: Bad(predict(e, "--provider", "cuda", model=e.request.getfixturevalue("tiny_litert") /
                               "model.tflite"), ("--provider cuda", "LiteRT")), "predict-model-tflite-cuda"),
    case(lambda e: Bad(bench(e, "--litert", e.request.getfixturevalue("tiny_litert") / "model.int8.tflite"),
                       ("holds an int8 model; --litert takes an fp32 file",)), "bench-litert-given-int8"),
    case(lambda e: Bad(bench(e, "--litert", e.tmp / "missing.tflite"), ("missing.tflite",)), "bench-litert-missing"),
    case(lambda e: Bad(bench(e, "--litert-int8", e.half(e.request.getfixturevalue("tiny_litert") / "model.int8.tflite",
                                                        "half.int8.tflite")), ("half.int8.tflite",)),
         "bench-litert-int8-truncated"),
    case(lambda e: Bad(export(e, e.ckpt, "--format", "litert", "--fp16", "--out", e.tmp / "m.tflite"),
                       ("--fp16", "ONNX")), "export-format-litert-fp16"),
    case(lambda e: Bad(export(e, e.ckpt, "--format", "litert"), ("out.onnx", "--format litert writes a .tflite")),
         "export-format-litert-out-onnx"),
    case(lambda e: Bad(export(e, e.ckpt, "--format", "litert-int8", "--out", e.tmp / "new.tflite"),
                       (e.existing("new_data.cc").name,)), "export-litert-int8-over-existing-c-array-no-force"),
]


# ---- what the table checks --------------------------------------------------------------------------------

def _called_from(name: str) -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == name:
            return True
        frame = frame.f_back
    return False


@contextmanager
def watching_work() -> Iterator[set[str]]:
    """The heavy steps that start inside the block: bad input must be refused before any of them."""
    from digitsum_edge.apps.reader import DigitReader
    from digitsum_edge.model import DigitSumNet
    from digitsum_edge.synth import frames as synth_module

    started: set[str] = set()
    with pytest.MonkeyPatch.context() as patch:

        def watch(owner: object, name: str, what: str, unless_in: str | None = None) -> None:
            original = getattr(owner, name)

            @functools.wraps(original)  # keeps the signature: torch.export reads forward's argument names
            def watched(*args, **kwargs):
                if unless_in is None or not _called_from(unless_in):
                    started.add(what)
                return original(*args, **kwargs)

            patch.setattr(owner, name, watched)

        # count_macs runs the model once on a zero image to count operations: bookkeeping, not work
        watch(DigitSumNet, "forward", "a model forward pass (training, export or benchmark)", unless_in="count_macs")
        watch(DigitReader, "read", "reading frames")
        watch(synth_module, "camera_frame", "drawing synthetic frames")
        yield started


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file under root, (size, mtime_ns, sha256), and every hidden folder (a temporary staging folder)."""
    def state(p: Path) -> tuple:
        if not p.is_file():
            return ("folder",)
        return p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()

    return {str(p.relative_to(root)): state(p) for p in sorted(root.rglob("*"))
            if p.is_file() or p.name.startswith(".")}


def describe(result, problems: list[str]) -> str:
    tail = result.output.strip().splitlines()[-4:]
    lines = [f"exit {result.exit_code}", *problems, "output (last lines):", *(f"  | {line}" for line in tail)]
    return "\n".join(lines)


@pytest.mark.parametrize("build", CASES)
def test_bad_input_is_refused_in_one_line(build: Case, tmp_path: Path, request: pytest.FixtureRequest,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a default output (runs/...) would land here, never in the repository
    env = Env(tmp_path, request)
    bad = build(env)
    before = snapshot(tmp_path)
    with watching_work() as work:
        result = invoke(*bad.args)
    after = snapshot(tmp_path)

    problems = []
    if result.exit_code == 0:
        problems.append("exit status 0")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        where = traceback.extract_tb(result.exc_info[2])[-1]
        problems.append(f"uncaught {type(result.exception).__name__}: {str(result.exception)[:200]!r} "
                        f"at {Path(where.filename).name}:{where.lineno} (a traceback for a user)")
    if "Traceback" in result.output:
        problems.append("a traceback in the output")
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    if len(errors) != 1:
        problems.append(f"{len(errors)} `error:` lines, expected exactly one")
    elif missing := [f for f in bad.fragments if f not in errors[0]]:
        problems.append(f"the error line does not name {missing}")
    if work:
        problems.append(f"work started before the bad input was refused: {', '.join(sorted(work))}")
    if env.marker.exists():
        problems.append("the pickle RAN CODE (marker file exists)")
    changed = sorted(p for p in before if p in after and after[p] != before[p])
    removed = sorted(p for p in before if p not in after)
    added = sorted(p for p in after if p not in before)
    for what, paths in (("changed", changed), ("removed", removed), ("left behind", added)):
        if paths:
            problems.append(f"files {what}: {paths}")
    assert not problems, describe(result, problems)
    one_line_error(result, *bad.fragments, started=bad.started)


def test_the_table_is_big_enough_and_covers_every_command() -> None:
    ids = [p.id for p in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)
    for command in ("train", "export", "live", "predict", "synth", "bench"):
        assert any(i.startswith(f"{command}-") for i in ids), command


def test_the_work_watch_sees_work(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The table's `no work started` check is not vacuous: training, reading and drawing frames are seen."""
    from digitsum_edge.synth import frames as synth_module

    env = Env(tmp_path, request)
    with watching_work() as work:
        result = invoke(*train(env, "--data-dir", env.mnist(TRAIN_IMAGES, good(TRAIN_IMAGES))))
        assert result.exit_code == 0, result.output
        assert work == {"a model forward pass (training, export or benchmark)"}
    with watching_work() as work:
        result = invoke(*predict(env))
        assert result.exit_code == 0, result.output
        assert work == {"reading frames"}
    with watching_work() as work:
        list(synth_module.frames(np.zeros((1, 28, 28), np.uint8), [1], size=(64, 48)))
        assert work == {"drawing synthetic frames"}


@pytest.mark.parametrize("make", ["evil_torch", "evil_pickle"])
def test_the_code_running_pickles_really_run_code(make: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The pickle rows mean something: loaded the unsafe way, these files do run their code."""
    import torch

    env = Env(tmp_path, request)
    path = getattr(env, make)()
    if make == "evil_torch":
        torch.load(path, weights_only=False)
    else:
        pickle.loads(path.read_bytes())
    assert env.marker.exists()


# ---- short videos: not bad input, but a source that ends early --------------------------------------------

def _video(path: Path, frames: int, size: tuple[int, int] = (320, 240)) -> Path:
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, size)
    assert writer.isOpened()
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (size[1], size[0], 3), np.uint8))  # noise: big frames, many bytes
    writer.release()
    return path


def test_live_reads_a_video_that_ends_after_one_frame(tiny_onnx: Path, tmp_path: Path) -> None:
    """A one-frame video is a short video, not a bad one: live reads its frame, writes one line, exits 0."""
    video = _video(tmp_path / "one.mp4", 1)
    out = tmp_path / "one.jsonl"
    result = invoke("live", "--model", tiny_onnx, "--source", video, "--jsonl", out, *LIVE_FAST)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "error:" not in result.output
    assert len(out.read_text().splitlines()) == 1


def test_live_on_a_truncated_video_reads_what_it_can_or_says_why_not(tiny_onnx: Path, tmp_path: Path) -> None:
    """A 30-frame .mp4 cut to its first 8 KB.

    OpenCV's mp4 writer puts the index (moov) at the end, so the cut file usually cannot be opened at all;
    an FFmpeg that recovers frames anyway may read some. Both are sensible, so both pass: exit 0 with one
    JSON line for every frame it reports, or one `error:` line naming the file and no output left behind.
    Never a traceback, never an empty success.
    """
    whole = _video(tmp_path / "whole.mp4", 30).read_bytes()
    assert len(whole) > 8192
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[:8192])
    out = tmp_path / "cut.jsonl"
    result = invoke("live", "--model", tiny_onnx, "--source", cut, "--jsonl", out, "--no-window", "--provider",
                    "cpu", "--threads", "1")
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 0:
        assert len(out.read_text().splitlines()) >= 1, result.output
    else:
        one_line_error(result, "cut.mp4", started=True)
        assert not out.exists()
        assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".cut.")]


# ---- what only a real process shows: OpenCV and FFmpeg write to file descriptor 2 themselves ---------------

@pytest.mark.parametrize("kind", ["truncated-mp4", "garbage-mp4", "camera-7", "predict-garbage-png"])
def test_native_libraries_add_no_lines_to_the_one_line_error(kind: str, tiny_onnx: Path, tmp_path: Path) -> None:
    """FFmpeg ('moov atom not found'), V4L2 and libpng print on stderr below Python, where the click runner
    cannot see; run the real command and check stderr holds `note:`/`provider:` lines and one error line only."""
    import subprocess

    whole = _video(tmp_path / "whole.mp4", 30).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(whole[:8192])
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(8).bytes(20000))
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(9).bytes(3000))
    args, fragment = {
        "truncated-mp4": (["live", "--source", "cut.mp4", *LIVE_FAST], "cut.mp4"),
        "garbage-mp4": (["live", "--source", "noise.mp4", *LIVE_FAST], "noise.mp4"),
        "camera-7": (["live", "--source", "7", *LIVE_FAST], "7"),
        "predict-garbage-png": (["predict", "noise.png", *PREDICT_FAST], "noise.png"),
    }[kind]
    done = subprocess.run([sys.executable, "-c", "from digitsum_edge.cli import main; main()", *args,
                           "--model", str(tiny_onnx)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert all(line.startswith(("note: ", "provider: ")) for line in lines[:-1]), done.stderr
    assert lines[-1].startswith("error: ") and fragment in lines[-1], done.stderr
