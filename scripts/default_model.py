"""Put the default recipe's model inside the package: src/digitsum_edge/models/default.onnx and its card
default.json (engine/builtin.py reads them).

    python scripts/default_model.py RUN_FOLDER    # a folder holding model.pt and model.onnx (train, then export)

The file is verified again here, against its own checkpoint, on every MNIST test image with every rand (the
export's one verdict, onnx_contract.check_exported), and its accuracy through onnxruntime is recorded beside
the training figures; anything that does not match stops before a byte is written. Needs the train extra.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from pathlib import Path

from digitsum_edge import checkpoint, mnist
from digitsum_edge.bench.report import cpu_name
from digitsum_edge.engine import builtin
from digitsum_edge.engine.factory import open_model
from digitsum_edge.evaluate import torch_exhaustive
from digitsum_edge.export.verify import compare
from digitsum_edge.files import write_bytes, write_json


def main(folder: Path) -> None:
    onnx_file, ckpt_file = folder / "model.onnx", folder / "model.pt"
    ckpt = checkpoint.load(ckpt_file)
    model = checkpoint.build_model(ckpt, ckpt_file)
    backend = open_model(onnx_file, provider="cpu", threads=1)
    weights = checkpoint.weights_sha256(ckpt["state_dict"])
    if backend.info.weights_sha256 != weights or backend.info.precision != "fp32":
        sys.exit(f"{onnx_file} is not the fp32 export of {ckpt_file}")
    test = mnist.load("test")
    torch_metrics, digit_logits, sum_logits = torch_exhaustive(model, test.images, test.labels)
    comparison = compare(onnx_file, (digit_logits, sum_logits), test.images, test.labels, backend)
    verdict = comparison.verdict(onnx_file, "fp32")
    if not verdict.passed:
        sys.exit(f"{onnx_file} fails verification: {verdict.summary()}")
    data = onnx_file.read_bytes()
    train = ckpt["train_config"]
    metrics = ckpt["metrics"]
    card = {
        "file": builtin.MODEL.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "recipe": "the default recipe: `digitsum-edge train` with its defaults (only --seed and --threads given)",
        "seed": train["seed"],
        "weights_sha256": weights,
        "commands": [f"digitsum-edge train --seed {train['seed']} --threads {train.get('threads')} --out RUN",
                     "digitsum-edge export RUN/model.pt --int8", "python scripts/default_model.py RUN"],
        "trained_on": f"{metrics.get('device')} ({metrics.get('cpu_isa', '?')}), {metrics.get('threads')} thread(s)",
        "training": {k: metrics.get(k) for k in ("digit_accuracy", "sum_accuracy", "sum_consistency", "pairs",
                                                  "epochs", "train_images", "train_seconds", "params", "macs",
                                                  "precision", "threads", "versions")},
        "model_config": ckpt["model_config"],
        "exported_at": backend.info.exported_at,
        "export_versions": backend.info.versions,
        "verification": {"against": "its checkpoint in PyTorch, every MNIST test image with every rand",
                         "verdict": verdict.summary(), **comparison.to_dict(), "torch_metrics": torch_metrics},
        "shipped_file": {"runtime": "onnxruntime cpu", **comparison.metrics},
        "verified_on": f"{cpu_name()}, Python {platform.python_version()}",
    }
    write_bytes(builtin.MODEL, data)
    write_json(builtin.CARD, card)
    print(f"wrote {builtin.MODEL} ({len(data)} bytes) and {builtin.CARD}: {verdict.summary()}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
