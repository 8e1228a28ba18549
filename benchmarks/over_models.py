"""The reader's figures over several models of one recipe (seeds): mean, std and worst of what
`camera_conditions.py` and `real_photos.py` wrote for each model, since one model's figure moves with its seed.

    for s in 0 1 2 3 4; do
        digitsum-edge train --seed $s --out runs/seed$s && digitsum-edge export runs/seed$s/model.pt
        python benchmarks/camera_conditions.py --model runs/seed$s/model.onnx --json runs/seed$s/camera.json
        python benchmarks/real_photos.py --model runs/seed$s/model.onnx --json runs/seed$s/real.json --kept-back ...
    done
    python benchmarks/over_models.py runs/seed*/camera.json runs/seed*/real.json [--json PATH]

A camera_conditions.py --stills result gives the stills' figures and, prefixed "camera path:", the camera's.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from digitsum_edge.files import write_json


def camera_figures(result: dict) -> dict[str, float]:
    """One camera_conditions.py result: the mean over conditions, each condition, blanks read as a digit."""
    rows = result["rows"]
    figures = {"mean of the conditions": result["mean_accuracy"], "worst condition": result["worst_accuracy"]}
    figures |= {name: row["accuracy"] for name, row in rows.items() if "accuracy" in row}
    figures |= {f"{name}: read as a digit": row["blank_read_as_digit"] for name, row in rows.items()
                if "blank_read_as_digit" in row}
    figures["ms per frame (median)"] = result["ms_per_frame_median"]
    if "camera" in result:  # camera_conditions.py --stills: the camera path's figures beside the stills'
        figures |= {f"camera path: {name}": value for name, value in camera_figures(result["camera"]).items()}
    return figures


def photo_figures(result: dict) -> dict[str, float]:
    """One real_photos.py result: accuracy, no-digit and wrong-and-sure counts of each group of photos."""
    figures: dict[str, float] = {}
    for group, row in result["groups"].items():
        figures |= {f"{group}: accuracy": row["accuracy"], f"{group}: correct": row["correct"],
                    f"{group}: no digit": row["no_digit"], f"{group}: wrong and sure": row["wrong_and_sure"]}
    return figures


def spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "values": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON files of camera_conditions.py / real_photos.py")
    parser.add_argument("--json", default=None, help="also write the summary here")
    args = parser.parse_args()
    per_kind: dict[str, dict[str, list[float]]] = {"camera conditions": {}, "real photos": {}}
    models: dict[str, list[str]] = {"camera conditions": [], "real photos": []}
    for path in args.results:
        result = json.loads(path.read_text())
        kind, figures = (("camera conditions", camera_figures(result)) if "rows" in result
                         else ("real photos", photo_figures(result)))
        models[kind].append(result["model"])
        for name, value in figures.items():
            per_kind[kind].setdefault(name, []).append(value)
    summary: dict = {}
    for kind, figures in per_kind.items():
        if not figures:
            continue
        print(f"{kind}, {len(models[kind])} models:")
        summary[kind] = {"models": models[kind], "figures": {name: spread(v) for name, v in figures.items()}}
        for name, s in summary[kind]["figures"].items():
            print(f"  {name:<40} mean {s['mean']:.4g}  std {s['std']:.2g}  min {s['min']:.4g}  "
                  f"max {s['max']:.4g}")
    if args.json:
        write_json(args.json, summary)
        print(json.dumps({"wrote": args.json}))


if __name__ == "__main__":
    main()
