"""`predict --labels`: score the reader on a user's own labelled photos, and show why a digit was misread.

Labels come from a CSV (`file,digit` per line; an empty digit, `none` or `blank`: no digit should be found),
from the labels.json that `synth` writes, or from the file names (`--labels names`: `7_kitchen.jpg` is a 7,
`blank_desk.jpg` holds none). The report folder gets report.json (accuracy per folder, the confusion matrix),
confusion.png and, in misread/, each misread photo as the reader saw it beside the 28x28 image the model read.
Everything is drawn with OpenCV: the runtime install has no matplotlib.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field, fields
from pathlib import Path

import cv2
import numpy as np

from digitsum_edge.apps import overlay
from digitsum_edge.apps.reader import Reading
from digitsum_edge.errors import DigitsumError
from digitsum_edge.files import write_bytes, write_json

CAPTION = 28  # height of the text strip above a misread picture
NONE = 10  # row and column of "no digit" in the confusion matrix
CLASSES = [str(d) for d in range(10)] + ["none"]
_NO_DIGIT = {"", "none", "blank", "-", "null"}


def _label(value: str, where: str) -> int | None:
    text = value.strip().lower()
    if text in _NO_DIGIT:
        return None
    if len(text) == 1 and text.isdigit():
        return int(text)
    raise DigitsumError(f"{where}: label {value.strip()!r} is not a digit 0-9 or none")


def read_labels(spec: str, paths: list[Path]) -> dict[Path, int | None]:
    """The expected digit (None: no digit) of every image in `paths`, from `spec`: a CSV, a synth labels.json,
    or "names"; an image without a label is an error, before any reading."""
    labels: dict[Path, int | None] = {}
    if spec == "names":
        for path in paths:
            stem = path.stem.lower()
            if stem[:1].isdigit():
                labels[path] = int(stem[0])
            elif stem.startswith(("blank", "none")):
                labels[path] = None
            else:
                raise DigitsumError(f"--labels names: {path.name} starts with neither a digit nor 'blank'")
        return labels
    source = Path(spec)
    if not source.is_file():
        raise DigitsumError(f"labels {source} " + ("is not a file" if source.exists() else "does not exist"))
    by_name: dict[str, int | None] = {}
    try:
        if source.suffix.lower() == ".json":
            table = json.loads(source.read_text())["labels"]
            if not isinstance(table, dict):
                raise DigitsumError(f"labels {source}: a video's labels (a list) cannot label images")
            by_name = {str(k): None if v is None else _label(str(v), f"{source}: {k}") for k, v in table.items()}
        else:
            with open(source, newline="") as f:
                for number, row in enumerate(csv.reader(f), 1):
                    if not row or row[0].strip().startswith("#"):
                        continue
                    if len(row) < 2:
                        raise DigitsumError(f"{source} line {number}: expected file,digit")
                    if number == 1 and row[1].strip().lower() in ("digit", "label"):
                        continue  # a header
                    by_name[row[0].strip()] = _label(row[1], f"{source} line {number}")
    except (OSError, UnicodeDecodeError, ValueError, KeyError) as e:
        raise DigitsumError(f"cannot read labels {source}: {e}") from None
    for path in paths:
        for key in (str(path), os.path.relpath(path, source.parent), path.name):
            if key in by_name:
                labels[path] = by_name[key]
                break
        else:
            raise DigitsumError(f"image {path} has no label in {source}")
    return labels


@dataclass
class FolderScore:
    """How one folder of labelled images was read."""

    images: int = 0
    correct: int = 0
    no_digit: int = 0  # a digit was expected and none was found
    uncertain: int = 0  # read with less than --min-confidence
    false_digit: int = 0  # no digit expected, one was read
    confident_wrong: int = 0  # a wrong digit (or one where none is) read with at least --min-confidence

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.images, 1)

    def add(self, label: int | None, reading: Reading) -> bool:
        """Count one image; True when it was read right (the digit, or no digit when none is there)."""
        read = reading.digit if reading.found else None
        correct = read == label
        self.images += 1
        self.correct += correct
        self.no_digit += label is not None and not reading.found
        self.uncertain += reading.found and reading.uncertain
        self.false_digit += label is None and reading.found
        self.confident_wrong += reading.found and not reading.uncertain and not correct
        return correct

    def to_dict(self) -> dict:
        return {"images": self.images, "correct": self.correct, "accuracy": round(self.accuracy, 4),
                "no_digit": self.no_digit, "uncertain": self.uncertain, "false_digit": self.false_digit}


@dataclass
class Score:
    """Accuracy per folder and overall, the confusion matrix, what was written."""

    folders: dict[str, FolderScore] = field(default_factory=lambda: defaultdict(FolderScore))
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((11, 11), np.int64))  # [true, read]
    misread: list[str] = field(default_factory=list)  # pictures written into misread/

    def add(self, path: Path, label: int | None, reading: Reading) -> bool:
        """Count one image; True when it was read right (the digit, or no digit when none is there)."""
        read = reading.digit if reading.found else None
        self.confusion[NONE if label is None else label, NONE if read is None else read] += 1
        return self.folders[str(path.parent)].add(label, reading)

    @property
    def total(self) -> FolderScore:
        total = FolderScore()
        for folder in self.folders.values():
            for name in (f.name for f in fields(FolderScore)):
                setattr(total, name, getattr(total, name) + getattr(folder, name))
        return total

    def table(self) -> str:
        """Accuracy per folder, then all of them, as printed by `predict --labels`."""
        width = max([len("folder"), *(len(name) for name in self.folders)])
        lines = [f"{'folder':<{width}}  images  correct  accuracy  no digit  uncertain  digit where none"]
        for name, row in [*sorted(self.folders.items()), ("all", self.total)]:
            lines.append(f"{name:<{width}}  {row.images:>6}  {row.correct:>7}  {100 * row.accuracy:>7.1f}%  "
                         f"{row.no_digit:>8}  {row.uncertain:>9}  {row.false_digit:>16}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"folders": {name: row.to_dict() for name, row in sorted(self.folders.items())},
                "all": self.total.to_dict(), "confusion": {"classes": CLASSES, "rows_true_columns_read":
                                                           self.confusion.tolist()},
                "misread": self.misread}


def confusion_picture(confusion: np.ndarray, cell: int = 44) -> np.ndarray:
    """(11, 11) counts [true, read] -> a BGR picture: each row shaded by its share, counts written in."""
    n = len(CLASSES)
    margin = cell + 20
    image = np.full((margin + n * cell + 10, margin + n * cell + 10, 3), 255, np.uint8)
    shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for t in range(n):
        for r in range(n):
            x, y = margin + r * cell, margin + t * cell
            share = float(shares[t, r])
            # right: shades of green on the diagonal; wrong: shades of red
            colour = (255 * (1 - share), 255, 255 * (1 - share)) if t == r else (255 * (1 - share),) * 2 + (255,)
            cv2.rectangle(image, (x, y), (x + cell - 1, y + cell - 1), tuple(int(c) for c in colour), cv2.FILLED)
            cv2.rectangle(image, (x, y), (x + cell - 1, y + cell - 1), (200, 200, 200), 1)
            if confusion[t, r]:
                text = str(int(confusion[t, r]))
                (tw, th), _ = cv2.getTextSize(text, font, 0.45, 1)
                cv2.putText(image, text, (x + (cell - tw) // 2, y + (cell + th) // 2), font, 0.45, (0, 0, 0), 1,
                            cv2.LINE_AA)
    for i, name in enumerate(CLASSES):
        (tw, _), _ = cv2.getTextSize(name, font, 0.45, 1)
        cv2.putText(image, name, (margin + i * cell + (cell - tw) // 2, margin - 8), font, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
        cv2.putText(image, name, (margin - tw - 8, margin + i * cell + cell // 2 + 5), font, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    cv2.putText(image, "read ->", (margin, 16), font, 0.45, (80, 80, 80), 1, cv2.LINE_AA)
    cv2.putText(image, "true", (4, margin - 8), font, 0.45, (80, 80, 80), 1, cv2.LINE_AA)
    return image


def misread_picture(frame: np.ndarray, reading: Reading, label: int | None, height: int = 280,
                    labelled: bool = True) -> np.ndarray:
    """The photo as it is (only the region read and the digit's box outlined, nothing drawn over it) beside the
    28x28 image the model read (black: none), both enlarged to `height`, with a caption strip above (without
    the true digit when not `labelled`)."""
    photo = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    h, w = photo.shape[:2]
    scale = height / h
    photo = cv2.resize(photo, (max(1, round(w * scale)), height), interpolation=cv2.INTER_AREA if scale < 1
                       else cv2.INTER_LINEAR)
    for rect, colour in ((reading.region, overlay.AMBER), (reading.box, overlay.CYAN)):
        if rect is not None and tuple(rect) != (0, 0, w, h):  # the whole picture needs no outline
            x, y, rw, rh = (round(v * scale) for v in rect)
            cv2.rectangle(photo, (x, y), (x + rw - 1, y + rh - 1), colour, 1, cv2.LINE_AA)
    for c in reading.candidates:  # a still's other digit-like marks (vision/stills.py), with digit and score
        if not c["chosen"]:
            x, y, rw, rh = (round(v * scale) for v in c["box"])
            cv2.rectangle(photo, (x, y), (x + rw - 1, y + rh - 1), overlay.GREY, 1, cv2.LINE_AA)
            said = c["reason"] if c["digit"] is None else f"{c['digit']} {100 * (c['confidence'] or 0):.0f}%"
            cv2.putText(photo, f"{said} score {c['score']:.2f}", (x, max(y - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        overlay.GREY, 1, cv2.LINE_AA)
    seen = reading.mnist if reading.mnist is not None else np.zeros((28, 28), np.uint8)
    model = cv2.cvtColor(cv2.resize(seen, (height, height), interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
    pictures = np.hstack([photo, np.full((height, 4, 3), 255, np.uint8), model])
    read = f"read {reading.digit} ({100 * (reading.digit_confidence or 0):.0f}%)" if reading.found \
        else f"no digit ({reading.reason})"
    caption = np.full((CAPTION, pictures.shape[1], 3), 255, np.uint8)
    truth = f"true {'none' if label is None else label}, " if labelled else ""
    cv2.putText(caption, f"{truth}{read}  |  photo  |  model input 28x28",
                (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([caption, pictures])


def misread_name(path: Path, label: int | None, reading: Reading) -> str:
    """misread/<folder>_<stem>_true7_read1.png: unique per image, sortable by folder."""
    read = str(reading.digit) if reading.found else "none"
    folder = path.parent.name or "here"
    return f"{folder}_{path.stem}_true{'none' if label is None else label}_read{read}.png"


def write_image(path: Path, image: np.ndarray) -> None:
    """A BGR picture to `path` atomically, encoded as its suffix says (.png, .jpg)."""
    ok, data = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise DigitsumError(f"cannot encode {path}")
    write_bytes(path, data.tobytes())


def write_report(folder: Path, score: Score) -> None:
    """report.json and confusion.png into the report folder (the misread pictures are written as they come)."""
    write_image(folder / "confusion.png", confusion_picture(score.confusion))
    write_json(folder / "report.json", score.to_dict())
