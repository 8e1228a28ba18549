"""Where training runs and in what precision: CUDA or CPU, bf16 autocast where the hardware has bf16 units."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from digitsum_edge.errors import DigitsumError

PRECISIONS = ("auto", "bf16", "fp32")


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when usable, else cpu; 'cuda' without a usable GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DigitsumError("--device cuda: no usable CUDA device (torch.cuda.is_available() is False)")
    if name not in ("cpu", "cuda"):
        raise DigitsumError(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """The CPU computes bf16 natively (AVX512-BF16 or AMX-BF16: recent Xeon, AMD Zen 4 and later); Linux only."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether to train under bf16 autocast: 'auto' where it is native and fast, 'bf16'/'fp32' as asked."""
    if precision not in PRECISIONS:
        raise DigitsumError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "fp32":
        return False
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_bf16()
    if precision == "bf16" and device.type == "cuda" and not native:
        raise DigitsumError("--precision bf16: this GPU has no bf16 support")
    return precision == "bf16" or native
