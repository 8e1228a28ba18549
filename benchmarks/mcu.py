"""The int8 model as C on microcontrollers: export --format c, then the same two files built for each core and run
under QEMU. Every figure is measured in this run.

    python benchmarks/mcu.py --tflite runs/model.int8.tflite --checkpoint runs/model.pt [--json runs/mcu.json]

1. `export --format c` from the int8 .tflite; its verification builds the C code here with `cc` and compares
   every int8 output with TFLite Micro's interpreter on --host-images test images x every rand (100,000 pairs
   by default); accuracy of those outputs beside the fp32 model's on the same pairs (--checkpoint).
2. Per core (cortex-m4 on mps2-an386, cortex-m7 on mps2-an500, cortex-m55 on mps3-an547): arm-none-eabi-gcc
   -O2 with the project's startup code, linker script and harness; --images test images run under
   qemu-system-arm (image i with rand i % 10), each output compared bit for bit with the host build's;
   flash (text + data) and RAM (bss + data + the painted stack's peak) of the model; executed instructions
   per inference (-icount shift=0, SysTick: instructions, not cycles), and per layer from a second build
   that times each step.
"""

from __future__ import annotations

import argparse
import logging
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from digitsum_edge import mnist
from digitsum_edge.bench.report import cpu_name
from digitsum_edge.engine.litert import read_contract
from digitsum_edge.export.c_export import run as export_c
from digitsum_edge.export.c_host import HostModel
from digitsum_edge.export.config import ExportConfig
from digitsum_edge.export.mcu import CORES, check_core
from digitsum_edge.export.mcu_run import McuRun, build, missing_tools, run
from digitsum_edge.files import write_json

GOALS = {"flash_bytes": 80 * 1024, "ram_bytes": 32 * 1024, "m4_instructions": 5_400_000}  # the goals


def per_layer(steps: list[tuple[str, int]]) -> dict[str, int]:
    """Instructions per layer of the network, steps of one layer (e.g. a BatchNorm's four) added up, in order."""
    layers: dict[str, int] = {}
    for name, count in steps:
        layers[name] = layers.get(name, 0) + count
    return layers


def core_row(core_name: str, source: Path, images: np.ndarray, expected: tuple[np.ndarray, np.ndarray],
             work: Path, layer_images: int) -> dict:
    """Build, run every image, compare, measure: one row of the table."""
    core = check_core(core_name)
    started = time.perf_counter()
    firmware = build(core, source, work / core.name)
    result: McuRun = run(firmware, images, work / core.name)
    equal = (np.all(result.digit == expected[0], axis=1) & np.all(result.sum == expected[1], axis=1))
    timed = run(build(core, source, work / f"{core.name}-layers", layer_hook=True), images[:layer_images],
                work / f"{core.name}-layers")
    sizes = firmware.sizes()
    flash = sizes["model_text"] + sizes["model_data"]
    ram = sizes["model_bss"] + sizes["model_data"] + result.stack_peak_bytes
    print(f"{core.name}: {int(equal.sum()):,} of {len(images):,} images bit-exact, "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return {"core": core.name, "machine": core.machine, "flags": " ".join(core.flags), "images": len(images),
            "bit_exact_images": int(equal.sum()), "flash_bytes": flash, "ram_bytes": ram,
            "stack_peak_bytes": result.stack_peak_bytes, **sizes,
            "instructions": {"median": int(np.median(result.instructions)), "min": int(result.instructions.min()),
                             "max": int(result.instructions.max())},
            "instructions_per_layer": per_layer(timed.steps), "systick_instructions_per_tick": round(
                result.calibration, 3), "seconds": round(time.perf_counter() - started, 1)}


def table(rows: list[dict]) -> str:
    lines = ["| core (QEMU board) | bit-exact images | flash (text+data) | RAM (bss+data+stack peak) | "
             "instructions per inference (median, min-max) |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        i = r["instructions"]
        lines.append(f"| {r['core']} ({r['machine']}) | {r['bit_exact_images']:,} / {r['images']:,} | "
                     f"{r['flash_bytes']:,} B | {r['ram_bytes']:,} B ({r['model_bss']:,} + {r['model_data']} + "
                     f"{r['stack_peak_bytes']}) | {i['median'] / 1e6:.3f} M ({i['min']:,}-{i['max']:,}) |")
    layers = list(rows[0]["instructions_per_layer"]) if rows else []
    lines += ["", "| layer | " + " | ".join(r["core"] for r in rows) + " |", "| --- |" + " --- |" * len(rows)]
    for layer in layers:
        lines.append(f"| {layer} | " + " | ".join(f"{r['instructions_per_layer'].get(layer, 0):,}" for r in rows)
                     + " |")
    return "\n".join(lines)


def fp32_metrics(checkpoint: str | None, images: np.ndarray, labels: np.ndarray) -> dict | None:
    """PyTorch's accuracy on the same pairs (the fp32 model the int8 file was quantised from), when given."""
    if checkpoint is None:
        return None
    from digitsum_edge import checkpoint as checkpoints
    from digitsum_edge.evaluate import torch_exhaustive

    model, _ = checkpoints.load_model(checkpoint)
    return torch_exhaustive(model, images, labels)[0]


def tool_versions() -> dict[str, str]:
    versions = {}
    for command in ("arm-none-eabi-gcc", "qemu-system-arm", "cc"):
        done = subprocess.run([command, "--version"], capture_output=True, text=True, check=False)
        versions[command] = done.stdout.splitlines()[0] if done.stdout else "?"
    return versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tflite", required=True, help="the int8 .tflite of `export --format litert-int8`")
    parser.add_argument("--out", help="folder for digitsum_model.c/.h and the builds [default: beside --tflite]")
    parser.add_argument("--cores", default=",".join(CORES), help="comma-separated, from: " + ", ".join(CORES))
    parser.add_argument("--images", type=int, default=10000, help="test images run on each core")
    parser.add_argument("--host-images", type=int, default=10000, help="test images x 10 rands against TFLite Micro")
    parser.add_argument("--layer-images", type=int, default=1, help="images timed step by step")
    parser.add_argument("--checkpoint", help="model.pt the .tflite came from: its fp32 accuracy on the same pairs")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cores = [check_core(c).name for c in args.cores.split(",")]
    if missing_tools():
        sys.exit(f"error: the MCU build needs {', '.join(missing_tools())} (apt-get install)")
    tflite = Path(args.tflite)
    out = Path(args.out) if args.out else tflite.parent / "mcu"
    out.mkdir(parents=True, exist_ok=True)
    exported = export_c(ExportConfig(checkpoint=str(tflite), format="c", out=str(out / "digitsum_model.c"),
                                     verify_images=args.host_images, force=True))
    print(exported.summary(), file=sys.stderr)
    info = read_contract(tflite.read_bytes(), str(tflite))
    test = mnist.load("test")
    fp32 = fp32_metrics(args.checkpoint, test.images[:args.host_images], test.labels[:args.host_images])
    images = test.images[:args.images]
    rands = np.arange(len(images)) % info.num_rand
    with tempfile.TemporaryDirectory(prefix="digitsum-mcu-") as work:
        host = HostModel(exported.source, Path(work)).logits(images, info.num_rand, info.num_digits, info.num_sums)
        expected = (host.digit[np.arange(len(images)), rands], host.sum[np.arange(len(images)), rands])
        rows = [core_row(c, exported.source, images, expected, Path(work), args.layer_images) for c in cores]
    print(table(rows))
    m4 = next((r for r in rows if r["core"] == "cortex-m4"), None)
    report = {
        "tflite": str(tflite), "source": str(exported.source),
        "host": {"pairs": exported.pairs, "mismatches_with_tflite_micro": exported.mismatches,
                 "c_int8_metrics": exported.metrics, "tflite_micro_metrics": exported.tflite_micro_metrics,
                 "fp32_metrics": fp32, "fp32_metrics_in_file": info.test_metrics},
        "cores": rows,
        "goals": {**GOALS, "met": bool(rows) and all(r["flash_bytes"] <= GOALS["flash_bytes"]
                                                      and r["ram_bytes"] <= GOALS["ram_bytes"] for r in rows)
                  and (m4 is None or m4["instructions"]["median"] <= GOALS["m4_instructions"])},
        "note": "instructions executed under qemu-system-arm -icount shift=0, read from SysTick (to its resolution: "
                "40 instructions at 25 MHz, 31.25 at 32 MHz); QEMU does not model timing: not cycles",
        "machine": {"cpu": cpu_name(), "python": platform.python_version(), **tool_versions()},
    }
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
