"""Opening a model for the runtime: provider choice and fallback, and every kind of wrong file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from digitsum_edge import onnx_contract
from digitsum_edge.engine import onnx_runtime as session_module
from digitsum_edge.engine.factory import open_model
from digitsum_edge.engine.onnx_runtime import cuda_usable
from digitsum_edge.errors import DigitsumError

CUDA_LISTED = "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers()


def _graph_model(inputs, outputs, props: dict[str, str] | None = None) -> onnx.ModelProto:
    """A one-Identity-per-output graph with the given (name, dtype, shape) inputs and outputs."""
    nodes = [helper.make_node("Identity", [inputs[0][0]], [name]) for name, _, _ in outputs]
    graph = helper.make_graph(nodes, "not_digitsum", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    if props:
        helper.set_model_props(model, props)
    return model


def test_open_on_cpu_reads_the_metadata(tiny_onnx: Path) -> None:
    loaded = open_model(tiny_onnx, "cpu", threads=1)
    assert loaded.provider == "cpu" and loaded.path == tiny_onnx and loaded.threads == 1
    assert loaded.session.get_providers() == ["CPUExecutionProvider"]
    info = loaded.info
    assert (info.mean, info.std, info.input_size, info.num_digits, info.num_rand) == (0.1307, 0.3081, 28, 10, 10)
    digit, total = loaded.run(np.zeros((2, 1, 28, 28), np.float32), np.array([0, 9], np.int64))
    assert digit.shape == (2, 10) and total.shape == (2, 19)


@pytest.fixture
def fresh_probe():
    """cuda_usable() with an empty cache before and after the test (a monkeypatched answer must not stick)."""
    cuda_usable.cache_clear()
    yield cuda_usable
    cuda_usable.cache_clear()


def _really_runs_on_cuda(path: Path) -> bool:
    """Independently of the probe: does a CUDA session on a real model get CUDA first and run?"""
    ort = __import__("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    ort.set_default_logger_severity(4)  # a missing libcublas is expected on a CPU machine; keep the log clean
    try:
        session = ort.InferenceSession(str(path), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        if session.get_providers()[0] != "CUDAExecutionProvider":
            return False
        session.run(None, {"image": np.zeros((1, 1, 28, 28), np.float32), "rand": np.zeros(1, np.int64)})
        return True
    except Exception:
        return False
    finally:
        ort.set_default_logger_severity(3)


def test_cuda_probe_is_silent_and_agrees_with_a_real_cuda_session(fresh_probe, tiny_onnx: Path,
                                                                   capfd: pytest.CaptureFixture) -> None:
    capfd.readouterr()
    answer = fresh_probe()
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == "", captured  # no red onnxruntime spam, nothing at all
    assert answer is _really_runs_on_cuda(tiny_onnx)


class FakeSession:
    """onnxruntime.InferenceSession stand-in: which provider it reports first, and whether it can run."""

    made: ClassVar[list[FakeSession]] = []

    def __init__(self, first: str = "CUDAExecutionProvider", create_fails: bool = False, run_fails: bool = False):
        if create_fails:
            raise RuntimeError("CUDA failure 35: CUDA driver version is insufficient")
        self.first, self.run_fails = first, run_fails
        FakeSession.made.append(self)

    def get_providers(self) -> list[str]:
        return [self.first, "CPUExecutionProvider"]

    def run(self, names, feed):
        if self.run_fails:
            raise RuntimeError("cudaErrorNoKernelImageForDevice")
        return [feed["X"] * 2]


@pytest.fixture
def fake_ort(monkeypatch: pytest.MonkeyPatch):
    """Make onnxruntime list `providers` and open sessions as FakeSession(**session)."""
    ort = __import__("onnxruntime")
    FakeSession.made = []

    def install(providers: list[str], **session):
        monkeypatch.setattr(ort, "get_available_providers", lambda: list(providers))
        monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: FakeSession(**session))
        return FakeSession.made

    return install


WITH_CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize(("providers", "session", "expected"), [
    (WITH_CUDA, {}, True),
    (["CPUExecutionProvider"], {}, False),
    (WITH_CUDA, {"first": "CPUExecutionProvider"}, False),
    (WITH_CUDA, {"create_fails": True}, False),
    (WITH_CUDA, {"run_fails": True}, False),
], ids=["cuda-works", "cuda-not-listed", "silent-cpu-fallback", "create-fails", "run-fails"])
def test_cuda_probe_answer_follows_what_onnxruntime_does(fresh_probe, fake_ort, capfd: pytest.CaptureFixture,
                                                         providers: list[str], session: dict, expected: bool) -> None:
    made = fake_ort(providers, **session)
    assert fresh_probe() is expected
    if "CUDAExecutionProvider" not in providers:
        assert made == []  # not listed: no session is even tried
    assert capfd.readouterr().err == ""


def test_cuda_probe_is_cached(fresh_probe, fake_ort) -> None:
    made = fake_ort(WITH_CUDA)
    assert fresh_probe() is True and len(made) == 1
    assert fresh_probe() is True and len(made) == 1  # the second answer comes without a new session
    fresh_probe.cache_clear()
    assert fresh_probe() is True and len(made) == 2


def test_auto_without_cuda_listed_is_cpu_and_says_nothing(fresh_probe, tiny_onnx: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(__import__("onnxruntime"), "get_available_providers", lambda: ["CPUExecutionProvider"])
    loaded = open_model(tiny_onnx, "auto")
    assert loaded.provider == "cpu" and loaded.notes == []  # nothing to explain: CUDA was never on offer
    with pytest.raises(DigitsumError, match="provider cpu"):
        open_model(tiny_onnx, "cuda")


def test_auto_uses_what_really_works(tiny_onnx: Path, capfd: pytest.CaptureFixture) -> None:
    loaded = open_model(tiny_onnx, "auto")
    assert loaded.provider == ("cuda" if cuda_usable() else "cpu")
    if loaded.provider == "cpu" and CUDA_LISTED:
        assert len(loaded.notes) == 1 and "CPU" in loaded.notes[0]
    assert "[E:" not in capfd.readouterr().err


def test_auto_falls_back_when_the_cuda_session_silently_runs_on_cpu(tiny_onnx: Path, monkeypatch) -> None:
    if cuda_usable():
        pytest.skip("CUDA really works here; the silent fallback cannot be provoked")
    monkeypatch.setattr(session_module, "cuda_usable", lambda: True)  # a probe that says yes, wrongly
    loaded = open_model(tiny_onnx, "auto")
    assert loaded.provider == "cpu" and any("CUDA" in n for n in loaded.notes)
    with pytest.raises(DigitsumError, match="CUDA"):
        open_model(tiny_onnx, "cuda")


def test_cuda_that_cannot_be_honoured_is_an_error(tiny_onnx: Path) -> None:
    if cuda_usable():
        assert open_model(tiny_onnx, "cuda").provider == "cuda"
        return
    with pytest.raises(DigitsumError, match="provider cpu"):
        open_model(tiny_onnx, "cuda")


@pytest.mark.parametrize(("provider", "threads", "match"), [("tpu", None, "unknown provider"),
                                                             ("cpu", 0, "threads")])
def test_bad_provider_or_threads(tiny_onnx: Path, provider: str, threads, match: str) -> None:
    with pytest.raises(DigitsumError, match=match):
        open_model(tiny_onnx, provider, threads)


def test_missing_and_non_onnx_files(tmp_path: Path) -> None:
    with pytest.raises(DigitsumError, match="does not exist"):
        open_model(tmp_path / "nope.onnx", "cpu")
    with pytest.raises(DigitsumError, match="not a file"):
        open_model(tmp_path, "cpu")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"definitely not protobuf" * 10)
    with pytest.raises(DigitsumError, match="not a readable ONNX model"):
        open_model(junk, "cpu")


def test_onnx_without_digitsum_metadata(tmp_path: Path) -> None:
    path = tmp_path / "other.onnx"
    onnx.save(_graph_model([("x", TensorProto.FLOAT, [1, 4])], [("y", TensorProto.FLOAT, [1, 4])]), path)
    with pytest.raises(DigitsumError, match="not a digitsum-edge ONNX model"):
        open_model(path, "cpu")


def test_metadata_but_wrong_inputs_or_shapes(tiny_onnx: Path, tmp_path: Path) -> None:
    props = onnx_contract.metadata_props(open_model(tiny_onnx, "cpu").info)
    renamed = _graph_model([("x", TensorProto.FLOAT, ["batch", 1, 28, 28])],
                           [("digit_logits", TensorProto.FLOAT, ["batch", 1, 28, 28])], props)
    onnx.save(renamed, tmp_path / "renamed.onnx")
    with pytest.raises(DigitsumError, match="inputs"):
        open_model(tmp_path / "renamed.onnx", "cpu")

    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 32, 32])
    rand = helper.make_tensor_value_info("rand", TensorProto.INT64, ["batch"])
    digit = helper.make_tensor_value_info("digit_logits", TensorProto.FLOAT, ["batch", 1, 32, 32])
    total = helper.make_tensor_value_info("sum_logits", TensorProto.INT64, ["batch"])
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["digit_logits"]),
                               helper.make_node("Identity", ["rand"], ["sum_logits"])],
                              "wrong_shapes", [image, rand], [digit, total])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    helper.set_model_props(model, props)
    onnx.save(model, tmp_path / "shapes.onnx")
    with pytest.raises(DigitsumError, match="image is tensor"):
        open_model(tmp_path / "shapes.onnx", "cpu")


def test_incomplete_metadata(tiny_onnx: Path, tmp_path: Path) -> None:
    model = onnx.load(tiny_onnx)
    kept = [p for p in model.metadata_props if p.key != "normalization_std"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, tmp_path / "partial.onnx")
    with pytest.raises(DigitsumError, match="incomplete"):
        open_model(tmp_path / "partial.onnx", "cpu")


def test_cuda_sessions_ask_for_full_fp32(fresh_probe, monkeypatch: pytest.MonkeyPatch) -> None:
    """TF32 convolutions (the CUDA provider's default) move logits by ~1e-3, over the fp32 tolerance that export
    and bench hold every fp32 file to: every CUDA session, the probe's too, asks for use_tf32 0."""
    ort = __import__("onnxruntime")
    asked: list = []

    def session(*args, providers, **kwargs):
        asked.append(providers)
        return FakeSession()

    monkeypatch.setattr(ort, "get_available_providers", lambda: list(WITH_CUDA))
    monkeypatch.setattr(ort, "InferenceSession", session)
    assert fresh_probe() is True
    assert asked == [[("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"]]


def test_cuda_libraries_of_nvidia_wheels_anywhere_on_sys_path_are_preloaded_quietly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture) -> None:
    """onnxruntime installed apart from torch's nvidia-* wheels (pip --target, another site folder) still finds
    CUDA: each nvidia/cu*/lib and nvidia/cudnn/lib on sys.path is handed to onnxruntime's preload_dlls."""
    for folder in ("nvidia/cu13/lib", "nvidia/cudnn/lib", "nvidia/cu13/include"):
        (tmp_path / folder).mkdir(parents=True)
    ort, tried = __import__("onnxruntime"), []

    def preload_dlls(directory=None, **kwargs):
        tried.append(directory)
        print(f"Failed to load {directory}")  # what onnxruntime prints when a library is missing
        raise RuntimeError("not here")

    monkeypatch.setattr(ort, "preload_dlls", preload_dlls, raising=False)
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    capfd.readouterr()
    session_module._preload_cuda_libraries(ort)
    assert tried == [None, str(tmp_path / "nvidia/cu13/lib"), str(tmp_path / "nvidia/cudnn/lib")]
    assert capfd.readouterr() == ("", "")
