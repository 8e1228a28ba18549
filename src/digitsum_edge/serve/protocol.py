"""What travels over HTTP, without HTTP: rand in a query string, batches of 28x28 images, and the Open
Inference Protocol (KServe v2, what Triton speaks) with Triton's binary tensor extension (image bodies: images.py).

numpy and json only: the service calls these, and tests call them without Ray. Every refusal is a
BadRequest, one line, which the service answers with HTTP 400 and {"error": "..."}.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np

from digitsum_edge import __version__, onnx_contract
from digitsum_edge.errors import InvalidInput

_RAND_QUERY = re.compile(r"^[0-9]+(,[0-9]+)*$")  # ASCII digits only: int() would take " 5", "+5" and "٥"
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


# ---- rand and batches of 28x28 images ------------------------------------------------------------------

def parse_rand(value: str | None, count: int, num_rand: int, rng: np.random.Generator) -> np.ndarray:
    """?rand=7 (one for all), ?rand=1,2,3 (one per image) or none (random, like `live` without --rand)."""
    if value is None or value == "":
        return rng.integers(0, num_rand, count).astype(np.int64)
    if not _RAND_QUERY.match(value) or len(value) > 8 * max(count, 1) + 8:
        raise BadRequest(f"rand must be an integer in 0-{num_rand - 1}, got {value[:40]!r}")
    values = [int(v) for v in value.split(",")]
    if max(values) >= num_rand:  # before numpy: 10**30 is out of range, not an int64 overflow
        raise BadRequest(f"rand must be an integer in 0-{num_rand - 1}, got {max(values)}"[:80])
    rands = np.array(values, np.int64)
    if len(rands) not in (1, count):
        raise BadRequest(f"rand must be one integer or one per image ({count}), got {len(rands)}")
    onnx_contract.check_rand(rands, num_rand)
    return np.broadcast_to(rands, (count,)).copy()


def parse_images(data: bytes, size: int, max_images: int) -> np.ndarray:
    """/v1/predict body: N images of size x size uint8 pixels, row-major, white digit on black -> (N, size, size)."""
    pixels = size * size
    if not data or len(data) % pixels:
        raise BadRequest(f"the body must be N x {size}x{size} uint8 pixels (a multiple of {pixels} bytes), "
                         f"got {len(data)} bytes")
    if len(data) // pixels > max_images:
        raise BadRequest(f"{len(data) // pixels:,} images in one request; at most {max_images:,} (--max-images)")
    return np.frombuffer(data, np.uint8).reshape(-1, size, size)


# ---- Open Inference Protocol (KServe v2) ---------------------------------------------------------------------

@dataclass
class InferRequest:
    """A v2 inference request, checked against the model: image (N, 1, S, S) float32, rand (N,) int64."""

    image: np.ndarray
    rand: np.ndarray
    id: str | None = None
    outputs: dict[str, bool] = field(default_factory=dict)  # output name -> binary data wanted, in order


def _parameters(spec: dict, where: str) -> dict:
    """A `parameters` object ({} when absent); anything but a JSON object is refused."""
    value = spec.get("parameters")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: parameters must be a JSON object, got {type(value).__name__}")
    return value


def _shape(spec: dict, name: object, limit: int) -> list[int]:
    """The declared shape, checked before anything is allocated: at most 4 dims, at most `limit` values."""
    shape = spec.get("shape")
    if not isinstance(shape, list) or len(shape) > 4 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise BadRequest(f"input {name!r}: shape must be a list of at most 4 non-negative integers, "
                         f"got {shape!r:.60}")
    count = 1
    for d in shape:  # Python integers: [2**32, 2**32] is refused here, not overflowed by numpy
        count *= d
        if count > limit:
            raise BadRequest(f"input {name!r}: shape {shape!s:.60} holds more than {limit:,} values")
    return shape


def _numbers(data: object, depth: int, integer: bool) -> list:
    """JSON data (flat, or nested at most `depth` lists deep) -> a flat list of numbers of the right type:
    integers for INT64 (3.7, "5" and true are refused), integers or floats for FP32 (true is refused)."""
    flat, level = data, 0
    while isinstance(flat, list) and flat and isinstance(flat[0], list):
        level += 1
        if level >= depth or not all(isinstance(row, list) for row in flat):
            raise BadRequest(f"data is nested deeper than its shape or unevenly ({level + 1} levels)")
        flat = [v for row in flat for v in row]
    if not isinstance(flat, list):
        raise BadRequest(f"data must be a list, got {type(flat).__name__}")
    allowed = {int} if integer else {int, float}
    kinds = set(map(type, flat))
    if not kinds <= allowed:
        wrong = sorted(k.__name__ for k in kinds - allowed)
        raise BadRequest(f"data must hold {'integers' if integer else 'numbers'} only, got {', '.join(wrong)}")
    return flat


def _tensor(spec: dict, binary: memoryview, offset: int, limit: int) -> tuple[np.ndarray, int]:
    """One input of the request: its data from JSON or from the binary section at `offset`."""
    name, datatype = spec.get("name"), spec.get("datatype")
    if datatype not in DTYPES:
        raise BadRequest(f"input {name!r}: unknown datatype {datatype!r}")
    shape = _shape(spec, name, limit)
    dtype = np.dtype(DTYPES[datatype])
    count = int(np.prod(shape, dtype=np.int64))  # at most `limit`
    size = _parameters(spec, f"input {name!r}").get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool):
            raise BadRequest(f"input {name!r}: binary_data_size must be an integer, got {size!r:.40}")
        if size != count * dtype.itemsize or offset + size > len(binary):
            raise BadRequest(f"input {name!r}: binary_data_size {size} does not match shape {shape} {datatype} "
                             f"({count * dtype.itemsize} bytes) or the body")
        return np.frombuffer(binary[offset:offset + size], dtype).reshape(shape), offset + size
    if "data" not in spec:
        raise BadRequest(f"input {name!r} has neither data nor parameters.binary_data_size")
    try:
        values = _numbers(spec["data"], max(len(shape), 1), dtype.kind in "iu")
        array = np.asarray(values, dtype)
    except BadRequest as e:
        raise BadRequest(f"input {name!r}: {e}") from None
    except (TypeError, ValueError, OverflowError):
        raise BadRequest(f"input {name!r}: data is not a list of {datatype} numbers") from None
    if array.size != count:
        raise BadRequest(f"input {name!r}: {array.size} values for shape {shape}")
    return array.reshape(shape), offset


def parse_infer(body: bytes, header_length: str | None, info: onnx_contract.ModelInfo,
                max_images: int) -> InferRequest:
    """The JSON request (and, with Inference-Header-Content-Length, the binary tensors after it) -> arrays."""
    try:
        split = len(body) if header_length is None else int(header_length)
    except ValueError:
        raise BadRequest(f"{HEADER_LENGTH} must be an integer, got {str(header_length)[:40]!r}") from None
    if not 0 < split <= len(body):
        raise BadRequest(f"{HEADER_LENGTH} {split} is outside the body ({len(body)} bytes)")
    try:
        request = json.loads(body[:split])
    except RecursionError:
        raise BadRequest("the inference request is nested too deeply") from None
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the inference request is not JSON") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise BadRequest('the inference request must be a JSON object with an "inputs" list')
    binary, offset, tensors = memoryview(body)[split:], 0, {}
    size = info.input_size
    limits = {IMAGE: max_images * size * size, RAND: max_images}
    for spec in request["inputs"]:
        if not isinstance(spec, dict) or spec.get("name") not in INPUT_TYPES or spec["name"] in tensors:
            raise BadRequest(f"inputs must be {' and '.join(INPUT_TYPES)}, once each; got "
                             f"{spec.get('name') if isinstance(spec, dict) else spec!r:.40}")
        if spec.get("datatype") != INPUT_TYPES[spec["name"]]:
            raise BadRequest(f"input {spec['name']!r} must be {INPUT_TYPES[spec['name']]}, "
                             f"got {spec.get('datatype')!r}")
        tensors[spec["name"]], offset = _tensor(spec, binary, offset, limits[spec["name"]])
    if set(tensors) != set(INPUT_TYPES):
        missing = sorted(set(INPUT_TYPES) - set(tensors))
        raise BadRequest(f"inputs must be {' and '.join(INPUT_TYPES)}; missing {missing}")
    image, rand = tensors[IMAGE], tensors[RAND]
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
    default = bool(_parameters(request, "the request").get("binary_data_output", False))
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
        parameters = _parameters(spec, f"output {name!r}")
        if parameters.get("classification"):
            raise BadRequest("the classification extension is not supported; ask for the logits")
        wanted[name] = bool(parameters.get("binary_data", default))
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
