"""The self-describing checkpoint: weights, model and training config, metrics, versions, resume state."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from digitsum_edge import __version__
from digitsum_edge.errors import DigitsumError, first_line
from digitsum_edge.files import write_bytes
from digitsum_edge.layout import MODEL_SUFFIXES
from digitsum_edge.model import DigitSumNet, ModelConfig

FORMAT = "digitsum-edge.checkpoint"
FORMAT_VERSION = 1


def versions() -> dict[str, str]:
    """Package versions recorded in every artifact."""
    import numpy

    return {"digitsum_edge": __version__, "torch": str(torch.__version__), "numpy": str(numpy.__version__)}


def save(path: str | os.PathLike, model: DigitSumNet, *, train_config: dict, metrics: dict,
         train_state: dict | None = None, complete: bool = True) -> None:
    """Write a checkpoint atomically; loadable with torch.load(weights_only=True)."""
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "train_config": train_config,
        "metrics": metrics,
        "complete": complete,  # False for a checkpoint written mid-run (epoch end or Ctrl-C)
        "train_state": train_state or {},  # optimizer, scheduler, position: what --resume needs
        "versions": versions(),
    }
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    write_bytes(path, buffer.getvalue())


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint; any problem is one DigitsumError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DigitsumError(f"checkpoint {path} not found")
    if path.suffix.lower() in MODEL_SUFFIXES:
        raise DigitsumError(f"{path} is an exported model, not a checkpoint: this reads the model.pt that "
                            "`digitsum-edge train` writes (the exported file is what live, predict and bench --onnx "
                            "take)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only=True met something other than tensors and plain data
        raise DigitsumError(f"{path} is not a readable checkpoint (it holds Python objects beyond tensors and "
                            "plain data; refused without running them)") from None
    except Exception as e:  # torch's weights-only unpickler also raises KeyError/IndexError on plain junk
        reason = "truncated or corrupt" if isinstance(e, (OSError, EOFError)) else first_line(e, 120)
        raise DigitsumError(f"{path} is not a readable checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DigitsumError(f"{path} is not a digitsum-edge checkpoint")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise DigitsumError(f"{path} has checkpoint format {ckpt.get('format_version')}, "
                            f"this digitsum-edge reads format {FORMAT_VERSION}")
    return ckpt


def build_model(ckpt: dict[str, Any], source: str | os.PathLike = "checkpoint") -> DigitSumNet:
    """Rebuild the network from a loaded checkpoint alone, in eval mode."""
    try:
        model = DigitSumNet(ModelConfig.from_dict(ckpt["model_config"]))
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise DigitsumError(f"{source} does not hold a model this version can rebuild ({first_line(e, 120)})") from None
    return model.eval()


def load_model(path: str | os.PathLike) -> tuple[DigitSumNet, dict[str, Any]]:
    """Load a checkpoint and rebuild its model: (model in eval mode, checkpoint dict)."""
    ckpt = load(path)
    return build_model(ckpt, path), ckpt


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """Fingerprint of the weights: tells whether an ONNX file was exported from this checkpoint."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
