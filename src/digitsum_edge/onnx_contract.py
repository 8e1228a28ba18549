"""What every digitsum-edge ONNX file carries: tensor names and self-describing metadata_props.

`export` writes it with `metadata_props`; `live`, `predict` and `bench` read it back with `parse` and
need nothing from training code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from digitsum_edge.errors import DigitsumError

FORMAT = "digitsum-edge.onnx"
FORMAT_VERSION = "1"
INPUTS = ("image", "rand")  # image (batch, 1, 28, 28) float32 MNIST-normalised; rand (batch,) int64
OUTPUTS = ("digit_logits", "sum_logits")  # (batch, 10) and (batch, 19)
OUTPUT_MEANING = {
    "digit_logits": "logits over the digit 0-9 shown in the image",
    "sum_logits": "logits over digit + rand, 0-18",
}


@dataclass(frozen=True)
class ModelInfo:
    """The metadata of one exported model."""

    mean: float  # image = (pixel / 255 - mean) / std
    std: float
    input_size: int  # images are input_size x input_size, one channel
    num_digits: int
    num_rand: int  # rand takes 0 .. num_rand-1
    precision: str  # fp32 | fp16 | int8
    weights_sha256: str  # fingerprint of the checkpoint weights it was exported from
    model_config: dict = field(default_factory=dict)
    test_metrics: dict = field(default_factory=dict)  # exhaustive test accuracies recorded at training
    versions: dict = field(default_factory=dict)
    exported_at: str = ""

    @property
    def num_sums(self) -> int:
        return self.num_digits + self.num_rand - 1


def metadata_props(info: ModelInfo) -> dict[str, str]:
    """ModelInfo -> the string key/value pairs stored in the ONNX file."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "producer": "digitsum-edge",
        "normalization_mean": repr(info.mean),
        "normalization_std": repr(info.std),
        "input_size": str(info.input_size),
        "num_digits": str(info.num_digits),
        "num_rand": str(info.num_rand),
        "rand_range": f"0-{info.num_rand - 1}",
        "num_sums": str(info.num_sums),
        "inputs": json.dumps({"image": f"float32 (batch, 1, {info.input_size}, {info.input_size}), "
                                       "(pixel/255 - mean)/std, white digit on black",
                              "rand": f"int64 (batch,), 0-{info.num_rand - 1}"}),
        "outputs": json.dumps(OUTPUT_MEANING),
        "precision": info.precision,
        "weights_sha256": info.weights_sha256,
        "model_config": json.dumps(info.model_config),
        "test_metrics": json.dumps(info.test_metrics),
        "versions": json.dumps(info.versions),
        "exported_at": info.exported_at,
    }


def parse(props: dict[str, str], source: str = "model") -> ModelInfo:
    """metadata_props -> ModelInfo; a file not made by digitsum-edge export is one clear error."""
    if props.get("format") != FORMAT:
        raise DigitsumError(f"{source} is not a digitsum-edge ONNX model (no '{FORMAT}' metadata)")
    if props.get("format_version") != FORMAT_VERSION:
        raise DigitsumError(f"{source} has metadata format {props.get('format_version')!r}, "
                            f"this version reads {FORMAT_VERSION!r}")
    try:
        return ModelInfo(
            mean=float(props["normalization_mean"]), std=float(props["normalization_std"]),
            input_size=int(props["input_size"]), num_digits=int(props["num_digits"]),
            num_rand=int(props["num_rand"]), precision=props["precision"],
            weights_sha256=props["weights_sha256"], model_config=json.loads(props["model_config"]),
            test_metrics=json.loads(props["test_metrics"]), versions=json.loads(props["versions"]),
            exported_at=props.get("exported_at", ""))
    except (KeyError, ValueError) as e:
        raise DigitsumError(f"{source} has incomplete digitsum-edge metadata ({e})") from None
