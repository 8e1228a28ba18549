"""The generated C model on an emulated microcontroller: the same NAME.c and NAME.h, unchanged, built with
arm-none-eabi-gcc for a core of export/mcu.py's table with the project's own startup code, linker script and
harness (export/mcu_files/), then run under qemu-system-arm with semihosting and `-icount shift=0`.

QEMU executes the instructions; it does not model a core's timing. The figures are instructions (one per
nanosecond of virtual time under -icount shift=0, read from SysTick, so to its resolution: 40 instructions at
25 MHz), and memory from arm-none-eabi-size and a painted stack; never cycles or milliseconds.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np

from digitsum_edge.errors import DigitsumError
from digitsum_edge.export.mcu import Core

TOOLS = {"arm-none-eabi-gcc": "gcc-arm-none-eabi", "arm-none-eabi-size": "binutils-arm-none-eabi",
         "qemu-system-arm": "qemu-system-arm"}  # command -> the Debian package that has it
MCU_FLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections")
STACK_BYTES = 8192  # reserved for the harness; the peak actually used is measured


def missing_tools() -> list[str]:
    """The Debian packages missing for the cross-build and the emulated run (empty: all there)."""
    return sorted({package for command, package in TOOLS.items() if shutil.which(command) is None})


@dataclass
class Firmware:
    core: Core
    elf: Path
    model_object: Path  # NAME.c alone, compiled as firmware would (no hook)
    layer_hook: bool  # built with DIGITSUM_LAYER_HOOK timing each step

    def sizes(self) -> dict[str, int]:
        """text, data and bss of the model object and of the whole image (arm-none-eabi-size, Berkeley format)."""
        return {**{f"model_{k}": v for k, v in _size(self.model_object).items()},
                **{f"image_{k}": v for k, v in _size(self.elf).items()}}


@dataclass
class McuRun:
    digit: np.ndarray  # (N, 10) int8, image i with rand i % 10
    sum: np.ndarray  # (N, 19) int8
    instructions: np.ndarray  # (N,) instructions per call of digitsum_run
    steps: list[tuple[str, int]] = field(default_factory=list)  # (layer, instructions) of the first call
    stack_peak_bytes: int = 0
    calibration: float = 0.0  # instructions per SysTick tick measured on a loop of known length


def _size(path: Path) -> dict[str, int]:
    done = subprocess.run(["arm-none-eabi-size", "-B", str(path)], capture_output=True, text=True, check=True)
    text, data, bss = (int(v) for v in done.stdout.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def _compile(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise DigitsumError(f"arm-none-eabi-gcc failed: {(done.stderr or done.stdout).strip()[:400]}")


def build(core: Core, source: Path, workdir: Path, *, layer_hook: bool = False) -> Firmware:
    """NAME.c (its header beside it) + startup + harness -> an ELF for `core`'s QEMU board."""
    if missing_tools():
        raise DigitsumError(f"the MCU build needs {', '.join(missing_tools())} (apt-get install)")
    kit = files("digitsum_edge.export").joinpath("mcu_files")
    workdir.mkdir(parents=True, exist_ok=True)
    script = kit.joinpath("link.ld").read_text()
    for key, value in {"FLASH_ORIGIN": core.flash[0], "FLASH_LENGTH": core.flash[1], "RAM_ORIGIN": core.ram[0],
                       "RAM_LENGTH": core.ram[1], "STACK_BYTES": STACK_BYTES}.items():
        script = script.replace(f"@{key}@", hex(value))
    (workdir / "link.ld").write_text(script)
    for name in ("startup.c", "harness.c", "hook.h"):
        (workdir / name).write_text(kit.joinpath(name).read_text())
    gcc = ["arm-none-eabi-gcc", *core.flags, *MCU_FLAGS, f"-I{source.parent}"]
    model = workdir / "model.o"
    _compile([*gcc, "-c", str(source), "-o", str(model)])
    objects = [workdir / "startup.o", workdir / "harness.o"]
    bare = [*gcc, "-ffreestanding", "-fno-tree-loop-distribute-patterns"]  # no libc: no calls to strlen, memcpy
    _compile([*bare, "-c", str(workdir / "startup.c"), "-o", str(objects[0])])
    _compile([*bare, "-c", str(workdir / "harness.c"), "-o", str(objects[1])])
    linked = model
    if layer_hook:
        linked = workdir / "model_hooked.o"
        _compile([*gcc, "-include", str(workdir / "hook.h"), "-c", str(source), "-o", str(linked)])
    elf = workdir / ("harness_layers.elf" if layer_hook else "harness.elf")
    _compile([*gcc, "-nostdlib", "-T", str(workdir / "link.ld"), "-Wl,--gc-sections", "-o", str(elf), str(linked),
              *map(str, objects), "-lgcc"])
    return Firmware(core, elf, model, layer_hook)


def run(firmware: Firmware, images: np.ndarray, workdir: Path, timeout: float = 3600) -> McuRun:
    """The firmware under qemu-system-arm on (N, 28, 28) uint8 images (image i with rand i % 10)."""
    core = firmware.core
    pixels = np.ascontiguousarray(images, np.uint8)
    (workdir / "images.bin").write_bytes(np.int32(len(pixels)).tobytes() + pixels.tobytes())
    for name in ("outputs.bin", "stats.txt"):
        (workdir / name).unlink(missing_ok=True)
    command = ["qemu-system-arm", "-machine", core.machine, "-cpu", core.name, "-nographic", "-monitor", "none",
               "-serial", "none", "-icount", "shift=0", "-semihosting-config", "enable=on,target=native",
               "-kernel", str(firmware.elf)]
    try:
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DigitsumError(f"{core.machine}: no answer within {timeout:.0f} s") from None
    if done.returncode != 0 or not (workdir / "outputs.bin").exists():
        raise DigitsumError(f"{core.machine}: the firmware failed (exit {done.returncode}) "
                            f"{(done.stderr or done.stdout).strip()[:200]}")
    width = 10 + 19 + 4
    raw = np.frombuffer((workdir / "outputs.bin").read_bytes(), np.uint8)
    if raw.size != len(pixels) * width:
        raise DigitsumError(f"{core.machine}: {raw.size // width} of {len(pixels)} images came back")
    raw = raw.reshape(len(pixels), width)
    stats = [line.split() for line in (workdir / "stats.txt").read_text().splitlines()]
    values = {parts[0]: int(parts[-1]) for parts in stats if parts[0] != "step"}
    per_tick = 1e9 / core.clock_hz  # -icount shift=0: one instruction per nanosecond
    calibration = values["calibration_instructions"] / max(values["calibration_ticks"], 1)
    if abs(calibration / per_tick - 1) > 0.01:
        raise DigitsumError(f"{core.machine}: SysTick counts {calibration:.2f} instructions per tick, expected "
                            f"{per_tick:.2f}: the instruction counts would be wrong")
    ticks = raw[:, 29:].copy().view("<u4").reshape(-1)
    return McuRun(raw[:, :10].view(np.int8).copy(), raw[:, 10:29].view(np.int8).copy(),
                  np.round(ticks * per_tick).astype(np.int64),
                  [(parts[1], round(int(parts[2]) * per_tick)) for parts in stats if parts[0] == "step"],
                  values["stack_peak_bytes"], calibration)
