"""`digitsum-edge serve`: the model as an HTTP service on Ray Serve (one ONNX Runtime session per replica,
Ray Serve's own request batching), with the Open Inference Protocol (KServe v2) and a webcam page."""

from typing import Any


def __getattr__(name: str) -> Any:
    """`digitsum_edge.serve:app`, Ray Serve's application builder (serve/builder.py), imported only when asked for."""
    if name == "app":
        from digitsum_edge.serve.builder import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
