"""The runtime on ARM64 (Raspberry Pi OS bookworm, Python 3.11) under QEMU emulation, against x86-64 on the same
inputs: `make arm64`.

Builds the cached userland once (benchmarks/emulation.py: bookworm arm64, the aarch64 wheels, the emulated pip),
installs this checkout's wheel into it (no torch), and for each CPU model (cortex-a72: Raspberry Pi 4,
cortex-a76: Raspberry Pi 5) runs, beside the same on this machine:
- `predict` on the real photos (../shared/data/real-photos, where present) and on fresh synth frames of every
  camera condition, and `live --no-window` on a generated video: their JSON lines must match x86's (times aside);
- the Python API (benchmarks/arm64_probe.py): each model file's logits on the first --pairs (test image, rand)
  pairs (ONNX Runtime fp32 and int8, LiteRT .tflite files with ai-edge-litert's aarch64 wheel): same argmax,
  largest |difference|; and the reader frame by frame (photos, synth frames, every frame of the video, each
  decoded on its own machine): the decoded frame, the shrunk grey image, the 28x28 image, the digit and the
  box.
Then the install size on ARM64. A table, and the JSON (--json). Emulated time is not a board's: no speed here.

    .venv/bin/python benchmarks/arm64.py --model /work/models/seed0/model.onnx \
        --litert /tmp/litert/model.tflite --json docs/arm64.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import emulation
from digitsum_edge import mnist
from digitsum_edge.apps.sources import list_images
from digitsum_edge.evaluate import exhaustive_pairs
from digitsum_edge.files import write_json
from digitsum_edge.synth.conditions import CONDITIONS
from digitsum_edge.synth.frames import pick_digits, write_images, write_video
from digitsum_edge.vision import settings as defaults

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "real-photos"
PROBE = Path(__file__).resolve().parent / "arm64_probe.py"
RAND = 3
VIDEO_FRAMES = 18  # the generated video: 6 scenes, 3 frames each


def host_cli(args: list[object], timeout: float = 3600) -> subprocess.CompletedProcess:
    """`digitsum-edge ARGS` on this machine, from this checkout."""
    return subprocess.run([sys.executable, "-c", "import sys; from digitsum_edge.cli import main; "
                           "sys.argv[0] = 'digitsum-edge'; main()", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, check=False,
                          env={**_env(), "PYTHONPATH": str(ROOT / "src")})


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def json_lines(text: str) -> list[dict]:
    """A command's JSON lines without their times (emulated time means nothing)."""
    return [{k: v for k, v in json.loads(line).items() if not k.endswith("ms")} for line in text.splitlines()
            if line.startswith("{")]


def compare_lines(x86: list[dict], arm: list[dict]) -> dict:
    """Lines that differ, and of them those whose digit (or found) differs."""
    if len(x86) != len(arm):
        return {"lines": len(x86), "arm64_lines": len(arm), "identical": False}
    differ = [(a, b) for a, b in zip(x86, arm, strict=True) if a != b]
    digit = [(a, b) for a, b in differ if (a.get("found"), a.get("digit")) != (b.get("found"), b.get("digit"))]
    return {"lines": len(x86), "differ": len(differ), "digit_differs": len(digit), "identical": not differ,
            "examples": [{"x86": a, "arm64": b} for a, b in differ[:3]]}


def compare_probe(x86: dict, arm: dict, models: list[str], labels: list[str]) -> dict:
    """Logits per model file, and the reader frame by frame."""
    out: dict = {"models": []}
    index, rand = exhaustive_pairs(10_000)
    truth = mnist.load("test").labels[index]
    for i, (model, label) in enumerate(zip(models, labels, strict=True)):
        pairs = len(x86[f"logits_{i}_digit"])
        row = {"model": label, "file": Path(model).name, "pairs": pairs}
        for head in ("digit", "sum"):
            a, b = x86[f"logits_{i}_{head}"], arm[f"logits_{i}_{head}"]
            row[f"{head}_max_abs_diff"] = float(np.abs(a - b).max())
            row[f"{head}_argmax_differs"] = int((a.argmax(1) != b.argmax(1)).sum())
            want = truth[:pairs] + (rand[:pairs] if head == "sum" else 0)
            row[f"{head}_accuracy"] = {"x86": float((a.argmax(1) == want).mean()),
                                       "arm64": float((b.argmax(1) == want).mean())}
        out["models"].append(row)
    if len(x86["found"]):
        out["frames"] = compare_frames(x86, arm, slice(None))
    return out


def compare_frames(x86: dict, arm: dict, part: slice) -> dict:
    """The reader on the frames `part`, stage by stage: how many differ."""
    x, a = ({k: d[k][part] for k in ("found", "mnist", "digits", "boxes", "decoded", "shrunk")} for d in (x86, arm))
    found = x["found"] & a["found"]
    diff = np.abs(x["mnist"].astype(np.int16) - a["mnist"].astype(np.int16)).reshape(len(found), -1).max(1)
    return {
        "frames": len(found),
        "decoded_differs": int((x["decoded"] != a["decoded"]).sum()),
        "shrunk_differs": int((x["shrunk"] != a["shrunk"]).sum()),
        "found_differs": int((x["found"] != a["found"]).sum()),
        "mnist_differs": int(((diff > 0) & found).sum()),
        "mnist_max_abs_diff": int(diff[found].max()) if found.any() else 0,
        "digit_differs": int((x["digits"] != a["digits"]).sum()),
        "box_differs": int((x["boxes"] != a["boxes"]).any(1).sum()),
    }


def probe_native(request: Path, out: Path) -> dict:
    done = subprocess.run([sys.executable, PROBE, request, out], capture_output=True, text=True, check=False,
                          env={**_env(), "PYTHONPATH": str(ROOT / "src")})
    if done.returncode != 0:
        raise SystemExit(f"error: the probe failed on x86: {done.stderr.strip()[-2000:]}")
    return dict(np.load(out))


def inputs(work: Path, photos: Path | None, per_condition: int, seed: int) -> tuple[list[Path], Path, Path]:
    """The frames both machines read: the photos, synth frames of every camera condition, a short video."""
    photo_files = list_images(photos) if photos else []
    count = per_condition * len(CONDITIONS)
    digits, labels = pick_digits(count, seed)
    write_images(work / "conditions", digits, labels, seed, conditions=tuple(CONDITIONS))
    digits, labels = pick_digits(VIDEO_FRAMES // 3, seed + 1, blank=0.2)
    write_video(work / "clip.mp4", digits, labels, seed + 1, hold=3)
    return photo_files, work / "conditions", work / "clip.mp4"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="fp32 .onnx; its .int8.onnx beside it is compared too")
    p.add_argument("--litert", type=Path, help="a .tflite file; its .int8.tflite beside it is compared too")
    p.add_argument("--photos", type=Path, default=PHOTOS, help="folder of photos (skipped where absent)")
    p.add_argument("--per-condition", type=int, default=10, help="synth frames per camera condition")
    p.add_argument("--seed", type=int, default=20000, help="seed of the synth frames")
    p.add_argument("--pairs", type=int, default=100_000, help="(test image, rand) pairs per model file")
    p.add_argument("--cpus", default=",".join(emulation.CPUS), help="QEMU CPU models")
    p.add_argument("--pairs-only", action="store_true",
                   help="only the model files' logits on --pairs pairs (no frames, no commands): the long part of "
                        "--pairs 100000, run on its own")
    p.add_argument("--int8-only", action="store_true",
                   help="only the int8 files: after a re-quantization, whose fp32 file (and its parity) is unchanged")
    p.add_argument("--json", type=Path, default=ROOT / "docs" / "arm64.json")
    args = p.parse_args()
    if not args.model.is_file():
        raise SystemExit(f"error: model {args.model} does not exist (digitsum-edge export runs/model.pt first)")
    models = [args.model, args.model.with_suffix(".int8.onnx")]
    if args.litert:
        models += [args.litert, args.litert.with_suffix(".int8.tflite")]
    models = [m for m in models if m.is_file() and (".int8." in m.name or not args.int8_only)]
    labels = [("litert " if m.suffix == ".tflite" else "onnxruntime ") + ("int8" if ".int8." in m.name else "fp32")
              for m in models]
    photos = args.photos if args.photos.is_dir() and not args.pairs_only else None
    if photos is None and not args.pairs_only:
        print(f"note: no photos at {args.photos}: synth frames only")
    with tempfile.TemporaryDirectory(prefix="arm64-") as tmp:
        work = Path(tmp)
        wheel = emulation.build_wheel(work / "wheel")
        userland = emulation.Userland(emulation.requirements(wheel))
        facts = userland.ensure(wheel)
        userland.install(wheel, work / "project")
        frames: list = []
        photo_files: list[Path] = []
        conditions, video = work / "conditions", work / "clip.mp4"
        if not args.pairs_only:
            photo_files, conditions, video = inputs(work, photos, args.per_condition, args.seed)
            frames = ([[str(f), 1.0] for f in photo_files] + [[str(f), r] for r in (1.0, defaults.ROI)
                                                               for f in sorted(conditions.glob("*.png"))]
                      + [[str(video), defaults.ROI]])  # every frame of the video, as live reads it
        request = work / "request.json"
        request.write_text(json.dumps({"models": [str(m) for m in models], "pairs": args.pairs, "frames": frames,
                                       "reader_model": str(args.model), "rand": RAND}))
        commands = {"predict photos": ["predict", photos, "--model", args.model, "--rand", RAND, "--provider", "cpu"],
                    "predict conditions": ["predict", conditions, "--model", args.model, "--rand", RAND,
                                           "--provider", "cpu"],
                    "live video": ["live", "--source", video, "--model", args.model, "--rand", RAND, "--no-window",
                                   "--provider", "cpu"]}
        if photos is None or args.pairs_only:
            del commands["predict photos"]
        if args.pairs_only:
            commands = {}
        print(f"x86-64: {len(frames)} frames, {args.pairs} pairs x {len(models)} model files")
        x86 = probe_native(request, work / "x86.npz")
        x86_lines = {}
        for name, cmd in commands.items():
            done = host_cli(cmd)
            if done.returncode != 0:
                raise SystemExit(f"error: {name} failed on x86: {done.stderr.strip()[-1000:]}")
            x86_lines[name] = json_lines(done.stdout)
        report = {"userland": facts, "x86": json.loads(str(x86["info"])), "pairs": args.pairs,
                  "cpus": {}}
        if not args.pairs_only:
            report["frames"] = {"photos": len(photo_files), "conditions": len(list(conditions.glob("*.png"))),
                                "per_condition": args.per_condition, "seed": args.seed, "rois": [1.0, defaults.ROI],
                                "video_frames": VIDEO_FRAMES}
        for cpu in args.cpus.split(","):
            board = emulation.CPUS[cpu][0]
            print(f"{cpu} ({board}, emulated): the probe, then {', '.join(commands)}", flush=True)
            # emulated, ONNX Runtime takes about 10 ms a pair per file (LiteRT's batch-1 int8 file more)
            done = userland.python([PROBE, request, work / f"{cpu}.npz"], cpu,
                                   timeout=3600 + 0.05 * args.pairs * len(models))
            if done.returncode != 0:
                raise SystemExit(f"error: the probe failed on {cpu}: {done.stderr.strip()[-2000:]}")
            arm = dict(np.load(work / f"{cpu}.npz"))
            row = {"board": board, "arm64": json.loads(str(arm["info"])), **compare_probe(x86, arm,
                                                                                           [str(m) for m in models],
                                                                                           labels)}
            if not args.pairs_only:
                row["video_frames"] = compare_frames(x86, arm, slice(-VIDEO_FRAMES, None))  # the last ones
            row["commands"] = {}
            for name, cmd in commands.items():
                done = userland.cli(cmd, cpu)
                if done.returncode != 0:
                    raise SystemExit(f"error: {name} failed on {cpu}: {done.stderr.strip()[-1000:]}")
                row["commands"][name] = compare_lines(x86_lines[name], json_lines(done.stdout))
            report["cpus"][cpu] = row
            print_cpu(cpu, row)
        print_install(facts)
        write_json(args.json, report)
        print(f"wrote {args.json}")


def print_cpu(cpu: str, row: dict) -> None:
    print(f"\n{cpu} ({row['board']}) against x86-64")
    print(f"{'model':<18}{'pairs':>8}{'digit max|diff|':>17}{'sum max|diff|':>15}{'argmax differs':>16}")
    for m in row["models"]:
        print(f"{m['model']:<18}{m['pairs']:>8}{m['digit_max_abs_diff']:>17.2e}{m['sum_max_abs_diff']:>15.2e}"
              f"{m['digit_argmax_differs'] + m['sum_argmax_differs']:>16}")
    if "frames" not in row:
        return
    f = row["frames"]
    print(f"reader, {f['frames']} frames: decoded differ {f['decoded_differs']}, shrunk grey differ "
          f"{f['shrunk_differs']}, 28x28 differ {f['mnist_differs']} (max |diff| {f['mnist_max_abs_diff']}), "
          f"found differ {f['found_differs']}, digit differ {f['digit_differs']}, box differ {f['box_differs']}")
    v = row["video_frames"]
    print(f"  of which the video's {v['frames']} frames: decoded differ {v['decoded_differs']}, 28x28 differ "
          f"{v['mnist_differs']} (max |diff| {v['mnist_max_abs_diff']}), digit differ {v['digit_differs']}")
    for name, c in row["commands"].items():
        print(f"{name}: {c['lines']} lines, {c.get('differ', '?')} differ, "
              f"digit differs in {c.get('digit_differs', '?')}")


def print_install(facts: dict) -> None:
    sizes = facts["install_mb"]
    print(f"\ninstall on ARM64 ({facts['release']}, {facts['python']}): runtime {sizes['runtime']} MB "
          + ", ".join(f"+{k} {v} MB" for k, v in sizes.items() if k != "runtime")
          + f" (site-packages, from the wheels' RECORD); the userland itself {facts['userland_mb']} MB")


if __name__ == "__main__":
    main()
