"""Export options: one dataclass, defaults in one place, each field a CLI option."""

from __future__ import annotations

from dataclasses import dataclass

from digitsum_edge import onnx_contract

# --format: the file each writes by default (beside the checkpoint); litert-int8 is litert with --int8
FORMATS = {"onnx": ".onnx", "litert": ".tflite", "litert-int8": ".tflite", "c": ".c"}  # c: from the int8 .tflite


@dataclass
class ExportConfig:
    checkpoint: str  # model.pt written by `digitsum-edge train`
    out: str | None = None  # the fp32 file; default: beside the checkpoint, same name, the format's suffix
    format: str = "onnx"  # onnx | litert (.tflite for LiteRT and TFLite Micro) | litert-int8 (= litert --int8)
    # Opset 18: the dynamo exporter's native opset (no version conversion pass), run by every
    # onnxruntime since 1.14 and understood by onnxsim and the quantization tools.
    opset: int = 18
    static_batch: int | None = None  # fix the batch axis to N (runtimes that want static shapes)
    simplify: bool = True  # run onnxsim after export
    # also write OUT.int8.onnx (static QDQ, calibrated on training images); with litert OUT.int8.tflite, full
    # integer for TFLite Micro, and its C array (OUT_data.cc / .h)
    int8: bool = False
    fp16: bool = False  # also write OUT.fp16.onnx: fp16 weights and compute, fp32 inputs/outputs (for CUDA)
    calibration_images: int = 512  # training images (each with a random rand) for int8 calibration
    verify_images: int = 10000  # test images compared with PyTorch, each with every rand 0-9
    tolerance: float = onnx_contract.FP32_TOLERANCE  # largest allowed absolute logit difference for fp32
    data_dir: str | None = None  # MNIST folder for verification/calibration; default: the package's copy
    json: str | None = None  # also write the summary (files, verification figures) as JSON here
    triton: str | None = None  # also write a Triton model repository here (DIR/digitsum/config.pbtxt, 1/model.onnx)
    force: bool = False  # replace existing output files
    core: str = "cortex-m4"  # --format c: the microcontroller named in the generated files (export/mcu.py)
