"""`digitsum-edge predict`: still images -> the same JSON lines as `live`, same preprocessing; with --labels, the
accuracy per folder, a confusion matrix and the misread images (apps/score.py)."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from digitsum_edge.apps import overlay
from digitsum_edge.apps import score as scoring
from digitsum_edge.apps.images import UnreadableImage, list_images, none_read, read_image, skip_line
from digitsum_edge.apps.policy import RandPicker
from digitsum_edge.apps.reader import Reading, json_line, load
from digitsum_edge.engine import builtin
from digitsum_edge.errors import DigitsumError
from digitsum_edge.files import atomic_path, check_folder, check_writable
from digitsum_edge.onnx_contract import check_rand
from digitsum_edge.vision.settings import STILL, ReadingSettings

log = logging.getLogger(__name__)
DEFAULT_REPORT = "predict_report"  # --labels without --report


@dataclass
class PredictConfig:
    """`digitsum-edge predict` options, one field per CLI option (the reading's in `reading`)."""

    images: tuple[str, ...]  # image files or folders of images
    model: str | None = None  # None: ./runs/model.onnx when it exists, else the built-in model
    rand: int | None = None  # 0-9; None: a new random rand per image
    provider: str = "auto"  # auto | cuda | cpu
    threads: int | None = 1  # onnxruntime threads (None: its default)
    # --roi, --ink, --min-confidence; roi 1: the whole image, any shape, searched for its digit
    reading: ReadingSettings = STILL
    seed: int | None = None  # seed of the random rand
    json: bool = False  # JSON lines on stdout even on a terminal (piped, stdout gets them anyway)
    jsonl: str | None = None  # JSON lines to this file instead of stdout
    labels: str | None = None  # labels CSV, a synth labels.json, or "names" (file names start with the digit)
    report: str | None = None  # with --labels: report.json, confusion.png, misread/ (None: predict_report);
    # without: each photo beside the 28x28 image the model read, in pictures/
    save: str | None = None  # each image annotated as live draws it, into this folder
    force: bool = False  # replace an existing --jsonl file, write into a used --report or --save folder


@dataclass
class PredictResult:
    """The JSON lines, and with --labels the score (apps/score.py)."""

    lines: list[dict] = field(default_factory=list)
    score: scoring.Score | None = None
    skipped: list[str] = field(default_factory=list)  # images that could not be read (each named on stderr)

    def summary(self) -> str:
        """What the command prints last: the accuracy table with --labels, and how many images were skipped."""
        parts = [] if self.score is None else [self.score.table()]
        if self.skipped:
            parts.append(f"{len(self.lines)} images read, {len(self.skipped)} skipped (could not be read)")
        return "\n".join(parts)


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


def _output_folder(folder: Path, option: str, force: bool, inside: str = "") -> Path:
    """A folder the run writes pictures into: not a file, empty unless `force`, writable; checked before work."""
    if folder.exists() and not folder.is_dir():
        raise DigitsumError(f"{option} {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise DigitsumError(f"{option} {folder} exists and is not empty (use --force to write into it)")
    check_folder(folder / inside)
    return folder


def saved_name(index: int, total: int, path: Path) -> str:
    """--save's file for image `index`: numbered as the terminal line numbers it (0001_photo.jpg), so that two
    photo.jpg of different folders stay two files; JPEG stays JPEG, anything else becomes PNG."""
    suffix = ".jpg" if path.suffix.lower() in (".jpg", ".jpeg") else ".png"
    return f"{index + 1:0{max(4, len(str(total)))}d}_{path.stem}{suffix}"


def human_line(index: int, total: int, path: Path, reading: Reading, correct: bool | None = None) -> str:
    """What a terminal shows for one image: `image 1/5 photos/a.jpg: 7 (0.95) + 3 = 10 (0.97) 12.3ms`."""
    if reading.found:
        guess = "?" if reading.uncertain else ""
        read = (f"{reading.digit}{guess} ({reading.digit_confidence or 0:.2f}) + {reading.rand} = {reading.sum}{guess} "
                f"({reading.sum_confidence or 0:.2f})" + (" uncertain" if reading.uncertain else ""))
    else:
        read = f"no digit ({reading.reason})" if reading.reason else "no digit"
    verdict = "" if correct is None else ("  right" if correct else "  WRONG")
    return f"image {index + 1}/{total} {path}: {read} {reading.ms:.1f}ms{verdict}"


def run(cfg: PredictConfig) -> PredictResult:
    """Read every image: one line each for a person on a terminal, else (or with cfg.json) one JSON line each,
    and to cfg.jsonl; with labels, score them."""
    if cfg.rand is not None:
        check_rand(cfg.rand)
    paths = expand(cfg.images)
    if cfg.jsonl:
        check_writable(cfg.jsonl, force=cfg.force)
    labels, report, pictures, save = None, None, None, None
    if cfg.labels:
        labels = scoring.read_labels(cfg.labels, paths)
        report = _output_folder(Path(cfg.report or DEFAULT_REPORT), "--report", cfg.force, "misread")
    elif cfg.report:  # no labels, no accuracy: the pictures of what was read are still worth having
        pictures = _output_folder(Path(cfg.report), "--report", cfg.force, "pictures") / "pictures"
    if cfg.save:
        save = _output_folder(Path(cfg.save), "--save", cfg.force)
    model, chosen = builtin.resolve(cfg.model)
    reader = load(model, provider=cfg.provider, threads=cfg.threads, settings=cfg.reading.for_source(still=True))
    if chosen:
        log.warning(chosen)
    for note in reader.backend.notes:
        log.warning(note)
    log.info(f"provider: {reader.provider} | model {reader.backend.path} | {len(paths)} "
             + ("image" if len(paths) == 1 else "images"))
    rand = RandPicker(cfg.rand, cfg.seed, reader.info.num_rand)
    result = PredictResult()
    score = result.score = scoring.Score() if labels is not None else None
    human = sys.stdout.isatty() and not cfg.json  # a person reads the terminal; a program reads a pipe
    with ExitStack() as stack:
        outs = [] if human or (cfg.jsonl and not cfg.json) else [sys.stdout]  # where the JSON lines go
        if cfg.jsonl:
            outs.append(stack.enter_context(open(stack.enter_context(atomic_path(cfg.jsonl)), "w")))
        for index, path in enumerate(paths):
            value = rand.for_image(index)
            try:
                frame = read_image(path)
            except UnreadableImage as e:
                if len(paths) == 1:  # the one image given: its error is the command's error
                    raise
                log.warning(skip_line(e))
                result.skipped.append(str(path))
                continue
            reading = reader.read(frame, value)
            line = json_line(index, str(path), reading, reader.provider)
            if labels is not None and score is not None and report is not None:
                label = labels[path]
                line["label"] = label
                line["correct"] = score.add(path, label, reading)
                if not line["correct"]:
                    name = scoring.misread_name(path, label, reading)
                    scoring.write_image(report / "misread" / name, scoring.misread_picture(frame, reading, label))
                    score.misread.append(name)
            if pictures is not None:
                picture = scoring.misread_picture(frame, reading, None, labelled=False)
                scoring.write_image((pictures / saved_name(index, len(paths), path)).with_suffix(".png"), picture)
            if save is not None:
                scoring.write_image(save / saved_name(index, len(paths), path), overlay.draw(frame, reading))
            for out in outs:
                out.write(json.dumps(line) + "\n")
                out.flush()
            if human:
                print(human_line(index, len(paths), path, reading, line.get("correct")), flush=True)
            result.lines.append(line)
        if not result.lines:
            raise DigitsumError(none_read(len(paths)))
    if pictures is not None:
        log.warning(f"--report without --labels: wrote {len(result.lines)} pictures (each photo beside the 28x28 "
                    f"image the model read) in {pictures}; the accuracy needs --labels (a CSV of file,digit, or "
                    "'names')")
    if save is not None:
        log.info(f"wrote {len(result.lines)} annotated images in {save}")
    if score is not None and report is not None:
        scoring.write_report(report, score)
        log.info(f"wrote {report / 'report.json'}, {report / 'confusion.png'} and "
                 f"{len(score.misread)} misread images in {report / 'misread'}")
    return result
