"""`digitsum-edge predict`: still images -> the same JSON lines as `live`, same preprocessing."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from digitsum_edge.errors import DigitsumError
from digitsum_edge.files import atomic_path, check_writable
from digitsum_edge.runtime.preprocess import PreprocessConfig
from digitsum_edge.runtime.reader import RandPicker, check_options, json_line, load
from digitsum_edge.runtime.session import DEFAULT_MODEL
from digitsum_edge.runtime.sources import list_images, read_image

log = logging.getLogger(__name__)


@dataclass
class PredictConfig:
    """`digitsum-edge predict` options, one field per CLI option."""

    images: tuple[str, ...]  # image files or folders of images
    model: str = DEFAULT_MODEL
    rand: int | None = None  # 0-9; None: a new random rand per image
    provider: str = "auto"  # auto | cuda | cpu
    threads: int | None = 1  # onnxruntime threads (None: its default)
    roi: float = 1.0  # a still image is usually framed on the digit: read the whole central square
    ink: str = PreprocessConfig.ink  # dark | light | auto
    seed: int | None = None  # seed of the random rand
    jsonl: str | None = None  # JSON lines to this file instead of stdout
    force: bool = False  # replace an existing --jsonl file


def expand(images: tuple[str, ...]) -> list[Path]:
    """Image paths, folders expanded to their images; every path checked before any work."""
    if not images:
        raise DigitsumError("no image given (predict IMAGE... or a folder of images)")
    paths: list[Path] = []
    for spec in images:
        path = Path(spec)
        if not path.exists():
            raise DigitsumError(f"image {path} does not exist")
        paths += list_images(path) if path.is_dir() else [path]
    return paths


def run(cfg: PredictConfig) -> list[dict]:
    """Read every image; print (or write to cfg.jsonl) one JSON line each and return them."""
    check_options(cfg.rand, cfg.roi, cfg.ink)
    paths = expand(cfg.images)
    if cfg.jsonl:
        check_writable(cfg.jsonl, force=cfg.force)
    reader = load(cfg.model, cfg.provider, cfg.threads, cfg.roi, cfg.ink)
    for note in reader.model.notes:
        log.warning(note)
    log.info(f"provider: {reader.provider} | model {reader.model.path} | {len(paths)} images")
    rand = RandPicker(cfg.rand, cfg.seed, reader.model.info.num_rand)
    lines = []
    with ExitStack() as stack:
        out = sys.stdout
        if cfg.jsonl:
            out = stack.enter_context(open(stack.enter_context(atomic_path(cfg.jsonl)), "w"))
        for index, path in enumerate(paths):
            value = rand.value if not rand.auto or index == 0 else rand.draw()  # a new rand per image
            line = json_line(index, str(path), reader.read(read_image(path), value), reader.provider)
            out.write(json.dumps(line) + "\n")
            out.flush()
            lines.append(line)
    return lines
