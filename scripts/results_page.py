"""docs/results.md and the README's headline table, generated from the benchmark JSON files in docs/.

Every figure on the results page is read from a JSON file that a benchmark wrote; the page says which file,
and the machine, versions and date of the run where the file records them ("not recorded" where it does
not). Re-run a benchmark with `--json docs/NAME.json`, then this script:

    python scripts/results_page.py            # rewrite docs/results.md and the README's table
    python scripts/results_page.py --check    # exit 1 if either is out of date (tests/test_docs.py runs it)

A JSON file in docs/ that no section below knows is still listed, with its figures flattened, so a new
benchmark's output is never silently left off.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGE = DOCS / "results.md"
README = ROOT / "README.md"
BEGIN, END = "<!-- results:begin (scripts/results_page.py) -->", "<!-- results:end -->"


@functools.cache
def load(name: str) -> dict:
    """A JSON file of docs/, read once (the renderers ask for one file many times; none changes it)."""
    return json.loads((DOCS / name).read_text())


def pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f} %"


def num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.{digits}g}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def provenance(name: str, machine: str | None, versions: dict | None, date: str | None) -> str:
    parts = [f"source `docs/{name}`", f"machine: {machine or 'not recorded'}"]
    if versions:
        parts.append("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v))
    else:
        parts.append("versions: not recorded")
    parts.append(f"date: {date or 'not recorded'}")
    return "*" + "; ".join(parts) + ".*"


# -- one renderer per kind of file ------------------------------------------------------------------------------

def seeds(names: list[str]) -> str:
    rows = []
    for name in names:
        d = load(name)
        s, m, runs = d["stats"], d.get("machine", {}), d["runs"]
        worst = min(runs, key=lambda r: r["digit_accuracy"])
        opts = " ".join(d.get("train_options") or []) or "-"
        rows.append([f"`{name}`", f"{m.get('cpu', '?')} ({m.get('isa', '?')})", opts, len(runs),
                     f"{pct(s['digit_accuracy']['mean'])} +- {100 * s['digit_accuracy']['std']:.2f}",
                     f"{pct(worst['digit_accuracy'])} (seed {worst['seed']})",
                     f"{pct(s['sum_accuracy']['mean'])} +- {100 * s['sum_accuracy']['std']:.2f}",
                     pct(s["sum_consistency"]["mean"], 3),
                     f"{s['train_seconds']['mean']:.1f} +- {s['train_seconds']['std']:.1f}"
                     if d.get("timing_comparable", True) else "not a speed figure (see note)",
                     runs[0].get("epochs", "?"), runs[0].get("precision", "?"), m.get("torch", "?")])
    notes = [f"`{name}`: {load(name)['note']}" + (f" ({load(name)['date']})." if load(name).get("date") else ".")
             for name in names if load(name).get("note")]
    return ("## Accuracy and training time over seeds\n\n`python benchmarks/seeds.py --seeds 5 [-- TRAIN OPTIONS] "
            "--json docs/NAME.json`: exhaustive test accuracy (10,000 images x rand 0-9) of each seed's model. "
            "The files record the CPU and torch; a date only where a note gives it.\n\n"
            + "".join(f"- {n}\n" for n in notes) + ("\n" if notes else "")
            + table(["file", "CPU (class)", "train options given", "seeds", "digit % (mean +- std)", "worst seed",
                     "sum %", "sum consistency", "training s", "epochs", "precision", "torch"], rows))


def bench(names: list[str]) -> str:
    out = ["## Runtimes: latency, throughput and parity\n\n`digitsum-edge bench --json docs/NAME.json`."]
    for name in names:
        d = load(name)
        h = d["header"]
        m = h["machine"]
        share = pct(m.get("other_processes_cpu_share"), 0)
        machine = f"{m['cpu']}, {m['cores']} cores, other processes {share} of the CPU"
        out.append(f"### `{name}`\n\n`{h.get('command', '')}`\n\n" + provenance(name, machine, h.get("versions"),
                                                                                   h.get("date")))
        rows = [[r["label"], r["batch"], r["threads"], num(r["median_ms"]), num(r["p99_ms"]), num(r["images_per_s"]),
                 pct(r.get("digit_accuracy")), pct(r.get("sum_accuracy"))]
                for r in d["rows"] if r.get("status") == "ok"]
        out.append(table(["backend", "batch", "threads", "median ms", "p99 ms", "images/s", "digit %", "sum %"], rows))
        parity = [[p["label"], pct(p["digit_accuracy"]), pct(p["sum_accuracy"]),
                   pct(min(p["argmax_agreement"].values()), 3), f"{max(p['max_abs_diff'].values()):.1e}",
                   ("pass: " if p["pass"] else "FAIL: ") + p["check"]] for p in d.get("parity", [])]
        if parity:
            out.append("Parity on the exhaustive test (fp32 files are judged by their largest logit difference, "
                       "int8 and fp16 by accuracy against fp32):\n\n"
                       + table(["backend", "digit %", "sum %", "argmax same", "max abs diff", "verdict"], parity))
        live = d.get("live") or {}
        if live.get("status") == "ok":
            out.append(f"Live pipeline ({live['frame']} frame, {live['backend']}, {live['threads']} thread): median "
                       f"{live['median_ms']:.2f} ms, p90 {live['p90_ms']:.2f} ms; digit {pct(live['digit_accuracy'])} "
                       f"of {live['frames']} synthetic frames.")
        if (d.get("speedup") or {}).get("line"):
            out.append(d["speedup"]["line"] + ".")
    return "\n\n".join(out)


def camera(names: list[str]) -> str:
    out = ["## Camera conditions\n\n`python benchmarks/camera_conditions.py --model runs/model.onnx --frames 100 "
           "--seed 10000 --json docs/NAME.json`: fresh 640x480 frames per condition, read as `live --no-window` "
           "reads them (the central 0.6 square, 1 thread); seed 10000 is kept back from tuning. With `--stills` the "
           "same frames are also read as still images (roi 1), a column of their own."]
    columns: list[tuple[str, dict]] = []  # (header, one reading of the conditions)
    for name in names:
        d = load(name)
        if "camera" in d:  # a --stills run: the frames as stills, and through the camera path
            columns += [(f"`{name}` stills (roi 1)", d), (f"`{name}` camera path", d["camera"])]
        else:
            columns.append((f"`{name}`", d))
    conditions: list[str] = []
    for _, result in columns:
        conditions += [c for c in result["rows"] if c not in conditions]
    rows = []
    for c in conditions:
        cells = []
        for _, result in columns:
            row = result["rows"].get(c)
            if row is None:
                cells.append("-")
            elif "accuracy" in row:
                cells.append(pct(row["accuracy"], 1))
            else:
                cells.append(f"{row['blank_read_as_digit']} of {row['frames']} read as a digit")
        rows.append([c, *cells])
    rows.append(["**mean of the conditions**"] + [f"**{pct(r['mean_accuracy'], 1)}**" for _, r in columns])
    rows.append(["ms a frame (median, 1 thread)"] + [f"{r['ms_per_frame_median']:.2f}" for _, r in columns])
    out.append(table(["condition"] + [h for h, _ in columns], rows))
    out += [provenance(n, load(n).get("cpu"), load(n).get("versions"), load(n).get("generated_at")) for n in names]
    return "\n\n".join(out)


def photos(names: list[str]) -> str:
    out = ["## Real photos\n\n`python benchmarks/real_photos.py --model runs/model.onnx --json docs/NAME.json "
           "--kept-back WRITERS`: 140 photos and drawings of handwritten digits by 14 people (not shipped), read "
           "as `predict` reads them."]
    for name in names:
        d = load(name)
        rows = [[g, r["photos"], r["correct"], pct(r["accuracy"], 1), r["no_digit"], r["wrong_and_sure"]]
                for g, r in d["groups"].items()]
        writers = [[w, f"{r['correct']} / {r['photos']}", r["no_digit"], r["wrong_and_sure"]]
                   for w, r in d.get("writers", {}).items()]
        kept = d.get("kept_back") or []
        out.append(f"### `{name}`\n\n" + table(["group", "images", "read right", "accuracy", "no digit",
                                                  "wrong and sure"], rows)
                   + (f"\n\nWriters kept back while tuning: {', '.join(kept)}." if kept else "")
                   + ("\n\nPer writer:\n\n" + table(["writer", "read right", "no digit", "wrong and sure"], writers)
                      if writers else "")
                   + "\n\n" + provenance(name, d.get("cpu"), d.get("versions"), d.get("generated_at")))
    return "\n\n".join(out)


def over_models(names: list[str]) -> str:
    out = ["## The reader over five seed models\n\n`python benchmarks/over_models.py runs/seed*/camera.json "
           "runs/seed*/real.json --json docs/NAME.json`: one model's figure moves with its seed, so the reader's "
           "figures are also given over the seed models (mean, std, lowest). The file records the models' paths, "
           "not the machine or date."]
    for name in names:
        d = load(name)
        for kind, part in d.items():
            if not isinstance(part, dict) or "figures" not in part:
                continue
            rows = [[f, f"{s['mean']:.4g}", f"{s['std']:.2g}", f"{s['min']:.4g}", f"{s['max']:.4g}"]
                    for f, s in part["figures"].items()]
            out.append(f"### {kind} (`{name}`, {len(part.get('models', []))} models)\n\n"
                       + table(["figure", "mean", "std", "min", "max"], rows))
    return "\n\n".join(out)


def train_vs_reference(names: list[str]) -> str:
    out = ["## Time to accuracy against the reference recipe\n\n`make bench-train` "
           "(`benchmarks/train_vs_reference.py --json docs/NAME.json`)."]
    rows = []
    for name in names:
        d = load(name)
        h = d.get("header", {})
        ref = d["reference"]
        best_ref = max((e["sum_accuracy"] for e in ref["history"]), default=None)
        rows.append([f"`{name}`", f"{h.get('cpu', 'not recorded')} ({h.get('isa', '?')})", h.get("threads", "?"),
                     pct(h.get("others_cpu_share"), 0), pct(d["target_sum_accuracy"], 1),
                     num(d["ours"]["seconds_to_target"]), num(ref["seconds_to_target"]) if ref["seconds_to_target"]
                     else f"not reached in {len(ref['history'])} epochs (best {pct(best_ref)})",
                     f"{d['speedup_at_least']:.1f}x" if d.get("speedup_at_least") else "-"])
    out.append(table(["file", "CPU", "threads", "other processes", "target sum accuracy", "ours, s",
                      "reference, s", "sooner, at least"], rows))
    return "\n\n".join(out)


def train_step(names: list[str]) -> str:
    out = ["## Where a training step's time goes\n\n`python benchmarks/train_step.py --json docs/NAME.json`: "
           "milliseconds per 128 images for each lever of the recipe, measured in turns in one run."]
    for name in names:
        d = load(name)
        rows = [[r["case"], f"{r['ms_per_128_images']:.1f}", f"{r['ratio']:.2f}"] for r in d["rows"]]
        out.append(f"### `{name}`: {d.get('cpu')} ({d.get('isa')}), {d.get('threads')} threads, torch "
                   f"{d.get('torch')}, other processes {pct(d.get('others_cpu_share'), 0)}\n\n"
                   + table(["case", "ms / 128 images", "ratio"], rows))
    return "\n\n".join(out)


def export_litert(names: list[str]) -> str:
    out = ["## LiteRT export\n\n`digitsum-edge export runs/model.pt --format litert --int8 --json docs/NAME.json`."]
    for name in names:
        d = load(name)
        rows = [[f"`{Path(f['path']).name}`", f["precision"], f"{f['size_bytes'] / 1024:.1f} KiB",
                 pct(f["metrics"]["digit_accuracy"]), pct(f["metrics"]["sum_accuracy"]),
                 "; ".join(f["verdict"]["checks"])] for f in d["files"]]
        out.append(table(["file", "precision", "size", "digit %", "sum %", "verdict"], rows)
                   + f"\n\n*source `docs/{name}`; machine, versions and date: not recorded; export took "
                     f"{d.get('seconds', 0):.0f} s.*")
    return "\n\n".join(out)


def web(names: list[str]) -> str:
    out = ["## The web app against Python\n\n`DIGITSUM_WEB_JSON=docs/NAME.json pytest tests/test_web_parity.py`: "
           "the page and Python read the same frames."]
    for name in names:
        d = load(name)
        rows = [[s, r["frames"], pct(r["digit_agreement"], 1), f"{r['identical_28x28']} of {r['both_found']}",
                 f"{r['mean_abs_diff_28x28']:.3g}"] for s, r in [*d["per_set"].items(), ("all", d["overall"])]]
        out.append(table(["frames", "count", "same digit", "identical 28x28", "mean abs diff"], rows)
                   + f"\n\n*source `docs/{name}`, seed {d.get('seed')}; machine and date: not recorded.*")
    return "\n\n".join(out)


def serve_load(names: list[str]) -> str:
    out = ["## The service under load\n\n`make bench-serve` (`benchmarks/serve_load.py --json docs/NAME.json`)."]
    for name in names:
        d = load(name)
        m = d["machine"]
        rows = [["ceiling: read in one process", "-", num(d["ceiling"]["read"]), "-", "-", "-"],
                ["ceiling: predict in one process", "-", num(d["ceiling"]["predict"]), "-", "-", "-"]]
        for run in d["runs"]:
            for route in ("read", "predict"):
                r = run.get(route)
                if r:
                    rows.append([f"/v1/{route}, {run['replicas']} replica(s)", r["clients"], num(r["images_per_s"]),
                                 num(r["p50_ms"]), num(r["p99_ms"]), r["errors"]])
        machine = (f"{m['cpu']}, {m['cores']} cores, other processes {pct(m.get('background_cpu_share_before'), 1)}"
                   " of the CPU before the run")
        out.append(f"### `{name}`\n\n" + table(["what", "clients", "images/s", "p50 ms", "p99 ms", "errors"], rows)
                   + "\n\n" + provenance(name, machine, {k: m.get(k) for k in ("python", "onnxruntime", "ray")},
                                         None))
    return "\n\n".join(out)


def stills(names: list[str]) -> str:
    out = ["## Still photos: the digit anywhere in the picture\n\n`python benchmarks/camera_conditions.py --stills "
           "--model MODEL --seed 10000` over the seed models, and `benchmarks/real_photos.py`, before and after the "
           "search for the digit in a still ([Still photos](stills.md)); mean over the models (lowest)."]
    for name in names:
        d = load(name)
        rows = []
        for kind in ("camera conditions", "real photos"):
            before, after = d["before"][kind]["figures"], d["after"][kind]["figures"]
            for figure, a in after.items():
                b = before.get(figure)
                cell = (lambda s: f"{s['mean']:.4g} ({s['min']:.4g})") if "ms" not in figure else (
                    lambda s: f"{s['mean']:.3g}")
                rows.append([f"{kind}: {figure}", cell(b) if b else "-", cell(a)])
        same = d["camera_path_unchanged"]
        out.append(f"### `{name}`: {len(d['models'])} models, seed {d['seed']}\n\n"
                   + table(["figure", "before", "after"], rows)
                   + f"\n\nThe camera path (roi 0.6) gives the same 28x28 images, boxes and reasons: "
                     f"{'yes' if same['before'] == same['after'] else 'NO'} ({same['what']})."
                   + f"\n\n*source `docs/{name}`; machine: {d.get('machine', 'not recorded')}; versions and date: "
                     f"not recorded.*")
    return "\n\n".join(out)


def flat(d: object, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """Numeric and short text leaves of a JSON value, as (path, value), lists of records left out."""
    if isinstance(d, dict):
        return [row for k, v in d.items() for row in flat(v, f"{prefix}.{k}" if prefix else str(k), depth + 1)]
    if isinstance(d, bool) or d is None:
        return [(prefix, str(d).lower())]
    if isinstance(d, (int, float)):
        return [(prefix, num(float(d), 4) if isinstance(d, float) else f"{d:,}")]
    if isinstance(d, str) and len(d) <= 80:
        return [(prefix, d.replace("|", "/"))]
    if isinstance(d, list) and d and all(isinstance(x, (int, float)) for x in d) and len(d) <= 12:
        return [(prefix, ", ".join(num(float(x), 4) for x in d))]
    return []


def other(names: list[str]) -> str:
    out = ["## Other benchmark files\n\nFiles in `docs/` with no section of their own above: their figures as the "
           "file holds them (path in the file, value)."]
    for name in names:
        rows = [[f"`{k}`", v] for k, v in flat(load(name))]
        out.append(f"??? note \"`{name}` ({len(rows)} figures)\"\n\n"
                   + "\n".join("    " + line for line in table(["figure", "value"], rows).splitlines()))
    return "\n\n".join(out)


# -- which files go to which renderer ---------------------------------------------------------------------------

def kind(name: str, d: dict) -> str:
    if d.get("schema", "").startswith("digitsum-edge.seeds"):
        return "seeds"
    if d.get("schema", "").startswith("digitsum-edge.bench"):
        return "bench"
    if "rows" in d and "mean_accuracy" in d:
        return "camera"
    if "groups" in d and "writers" in d:
        return "photos"
    if any(isinstance(v, dict) and "figures" in v for v in d.values()):
        return "over_models"
    if "reference" in d and "ours" in d:
        return "train_vs_reference"
    if "rows" in d and d["rows"] and "ms_per_128_images" in d["rows"][0]:
        return "train_step"
    if d.get("format") == "litert" and "files" in d:
        return "export_litert"
    if "per_set" in d and "overall" in d:
        return "web"
    if "ceiling" in d and "runs" in d:
        return "serve_load"
    if "camera_path_unchanged" in d and "after" in d:
        return "stills"
    return "other"


RENDERERS: dict[str, Callable[[list[str]], str]] = {
    "seeds": seeds, "bench": bench, "camera": camera, "photos": photos, "over_models": over_models,
    "train_vs_reference": train_vs_reference, "train_step": train_step, "export_litert": export_litert,
    "web": web, "serve_load": serve_load, "stills": stills, "other": other}


def page() -> str:
    groups: dict[str, list[str]] = {k: [] for k in RENDERERS}
    for path in sorted(DOCS.glob("*.json")):
        if path.name == "metrics.json":  # one model's metrics: shown by the seeds files' runs
            continue
        groups[kind(path.name, load(path.name))].append(path.name)
    sections = [RENDERERS[k](names) for k, names in groups.items() if names]
    head = ("# Results\n\n<!-- Generated by scripts/results_page.py from the JSON files in docs/: do not edit. -->\n\n"
            "Every figure here is read from a JSON file a benchmark wrote, named with its section; the machine, "
            "versions and date are given where the file records them. The CPU changes between runs (an Intel Xeon "
            "with AMX; one with AVX-512 and no AMX, also under `ONEDNN_MAX_CPU_ISA=AVX2`; an AMD EPYC with AVX2), "
            "so compare figures of one file, not across files. Figures typed elsewhere in these pages come from the "
            "command printed beside them; those without a JSON file say so. Regenerate with "
            "`python scripts/results_page.py` after a benchmark.\n")
    return "\n\n".join([head, *sections]) + "\n"


def headline() -> str:
    """The README's short table: accuracy over seeds, real photos, camera conditions, latency per runtime."""
    rows = []
    for name in sorted(DOCS.glob("seeds*.json")):
        d = load(name.name)
        if set(d.get("train_options") or []) - {"--epochs", "12", "--threads", "1"} or len(d["runs"]) < 5 \
                or d["runs"][0].get("epochs") != 12:
            continue  # the default recipe only
        s, m = d["stats"]["digit_accuracy"], d.get("machine", {})
        worst = min(r["digit_accuracy"] for r in d["runs"])
        isa, precision = m.get("isa") or "class not recorded", d["runs"][0].get("precision")
        rows.append([f"digit accuracy, default recipe, 5 seeds ({m.get('cpu')}, {isa}, {precision})",
                     f"{pct(s['mean'])} +- {100 * s['std']:.2f} (worst {pct(worst)})"
                     + (f", trained in {d['stats']['train_seconds']['mean']:.0f} s, {d['runs'][0]['threads']} threads"
                        if d.get("timing_comparable", True) else ", 1 thread (time not measured quietly)"),
                     f"`docs/{name.name}`"])
    if (DOCS / "stills.json").exists():  # the reader as it is now, over the seed models
        source, over = "stills.json", load("stills.json")["after"]
        prefixes = [("camera conditions, camera path (11, kept-back seed)", "camera path: "),
                    ("the same frames as stills (roi 1)", "")]
    else:
        source, over = "reader_seeds.json", load("reader_seeds.json")
        prefixes = [("camera conditions (11, kept-back seed)", "")]
    photo, cam = over["real photos"]["figures"], over["camera conditions"]["figures"]
    models = len(over["real photos"].get("models", []))
    a = photo["all photos: accuracy"]
    rows.append([f"real photos by 12 people (120), {models} seed models", f"{pct(a['mean'], 1)} +- "
                 f"{100 * a['std']:.1f} (lowest {pct(a['min'], 1)})", f"`docs/{source}`"])
    for what, prefix in prefixes:
        c, blank = cam[prefix + "mean of the conditions"], cam[prefix + "blank: read as a digit"]
        rows.append([f"{what}, {models} seed models", f"{pct(c['mean'], 1)} +- {100 * c['std']:.1f}; blank "
                     f"sheets read as a digit: {max(blank['values'])} of 100", f"`docs/{source}`"])
    b = load("bench.json")
    for r in b["rows"]:
        if r.get("status") == "ok" and r["batch"] == 1:
            machine = b["header"]["machine"]
            isa = machine.get("isa") or "class not recorded"
            rows.append([f"latency, batch 1, {r['label']}", f"{r['median_ms']:.3f} ms median ({machine['cpu']}, "
                         f"{isa}, 1 thread, {b['header'].get('date', 'date not recorded')[:10]})",
                         "`docs/bench.json`"])
    return (BEGIN + "\n" + table(["what", "figure", "source"], rows)
            + "\n\nEvery row is read from the JSON file beside it ([all results](docs/results.md)).\n" + END)


def readme_with(block: str) -> str:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"error: {README} has no results block ({BEGIN} ... {END})")
    return text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/results.md or the README is stale")
    args = parser.parse_args()
    want = {PAGE: page(), README: readme_with(headline())}
    stale = [p for p, text in want.items() if not p.exists() or p.read_text() != text]
    if args.check:
        if stale:
            sys.exit("error: out of date, run `python scripts/results_page.py`: "
                     + ", ".join(str(p.relative_to(ROOT)) for p in stale))
        print("results page and README table are up to date")
        return
    for path in stale:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(want[path])
        tmp.replace(path)
        print(f"wrote {path.relative_to(ROOT)}")
    if not stale:
        print("results page and README table were already up to date")


if __name__ == "__main__":
    main()
