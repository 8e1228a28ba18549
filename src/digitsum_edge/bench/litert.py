"""bench's LiteRT rows: the .tflite files beside the checkpoint (or given), on LiteRT, and the int8 file on
TFLite Micro's interpreter too, so one table compares every runtime a model can go to.

    runs/model.tflite       -> litert cpu fp32        (--litert PATH)
    runs/model.int8.tflite  -> litert cpu int8, tflite-micro cpu int8 at batch 1   (--litert-int8 PATH)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from digitsum_edge.bench.backends import Exported
from digitsum_edge.bench.config import BenchConfig
from digitsum_edge.errors import DigitsumError, first_line
from digitsum_edge.layout import DEFAULT_CHECKPOINT, exported_path, variant_path

LITERT_FILES = {"fp32": "litert", "int8": "litert_int8"}  # their keys in the header's model files


def resolve_litert_paths(cfg: BenchConfig) -> dict[str, Path]:
    """{"fp32": .tflite, "int8": .int8.tflite} that exist: the ones given (missing: an error), else the
    checkpoint's files when they are there."""
    fp32 = Path(cfg.litert) if cfg.litert else exported_path(cfg.checkpoint or DEFAULT_CHECKPOINT, ".tflite")
    int8 = Path(cfg.litert_int8) if cfg.litert_int8 else variant_path(fp32, "int8")
    for option, given, path in (("--litert", cfg.litert, fp32), ("--litert-int8", cfg.litert_int8, int8)):
        if given and not path.is_file():
            raise DigitsumError(f"{option} file {path} not found")
    return {precision: path for precision, path in (("fp32", fp32), ("int8", int8)) if path.is_file()}


class Micro(Exported):
    """The int8 file on TFLite Micro's interpreter (a microcontroller's runtime, here on x86): batch 1, one thread."""

    largest_batch = 1

    def __init__(self, path: Path, threads: int) -> None:
        from digitsum_edge.engine.litert import open_micro

        super().__init__(path, "cpu", threads, opener=open_micro)

    def describe(self) -> dict:
        return {**super().describe(), "arena_bytes": self.backend.arena_bytes}


def litert_backends(cfg: BenchConfig, providers: list[str], threads: int,
                    notes: list[str]) -> tuple[list[Exported], list[dict], dict[str, Path]]:
    """LiteRT fp32 and int8 and TFLite Micro int8 backends for the files found (a row that says why for
    TFLite Micro where it cannot run); their files. Without ai-edge-litert, files found but not named are
    a note; a file named on the command line is an error."""
    paths = resolve_litert_paths(cfg)
    if not paths:
        return [], [], {}
    if "cpu" not in providers:
        notes.append("LiteRT files not run: LiteRT runs on the CPU, and --providers has no cpu")
        return [], [], {}
    if importlib.util.find_spec("ai_edge_litert") is None and not (cfg.litert or cfg.litert_int8):
        notes.append(f"{', '.join(p.name for p in paths.values())} not run: LiteRT is not installed "
                     '(pip install "digitsum-edge[litert]")')
        return [], [], {}
    backends = [Exported(path, "cpu", threads) for path in paths.values()]
    skipped = []
    if "int8" in paths:
        try:
            backends.append(Micro(paths["int8"], threads))
        except (DigitsumError, ImportError) as e:
            skipped.append({"label": "tflite-micro cpu int8", "backend": "tflite-micro", "device": "cpu",
                            "precision": "int8", "source": str(paths["int8"]), "status": "skipped",
                            "reason": first_line(e, 200)})
    return backends, skipped, paths
