"""Real photos of handwritten digits: accuracy per writer and overall, as `predict FOLDER --labels` reads them.

Reads a folder tree of photos with a labels CSV (`file,digit[,kind]`, file relative to the CSV's folder; the
default is ../shared/data/real-photos, one folder per writer), each photo as `predict` reads it (default
options, 1 thread, CPU provider, rand 3), and prints per writer: photos, read right, "no digit" (with its
commonest reason), uncertain (below --min-confidence), wrong and sure (a wrong digit above it); then every
photo writer together, the canvas drawings apart, and all. `--writers` / `--exclude` pick writers, so that
some can be kept unseen while tuning; the JSON has every row and every reading.

    .venv/bin/python benchmarks/real_photos.py --model runs/model.onnx --json docs/real_photos.json \
        --plot docs/real_photos.png --kept-back aj148,itskellycheng,mchu,thenewexecutor,allenjromano
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime

from digitsum_edge.apps.predict import expand
from digitsum_edge.apps.reader import DigitReader, Reading, load
from digitsum_edge.apps.score import FolderScore, read_labels
from digitsum_edge.apps.sources import read_image
from digitsum_edge.bench.report import cpu_name
from digitsum_edge.errors import DigitsumError
from digitsum_edge.files import write_bytes, write_json
from digitsum_edge.vision import settings as defaults
from digitsum_edge.vision.settings import ReadingSettings

KINDS = {"photo": "all photos", "canvas": "all canvas drawings"}  # the labels CSV's kinds, as the table names them
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-photos"


def kinds(labels_csv: Path) -> dict[str, str]:
    """file -> its kind column ("photo", "canvas", ...), "photo" where the CSV has none."""
    with open(labels_csv, newline="") as f:
        return {row[0].strip(): (row[2].strip() if len(row) > 2 and row[2].strip() else "photo")
                for row in csv.reader(f) if row and row[0].strip() and row[0].strip() != "file"}


def read_set(reader: DigitReader, paths: list[Path], labels: dict[Path, int | None], rand: int) -> list[dict]:
    """Every photo read as `predict` reads it: its label, reading and whether it was right."""
    rows = []
    for path in paths:
        reading: Reading = reader.read(read_image(path), rand)
        rows.append({"path": path, "label": labels[path], "reading": reading})
    return rows


def tally(rows: list[dict]) -> dict:
    """Counts of a group of readings, with the commonest no-digit reasons and the wrong-and-sure photos."""
    counts = FolderScore()
    for row in rows:
        counts.add(row["label"], row["reading"])
    reasons = collections.Counter(row["reading"].reason for row in rows if not row["reading"].found)
    return {"photos": counts.images, "correct": counts.correct, "accuracy": round(counts.accuracy, 4),
            "no_digit": counts.no_digit, "uncertain": counts.uncertain, "wrong_and_sure": counts.confident_wrong,
            "false_digit": counts.false_digit, "reasons": dict(reasons.most_common())}


def line(name: str, row: dict, width: int) -> str:
    reason = next(iter(row["reasons"]), "")
    return (f"{name:<{width}} {row['photos']:>6} {row['correct']:>7} {100 * row['accuracy']:>7.1f}% "
            f"{row['no_digit']:>8} {row['uncertain']:>9} {row['wrong_and_sure']:>13}  {reason}")


def chart(writers: dict, groups: dict, kept: set[str], title: str) -> np.ndarray:
    """A BGR picture of the table: a bar per writer and group, right (green), wrong but marked uncertain (yellow),
    wrong and sure (red), no digit (grey), drawn with OpenCV (no photo in it)."""
    rows = [*writers.items(), *groups.items()]
    bar, label_w, row_h = 420, 250, 26
    image = np.full((60 + row_h * len(rows) + 30, label_w + bar + 90, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, title, (10, 24), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    for i, (name, row) in enumerate(rows):
        y = 50 + i * row_h
        wrong = row["photos"] - row["correct"] - row["no_digit"]
        unsure = max(wrong - row["wrong_and_sure"], 0)
        x = label_w
        for count, colour in ((row["correct"], (90, 190, 90)), (unsure, (0, 210, 255)),
                              (row["wrong_and_sure"], (60, 60, 220)), (row["no_digit"], (170, 170, 170))):
            width = round(bar * count / max(row["photos"], 1))
            cv2.rectangle(image, (x, y), (x + width, y + row_h - 6), colour, cv2.FILLED)
            x += width
        text = f"{name}{' (kept back)' if name in kept else ''}"
        cv2.putText(image, text, (10, y + row_h - 10), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(image, f"{100 * row['accuracy']:.1f}%", (label_w + bar + 8, y + row_h - 10), font, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
    legend = "green: right   yellow: wrong, marked uncertain   red: wrong and sure   grey: no digit"
    cv2.putText(image, legend, (10, image.shape[0] - 10), font, 0.42, (60, 60, 60), 1, cv2.LINE_AA)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder tree of photos")
    parser.add_argument("--labels", type=Path, default=None, help="labels CSV [default: ROOT/labels.csv]")
    parser.add_argument("--model", default="runs/model.onnx")
    parser.add_argument("--writers", default="", help="only these writers (top folders), comma-separated")
    parser.add_argument("--exclude", default="", help="leave these writers out, comma-separated")
    parser.add_argument("--kept-back", default="", help="writers kept unseen while tuning: also a row of their own")
    parser.add_argument("--rand", type=int, default=3)
    parser.add_argument("--min-confidence", type=float, default=defaults.MIN_CONFIDENCE)
    parser.add_argument("--misread", action="store_true", help="list every photo not read right")
    parser.add_argument("--json", default=None, help="also write the result here")
    parser.add_argument("--plot", default=None, help="and a picture of the table here (.png)")
    args = parser.parse_args()

    labels_csv = args.labels or args.root / "labels.csv"
    try:
        if not args.root.is_dir():
            raise DigitsumError(f"{args.root} is not a folder of photos")
        paths = expand((str(args.root),))
        chosen, left_out = set(filter(None, args.writers.split(","))), set(filter(None, args.exclude.split(",")))

        def writer(path: Path) -> str:
            return path.relative_to(args.root).parts[0] if len(path.relative_to(args.root).parts) > 1 else "."

        paths = [p for p in paths if (not chosen or writer(p) in chosen) and writer(p) not in left_out]
        if not paths:
            raise DigitsumError("no photos left after --writers / --exclude")
        labels = read_labels(str(labels_csv), paths)
        cv2.setNumThreads(1)
        reader = load(args.model, provider="cpu", threads=1,
                      settings=ReadingSettings(roi=defaults.STILL_ROI, min_confidence=args.min_confidence))
    except DigitsumError as e:
        raise SystemExit(f"error: {e}") from None
    kind_of = kinds(labels_csv)
    started = time.perf_counter()
    rows = read_set(reader, paths, labels, args.rand)
    seconds = time.perf_counter() - started

    by_writer: dict[str, list[dict]] = collections.defaultdict(list)
    by_kind: dict[str, list[dict]] = collections.defaultdict(list)
    for row in rows:
        by_writer[writer(row["path"])].append(row)
        by_kind[kind_of.get(row["path"].relative_to(labels_csv.parent).as_posix(), "photo")].append(row)
    writers = {name: tally(group) for name, group in sorted(by_writer.items())}
    groups = {KINDS.get(kind, f"all {kind}"): tally(group)
              for kind, group in sorted(by_kind.items(), key=lambda kv: kv[0] != "photo")}
    kept = set(filter(None, args.kept_back.split(",")))
    if kept:
        groups["kept back while tuning"] = tally([row for row in rows if writer(row["path"]) in kept])
        groups["tuned on"] = tally([row for row in rows if writer(row["path"]) not in kept])
    groups["all"] = tally(rows)

    width = max(len(name) for name in [*writers, *groups, "writer"])
    print(f"{'writer':<{width}} {'photos':>6} {'correct':>7} {'accuracy':>8} {'no digit':>8} {'uncertain':>9} "
          f"{'wrong, sure':>13}  commonest no-digit reason")
    for name, row in [*writers.items(), *groups.items()]:
        print(line(name, row, width))
    print(f"model {args.model} | rand {args.rand} | min confidence {args.min_confidence} | "
          f"{1e3 * seconds / len(rows):.1f} ms per photo with decoding (1 thread)")
    if args.misread:
        for row in rows:
            reading = row["reading"]
            read = reading.digit if reading.found else None
            if read != row["label"]:
                said = f"read {read} ({100 * reading.digit_confidence:.0f} %)" if reading.found \
                    else f"no digit ({reading.reason})"
                print(f"  {row['path'].relative_to(args.root)}: true {row['label']}, {said}")
    if args.plot:
        picture = chart(writers, groups, kept, f"real photos, {Path(args.model).name}: read right per writer")
        write_bytes(args.plot, cv2.imencode(".png", picture)[1].tobytes())
        print(json.dumps({"wrote": args.plot}))
    if args.json:
        result = {"writers": writers, "groups": groups, "kept_back": sorted(kept), "root": str(args.root),
                  "labels": str(labels_csv),
                  "model": str(args.model), "rand": args.rand, "min_confidence": args.min_confidence,
                  "readings": [{"file": row["path"].relative_to(args.root).as_posix(), "label": row["label"],
                                **{k: v for k, v in row["reading"].to_dict().items() if not k.endswith("ms")}}
                               for row in rows],
                  "threads": 1, "cpu": cpu_name(), "generated_at": time.strftime("%Y-%m-%d %H:%M"),
                  "versions": {"python": platform.python_version(), "numpy": np.__version__,
                               "opencv": cv2.__version__, "onnxruntime": onnxruntime.__version__}}
        write_json(args.json, result)
        print(json.dumps({"wrote": args.json}))


if __name__ == "__main__":
    main()
