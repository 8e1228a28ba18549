"""The model contract, owned here alone: tensor names, normalisation, rand range, variant file names,
tolerances and the one verdict on an exported file, the self-describing metadata_props, and the one check
that a session is a digitsum-edge model.

`export` writes the metadata with `metadata_props`; `live`, `predict` and `bench` read it back with `parse`
and need nothing from training code. numpy only: the runtime install imports this without torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitsum_edge.errors import DigitsumError, InvalidInput

FORMAT = "digitsum-edge.onnx"
FORMAT_VERSION = "1"
INPUTS = ("image", "rand")  # image (batch, 1, 28, 28) float32 MNIST-normalised; rand (batch,) int64
OUTPUTS = ("digit_logits", "sum_logits")  # (batch, 10) and (batch, 19)
MEAN, STD = 0.1307, 0.3081  # MNIST training-set pixel mean and std, pixels scaled to [0, 1]
IMAGE_SIZE = 28
NUM_DIGITS = 10
NUM_RAND = 10  # rand takes 0 .. NUM_RAND-1
MODEL_NAME, MODEL_VERSION = "digitsum", "1"  # as served (/v2/models/digitsum) and in a Triton model repository

# How close an exported file must stay to PyTorch: `check_exported` is the one rule; export refuses a file
# that fails it, bench marks it FAIL. A figure exactly at a limit passes.
FP32_TOLERANCE = 1e-4  # largest absolute logit difference of an fp32 file (float32 rounding is ~1e-6)
FP16_TOLERANCE = 0.05  # fp16 keeps ~3 significant digits and logits reach about 20
MAX_ACCURACY_DROP = 0.005  # int8/fp16: largest drop in digit or sum accuracy against fp32 (0.5 points)
ACCURACY_KEYS = ("digit_accuracy", "sum_accuracy")  # what the accuracy-drop rule compares
VARIANTS = ("int8", "fp16")  # reduced-precision files written beside NAME.onnx as NAME.<variant>.onnx
# LiteRT (.tflite, written by litert-torch): the same contract under the converter's names, rand as int32, one
# static-batch signature per size ("batch_1", f"batch_{LITERT_BATCH}"), and metadata_props as JSON in the
# file's TFLite metadata under LITERT_METADATA.
LITERT_INPUTS = ("args_0", "args_1")  # image, rand (int32)
LITERT_OUTPUTS = ("output_0", "output_1")  # digit_logits, sum_logits
LITERT_METADATA = "digitsum_edge"
LITERT_BATCH = 256  # the large signature's batch: bench's batch-256 row and exhaustive evaluation in chunks
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


def normalize(pixels: Any, mean: float = MEAN, std: float = STD) -> Any:
    """Pixels 0-255 (uint8 or float; a numpy array or a torch tensor) -> float32 (pixel/255 - mean) / std."""
    scaled = pixels.float() / 255.0 if hasattr(pixels, "float") else np.asarray(pixels, np.float32) / np.float32(255)
    return (scaled - mean) / std


def check_rand(rand: Any, num_rand: int = NUM_RAND) -> None:
    """rand must be integers in 0 .. num_rand-1: a Python int, a numpy array or a torch tensor."""
    if isinstance(rand, bool) or not (isinstance(rand, (int, np.integer)) or _integer_array(rand)):
        raise InvalidInput(f"rand must be an integer in 0-{num_rand - 1}, got {rand!r:.40}")
    if isinstance(rand, (int, np.integer)):
        low = high = int(rand)
    elif getattr(rand, "numel", lambda: np.size(rand))() == 0:
        return
    else:
        low, high = int(rand.min()), int(rand.max())
    if low < 0 or high >= num_rand:
        shown = str(low) if low == high else f"{low}..{high}"
        raise InvalidInput(f"rand must be an integer in 0-{num_rand - 1}, got {shown}")


def _integer_array(rand: Any) -> bool:
    dtype = getattr(rand, "dtype", None)
    if dtype is None:
        return False
    if hasattr(rand, "is_floating_point"):  # a torch tensor
        return not rand.is_floating_point() and not rand.is_complex() and str(dtype) != "torch.bool"
    return np.issubdtype(dtype, np.integer)


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


def check_session(session: Any, info: ModelInfo, source: str) -> None:
    """Inputs, outputs, dtypes and shapes of an onnxruntime session must be the digitsum-edge contract."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if tuple(inputs) != INPUTS or tuple(outputs) != OUTPUTS:
        raise DigitsumError(f"{source} has inputs {tuple(inputs)} and outputs {tuple(outputs)}, expected "
                            f"{INPUTS} and {OUTPUTS}")
    size = info.input_size
    expected = {
        "image": ("tensor(float)", [1, size, size]), "rand": ("tensor(int64)", []),
        "digit_logits": ("tensor(float)", [info.num_digits]), "sum_logits": ("tensor(float)", [info.num_sums]),
    }
    for name, arg in {**inputs, **outputs}.items():
        dtype, tail = expected[name]
        shape = list(arg.shape)
        if arg.type != dtype or len(shape) != len(tail) + 1 or shape[1:] != tail:
            raise DigitsumError(f"{source}: {name} is {arg.type} {shape}, expected {dtype} (batch, "
                                f"{', '.join(map(str, tail))})".replace(", )", ")"))


@dataclass
class Verdict:
    """Is one exported file right? What was checked, and every failure found (not only the first)."""

    source: str  # the file (or backend label) judged
    precision: str  # fp32 | fp16 | int8: which rules applied
    checks: list[str] = field(default_factory=list)  # each rule with its figure, e.g. "max diff 2.7e-06 (<= 1e-04)"
    failures: list[str] = field(default_factory=list)  # the rules it broke, with their figures

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        """One line: the checks when it passed, the failures when not."""
        return ", ".join(self.failures if self.failures else self.checks)

    def require(self) -> None:
        """Raise one DigitsumError naming every failure; nothing when the file passed."""
        if self.failures:
            raise DigitsumError(f"verification failed for {self.source}: {'; '.join(self.failures)}")

    def to_dict(self) -> dict:
        return {"pass": self.passed, "checks": self.checks, "failures": self.failures}


# How check_exported judges each precision, in words for tables and charts (bench's parity table).
JUDGED_BY = {"fp32": "max |diff| and argmax vs the reference",
             "fp16": "max |diff| and accuracy vs fp32",
             "int8": "accuracy vs fp32 (its logits differ)"}


def check_exported(source: str, precision: str, max_abs_diff: dict[str, float], argmax_agreement: dict[str, float],
                   metrics: dict[str, float], fp32_metrics: dict[str, float] | None = None,
                   tolerance: float = FP32_TOLERANCE) -> Verdict:
    """The one verdict on an exported file against its reference, for export and bench alike.

    fp32: every head's largest logit difference <= `tolerance` and the same argmax on every pair. fp16:
    logits within FP16_TOLERANCE. int8 and fp16: digit and sum accuracy at most MAX_ACCURACY_DROP below
    fp32's (`fp32_metrics`). `max_abs_diff` and `argmax_agreement` are per output head, `metrics` the file's
    own scores (evaluate.score). A figure exactly at its limit passes.
    """
    if precision not in ("fp32", *VARIANTS):
        raise DigitsumError(f"{source}: unknown precision {precision!r}")
    verdict = Verdict(source, precision)

    def rule(ok: bool, text: str, failed: str) -> None:
        verdict.checks.append(text)
        if not ok:
            verdict.failures.append(failed)

    worst = max(max_abs_diff.values())
    if precision != "int8":
        limit = tolerance if precision == "fp32" else FP16_TOLERANCE
        rule(_within(worst, limit), f"max diff {worst:.1e} (<= {limit:.0e})",
             f"largest logit difference {worst:.2e} is over the tolerance {limit:.0e}")
    if precision == "fp32":
        agree = min(argmax_agreement.values())
        rule(agree == 1.0, f"argmax agreement {agree:.2%}",
             f"argmax agreement {agree:.4%}, not 100% (" + ", ".join(
                 f"{name} {value:.4%}" for name, value in argmax_agreement.items()) + ")")
        return verdict
    if fp32_metrics is None:
        verdict.failures.append(f"no fp32 accuracy to compare the {precision} file with")
        return verdict
    drops = {key: fp32_metrics[key] - metrics[key] for key in ACCURACY_KEYS}
    over = [key for key, drop in drops.items() if not _within(drop, MAX_ACCURACY_DROP)]
    rule(not over,
         f"accuracy drop vs fp32 {100 * max(drops.values()):+.3f} pp (max {100 * MAX_ACCURACY_DROP:.1f} pp)",
         "; ".join(f"{key} {metrics[key]:.4%} is more than {MAX_ACCURACY_DROP:.2%} below fp32's "
                   f"{fp32_metrics[key]:.4%}" for key in over))
    return verdict


def _within(value: float, limit: float) -> bool:
    """value <= limit, where a difference of two accuracies that is the limit on paper counts as the limit
    (0.9965 - 0.9915 is 0.00500000000000006 in floating point)."""
    return value <= limit + 1e-12
