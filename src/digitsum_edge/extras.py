"""Which optional parts are installed: the runtime is the base install, training needs `digitsum-edge[train]`,
the service `digitsum-edge[serve]`, LiteRT files `digitsum-edge[litert]` (writing them `[litert-export]`)."""

from __future__ import annotations

import importlib.util

from digitsum_edge.errors import DigitsumError

EXTRAS = {"train": ("torch", "onnx", "onnxscript", "onnxsim", "tqdm", "matplotlib"), "serve": ("ray", "fastapi"),
          "litert": ("ai_edge_litert",), "litert-export": ("litert_torch", "ai_edge_litert", "tflite_micro")}


def missing(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here."""
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def require(extra: str, what: str) -> None:
    """One clear error naming the pip command when `what` needs an extra that is not installed."""
    if missing(extra):
        raise DigitsumError(f'{what} needs the {extra} extra: pip install "digitsum-edge[{extra}]"')
