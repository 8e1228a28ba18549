"""`export --triton DIR`: a Triton Inference Server model repository for sites with GPUs.

    DIR/digitsum/config.pbtxt     platform onnxruntime_onnx, dynamic batching, the contract's tensors
    DIR/digitsum/1/model.onnx     the verified fp32 file

Triton takes the model's own tensors (the image already MNIST-normalised, see onnx_contract), the same
ones `digitsum-edge serve` takes at /v2/models/digitsum/infer. Triton forbids empty dims, so the scalar
`rand` of each batch row is declared `dims: [1]` and reshaped to `[]` for the model: Triton clients send
rand as [N, 1], which `serve` accepts too. Plain text and file copies: no Triton, torch or onnx needed.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

from digitsum_edge import onnx_contract
from digitsum_edge.errors import DigitsumError
from digitsum_edge.files import check_folder, write_bytes
from digitsum_edge.onnx_contract import MODEL_NAME, MODEL_VERSION

MAX_BATCH = 256  # Triton's max_batch_size: what its dynamic batcher may gather on a GPU
MAX_QUEUE_DELAY_US = 2000  # how long the dynamic batcher waits for more requests
log = logging.getLogger(__name__)


def model_folder(repository: str | os.PathLike) -> Path:
    return Path(repository) / MODEL_NAME


def check_repository(repository: str | os.PathLike, *, force: bool) -> Path:
    """Before any work: the repository folder can be written, and DIR/digitsum is not replaced without force."""
    folder = model_folder(repository)
    for path in (folder / "config.pbtxt", folder / MODEL_VERSION / "model.onnx"):
        if path.is_dir():
            raise DigitsumError(f"cannot write {path}: it is a folder")
        if path.exists() and not force:
            raise DigitsumError(f"Triton model {path} exists (use --force to replace it)")
    check_folder(repository)
    return folder


def config_text(info: onnx_contract.ModelInfo, static_batch: int | None) -> str:
    """config.pbtxt (protobuf text format of Triton's ModelConfig) for the contract's tensors."""
    image, rand = onnx_contract.INPUTS
    digit_logits, sum_logits = onnx_contract.OUTPUTS
    size = info.input_size
    if static_batch is None:  # a dynamic batch axis: Triton owns it (max_batch_size > 0) and batches requests
        batch, dims, rand_dims = MAX_BATCH, "", "dims: [ 1 ]\n    reshape: { shape: [ ] }"
    else:  # a fixed batch axis is part of every tensor's dims, and Triton does not batch
        batch, dims, rand_dims = 0, f"{static_batch}, ", f"dims: [ {static_batch} ]"
    lines = [
        f'name: "{MODEL_NAME}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {batch}",
        "version_policy: { latest: { num_versions: 1 } }",
        "input [",
        f'  {{\n    name: "{image}"\n    data_type: TYPE_FP32\n    dims: [ {dims}1, {size}, {size} ]\n  }},',
        f'  {{\n    name: "{rand}"\n    data_type: TYPE_INT64\n    {rand_dims}\n  }}',
        "]",
        "output [",
        f'  {{\n    name: "{digit_logits}"\n    data_type: TYPE_FP32\n    dims: [ {dims}{info.num_digits} ]\n  }},',
        f'  {{\n    name: "{sum_logits}"\n    data_type: TYPE_FP32\n    dims: [ {dims}{info.num_sums} ]\n  }}',
        "]",
        "instance_group [ { kind: KIND_AUTO, count: 1 } ]  # one instance per GPU; the CPU where there is none",
    ]
    if static_batch is None:
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US} }}")
    lines.append(f'parameters: {{ key: "digitsum_normalization" value: {{ string_value: '
                 f'"image = (pixel / 255 - {info.mean!r}) / {info.std!r}" }} }}')
    return "\n".join(lines) + "\n"


def write_repository(repository: str | os.PathLike, onnx_file: str | os.PathLike, info: onnx_contract.ModelInfo,
                     static_batch: int | None) -> Path:
    """Copy the verified .onnx file into DIR/digitsum/1/ and write DIR/digitsum/config.pbtxt (each atomically)."""
    folder = model_folder(repository)
    text = config_text(info, static_batch)
    _parse_if_possible(text)
    write_bytes(folder / MODEL_VERSION / "model.onnx", Path(onnx_file).read_bytes())
    write_bytes(folder / "config.pbtxt", text.encode())
    log.info(f"wrote the Triton model repository {Path(repository)} ({MODEL_NAME}/config.pbtxt, "
             f"{MODEL_NAME}/{MODEL_VERSION}/model.onnx)")
    return folder


def _parse_if_possible(text: str) -> None:
    """Where tritonclient is installed (the dev install), parse the text with Triton's own ModelConfig message."""
    try:  # imported by name: optional, and without type stubs
        text_format = importlib.import_module("google.protobuf.text_format")
        model_config_pb2 = importlib.import_module("tritonclient.grpc.model_config_pb2")
    except ImportError:
        return
    try:
        text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as e:  # a bug here, not the user's input
        raise DigitsumError(f"internal error: the Triton config does not parse: {e}") from None
