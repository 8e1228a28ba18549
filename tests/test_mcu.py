"""The C model on emulated microcontrollers: the files `export --format c` wrote for the tiny model, unchanged,
built with arm-none-eabi-gcc for each supported core and run under qemu-system-arm, give the host build's int8
outputs bit for bit; the figures (sizes, stack, instructions) come back. Skipped with a printed reason where the
Debian packages are missing (scripts/install-test-deps.sh installs them as root)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from digitsum_edge.export.mcu_run import missing_tools

MISSING = missing_tools() + [m for m in ("ai_edge_litert", "tflite_micro") if importlib.util.find_spec(m) is None]
if MISSING or shutil.which("cc") is None:
    reason = f"missing {', '.join(MISSING)}" if MISSING else "no C compiler (cc)"
    print(f"skip: the MCU tests cannot run here ({reason}; scripts/install-test-deps.sh installs them as root)")
    pytest.skip(f"the MCU tests cannot run here ({reason})", allow_module_level=True)

from digitsum_edge import mnist  # noqa: E402
from digitsum_edge.export.c_export import run as export_c  # noqa: E402
from digitsum_edge.export.c_host import HostModel  # noqa: E402
from digitsum_edge.export.config import ExportConfig  # noqa: E402
from digitsum_edge.export.mcu import CORES  # noqa: E402
from digitsum_edge.export.mcu_run import STACK_BYTES, build, run  # noqa: E402

IMAGES = 6  # rand i % 10 for image i


@pytest.fixture(scope="module")
def c_source(tiny_litert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mcu") / "digitsum_model.c"
    export_c(ExportConfig(checkpoint=str(tiny_litert / "model.int8.tflite"), format="c", out=str(out),
                          verify_images=10))
    return out


@pytest.fixture(scope="module")
def host(c_source: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    images = mnist.load("test").images[:IMAGES]
    logits = HostModel(c_source, tmp_path_factory.mktemp("host")).logits(images, 10, 10, 19)
    rands = np.arange(IMAGES) % 10
    return logits.digit[np.arange(IMAGES), rands], logits.sum[np.arange(IMAGES), rands]


@pytest.mark.parametrize("core", list(CORES))
def test_the_same_c_files_run_bit_exact_on_each_core(core: str, c_source: Path, host: tuple[np.ndarray, np.ndarray],
                                                     tmp_path: Path) -> None:
    before = c_source.read_bytes()
    firmware = build(CORES[core], c_source, tmp_path)
    result = run(firmware, mnist.load("test").images[:IMAGES], tmp_path, timeout=120)
    assert c_source.read_bytes() == before  # built as written
    assert np.array_equal(result.digit, host[0]) and np.array_equal(result.sum, host[1])
    sizes = firmware.sizes()
    assert 10_000 < sizes["model_text"] < 80 * 1024 and 1_000 < sizes["model_bss"] < 32 * 1024
    assert 64 < result.stack_peak_bytes < STACK_BYTES
    assert np.all((result.instructions > 300_000) & (result.instructions < 20_000_000))  # the tiny model: ~2.8 M
    assert abs(result.calibration - 1e9 / CORES[core].clock_hz) < 0.05


def test_the_m4_build_uses_the_dsp_instructions_and_the_steps_add_up(c_source: Path, tmp_path: Path) -> None:
    """The ACLE path is the one compiled for the M4 (SMLAD in the code), and the per-step timing build's steps
    add up to its whole call."""
    firmware = build(CORES["cortex-m4"], c_source, tmp_path, layer_hook=True)
    listing = subprocess.run(["arm-none-eabi-objdump", "-d", str(firmware.model_object)], capture_output=True,
                             text=True, check=True).stdout
    assert "smlad" in listing and "sxtb16" in listing
    result = run(firmware, mnist.load("test").images[:1], tmp_path, timeout=120)
    names = [name for name, _ in result.steps]
    assert names[0] == "conv1" and names[-1] == "sum_table" and "classifier" in names
    assert abs(sum(count for _, count in result.steps) - int(result.instructions[0])) < 2_000
