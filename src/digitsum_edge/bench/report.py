"""The bench report as people read it: header facts, the terminal table, and a chart drawn from the JSON."""

from __future__ import annotations

import importlib
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from digitsum_edge import __version__
from digitsum_edge.files import atomic_path
from digitsum_edge.onnx_contract import JUDGED_BY
from digitsum_edge.timing import load_warning


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def module_version(module: str) -> str | None:
    """`module.__version__`, or None where it is not installed."""
    try:
        return str(importlib.import_module(module).__version__)
    except ImportError:  # the runtime-only install has no torch or onnx
        return None


def header(model: dict, gpu: bool) -> dict:
    """Machine and library versions beside the model facts: what every figure was measured with."""
    import onnxruntime

    gpu_name = None
    if gpu and module_version("torch"):
        import torch

        gpu_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    command = Path(sys.argv[0]).name == "digitsum-edge"
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["digitsum-edge", *sys.argv[1:]]) if command else None,
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(), "gpu": gpu_name,
                    "onnxruntime_providers": onnxruntime.get_available_providers()},
        "versions": {"digitsum_edge": __version__, "python": platform.python_version(),
                     "torch": module_version("torch"), "onnxruntime": onnxruntime.__version__,
                     "onnx": module_version("onnx"), "numpy": np.__version__},
        "model": model,
    }


def model_facts(paths: tuple[Path | None, Path, Path | None], ckpt: dict | None = None, model=None,
                onnx_path: Path | None = None) -> dict:
    """Parameters, MACs, config and files of the benchmarked model: from the checkpoint when torch is here,
    else from the ONNX file (parameters counted from its initializers, MACs unknown)."""
    names = ("checkpoint", "onnx", "int8")
    files = {k: {"path": str(p), "bytes": p.stat().st_size} for k, p in zip(names, paths, strict=True) if p}
    if ckpt is not None:
        from digitsum_edge import checkpoint
        from digitsum_edge.model import count_macs, count_params

        metrics = ckpt.get("metrics", {})
        return {"params": metrics.get("params") or count_params(model),
                "macs": metrics.get("macs") or count_macs(model), "model_config": ckpt["model_config"],
                "weights_sha256": checkpoint.weights_sha256(ckpt["state_dict"]), "files": files}
    from digitsum_edge.engine.factory import open_model

    loaded = open_model(onnx_path or paths[1], provider="cpu")
    return {"params": None, "macs": None, "model_config": loaded.info.model_config,
            "weights_sha256": loaded.info.weights_sha256, "files": files}


def _kib(n: int) -> str:
    return f"{n / 1024:,.0f} KiB"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def format_table(report: dict) -> str:
    """The whole report as fixed-width text for a terminal."""
    h, m, t = report["header"], report["header"]["model"], report["threads"]
    v = h["versions"]
    gpu = f", GPU {h['machine']['gpu']}" if h["machine"]["gpu"] else ", no GPU"
    threads = (f"{t['batch_1']} for every batch size" if t["fixed"] else
               f"{t['batch_1']} at batch 1, {t['larger_batches']} (all cores) above")
    cfg = report["config"]
    share = h["machine"].get("other_processes_cpu_share")
    load = "" if share is None else f" | other processes used {share:.0%} of the CPU during the run"
    warning = load_warning(share)
    lines = [
        f"digitsum-edge bench | {h['machine']['cpu']}, {h['machine']['cores']} cores{gpu} | "
        f"{h['machine']['platform']}{load}",
        *([f"WARNING: {warning}"] if warning else []),
        f"torch {v['torch'] or '(not installed)'}, onnxruntime {v['onnxruntime']}, onnx {v['onnx'] or '-'}, "
        f"numpy {v['numpy']}, digitsum-edge {v['digitsum_edge']}, Python {v['python']}",
        (f"model: {m['params']:,} parameters, {m['macs'] / 1e6:.2f} M MACs per image | " if m["params"] else
         f"model: channels {m['model_config'].get('channels')} | ")
        + ", ".join(f"{Path(f['path']).name} {_kib(f['bytes'])}" for f in m["files"].values()),
        f"timing: {cfg['warmup']} warm-up calls, then single calls for {cfg['budget']:g} s (at least "
        f"{cfg['min_runs']}) per row | threads, the same for every backend: {threads}",
        *([f"command: {h['command']}"] if h.get("command") else []),
        "",
        f"{'backend':<15} {'device':<6} {'prec':<5} {'batch':>5} {'thr':>3} {'median ms':>10} {'p90 ms':>9} "
        f"{'p99 ms':>9} {'images/s':>10} {'digit %':>8} {'sum %':>7}",
    ]
    for r in report["rows"]:
        head = f"{r['backend']:<15} {r['device']:<6} {r['precision']:<5}"
        if r["status"] != "ok":
            lines.append(f"{head} skipped: {r['reason']}")
            continue
        lines.append(f"{head} {r['batch']:>5} {r['threads']:>3} {r['median_ms']:>10.3f} {r['p90_ms']:>9.3f} "
                     f"{r['p99_ms']:>9.3f} {r['images_per_s']:>10,.0f} {_pct(r.get('digit_accuracy')):>8} "
                     f"{_pct(r.get('sum_accuracy')):>7}")
    parity = report["parity"]
    if parity:
        pairs = parity[0]["pairs"]
        lines += ["", f"accuracy parity on {pairs:,} pairs ({pairs // 10:,} test images x rand 0-9) against "
                      f"{parity[0]['label']}, {t['parity']} thread{'s' * (t['parity'] > 1)}",
                  f"{'backend':<28} {'digit %':>8} {'sum %':>7} {'argmax same':>12} {'max |diff|':>10}  "
                  f"{'judged by':<38} check"]
        for p in parity:
            lines.append(f"{p['label']:<28} {_pct(p['digit_accuracy']):>8} {_pct(p['sum_accuracy']):>7} "
                         f"{min(p['argmax_agreement'].values()):>12.4%} {max(p['max_abs_diff'].values()):>10.1e}  "
                         f"{JUDGED_BY.get(p.get('precision', ''), '-'):<38} "
                         f"{'pass' if p['pass'] else 'FAIL'}: {p['check']}")
    live = report["live"]
    lines.append("")
    if live["status"] == "ok":
        lines.append(f"live pipeline ({live['frame']} frame -> preprocessing + {live['backend']}, "
                     f"{live['threads']} thread): median {live['median_ms']:.2f} ms, p90 {live['p90_ms']:.2f} ms, "
                     f"{1e3 / live['median_ms']:,.0f} frames/s; digit {_pct(live['digit_accuracy'])} %, "
                     f"sum {_pct(live['sum_accuracy'])} %, "
                     f"no digit {_pct(live['no_digit'])} % of {live['frames']} synthetic frames")
    else:
        lines.append(f"live pipeline: skipped ({live['reason']})")
    lines += [f"note: {n}" for n in report["notes"]]
    if report["below_min_accuracy"]:
        lines.append(f"below --min-accuracy {report['config']['min_accuracy']:.2%}: "
                     + ", ".join(report["below_min_accuracy"]))
    lines.append(report["speedup"]["line"])
    return "\n".join(lines)


def write_plot(report: dict, path: str | os.PathLike) -> None:
    """Median latency (p90 as the upper whisker) and throughput against batch size, one line per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax_lat, ax_thr) = plt.subplots(1, 2, figsize=(12, 5.4))
    accuracy = {p["label"]: p for p in report["parity"]}
    labels = dict.fromkeys(r["label"] for r in report["rows"] if r["status"] == "ok")
    for label in labels:
        rows = sorted((r for r in report["rows"] if r["label"] == label and r["status"] == "ok"),
                      key=lambda r: r["batch"])
        batch = [r["batch"] for r in rows]
        median = np.array([r["median_ms"] for r in rows])
        p90 = np.array([r["p90_ms"] for r in rows])
        acc = accuracy.get(label)
        legend = f"{label} (digit {acc['digit_accuracy']:.2%}, sum {acc['sum_accuracy']:.2%})" if acc else label
        ax_lat.errorbar(batch, median, yerr=[np.zeros_like(median), p90 - median], marker="o", capsize=3,
                        label=legend)
        ax_thr.plot(batch, [r["images_per_s"] for r in rows], marker="o", label=legend)
    batches = sorted({r["batch"] for r in report["rows"] if r["status"] == "ok"})
    for ax, title, unit in ((ax_lat, "latency per call (median, whisker to p90)", "ms"),
                            (ax_thr, "throughput (batch / median latency)", "images / s")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("batch size")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    handles, names = ax_lat.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=2, fontsize=8, frameon=False)
    h, t = report["header"], report["threads"]
    threads = (f"{t['batch_1']} thread(s)" if t["fixed"]
               else f"{t['batch_1']} thread at batch 1, {t['larger_batches']} above")
    share = h["machine"].get("other_processes_cpu_share")
    load = "other processes: not measured" if share is None else f"other processes used {share:.0%} of the CPU"
    suptitle = fig.suptitle(f"digitsum-edge bench: {h['machine']['cpu']}, {h['machine']['cores']} cores, "
                            f"{threads} | torch {h['versions']['torch'] or '-'}, onnxruntime "
                            f"{h['versions']['onnxruntime']}\n{h['machine']['platform']} | {h['date']} | {load}",
                            fontsize=10)
    warning = load_warning(share)
    if warning:  # the chart travels without the JSON: it says itself that it was measured on a busy machine
        fig.text(0.5, 0.885, "WARNING: " + warning, ha="center", va="top", fontsize=9, color="#b00020",
                 wrap=True, bbox={"facecolor": "#fff0f0", "edgecolor": "#b00020", "boxstyle": "round,pad=0.3"})
    fig.tight_layout(rect=(0, 0.1, 1, 0.86 if warning else 0.93))  # room for the title, warning, legend
    conditions = "\n".join(t.get_text() for t in (suptitle, *fig.texts))
    with atomic_path(path) as tmp:  # the conditions also as the PNG's text (readable without looking at it)
        fig.savefig(tmp, dpi=120, metadata={"Title": "digitsum-edge bench", "Description": conditions})
    plt.close(fig)
