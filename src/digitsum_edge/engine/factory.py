"""`open_model`: an exported file -> the Backend of its runtime, chosen by the file (.tflite: LiteRT; anything
else is tried as ONNX). The runtimes load only when a file of theirs is opened.
"""

from __future__ import annotations

import os
from pathlib import Path

from digitsum_edge.engine.backend import Backend


def open_model(path: str | os.PathLike, provider: str = "auto", threads: int | None = None) -> Backend:
    """Open and check an exported digitsum-edge model on `provider` (auto | cuda | cpu), by its file type."""
    if Path(path).suffix.lower() == ".tflite":
        from digitsum_edge.engine.litert import open_litert

        return open_litert(path, provider, threads)
    from digitsum_edge.engine.onnx_runtime import open_onnx

    return open_onnx(path, provider, threads)
