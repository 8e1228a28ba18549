"""`digitsum-edge export model.int8.tflite --format c`: the int8 model as C99 source a firmware project compiles.

    run(cfg) = check the input (the project's int8 .tflite) and the outputs -> read the graph (export/c_graph.py)
               -> write NAME.c and NAME.h (export/c_source.py) under hidden names -> build them here with the
               system C compiler and compare every int8 output with TFLite Micro's interpreter on the same file,
               on --verify-images test images with every rand (export/c_host.py) -> rename into place (+ --json)

Nothing is published unless every output is equal bit for bit.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from digitsum_edge import mnist
from digitsum_edge.errors import DigitsumError
from digitsum_edge.export.config import ExportConfig
from digitsum_edge.export.mcu import check_core, core_note
from digitsum_edge.files import atomic_path, check_writable, write_json

log = logging.getLogger(__name__)
DEFAULT_NAME = "digitsum_model.c"  # beside the .tflite unless --out says otherwise


@dataclass
class CExport:
    """What `export --format c` wrote and how it compares with TFLite Micro."""

    source: Path
    header: Path
    tflite: Path
    core: str
    steps: int
    static_ram_bytes: int
    pairs: int
    mismatches: int  # pairs where any int8 output differs from TFLite Micro's
    metrics: dict[str, float]  # accuracy of the C code's int8 outputs on those pairs
    tflite_micro_metrics: dict[str, float]
    seconds: float = 0.0
    operators: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.source} + {self.header.name} | int8 C99 | {self.steps} steps | static RAM "
                f"{self.static_ram_bytes:,} bytes | equal to TFLite Micro bit for bit on {self.pairs:,} pairs | "
                f"digit {self.metrics['digit_accuracy']:.2%} sum {self.metrics['sum_accuracy']:.2%}")

    def to_dict(self) -> dict:
        return {"format": "c", "source": str(self.source), "header": str(self.header), "tflite": str(self.tflite),
                "core": self.core, "steps": self.steps, "static_ram_bytes": self.static_ram_bytes,
                "pairs": self.pairs, "mismatches": self.mismatches, "metrics": self.metrics,
                "tflite_micro_metrics": self.tflite_micro_metrics, "operators": self.operators,
                "seconds": self.seconds}


def output_paths(cfg: ExportConfig) -> tuple[Path, Path]:
    """NAME.c (default: digitsum_model.c beside the .tflite) and NAME.h beside it."""
    source = Path(cfg.out) if cfg.out else Path(cfg.checkpoint).with_name(DEFAULT_NAME)
    if source.suffix != ".c":
        raise DigitsumError(f"--out {source}: --format c writes a .c file (and its .h beside it)")
    return source, source.with_suffix(".h")


def _check(cfg: ExportConfig) -> tuple[Path, Path, Path]:
    """Before any work: the input is a .tflite file, the options fit, the outputs are writable."""
    tflite = Path(cfg.checkpoint)
    if tflite.suffix != ".tflite":
        raise DigitsumError(f"{tflite}: --format c takes the int8 .tflite that `export --format litert-int8` "
                            "writes (model.int8.tflite), not a checkpoint")
    if not tflite.is_file():
        raise DigitsumError(f"{tflite}: no such file")
    for option, given in (("--int8", cfg.int8), ("--fp16", cfg.fp16), ("--triton", cfg.triton),
                          ("--static-batch", cfg.static_batch)):
        if given:
            raise DigitsumError(f"{option} does not apply to --format c (it converts the int8 .tflite as it is)")
    check_core(cfg.core)
    source, header = output_paths(cfg)
    for path in (source, header):
        check_writable(path, force=cfg.force)
    if cfg.json:
        check_writable(cfg.json, force=True)
    return tflite, source, header


def run(cfg: ExportConfig) -> CExport:
    """Write NAME.c and NAME.h from the int8 .tflite, verified bit for bit against TFLite Micro."""
    from digitsum_edge.engine.litert import read_contract
    from digitsum_edge.export.c_graph import read_graph
    from digitsum_edge.export.c_host import HostModel, tflite_micro_logits
    from digitsum_edge.export.c_source import render

    started = time.perf_counter()
    tflite, source, header = _check(cfg)
    data = tflite.read_bytes()
    graph = read_graph(data, str(tflite))
    info = read_contract(data, str(tflite))
    written = render(graph, info, header.name, core_note(cfg.core))
    c_text, h_text = written.source, written.header
    test = mnist.load("test", cfg.data_dir)
    images, labels = test.images[:cfg.verify_images], test.labels[:cfg.verify_images]
    with tempfile.TemporaryDirectory(prefix="digitsum-c-") as work:  # built and checked here before publishing
        (Path(work) / header.name).write_text(h_text)
        (Path(work) / source.name).write_text(c_text)
        ours = HostModel(Path(work) / source.name, Path(work)).logits(images, info.num_rand, info.num_digits,
                                                                       info.num_sums)
    log.info(f"the C code built here; TFLite Micro on {len(images):,} images x {info.num_rand} rands")
    theirs = tflite_micro_logits(tflite, images)
    mismatches = ours.mismatches(theirs)
    if mismatches:
        raise DigitsumError(f"the generated C code differs from TFLite Micro on {mismatches:,} of "
                            f"{len(images) * info.num_rand:,} pairs; nothing written")
    for final, text in ((header, h_text), (source, c_text)):  # verified above: each written whole or not at all
        with atomic_path(final) as tmp:
            tmp.write_text(text)
    result = CExport(source, header, tflite, cfg.core, written.steps, written.static_ram_bytes,
                     len(images) * info.num_rand, 0,
                     ours.accuracy(labels), theirs.accuracy(labels), round(time.perf_counter() - started, 2),
                     graph.operators)
    log.info(f"wrote {source} and {header.name}: equal to TFLite Micro on {result.pairs:,} pairs")
    if cfg.json:
        write_json(cfg.json, result.to_dict())
    return result
