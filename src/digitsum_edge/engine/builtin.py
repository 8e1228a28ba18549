"""The model that ships inside the package, so that `pip install digitsum-edge` then `digitsum-edge predict
photo.jpg` reads a digit on a machine that never trained one.

models/default.onnx is the default recipe's seed-0 model, exported and verified by `digitsum-edge export`;
models/default.json (its card) says where it came from: its sha256, the training figures, the export's
verification and the accuracy of the shipped file itself (`make default-model` writes both). A model the
user names with --model, or the runs/model.onnx of the current folder, always comes first.

Imports nothing heavy: the CLI reads these names for --help.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from digitsum_edge.layout import DEFAULT_MODEL

FOLDER = Path(__file__).resolve().parents[1] / "models"
MODEL = FOLDER / "default.onnx"  # fp32, dynamic batch, the metadata_props of every export
CARD = FOLDER / "default.json"  # where it came from and what it scores
HELP = f"[default: {DEFAULT_MODEL} if it exists, else the model built into the package]"


def card() -> dict:
    """The built-in model's card (models/default.json)."""
    return json.loads(CARD.read_text())


def describe() -> str:
    """The built-in model in a few words: recipe, seed, accuracy of the shipped file on MNIST's test set."""
    c = card()
    shipped = c["shipped_file"]
    return (f"the default recipe, seed {c['seed']}: {100 * shipped['digit_accuracy']:.2f}% digits, "
            f"{100 * shipped['sum_accuracy']:.2f}% sums on MNIST's test set")


def resolve(model: str | os.PathLike | None) -> tuple[Path, str | None]:
    """The model file to open, and a line saying so when it is not the one the user named: `model` when given,
    else ./runs/model.onnx when it exists, else the built-in model."""
    if model is not None:
        return Path(model), None
    if Path(DEFAULT_MODEL).is_file() or not MODEL.is_file():  # not built in: the error names runs/model.onnx
        return Path(DEFAULT_MODEL), f"model {DEFAULT_MODEL} (found in this folder; --model chooses another)"
    return MODEL, f"model: the one built into digitsum-edge ({describe()}); --model chooses another"
