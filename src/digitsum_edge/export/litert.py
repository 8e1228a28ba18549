"""`export --format litert`: PyTorch -> .tflite with litert-torch, the contract embedded, verified like ONNX.

    model.tflite        fp32, signatures batch_1 and batch_256 (LiteRT: phones, Linux boards)
    model.int8.tflite   --int8: full integer (int8 weights and activations, int8 image input), batch_1 only,
                        calibrated on training images; verified with LiteRT and with TFLite Micro's interpreter
    model_data.cc / .h  --int8: the int8 file as a C array, the form microcontroller firmware compiles in

Each file is verified on the exhaustive pairs against PyTorch with the one verdict (onnx_contract.check_exported)
before it is renamed into place; the int8 files are published only once all of them passed.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from digitsum_edge import onnx_contract
from digitsum_edge.engine.litert import open_litert, open_micro, quiet_stderr
from digitsum_edge.errors import DigitsumError, first_line
from digitsum_edge.export.config import ExportConfig
from digitsum_edge.export.results import ExportResult, Prepared, Written, log_comparison
from digitsum_edge.export.verify import Comparison, compare
from digitsum_edge.files import atomic_path, check_writable, temp_name
from digitsum_edge.model import DigitSumNet

log = logging.getLogger(__name__)
C_ARRAY = "g_digitsum_model_data"  # the array's name in model_data.cc / .h


def c_array_paths(fp32: Path) -> tuple[Path, Path]:
    """runs/model.tflite -> runs/model_data.cc, runs/model_data.h."""
    return fp32.with_name(f"{fp32.stem}_data.cc"), fp32.with_name(f"{fp32.stem}_data.h")


def check_outputs(paths: dict[str, Path], *, force: bool) -> None:
    """Before any work: the C array files of --int8 are not replaced without --force."""
    if "int8" in paths:
        for path in c_array_paths(paths["fp32"]):
            check_writable(path, force=force)


def convert(model: DigitSumNet, batches: tuple[int, ...]) -> bytes:
    """litert-torch conversion of the eval-mode model, one static signature `batch_N` per batch size."""
    with _converter_quiet():
        import litert_torch

    model = model.eval()
    converter = None
    for batch in batches:
        sample = (torch.zeros(batch, 1, onnx_contract.IMAGE_SIZE, onnx_contract.IMAGE_SIZE),
                  torch.arange(batch, dtype=torch.int64) % model.config.num_rand)
        with torch.no_grad():
            model(*sample)  # warm-up: any error shows here, as a PyTorch error, before the converter
        converter = (converter or litert_torch).signature(f"batch_{batch}", model, sample)
    assert converter is not None
    with _converter_quiet():
        return bytes(converter.convert().model_content())


@contextlib.contextmanager
def _converter_quiet():
    """litert-torch and ai-edge-quantizer print progress bars and warnings (rand: int64 -> int32, which the
    runtime backend maps) on stdout, stderr and from C: silenced, the log says what is being done."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()), quiet_stderr():
        warnings.simplefilter("ignore")
        saved = logging.root.level
        logging.root.setLevel(logging.ERROR)
        try:
            yield
        finally:
            logging.root.setLevel(saved)


def embed(data: bytes, info: onnx_contract.ModelInfo) -> bytes:
    """The .tflite flatbuffer with the digitsum-edge contract as TFLite metadata (replacing an older copy)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(onnx_contract.metadata_props(info)).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = onnx_contract.LITERT_METADATA, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != onnx_contract.LITERT_METADATA.encode()]
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def quantize_int8(float_batch1: bytes, images: np.ndarray, info: onnx_contract.ModelInfo) -> bytes:
    """Full-integer static quantization with ai-edge-quantizer (int8 weights per channel, int8 activations
    calibrated with min/max on `images`, each with a random rand): the image input and the logits become int8."""
    from ai_edge_quantizer import quantizer, recipe

    x = onnx_contract.normalize(images[:, None], info.mean, info.std)  # (K, 1, 28, 28) float32
    rand = np.random.default_rng(0).integers(0, info.num_rand, len(x)).astype(np.int32)
    samples = [{onnx_contract.LITERT_INPUTS[0]: x[i:i + 1], onnx_contract.LITERT_INPUTS[1]: rand[i:i + 1]}
               for i in range(len(x))]
    with _converter_quiet():
        q = quantizer.Quantizer(bytearray(float_batch1), recipe.static_wi8_ai8())
        result = q.quantize(q.calibrate({"batch_1": samples}, num_threads=1))
    return bytes(result.quantized_model)


def operators(data: bytes) -> int:
    """Operators in the first subgraph (what one call runs)."""
    from ai_edge_litert import schema_py_generated as schema

    return int(schema.Model.GetRootAs(data, 0).Subgraphs(0).OperatorsLength())


def operator_kinds(data: bytes) -> list[str]:
    """The builtin operator kinds a file uses (what firmware registers with TFLite Micro), e.g. CONV_2D."""
    from ai_edge_litert import schema_py_generated as schema

    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    model = schema.Model.GetRootAs(data, 0)
    return sorted({names.get(model.OperatorCodes(i).BuiltinCode(), str(model.OperatorCodes(i).BuiltinCode()))
                   for i in range(model.OperatorCodesLength())})


def write_litert(cfg: ExportConfig, paths: dict[str, Path], p: Prepared) -> ExportResult:
    """The fp32 .tflite (verified), then with --int8 the int8 file (LiteRT and TFLite Micro) and its C array."""
    info = replace(p.info, versions={**p.info.versions, **_converter_versions()})
    log.info(f"converting with litert-torch: signatures batch_1 and batch_{onnx_contract.LITERT_BATCH}")
    data = embed(_converted(p.model, (1, onnx_contract.LITERT_BATCH)), info)
    written: list[Written] = []
    with atomic_path(paths["fp32"]) as tmp:
        tmp.write_bytes(data)
        result = compare(tmp, p.reference, p.images, p.labels, backend=open_litert(tmp, "cpu"))
        verdict = result.verdict(paths["fp32"], "fp32", tolerance=cfg.tolerance)
        log_comparison("verified on LiteRT (CPU)", result, verdict)
        verdict.require()
        written.append(Written(paths["fp32"], "fp32", len(data), operators(data), result, verdict,
                               {"signatures": ["batch_1", f"batch_{onnx_contract.LITERT_BATCH}"]}))
        if "int8" in paths:
            written += _write_int8(paths, p, info, result)
    return ExportResult(written, written[0].nodes, None, None, p.torch_metrics, 0.0, p.notes, format="litert")


def _converted(model: DigitSumNet, batches: tuple[int, ...]) -> bytes:
    try:
        return convert(model, batches)
    except Exception as e:  # the converter's own failure: one line, nothing written
        raise DigitsumError(f"litert-torch could not convert the model: {first_line(e, 200)}") from None


def _converter_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("litert-torch", "ai-edge-litert", "ai-edge-quantizer"):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def _write_int8(paths: dict[str, Path], p: Prepared, info: onnx_contract.ModelInfo,
                fp32: Comparison) -> list[Written]:
    """int8 .tflite and its C array under hidden names, verified with LiteRT and TFLite Micro, then published."""
    assert p.calibration is not None  # loaded (and checked) before any work
    int8_info = replace(info, precision="int8")
    log.info(f"int8: converting batch_1 and quantizing, calibrated on {len(p.calibration):,} training images")
    data = embed(quantize_int8(_converted(p.model, (1,)), p.calibration, info), int8_info)
    source, header = c_array_paths(paths["fp32"])
    staged = {path: temp_name(path, "verified") for path in (paths["int8"], source, header)}
    try:
        with atomic_path(staged[paths["int8"]]) as tmp:
            tmp.write_bytes(data)
            lite = compare(tmp, p.reference, p.images, p.labels, backend=open_litert(tmp, "cpu"))
            lite_verdict = lite.verdict(f"{paths['int8']} (LiteRT)", "int8", fp32.metrics)
            log_comparison(f"int8 on LiteRT (fp32: digit {fp32.metrics['digit_accuracy']:.2%}, sum "
                           f"{fp32.metrics['sum_accuracy']:.2%})", lite, lite_verdict)
            micro_backend = open_micro(tmp)
            pairs = len(p.images) * p.info.num_rand
            started = time.perf_counter()
            micro_backend.logits(p.images[:10], 0)  # a sample, for the time the whole run will take
            log.info(f"int8 on TFLite Micro: tensor arena {micro_backend.arena_bytes:,} bytes; {pairs:,} pairs one "
                     f"at a time, about {(time.perf_counter() - started) / 10 * pairs:,.0f} s")
            micro = compare(tmp, p.reference, p.images, p.labels, backend=micro_backend)
            micro_verdict = micro.verdict(f"{paths['int8']} (TFLite Micro)", "int8", fp32.metrics)
            log_comparison("int8 on TFLite Micro", micro, micro_verdict)
            failures = lite_verdict.failures + micro_verdict.failures
            if failures:  # every failure of both runtimes in one line
                raise DigitsumError(f"verification failed for {paths['int8']}: {'; '.join(failures)}")
        arena = micro_backend.arena_bytes
        with atomic_path(staged[source]) as tmp:
            tmp.write_text(c_source(data, header.name))
        with atomic_path(staged[header]) as tmp:
            tmp.write_text(c_header(data, int8_info, micro_backend, arena))
        for final, hidden in staged.items():
            hidden.rename(final)
    except BaseException:
        for hidden in staged.values():
            hidden.unlink(missing_ok=True)
        raise
    extra = {"signatures": ["batch_1"], "tflite_micro": {**micro.to_dict(), "verdict": micro_verdict.to_dict(),
                                                         "arena_bytes": arena},
             "c_array": {"source": str(source), "header": str(header), "bytes": len(data)}}
    log.info(f"wrote {source.name} and {header.name}: a {len(data):,}-byte array, tensor arena {arena:,} bytes")
    return [Written(paths["int8"], "int8", len(data), operators(data), lite, lite_verdict, extra)]


def c_source(data: bytes, header: str) -> str:
    """The model bytes as a 16-byte-aligned C array (TFLite Micro reads the flatbuffer in place)."""
    rows = [", ".join(f"0x{b:02x}" for b in data[i:i + 12]) for i in range(0, len(data), 12)]
    return (f'// The digitsum-edge int8 model ({len(data):,} bytes), written by `digitsum-edge export --format litert '
            f'--int8`.\n#include "{header}"\n\nalignas(16) const unsigned char {C_ARRAY}[] = {{\n  '
            + ",\n  ".join(rows) + f"\n}};\nconst unsigned int {C_ARRAY}_len = {len(data)};\n")


def c_header(data: bytes, info: onnx_contract.ModelInfo, micro, arena: int) -> str:
    """Declarations, and what firmware needs to call the model: input layout, quantization, rand, arena."""
    sig = micro.signature
    scale, zero = sig.image_quant
    (d_scale, d_zero), (s_scale, s_zero) = (sig.output_quant[n] for n in onnx_contract.LITERT_OUTPUTS)
    guard = "DIGITSUM_MODEL_DATA_H_"
    return f"""// The digitsum-edge int8 model for TFLite Micro (`digitsum-edge export --format litert --int8`).
// Input 0 (image): int8 [1, 1, {info.input_size}, {info.input_size}], row-major, a white digit on black:
//   q = round(((pixel / 255 - {info.mean!r}) / {info.std!r}) / {scale!r}) + ({zero}), clamped to -128..127
// Input 1 (rand): int32 [1], 0-{info.num_rand - 1}.
// Output 0 (digit logits): int8 [1, {info.num_digits}], logit = (q - ({d_zero})) * {d_scale!r}
// Output 1 (sum logits): int8 [1, {info.num_sums}], logit = (q - ({s_zero})) * {s_scale!r}; sum = digit + rand
// Operators to register ({len(operator_kinds(data))}): {", ".join(operator_kinds(data))}
// Tensor arena: {arena:,} bytes measured with TFLite Micro's interpreter on x86 (the smallest that allocates);
// add a margin on a device. Weights fingerprint {info.weights_sha256[:16]}.
#ifndef {guard}
#define {guard}

constexpr int kDigitsumArenaBytes = {arena};
constexpr float kDigitsumInputScale = {scale!r}f;
constexpr int kDigitsumInputZeroPoint = {zero};
extern const unsigned char {C_ARRAY}[];
extern const unsigned int {C_ARRAY}_len;  // {len(data)}

#endif  // {guard}
"""
