"""What travels over HTTP, without HTTP: image bodies, rand in a query string, batches of 28x28 images, and
the Open Inference Protocol (KServe v2, what Triton speaks) with Triton's binary tensor extension.

numpy, json and OpenCV only: the service calls these, and tests call them without Ray. Every refusal is a
BadRequest, one line, which the service answers with HTTP 400 and {"error": "..."}.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

import numpy as np

from digitsum_edge import __version__, onnx_contract
from digitsum_edge.errors import InvalidInput

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"
MAX_PIXELS = 40_000_000  # a 12-24 MP phone photo decodes; a small PNG that inflates to gigabytes does not
HEADER_LENGTH = "Inference-Header-Content-Length"  # Triton's binary tensor extension: JSON bytes before the data
# KServe v2 datatypes <-> numpy; the model takes FP32 images and INT64 rand, the rest is named to refuse it clearly
DTYPES = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
          "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "FP16": np.float16,
          "FP32": np.float32, "FP64": np.float64}
IMAGE, RAND = onnx_contract.INPUTS
DIGIT_LOGITS, SUM_LOGITS = onnx_contract.OUTPUTS
INPUT_TYPES = {IMAGE: "FP32", RAND: "INT64"}  # the contract's float32 image and int64 rand as v2 datatypes
OUTPUT_TYPE = "FP32"  # both outputs are float32 logits


class BadRequest(InvalidInput):
    """A request the service refuses: HTTP 400 with this message; the service goes on serving."""


# ---- images ----------------------------------------------------------------------------------------------------

def image_size(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from a PNG or JPEG header, before anything is decoded."""
    if data.startswith(PNG):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise BadRequest("the PNG image is truncated (no IHDR header)")
        width, height = struct.unpack(">II", data[16:24])
        return "PNG", width, height
    if data.startswith(JPEG):
        width, height = _jpeg_size(data)
        return "JPEG", width, height
    if not data:
        raise BadRequest("the request has no body; send PNG or JPEG bytes")
    raise BadRequest("the body is not a PNG or JPEG image")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Walk the JPEG markers to the frame header (SOF0-SOF15 but DHT, JPG, DAC) and read its size."""
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    raise BadRequest("the JPEG image is corrupt or truncated (no frame header)")


def decode_image(data: bytes) -> np.ndarray:
    """PNG or JPEG bytes -> (H, W, 3) uint8 BGR, exactly as `predict` reads the same file from disk."""
    import cv2

    kind, width, height = image_size(data)
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise BadRequest(f"the {kind} image is {width}x{height}: at most {MAX_PIXELS / 1e6:.0f} megapixels")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise BadRequest(f"cannot decode the {kind} image (corrupt or truncated)")
    return image


def parse_rand(value: str | None, count: int, num_rand: int, rng: np.random.Generator) -> np.ndarray:
    """?rand=7 (one for all), ?rand=1,2,3 (one per image) or none (random, like `live` without --rand)."""
    if value is None or value == "":
        return rng.integers(0, num_rand, count).astype(np.int64)
    try:
        rands = np.array([int(v) for v in value.split(",")], np.int64)
    except ValueError:
        raise BadRequest(f"rand must be an integer in 0-{num_rand - 1}, got {value[:40]!r}") from None
    if len(rands) not in (1, count):
        raise BadRequest(f"rand must be one integer or one per image ({count}), got {len(rands)}")
    onnx_contract.check_rand(rands, num_rand)
    return np.broadcast_to(rands, (count,)).copy()


def parse_images(data: bytes, size: int) -> np.ndarray:
    """/v1/predict body: N images of size x size uint8 pixels, row-major, white digit on black -> (N, size, size)."""
    pixels = size * size
    if not data or len(data) % pixels:
        raise BadRequest(f"the body must be N x {size}x{size} uint8 pixels (a multiple of {pixels} bytes), "
                         f"got {len(data)} bytes")
    return np.frombuffer(data, np.uint8).reshape(-1, size, size)


# ---- Open Inference Protocol (KServe v2) ---------------------------------------------------------------------

@dataclass
class InferRequest:
    """A v2 inference request, checked against the model: image (N, 1, S, S) float32, rand (N,) int64."""

    image: np.ndarray
    rand: np.ndarray
    id: str | None = None
    outputs: dict[str, bool] = field(default_factory=dict)  # output name -> binary data wanted, in order


def _tensor(spec: dict, binary: memoryview, offset: int) -> tuple[np.ndarray, int]:
    """One input of the request: its data from JSON or from the binary section at `offset`."""
    name, datatype, shape = spec.get("name"), spec.get("datatype"), spec.get("shape")
    if datatype not in DTYPES:
        raise BadRequest(f"input {name!r}: unknown datatype {datatype!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise BadRequest(f"input {name!r}: shape must be a list of non-negative integers, got {shape!r:.60}")
    dtype = np.dtype(DTYPES[datatype])
    count = int(np.prod(shape))
    size = (spec.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if size != count * dtype.itemsize or offset + size > len(binary):
            raise BadRequest(f"input {name!r}: binary_data_size {size} does not match shape {shape} {datatype} "
                             f"({count * dtype.itemsize} bytes) or the body")
        return np.frombuffer(binary[offset:offset + size], dtype).reshape(shape), offset + size
    if "data" not in spec:
        raise BadRequest(f"input {name!r} has neither data nor parameters.binary_data_size")
    try:
        array = np.asarray(spec["data"], dtype)
    except (TypeError, ValueError, OverflowError):
        raise BadRequest(f"input {name!r}: data is not a list of {datatype} numbers") from None
    if array.size != count:
        raise BadRequest(f"input {name!r}: {array.size} values for shape {shape}")
    return array.reshape(shape), offset


def parse_infer(body: bytes, header_length: str | None, info: onnx_contract.ModelInfo) -> InferRequest:
    """The JSON request (and, with Inference-Header-Content-Length, the binary tensors after it) -> arrays."""
    try:
        split = len(body) if header_length is None else int(header_length)
    except ValueError:
        raise BadRequest(f"{HEADER_LENGTH} must be an integer, got {str(header_length)[:40]!r}") from None
    if not 0 < split <= len(body):
        raise BadRequest(f"{HEADER_LENGTH} {split} is outside the body ({len(body)} bytes)")
    try:
        request = json.loads(body[:split])
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the inference request is not JSON") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise BadRequest('the inference request must be a JSON object with an "inputs" list')
    binary, offset, tensors = memoryview(body)[split:], 0, {}
    for spec in request["inputs"]:
        if not isinstance(spec, dict) or spec.get("name") not in INPUT_TYPES or spec["name"] in tensors:
            raise BadRequest(f"inputs must be {' and '.join(INPUT_TYPES)}, once each; got "
                             f"{spec.get('name') if isinstance(spec, dict) else spec!r:.40}")
        if spec.get("datatype") != INPUT_TYPES[spec["name"]]:
            raise BadRequest(f"input {spec['name']!r} must be {INPUT_TYPES[spec['name']]}, "
                             f"got {spec.get('datatype')!r}")
        tensors[spec["name"]], offset = _tensor(spec, binary, offset)
    if set(tensors) != set(INPUT_TYPES):
        missing = sorted(set(INPUT_TYPES) - set(tensors))
        raise BadRequest(f"inputs must be {' and '.join(INPUT_TYPES)}; missing {missing}")
    image, rand = tensors[IMAGE], tensors[RAND]
    size = info.input_size
    if image.ndim != 4 or image.shape[1:] != (1, size, size) or image.shape[0] < 1:
        raise BadRequest(f"input {IMAGE!r} must have shape [N, 1, {size}, {size}], N >= 1, got {list(image.shape)}")
    if rand.shape not in ((len(image),), (len(image), 1)):  # [N, 1] is what Triton's config (dims: [1]) takes
        raise BadRequest(f"input {RAND!r} must have shape [{len(image)}] (or [{len(image)}, 1]), "
                         f"got {list(rand.shape)}")
    if not np.isfinite(image).all():
        raise BadRequest(f"input {IMAGE!r} holds NaN or infinity")
    onnx_contract.check_rand(rand, info.num_rand)
    return InferRequest(np.ascontiguousarray(image), rand.reshape(-1).astype(np.int64), _request_id(request),
                        _outputs(request))


def _request_id(request: dict) -> str | None:
    value = request.get("id")
    return None if value is None else str(value)[:256]


def _outputs(request: dict) -> dict[str, bool]:
    """Requested outputs (all when none are named) and whether each wants Triton's binary data."""
    default = bool((request.get("parameters") or {}).get("binary_data_output", False))
    asked = request.get("outputs")
    if asked is None:
        return dict.fromkeys(onnx_contract.OUTPUTS, default)
    if not isinstance(asked, list):
        raise BadRequest('"outputs" must be a list')
    wanted: dict[str, bool] = {}
    for spec in asked:
        name = spec.get("name") if isinstance(spec, dict) else None
        if name not in onnx_contract.OUTPUTS:
            raise BadRequest(f"unknown output {name!r} (outputs: {', '.join(onnx_contract.OUTPUTS)})")
        if (spec.get("parameters") or {}).get("classification"):
            raise BadRequest("the classification extension is not supported; ask for the logits")
        wanted[name] = bool((spec.get("parameters") or {}).get("binary_data", default))
    return wanted


def infer_response(request: InferRequest, logits: dict[str, np.ndarray], model: str,
                   version: str) -> tuple[bytes, dict[str, str]]:
    """The v2 response body and its headers: JSON, then the binary outputs when any was asked for so."""
    outputs, chunks = [], []
    for name, binary in request.outputs.items():
        tensor = np.ascontiguousarray(logits[name], np.float32)
        spec: dict = {"name": name, "datatype": OUTPUT_TYPE, "shape": list(tensor.shape)}
        if binary:
            spec["parameters"] = {"binary_data_size": tensor.nbytes}
            chunks.append(tensor.tobytes())
        else:
            spec["data"] = tensor.reshape(-1).tolist()
        outputs.append(spec)
    response = {"model_name": model, "model_version": version, "outputs": outputs}
    if request.id is not None:
        response["id"] = request.id
    header = json.dumps(response, separators=(",", ":")).encode()
    if not chunks:
        return header, {"Content-Type": "application/json"}
    return header + b"".join(chunks), {"Content-Type": "application/octet-stream",
                                       HEADER_LENGTH: str(len(header))}


def model_metadata(info: onnx_contract.ModelInfo, name: str, version: str) -> dict:
    """GET /v2/models/<name>: the tensors, with -1 for the batch axis, as Triton reports them."""
    size = info.input_size
    return {"name": name, "versions": [version], "platform": "onnxruntime_onnx",
            "inputs": [{"name": IMAGE, "datatype": INPUT_TYPES[IMAGE], "shape": [-1, 1, size, size]},
                       {"name": RAND, "datatype": INPUT_TYPES[RAND], "shape": [-1]}],
            "outputs": [{"name": DIGIT_LOGITS, "datatype": OUTPUT_TYPE, "shape": [-1, info.num_digits]},
                        {"name": SUM_LOGITS, "datatype": OUTPUT_TYPE, "shape": [-1, info.num_sums]}]}


def server_metadata() -> dict:
    """GET /v2."""
    return {"name": "digitsum-edge", "version": __version__, "extensions": ["binary_tensor_data"]}
