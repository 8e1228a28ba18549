"""`export --triton DIR`: a Triton model repository, checked with the ModelConfig protobuf message that tritonclient
ships (Triton itself cannot run here), and against the exported file's own tensors."""

from __future__ import annotations

from pathlib import Path

import pytest

from digitsum_edge import onnx_contract
from digitsum_edge.apps.reader import load
from digitsum_edge.export import triton
from helpers import invoke, one_line_error

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="tritonclient is not installed")
text_format = pytest.importorskip("google.protobuf.text_format")


def _parse(text: str):
    return text_format.Parse(text, model_config_pb2.ModelConfig())


@pytest.fixture(scope="module")
def repository(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """`digitsum-edge export CKPT --triton DIR` run as a user runs it: (DIR, the exported .onnx)."""
    out = tmp_path_factory.mktemp("triton")
    result = invoke("export", tiny_checkpoint, "--out", out / "model.onnx", "--verify-images", 100,
                    "--triton", out / "repo")
    assert result.exit_code == 0, result.output
    return out / "repo", out / "model.onnx"


def test_export_writes_a_model_repository_triton_accepts(repository: tuple[Path, Path]) -> None:
    repo, onnx_file = repository
    assert sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file()) == [
        "digitsum/1/model.onnx", "digitsum/config.pbtxt"]
    assert (repo / "digitsum/1/model.onnx").read_bytes() == onnx_file.read_bytes()  # the verified file itself
    config = _parse((repo / "digitsum/config.pbtxt").read_text())
    assert config.name == "digitsum" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == triton.MAX_BATCH > 0 and config.HasField("dynamic_batching")
    assert config.dynamic_batching.max_queue_delay_microseconds == triton.MAX_QUEUE_DELAY_US
    types = model_config_pb2.DataType
    inputs = {i.name: i for i in config.input}
    assert list(inputs) == list(onnx_contract.INPUTS)
    assert inputs["image"].data_type == types.Value("TYPE_FP32") and list(inputs["image"].dims) == [1, 28, 28]
    rand = inputs["rand"]
    # Triton forbids empty dims: one value per batch row, reshaped to the model's scalar
    assert rand.data_type == types.Value("TYPE_INT64") and list(rand.dims) == [1]
    assert rand.HasField("reshape") and list(rand.reshape.shape) == []
    outputs = {o.name: list(o.dims) for o in config.output}
    assert outputs == {"digit_logits": [10], "sum_logits": [19]}
    assert "0.1307" in config.parameters["digitsum_normalization"].string_value


def test_the_config_matches_the_model_file(repository: tuple[Path, Path]) -> None:
    """What Triton would check when it loads the file: every tensor's name, type and shape after the batch axis."""
    repo, _ = repository
    config = _parse((repo / "digitsum/config.pbtxt").read_text())
    session = load(repo / "digitsum/1/model.onnx", "cpu", 1).backend.session  # a digitsum model: contract checked
    onnx_types = {"tensor(float)": "TYPE_FP32", "tensor(int64)": "TYPE_INT64"}
    declared = {t.name: (model_config_pb2.DataType.Name(t.data_type),
                         list(t.reshape.shape) if t.HasField("reshape") else list(t.dims))
                for t in [*config.input, *config.output]}
    actual = {t.name: (onnx_types[t.type], list(t.shape[1:])) for t in [*session.get_inputs(), *session.get_outputs()]}
    assert declared == actual
    assert all(isinstance(t.shape[0], str) for t in session.get_inputs())  # a dynamic batch axis for Triton


def test_a_static_batch_file_gets_a_config_without_batching() -> None:
    info = onnx_contract.ModelInfo(mean=onnx_contract.MEAN, std=onnx_contract.STD, input_size=28, num_digits=10,
                                   num_rand=10, precision="fp32", weights_sha256="0" * 64)
    config = _parse(triton.config_text(info, static_batch=4))
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert {t.name: list(t.dims) for t in [*config.input, *config.output]} == {
        "image": [4, 1, 28, 28], "rand": [4], "digit_logits": [4, 10], "sum_logits": [4, 19]}


def test_an_existing_repository_is_refused_before_any_work(repository: tuple[Path, Path], tiny_checkpoint: Path,
                                                           tmp_path: Path) -> None:
    repo, _ = repository
    before = (repo / "digitsum/config.pbtxt").read_bytes()
    result = invoke("export", tiny_checkpoint, "--out", tmp_path / "model.onnx", "--triton", repo)
    one_line_error(result, "digitsum/config.pbtxt exists (use --force")
    assert not (tmp_path / "model.onnx").exists() and (repo / "digitsum/config.pbtxt").read_bytes() == before
    (tmp_path / "a_file").write_text("x")
    one_line_error(invoke("export", tiny_checkpoint, "--out", tmp_path / "model.onnx", "--triton",
                          tmp_path / "a_file"), "a_file' is a file")
