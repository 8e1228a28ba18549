"""LiteRT (TensorFlow Lite) behind the one door: a .tflite file written by `export --format litert`.

The file holds one signature per static batch size (`batch_1`, `batch_256`; the int8 file for TFLite Micro
only `batch_1`) with litert-torch's names: inputs args_0 (image, float32, or int8 with a scale and zero point)
and args_1 (rand, int32), outputs output_0 (digit logits) and output_1 (sum logits, int8 files dequantized
here). The contract travels inside the file as TFLite metadata (`onnx_contract.LITERT_METADATA`: the same
key/value pairs as an ONNX file's metadata_props), so the file alone is the model, also when serve sends
its bytes to a replica. `TfliteMicro` runs the int8 file through TFLite Micro's interpreter, for bench and
export's verification. Needs ai-edge-litert (`digitsum-edge[litert]`) or tflite-micro; never torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitsum_edge import extras, onnx_contract
from digitsum_edge.engine.backend import Backend, check_open
from digitsum_edge.errors import DigitsumError, first_line
from digitsum_edge.layout import DEFAULT_MODEL

IMAGE, RAND = onnx_contract.LITERT_INPUTS
DIGIT_LOGITS, SUM_LOGITS = onnx_contract.LITERT_OUTPUTS


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 in the block: LiteRT and TFLite Micro print from C ("Created TensorFlow Lite
    XNNPACK delegate", allocation failures), below Python, and a one-line error must stay one line."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def read_contract(data: bytes, source: str) -> onnx_contract.ModelInfo:
    """The digitsum-edge metadata embedded in a .tflite flatbuffer -> ModelInfo; one clear error otherwise."""
    props = embedded_metadata(data, source)
    if props is None:
        raise DigitsumError(f"{source} is not a digitsum-edge LiteRT model (no '{onnx_contract.LITERT_METADATA}' "
                            "metadata in the file)")
    return onnx_contract.parse(props, source)


def embedded_metadata(data: bytes, source: str) -> dict[str, str] | None:
    """The key/value pairs stored under LITERT_METADATA, None when the file has none."""
    from ai_edge_litert import schema_py_generated as schema

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise DigitsumError(f"{source} is not a readable LiteRT model (no TFLite flatbuffer identifier)")
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() != onnx_contract.LITERT_METADATA.encode():
                continue
            buffer = model.Buffers(entry.Buffer())
            # small buffers live inside the flatbuffer; large models keep them after it, at an offset
            raw = bytes(data[buffer.Offset():buffer.Offset() + buffer.Size()]) if buffer.Offset() > 1 else \
                buffer.DataAsNumpy().tobytes()
            props = json.loads(raw)
            if not isinstance(props, dict) or not all(isinstance(v, str) for v in props.values()):
                raise ValueError("not a JSON object of strings")
            return props
    except DigitsumError:
        raise
    except Exception as e:  # a cut or corrupt flatbuffer fails anywhere in the parser
        raise DigitsumError(f"{source} is not a readable LiteRT model ({first_line(e, 120)})") from None
    return None


@dataclass
class Signature:
    """One static-batch signature of a .tflite file, as the runtime sees it."""

    key: str
    batch: int
    image_quant: tuple[float, int] | None  # (scale, zero point) of an int8 image input; None for float32
    output_quant: dict[str, tuple[float, int]]  # per int8 output; empty for float32 outputs


def check_signatures(inputs: dict[str, dict[str, Any]], outputs: dict[str, dict[str, Any]], key: str,
                     info: onnx_contract.ModelInfo, source: str) -> Signature:
    """One signature's tensors must be the digitsum-edge contract (LiteRT names and dtypes)."""
    if tuple(inputs) != onnx_contract.LITERT_INPUTS or tuple(outputs) != onnx_contract.LITERT_OUTPUTS:
        raise DigitsumError(f"{source}: signature {key!r} has inputs {tuple(inputs)} and outputs {tuple(outputs)}, "
                            f"expected {onnx_contract.LITERT_INPUTS} and {onnx_contract.LITERT_OUTPUTS}")
    batch = int(inputs[IMAGE]["shape"][0])
    size = info.input_size
    image_type = np.int8 if info.precision == "int8" else np.float32
    expected = {IMAGE: (image_type, [batch, 1, size, size]), RAND: (np.int32, [batch]),
                DIGIT_LOGITS: (image_type, [batch, info.num_digits]), SUM_LOGITS: (image_type, [batch, info.num_sums])}
    for name, detail in {**inputs, **outputs}.items():
        dtype, shape = expected[name]
        if detail["dtype"] != dtype or list(detail["shape"]) != shape:
            raise DigitsumError(f"{source}: {name} of signature {key!r} is {np.dtype(detail['dtype']).name} "
                                f"{list(detail['shape'])}, expected {np.dtype(dtype).name} {shape} "
                                f"(metadata precision {info.precision})")

    def quant(detail: dict[str, Any]) -> tuple[float, int]:
        scale, zero = detail["quantization"]
        return float(scale), int(zero)

    int8 = info.precision == "int8"
    return Signature(key, batch, quant(inputs[IMAGE]) if int8 else None,
                     {name: quant(outputs[name]) for name in outputs} if int8 else {})


def quantize(image: np.ndarray, scale: float, zero: int) -> np.ndarray:
    """float32 normalised image -> int8 the way TFLite does it: round(x / scale) + zero point, saturated."""
    return np.clip(np.round(image / scale) + zero, -128, 127).astype(np.int8)


def dequantize(values: np.ndarray, quant: tuple[float, int] | None) -> np.ndarray:
    if quant is None:
        return np.asarray(values, np.float32)
    scale, zero = quant
    return ((values.astype(np.float32) - zero) * np.float32(scale)).astype(np.float32)


def run_in_chunks(call, signatures: list[Signature], image: np.ndarray,
                  rand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Any N rows through static signatures: the largest batch for full chunks, batch 1 for a few left over
    (fewer than a quarter of the largest), else the last chunk padded; `call(signature, image, rand32)`."""
    rand32 = rand.astype(np.int32)
    exact = next((s for s in signatures if s.batch == len(rand32)), None)
    if exact is not None:  # the common call (a camera frame, a full batch): one call, no copies
        return call(exact, image, rand32)
    by_batch = sorted(signatures, key=lambda s: s.batch)
    small, large = by_batch[0], by_batch[-1]
    digit_chunks, sum_chunks, start, n = [], [], 0, len(rand32)
    while start < n:
        left = n - start
        sig = large if left >= large.batch or (left * 4 > large.batch and small.batch == 1) else small
        if sig.batch > 1 and left < sig.batch:  # pad a static batch, drop the padding afterwards
            x = np.concatenate([image[start:], np.zeros((sig.batch - left, *image.shape[1:]), image.dtype)])
            r = np.concatenate([rand32[start:], np.zeros(sig.batch - left, np.int32)])
        else:
            x, r = image[start:start + sig.batch], rand32[start:start + sig.batch]
        digit_logits, sum_logits = call(sig, x, r)
        take = min(sig.batch, left)
        digit_chunks.append(digit_logits[:take])
        sum_chunks.append(sum_logits[:take])
        start += take
    return np.concatenate(digit_chunks), np.concatenate(sum_chunks)


def _check_provider(provider: str, runtime: str) -> None:
    if provider == "cuda":
        raise DigitsumError(f"--provider cuda: {runtime} runs .tflite files on the CPU here; use --provider cpu")


@dataclass
class LiteRT(Backend):
    """ai-edge-litert's interpreter on a checked digitsum-edge .tflite file (CPU, XNNPACK for float)."""

    interpreter: Any = None  # ai_edge_litert.interpreter.Interpreter
    signatures: list[Signature] = field(default_factory=list)
    runners: dict[str, Any] = field(default_factory=dict)  # one SignatureRunner per signature, made once
    runtime = "litert"

    def run(self, image: np.ndarray, rand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return run_in_chunks(self._call, self.signatures, image, rand)

    def _call(self, sig: Signature, image: np.ndarray, rand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        runner = self.runners.get(sig.key) or self.runners.setdefault(sig.key,
                                                                      self.interpreter.get_signature_runner(sig.key))
        x = quantize(image, *sig.image_quant) if sig.image_quant else np.ascontiguousarray(image, np.float32)
        out = runner(**{IMAGE: x, RAND: np.ascontiguousarray(rand, np.int32)})
        return (dequantize(out[DIGIT_LOGITS], sig.output_quant.get(DIGIT_LOGITS)),
                dequantize(out[SUM_LOGITS], sig.output_quant.get(SUM_LOGITS)))

    def reopen(self, threads: int) -> LiteRT:
        return open_litert(self.path, self.provider, threads)


def open_litert(path: str | os.PathLike, provider: str = "auto", threads: int | None = None) -> LiteRT:
    """Open and check a digitsum-edge .tflite file with LiteRT on the CPU, `threads` threads."""
    path = check_open(path, provider, threads, DEFAULT_MODEL)
    _check_provider(provider, "LiteRT")
    try:
        with quiet_stderr():
            from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise DigitsumError(f'{path.name} is a LiteRT model: it needs the litert extra: '
                            'pip install "digitsum-edge[litert]"') from None
    data = path.read_bytes()
    info = read_contract(data, str(path))
    try:
        with quiet_stderr():
            interpreter = Interpreter(model_content=data, num_threads=threads)
            signatures = interpreter.get_signature_list()
            checked = [check_signatures(runner.get_input_details(), runner.get_output_details(), key, info, str(path))
                       for key in signatures for runner in [interpreter.get_signature_runner(key)]]
            backend = LiteRT(info=info, provider="cpu", path=path, threads=threads, interpreter=interpreter,
                             signatures=checked)
            for sig in checked:  # allocate (and let XNNPACK announce itself) here, silenced
                backend._call(sig, np.zeros((sig.batch, 1, info.input_size, info.input_size), np.float32),
                              np.zeros(sig.batch, np.int32))
    except DigitsumError:
        raise
    except Exception as e:  # LiteRT raises ValueError/RuntimeError with its own words
        raise DigitsumError(f"{path} is not a readable LiteRT model ({first_line(e, 160)})") from None
    if not checked or min(s.batch for s in checked) != 1:
        raise DigitsumError(f"{path} has no batch-1 signature (signatures: {', '.join(signatures) or 'none'})")
    return backend


@dataclass
class TfliteMicro(Backend):
    """TFLite Micro's interpreter (the microcontroller runtime, here on x86) on a batch-1 int8 .tflite file,
    with the smallest tensor arena that allocates."""

    interpreter: Any = None  # tflite_micro's runtime.Interpreter
    signature: Signature | None = None
    arena_bytes: int = 0  # the tensor arena it runs in: the smallest that allocates (to 16 bytes)
    runtime = "tflite-micro"

    def run(self, image: np.ndarray, rand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.signature is not None
        return run_in_chunks(self._call, [self.signature], image, rand)

    def _call(self, sig: Signature, image: np.ndarray, rand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = quantize(image, *sig.image_quant) if sig.image_quant else np.ascontiguousarray(image, np.float32)
        self.interpreter.set_input(x, 0)
        self.interpreter.set_input(np.ascontiguousarray(rand, np.int32), 1)
        self.interpreter.invoke()
        return (dequantize(self.interpreter.get_output(0), sig.output_quant.get(DIGIT_LOGITS)),
                dequantize(self.interpreter.get_output(1), sig.output_quant.get(SUM_LOGITS)))

    def reopen(self, threads: int) -> TfliteMicro:
        return self  # one thread: a microcontroller has one core


def open_micro(path: str | os.PathLike, provider: str = "cpu", threads: int | None = None) -> TfliteMicro:
    """Open and check a digitsum-edge int8 .tflite file with TFLite Micro's interpreter (batch 1, one thread)."""
    path = check_open(path, provider, threads, DEFAULT_MODEL)
    _check_provider(provider, "TFLite Micro")
    try:
        with quiet_stderr():
            from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise DigitsumError(extras.needs("litert-export", "TFLite Micro")) from None
    data = path.read_bytes()
    info = read_contract(data, str(path))
    if info.precision != "int8":
        raise DigitsumError(f"{path} holds an {info.precision} model; TFLite Micro runs the int8 file")
    if subgraphs(data) != 1:  # TFLite Micro would allocate every signature's tensors (and may crash on them)
        raise DigitsumError(f"{path} has {subgraphs(data)} signatures; TFLite Micro runs a file with one (batch 1)")
    arena = smallest_arena(lambda size: runtime.Interpreter.from_bytes(data, arena_size=size), len(data), str(path))
    with quiet_stderr():
        interpreter = runtime.Interpreter.from_bytes(data, arena_size=arena)
    inputs = [interpreter.get_input_details(i) for i in range(len(onnx_contract.LITERT_INPUTS))]
    outputs = [interpreter.get_output_details(i) for i in range(len(onnx_contract.LITERT_OUTPUTS))]

    def as_litert(detail: dict) -> dict:
        q = detail["quantization_parameters"]
        return {"dtype": detail["dtype"], "shape": detail["shape"],
                "quantization": (float(q["scales"][0]), int(q["zero_points"][0])) if len(q["scales"]) else (0.0, 0)}

    sig = check_signatures(dict(zip(onnx_contract.LITERT_INPUTS, map(as_litert, inputs), strict=True)),
                           dict(zip(onnx_contract.LITERT_OUTPUTS, map(as_litert, outputs), strict=True)),
                           "batch_1", info, str(path))
    if sig.batch != 1:
        raise DigitsumError(f"{path}: TFLite Micro runs batch 1, the file's first signature takes {sig.batch}")
    return TfliteMicro(info=info, provider="cpu", path=path, threads=1, interpreter=interpreter, signature=sig,
                       arena_bytes=arena)


def smallest_arena(create, model_bytes: int, source: str, step: int = 16) -> int:
    """The smallest tensor arena (bytes, a multiple of `step`) in which `create(size)` allocates: a binary
    search between 1 KiB and 64x the model size; a file that allocates in none is one clear error."""
    def fits(size: int) -> bool:
        try:
            with quiet_stderr():
                create(size)
            return True
        except (RuntimeError, ValueError):
            return False

    low, high = 1024, max(64 * model_bytes, 1 << 20)
    if not fits(high):
        raise DigitsumError(f"{source}: TFLite Micro cannot run it (no arena up to {high:,} bytes allocates; an "
                            "operator it lacks, or more than one signature)")
    while high - low > step:
        mid = (low + high) // 2 // step * step
        if fits(mid):
            high = mid
        else:
            low = mid
    return high


def subgraphs(data: bytes) -> int:
    """How many subgraphs (one per signature) a checked .tflite flatbuffer holds."""
    from ai_edge_litert import schema_py_generated as schema

    return int(schema.Model.GetRootAs(data, 0).SubgraphsLength())


