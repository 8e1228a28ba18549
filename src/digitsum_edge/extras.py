"""Which optional parts are installed: the runtime is the base install, training needs `digitsum-edge[train]`,
the service `digitsum-edge[serve]`, LiteRT files `digitsum-edge[litert]` (writing them `[litert-export]`)."""

from __future__ import annotations

import importlib.util
import platform

from digitsum_edge.errors import DigitsumError

EXTRAS = {"train": ("torch", "onnx", "onnxscript", "onnxsim", "tqdm", "matplotlib"), "serve": ("ray", "fastapi"),
          "litert": ("ai_edge_litert",), "litert-export": ("litert_torch", "ai_edge_litert", "tflite_micro")}


# Extras that pip cannot install on a machine, for want of wheels: extra -> (platform.machine() values, why).
NO_WHEELS = {"litert-export": (("aarch64", "arm64"), "litert-converter and tflite-micro have no Linux aarch64 wheels")}


def missing(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here."""
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def require(extra: str, what: str) -> None:
    """One clear error naming the pip command when `what` needs an extra that is not installed."""
    if missing(extra):
        raise DigitsumError(needs(extra, what))


def needs(extra: str, what: str) -> str:
    """The line that says `what` needs `extra`: the pip command, or where this machine has no wheels for it."""
    machines, why = NO_WHEELS.get(extra, ((), ""))
    if platform.machine().lower() in machines:
        return (f"{what} needs the {extra} extra, which has no wheels for {platform.machine()} ({why}): "
                "run it on an x86-64 machine")
    return f'{what} needs the {extra} extra: pip install "digitsum-edge[{extra}]"'
