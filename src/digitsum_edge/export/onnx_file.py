"""PyTorch -> ONNX: export with torch.onnx (dynamo), simplify with onnxsim, stamp metadata, check."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from datetime import datetime, timezone

import onnx
import torch

from digitsum_edge import onnx_contract
from digitsum_edge.errors import DigitsumError, first_line
from digitsum_edge.model import DigitSumNet


@contextlib.contextmanager
def _quiet_registry() -> Iterator[None]:
    """torch.onnx warns once per torchvision op it cannot register when torchvision is missing ("torchvision is
    not installed. Skipping torchvision::nms"): ops this model does not use, so not the user's concern."""
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)
    try:
        yield
    finally:
        registry.setLevel(level)


def export_model(model: DigitSumNet, opset: int, static_batch: int | None) -> onnx.ModelProto:
    """Trace the eval-mode model with torch.export and translate it to ONNX (no file written)."""
    model = model.eval()
    batch = static_batch or 2  # a dynamic axis is traced with size >= 2 so it is not specialised to 1
    image = torch.zeros(batch, 1, onnx_contract.IMAGE_SIZE, onnx_contract.IMAGE_SIZE)
    rand = torch.arange(batch, dtype=torch.int64) % model.config.num_rand
    dynamic_shapes = None
    if static_batch is None:
        dim = torch.export.Dim("batch", min=1)
        dynamic_shapes = {"image": {0: dim}, "rand": {0: dim}}
    with torch.no_grad():
        model(image, rand)  # warm-up: any error shows here, as a PyTorch error, before the exporter
        # The dynamo exporter (torch.export) is torch's supported path; the TorchScript one is
        # deprecated. It folds BatchNorm into Conv and optimises the graph itself.
        with contextlib.redirect_stdout(io.StringIO()), _quiet_registry():
            program = torch.onnx.export(
                model, (image, rand), None, input_names=list(onnx_contract.INPUTS),
                output_names=list(onnx_contract.OUTPUTS), opset_version=opset, dynamo=True,
                external_data=False, dynamic_shapes=dynamic_shapes, verbose=False)
    assert program is not None  # dynamo=True returns the program
    proto = program.model_proto
    if static_batch is None:  # name the batch axis the same on every input and output
        for value in [*proto.graph.input, *proto.graph.output]:
            dim0 = value.type.tensor_type.shape.dim[0]
            dim0.ClearField("dim_value")
            dim0.dim_param = "batch"
    return proto


def simplify(proto: onnx.ModelProto) -> onnx.ModelProto:
    """onnxsim's simplification, checked by onnxsim against the original on random inputs."""
    import onnxsim

    simplified, ok = onnxsim.simplify(proto)
    if not ok:
        raise DigitsumError("onnxsim could not validate the simplified model (try --no-simplify)")
    return simplified


def stamp(proto: onnx.ModelProto, info: onnx_contract.ModelInfo) -> onnx.ModelProto:
    """Replace the file's metadata_props with the digitsum-edge contract."""
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, onnx_contract.metadata_props(info))
    proto.producer_name = "digitsum-edge"
    proto.doc_string = "digitsum-edge: digit and digit+rand from an MNIST-style image and an integer"
    return proto


def save_checked(proto: onnx.ModelProto, path: str | os.PathLike) -> None:
    """onnx.checker with full shape inference, then write."""
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as e:
        raise DigitsumError(f"exported model failed onnx.checker: {first_line(e)}") from None
    onnx.save(proto, os.fspath(path))


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
