"""Reduced-precision variants of a verified fp32 file: int8 (static QDQ) and fp16."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx

from digitsum_edge import onnx_contract
from digitsum_edge.files import temp_name


def _calibration_reader(images: np.ndarray, rand: np.ndarray, mean: float, std: float, batch: int):
    from onnxruntime.quantization import CalibrationDataReader

    class Batches(CalibrationDataReader):
        """Feeds training images (normalised as the metadata says) with random rand, `batch` at a time: the
        quantizer runs the model itself, so this is the one feed built outside the runtime's backend."""

        def __init__(self) -> None:
            x = onnx_contract.normalize(images[:, None], mean, std)  # (K, 1, 28, 28) float32
            usable = len(x) - len(x) % batch
            self._feeds = iter([dict(zip(onnx_contract.INPUTS, (x[i:i + batch], rand[i:i + batch].astype(np.int64)),
                                         strict=True)) for i in range(0, usable, batch)])

        def get_next(self) -> dict | None:
            return next(self._feeds, None)

    return Batches()


@contextmanager
def work_folder(beside: Path) -> Iterator[Path]:
    """A hidden folder beside `beside`, named with this process id, that also holds onnxruntime's own
    temporary files: removed at the end, and swept by the next run if this one is killed."""
    folder = temp_name(beside, "work")
    folder.mkdir(parents=True)
    saved, tempfile.tempdir = tempfile.tempdir, str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(folder, ignore_errors=True)


def to_int8(fp32_path: str | os.PathLike, int8_path: str | os.PathLike, images: np.ndarray,
            rand: np.ndarray, mean: float, std: float, static_batch: int | None) -> None:
    """Static int8 quantization in QDQ format, per-channel weights, calibrated with MinMax.

    The digit reader (convs and its classifier) is quantized; the sum head (every node after the one
    that yields digit_logits, about 2k multiply-accumulates) stays fp32: 8 bits would blur exactly the
    close calls where digit and sum must agree, for no measurable gain.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with work_folder(Path(int8_path)) as tmp:
        prepared = tmp / "prepared.onnx"
        quant_pre_process(os.fspath(fp32_path), os.fspath(prepared), skip_symbolic_shape=True)
        model = onnx.load(prepared)
        names = [node.name for node in model.graph.node]
        digit_head = next(i for i, node in enumerate(model.graph.node) if onnx_contract.OUTPUTS[0] in node.output)
        # BatchNorm after a max-pool cannot be folded into the conv; its per-channel scale stays fp32 too
        # (the quantizer has no per-channel axis for a 1-D weight).
        norms = [node.name for node in model.graph.node if node.op_type == "BatchNormalization"]
        quantize_static(
            os.fspath(prepared), os.fspath(int8_path),
            _calibration_reader(images, rand, mean, std, static_batch or 64),
            quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8, nodes_to_exclude=names[digit_head + 1:] + norms, reduce_range=True,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})


def to_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """fp16 weights and arithmetic inside, fp32 inputs and outputs (so callers feed the same arrays)."""
    import onnx_ir
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = onnx_ir.from_proto(convert_float_to_float16(proto, keep_io_types=True))
    converted.graph.sort()  # the converter appends its input/output Casts out of topological order
    return onnx_ir.to_proto(converted)
