"""The microcontrollers `export --format c` is built and run for: one table, used by export (--core), by the
cross-build and QEMU run (export/mcu_run.py), by benchmarks/mcu.py and by the tests. Imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass

from digitsum_edge.errors import DigitsumError


@dataclass(frozen=True)
class Core:
    name: str  # the -mcpu name
    machine: str  # the QEMU board that has this core
    flags: tuple[str, ...]  # arm-none-eabi-gcc flags for it
    flash: tuple[int, int]  # (origin, length) of the board's code memory the linker script uses
    ram: tuple[int, int]  # (origin, length) of its data memory
    clock_hz: int  # SysTick's clock on that board (the CPU clock)


_THUMB = ("-mthumb", "-mfloat-abi=soft")
CORES = {
    "cortex-m4": Core("cortex-m4", "mps2-an386", ("-mcpu=cortex-m4", *_THUMB), (0x00000000, 0x400000),
                      (0x20000000, 0x400000), 25_000_000),
    "cortex-m7": Core("cortex-m7", "mps2-an500", ("-mcpu=cortex-m7", *_THUMB), (0x00000000, 0x400000),
                      (0x20000000, 0x400000), 25_000_000),
    "cortex-m55": Core("cortex-m55", "mps3-an547", ("-mcpu=cortex-m55", *_THUMB), (0x00000000, 0x80000),
                       (0x20000000, 0x80000), 32_000_000),
}
DEFAULT_CORE = "cortex-m4"


def check_core(name: str) -> Core:
    """The core called `name`, or one clear error listing the supported ones."""
    if name not in CORES:
        raise DigitsumError(f"unknown core {name!r} (supported: {', '.join(CORES)})")
    return CORES[name]


def core_note(name: str) -> str:
    """One line for the generated files: the build the figures in docs/mcu.md come from."""
    core = check_core(name)
    return (f"Target {core.name}: arm-none-eabi-gcc -std=c99 -O2 {' '.join(core.flags)} (checked under QEMU "
            f"{core.machine}); the same source builds unchanged for other cores and for a PC.")
