"""Where training runs and in what precision: CUDA or CPU, bf16 autocast where the hardware has bf16 units."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from digitsum_edge.errors import DigitsumError
from digitsum_edge.train.config import PRECISIONS


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when usable, else cpu; 'cuda' without a usable GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DigitsumError("--device cuda: no usable CUDA device (torch.cuda.is_available() is False)")
    if name not in ("cpu", "cuda"):
        raise DigitsumError(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


# oneDNN's ISA levels that matter here, lowest first (ONEDNN_MAX_CPU_ISA names), and the class each one is.
_ONEDNN_LEVELS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
                  "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX", "AVX512_CORE_AMX",
                  "AVX10_1_512_AMX_FP16", "AVX512_CORE_AMX_FP16")


def _cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux; empty elsewhere)."""
    if not sys.platform.startswith("linux"):
        return set()
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return set()
    return set(flags.split(":", 1)[-1].split())


def _onednn_cap() -> int | None:
    """Index in _ONEDNN_LEVELS of the ONEDNN_MAX_CPU_ISA cap when one below ALL is set, else None."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "")).upper()
    return _ONEDNN_LEVELS.index(cap) if cap in _ONEDNN_LEVELS else None


def cpu_isa() -> str:
    """The CPU class training runs on: AMX, AVX-512 (+BF16 when it has it), AVX2 or older, with an
    ONEDNN_MAX_CPU_ISA cap applied (so `ONEDNN_MAX_CPU_ISA=AVX2` reports, and behaves as, AVX2)."""
    flags, cap = _cpu_flags(), _onednn_cap()
    level = len(_ONEDNN_LEVELS) if cap is None else cap
    if "amx_bf16" in flags and level >= _ONEDNN_LEVELS.index("AVX10_1_512_AMX"):
        return "AMX"
    if "avx512f" in flags and level >= _ONEDNN_LEVELS.index("AVX512_CORE"):
        bf16 = "avx512_bf16" in flags and level >= _ONEDNN_LEVELS.index("AVX512_CORE_BF16")
        return "AVX-512+BF16" if bf16 else "AVX-512"
    if "avx2" in flags and level >= _ONEDNN_LEVELS.index("AVX2"):
        return "AVX2"
    return "older than AVX2" if flags else "unknown"


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether to train under bf16 autocast: 'auto' where it is native and fast (CUDA with bf16, CPUs with AMX),
    'bf16'/'fp32' as asked. AVX512-BF16 alone does not pay: on a Xeon without AMX a step of the default model
    took 23.8 ms in bf16 against 19.0 ms in fp32 (2 threads, benchmarks/train_step.py)."""
    if precision not in PRECISIONS:
        raise DigitsumError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "fp32":
        return False
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_isa() == "AMX"
    if precision == "bf16" and device.type == "cuda" and not native:
        raise DigitsumError("--precision bf16: this GPU has no bf16 support")
    return precision == "bf16" or native


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the system.

    A CPU training step frees and allocates the same few-MB activations hundreds of times a second; with
    glibc's defaults many of them come back as fresh pages, and every page costs a fault and a zeroing by the
    kernel (the default model's 6.4 MB activations got pages of their own). Process-wide, for the training process;
    Linux with glibc only (elsewhere nothing happens). Returns whether the setting took.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    # blocks up to 32 MB (glibc's documented maximum) from the heap, and the heap's top kept up to 1 GB
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
