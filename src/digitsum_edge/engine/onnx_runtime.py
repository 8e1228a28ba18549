"""The ONNX Runtime backend: choose the provider, check the file is a digitsum-edge model, run it.

Needs only the .onnx file and its metadata_props, never training code or torch.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digitsum_edge import onnx_contract
from digitsum_edge.engine.backend import Backend, check_open
from digitsum_edge.errors import DigitsumError, first_line
from digitsum_edge.layout import DEFAULT_MODEL

_ORT_NAMES = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
# Full fp32 on CUDA: the provider's default TF32 convolutions round inputs to 10 mantissa bits and move logits by
# about 1e-3, over the fp32 file's tolerance (onnx_contract.FP32_TOLERANCE) that export and bench check.
CUDA_OPTIONS = {"use_tf32": "0"}


@dataclass
class OnnxRuntime(Backend):
    """An onnxruntime session on a checked digitsum-edge model, on the provider it really runs on."""

    session: Any = None  # onnxruntime.InferenceSession
    runtime = "onnxruntime"

    def run(self, image: np.ndarray, rand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        digit_logits, sum_logits = self.session.run(list(onnx_contract.OUTPUTS),
                                                    {onnx_contract.INPUTS[0]: image, onnx_contract.INPUTS[1]: rand})
        return digit_logits, sum_logits

    def reopen(self, threads: int) -> OnnxRuntime:
        reopened = open_onnx(self.path, self.provider, threads)
        if reopened.provider != self.provider:
            raise DigitsumError(f"{self.path}: onnxruntime opened it on {reopened.provider}, not {self.provider}")
        return reopened


def _quiet_ort():
    """Import onnxruntime with its logger at errors-only (warnings about providers are noise here)."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    return ort


def _options(ort, threads: int | None, severity: int = 3):
    options = ort.SessionOptions()
    options.log_severity_level = severity
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


# A one-node ONNX graph, Y = X + X on float32 (1,), opset 13, to try the CUDA provider without a model file.
# Serialised once with onnx.helper (make_graph / make_model); stored as bytes so the runtime needs no onnx.
_PROBE_MODEL = base64.b64decode("CAg6PgoOCgFYCgFYEgFZIgNBZGQSCmN1ZGFfcHJvYmVaDwoBWBIKCggIARIECgIIAWIPCgFZ"
                                "EgoKCAgBEgQKAggBQgQKABAN")


def _preload_cuda_libraries(ort) -> None:
    """Load the CUDA and cuDNN libraries of NVIDIA's wheels (what torch installs) where onnxruntime can use them.

    onnxruntime-gpu finds them by itself only through the library path or beside its own package; with
    onnxruntime installed elsewhere (pip --target, a second site folder) every nvidia/cu*/lib and
    nvidia/cudnn/lib folder on sys.path is tried too. Quiet: a machine without them simply stays without CUDA.
    """
    preload = getattr(ort, "preload_dlls", None)  # onnxruntime-gpu 1.21 and later
    if preload is None or not sys.platform.startswith("linux"):
        return
    folders: list[str | None] = [None]  # None: beside onnxruntime, then the default search path
    for entry in sys.path:
        for pattern in ("nvidia/cu[0-9]*/lib", "nvidia/cudnn/lib"):
            folders += [str(p) for p in sorted(Path(entry or ".").glob(pattern)) if p.is_dir()]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for folder in folders:
            with contextlib.suppress(Exception):
                preload(directory=folder)


@functools.cache
def cuda_usable() -> bool:
    """True only if onnxruntime can really create and run a CUDA session here (answer cached).

    onnxruntime-gpu lists CUDAExecutionProvider even without libcuda/cuDNN, then prints red errors and
    silently falls back to CPU; so try it once with logging silenced and look at what the session got.
    """
    import numpy as np

    ort = _quiet_ort()
    if _ORT_NAMES["cuda"] not in ort.get_available_providers():
        return False
    _preload_cuda_libraries(ort)
    ort.set_default_logger_severity(4)  # fatal only while probing: a missing libcublas is expected here
    try:
        session = ort.InferenceSession(_PROBE_MODEL, _options(ort, 1, severity=4), providers=_providers("cuda"))
        if session.get_providers()[0] != _ORT_NAMES["cuda"]:
            return False
        session.run(None, {"X": np.ones(1, np.float32)})
        return True
    except Exception:  # any failure to create or run means: not usable
        return False
    finally:
        ort.set_default_logger_severity(3)


def _providers(chosen: str) -> list:
    """onnxruntime's provider list for 'cuda' (with CUDA_OPTIONS, the CPU behind it) or 'cpu'."""
    if chosen == "cuda":
        return [(_ORT_NAMES["cuda"], CUDA_OPTIONS), _ORT_NAMES["cpu"]]
    return [_ORT_NAMES["cpu"]]


def open_onnx(path: str | os.PathLike, provider: str = "auto", threads: int | None = None) -> OnnxRuntime:
    """Open and check a digitsum-edge .onnx file on `provider` (auto | cuda | cpu) with `threads` threads."""
    path = check_open(path, provider, threads, DEFAULT_MODEL)
    notes: list[str] = []
    chosen = provider
    if provider == "cuda" and not cuda_usable():
        raise DigitsumError("--provider cuda: onnxruntime cannot create a CUDA session on this machine "
                            "(no GPU, or CUDA/cuDNN libraries missing); use --provider cpu")
    if provider == "auto":
        chosen = "cuda" if cuda_usable() else "cpu"
        if chosen == "cpu" and _ORT_NAMES["cuda"] in _quiet_ort().get_available_providers():
            notes.append("CUDA is not usable here (no GPU or CUDA libraries); running on the CPU")
    ort = _quiet_ort()
    try:
        session = ort.InferenceSession(os.fspath(path), _options(ort, threads), providers=_providers(chosen))
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        reason = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", first_line(e, 400))  # onnxruntime's own words
        raise DigitsumError(f"{path} is not a readable ONNX model ({reason[:160]})") from None
    if chosen == "cuda" and session.get_providers()[0] != _ORT_NAMES["cuda"]:  # ORT falls back silently
        if provider == "cuda":
            raise DigitsumError(f"onnxruntime could not run {path} on CUDA; use --provider cpu")
        chosen = "cpu"
        notes.append(f"onnxruntime could not run {path.name} on CUDA; running on the CPU")
    info = onnx_contract.parse(session.get_modelmeta().custom_metadata_map, str(path))
    onnx_contract.check_session(session, info, str(path))
    batch = session.get_inputs()[0].shape[0]
    return OnnxRuntime(info=info, provider=chosen, path=path, threads=threads, notes=notes,
                       static_batch=batch if isinstance(batch, int) else None, session=session)
