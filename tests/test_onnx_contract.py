"""The model contract: metadata round trip, normalisation, rand checks, variant names, the session check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from digitsum_edge import mnist, onnx_contract
from digitsum_edge.errors import DigitsumError, InvalidInput
from digitsum_edge.layout import variant_path
from digitsum_edge.onnx_contract import ModelInfo

INFO = ModelInfo(mean=0.25, std=0.5, input_size=32, num_digits=10, num_rand=13, precision="int8",
                 weights_sha256="ab" * 32, model_config={"channels": [8, 16, 32], "convs_per_stage": 1},
                 test_metrics={"digit_accuracy": 0.95, "sum_accuracy": 0.94}, versions={"torch": "2.x"},
                 exported_at="2026-01-02T03:04:05Z")


def test_metadata_props_round_trip() -> None:
    props = onnx_contract.metadata_props(INFO)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in props.items())  # ONNX stores strings
    assert props["format"] == onnx_contract.FORMAT and props["rand_range"] == "0-12" and props["num_sums"] == "22"
    assert onnx_contract.parse(props) == INFO
    assert onnx_contract.parse(props).num_sums == 22


def test_metadata_round_trip_through_an_onnx_file(tmp_path: Path) -> None:
    model = _contract_model()
    helper.set_model_props(model, onnx_contract.metadata_props(INFO))
    onnx.save(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert onnx_contract.parse(session.get_modelmeta().custom_metadata_map) == INFO


def test_the_exported_file_carries_its_contract(tiny_onnx: Path, tiny_checkpoint: Path) -> None:
    from digitsum_edge import checkpoint

    props = {p.key: p.value for p in onnx.load(str(tiny_onnx)).metadata_props}
    info = onnx_contract.parse(props, str(tiny_onnx))
    ckpt = checkpoint.load(tiny_checkpoint)
    assert (info.mean, info.std, info.input_size) == (onnx_contract.MEAN, onnx_contract.STD, onnx_contract.IMAGE_SIZE)
    assert info.precision == "fp32" and info.model_config == ckpt["model_config"]
    assert info.weights_sha256 == checkpoint.weights_sha256(ckpt["state_dict"])


@pytest.mark.parametrize(("change", "match"), [
    ({"format": None}, "m.onnx is not a digitsum-edge ONNX model"),
    ({"format": "ultralytics"}, "not a digitsum-edge ONNX model"),
    ({"format_version": "2"}, "metadata format '2', this version reads '1'"),
    ({"format_version": None}, "metadata format None"),
    ({"normalization_std": None}, "incomplete digitsum-edge metadata"),
    ({"weights_sha256": None}, "incomplete"),
    ({"precision": None}, "incomplete"),
    ({"input_size": "twenty-eight"}, "incomplete"),
    ({"normalization_mean": ""}, "incomplete"),
    ({"model_config": "{not json"}, "incomplete"),
    ({"versions": ""}, "incomplete"),
], ids=["no-format", "other-format", "version-2", "no-version", "no-std", "no-sha", "no-precision", "bad-size",
        "empty-mean", "bad-json", "empty-versions"])
def test_parse_errors(change: dict, match: str) -> None:
    props = onnx_contract.metadata_props(INFO)
    for key, value in change.items():
        if value is None:
            del props[key]
        else:
            props[key] = value
    with pytest.raises(DigitsumError, match=match) as info:
        onnx_contract.parse(props, "m.onnx")
    assert "m.onnx" in str(info.value) and "\n" not in str(info.value)


def test_parse_of_no_metadata_names_the_source() -> None:
    with pytest.raises(DigitsumError, match=r"yolo\.onnx is not a digitsum-edge ONNX model"):
        onnx_contract.parse({}, "yolo.onnx")


def test_normalize_numpy_and_torch_agree() -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(4, 1, 8, 8)
    from_numpy = onnx_contract.normalize(pixels)
    from_torch = onnx_contract.normalize(torch.from_numpy(pixels))
    assert isinstance(from_numpy, np.ndarray) and from_numpy.dtype == np.float32
    assert isinstance(from_torch, torch.Tensor) and from_torch.dtype == torch.float32
    assert from_numpy.shape == pixels.shape and tuple(from_torch.shape) == pixels.shape
    np.testing.assert_allclose(from_torch.numpy(), from_numpy, rtol=0, atol=1e-6)
    expected = (np.arange(256, dtype=np.float64) / 255 - onnx_contract.MEAN) / onnx_contract.STD
    np.testing.assert_allclose(from_numpy.ravel(), expected, rtol=0, atol=1e-5)
    assert from_numpy.min() == pytest.approx(-onnx_contract.MEAN / onnx_contract.STD, abs=1e-6)
    assert from_numpy.max() == pytest.approx((1 - onnx_contract.MEAN) / onnx_contract.STD, abs=1e-6)
    # float pixels and other statistics go the same way
    np.testing.assert_allclose(onnx_contract.normalize(pixels.astype(np.float64), 0.5, 0.25),
                               (pixels / 255 - 0.5) / 0.25, rtol=0, atol=1e-5)
    assert onnx_contract.normalize(pixels.astype(np.float64)).dtype == np.float32


def test_normalize_makes_mnist_train_zero_mean_unit_std() -> None:
    images = mnist.load("train").images  # (60000, 28, 28) uint8
    batch = onnx_contract.normalize(images)
    assert batch.dtype == np.float32 and batch.shape == images.shape
    assert abs(float(batch.mean())) < 1e-3 and abs(float(batch.std()) - 1) < 1e-3  # float32 sums are pairwise
    every_tenth = images[::10]
    np.testing.assert_allclose(onnx_contract.normalize(torch.from_numpy(every_tenth)).numpy(), batch[::10],
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("rand", [0, 9, np.int64(5), np.uint8(9), np.int32(0), np.array(3), np.array([0, 9, 4]),
                                  np.array([], np.int64), np.arange(10, dtype=np.int16), torch.tensor([0, 9]),
                                  torch.tensor(7, dtype=torch.int32), torch.tensor([1, 2], dtype=torch.uint8)],
                         ids=lambda r: f"{type(r).__name__}:{r!r:.30}")
def test_check_rand_accepts_integers_in_range(rand) -> None:
    assert onnx_contract.check_rand(rand) is None


@pytest.mark.parametrize("rand", [True, False, np.bool_(True), np.array([True, False]), torch.tensor([True]),
                                  2.0, 2.5, np.float32(3), np.array([1.0, 2.0]), torch.tensor([1.0]),
                                  -1, 10, 2**40, np.int64(-1), np.array([0, 10]), np.array([-3, 2]),
                                  torch.tensor([0, 10]), torch.tensor(-1), "3", "", None, [1, 2], (3,), 1 + 0j],
                         ids=lambda r: f"{type(r).__name__}:{r!r:.30}")
def test_check_rand_rejects_everything_else(rand) -> None:
    with pytest.raises(InvalidInput, match="rand must be an integer in 0-9") as info:
        onnx_contract.check_rand(rand)
    assert isinstance(info.value, ValueError) and isinstance(info.value, DigitsumError)
    assert "\n" not in str(info.value)


def test_check_rand_names_the_offending_values_and_follows_num_rand() -> None:
    with pytest.raises(InvalidInput, match=r"got -2\.\.11"):
        onnx_contract.check_rand(np.array([5, -2, 11]))
    with pytest.raises(InvalidInput, match=r"got 10$"):
        onnx_contract.check_rand(10)
    onnx_contract.check_rand(12, num_rand=13)
    with pytest.raises(InvalidInput, match="0-12, got 13"):
        onnx_contract.check_rand(np.array([13]), num_rand=13)


@pytest.mark.parametrize(("fp32", "precision", "expected"), [
    ("runs/model.onnx", "int8", "runs/model.int8.onnx"),
    ("runs/model.onnx", "fp16", "runs/model.fp16.onnx"),
    ("/abs/dir.v1/net.v2.onnx", "int8", "/abs/dir.v1/net.v2.int8.onnx"),
    ("model", "int8", "model.int8.onnx"),
    ("onnx.onnx", "fp16", "onnx.fp16.onnx"),
    ("runs/model.tflite", "int8", "runs/model.int8.tflite"),
])
def test_variant_path(fp32: str, precision: str, expected: str) -> None:
    assert variant_path(fp32, precision) == Path(expected)


def test_variant_paths_are_distinct_and_beside_the_fp32_file(tmp_path: Path) -> None:
    fp32 = tmp_path / "model.onnx"
    paths = {variant_path(fp32, v) for v in onnx_contract.VARIANTS}
    assert len(paths) == len(onnx_contract.VARIANTS) and fp32 not in paths
    assert all(p.parent == tmp_path and p.suffix == ".onnx" for p in paths)


# ---- check_session on real onnxruntime sessions --------------------------------------------------------------

DEFAULT = {"names": ("image", "rand", "digit_logits", "sum_logits"), "image_type": TensorProto.FLOAT,
           "image_shape": ["batch", 1, 28, 28], "rand_type": TensorProto.INT64, "rand_shape": ["batch"],
           "digits": 10, "sums": 19, "out_type": TensorProto.FLOAT, "swap_outputs": False, "extra_input": False}


def _contract_model(**change) -> onnx.ModelProto:
    """A tiny graph with the digitsum-edge interface (or one thing changed): the outputs slice the flat image."""
    o = {**DEFAULT, **change}
    image, rand, digit, total = o["names"]
    ints = [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in
            (("zero", 0), ("one", 1), ("n_digits", o["digits"]), ("n_sums", o["sums"]))]
    nodes = [helper.make_node("Flatten", [image], ["flat"], axis=1),
             helper.make_node("Cast", ["flat"], ["flat_out"], to=o["out_type"]),
             helper.make_node("Slice", ["flat_out", "zero", "n_digits", "one"], [digit]),
             helper.make_node("Slice", ["flat_out", "zero", "n_sums", "one"], [total])]
    inputs = [helper.make_tensor_value_info(image, o["image_type"], o["image_shape"]),
              helper.make_tensor_value_info(rand, o["rand_type"], o["rand_shape"])]
    if o["extra_input"]:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch"]))
    batch = o["image_shape"][0]
    outputs = [helper.make_tensor_value_info(digit, o["out_type"], [batch, o["digits"]]),
               helper.make_tensor_value_info(total, o["out_type"], [batch, o["sums"]])]
    graph = helper.make_graph(nodes, "contract", inputs, outputs[::-1] if o["swap_outputs"] else outputs,
                              initializer=ints)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _info(**change) -> ModelInfo:
    return ModelInfo(**{**INFO.__dict__, "input_size": 28, "num_rand": 10, **change})


def test_check_session_accepts_the_exported_model(tiny_onnx: Path) -> None:
    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    info = onnx_contract.parse(session.get_modelmeta().custom_metadata_map, str(tiny_onnx))
    onnx_contract.check_session(session, info, str(tiny_onnx))
    with pytest.raises(DigitsumError, match=r"image is tensor\(float\) \['batch', 1, 28, 28\], expected tensor"):
        onnx_contract.check_session(session, _info(input_size=32), "m.onnx")  # metadata and graph disagree
    with pytest.raises(DigitsumError, match="sum_logits"):
        onnx_contract.check_session(session, _info(num_rand=11), "m.onnx")


@pytest.mark.parametrize("change", [{}, {"image_shape": [1, 1, 28, 28], "rand_shape": [1]},
                                    {"image_shape": [None, 1, 28, 28], "rand_shape": [None]}],
                         ids=["dynamic", "static-batch", "unnamed-batch"])
def test_check_session_accepts_a_hand_built_contract(change: dict) -> None:
    session = _session(_contract_model(**change))
    onnx_contract.check_session(session, _info(), "m.onnx")
    digit, total = session.run(None, {"image": np.zeros((1, 1, 28, 28), np.float32), "rand": np.zeros(1, np.int64)})
    assert digit.shape == (1, 10) and total.shape == (1, 19)


@pytest.mark.parametrize(("change", "match"), [
    ({"names": ("x", "rand", "digit_logits", "sum_logits")}, r"has inputs \('x', 'rand'\)"),
    ({"names": ("image", "rand", "logits", "sum_logits")}, r"outputs \('logits', 'sum_logits'\)"),
    ({"swap_outputs": True}, r"outputs \('sum_logits', 'digit_logits'\)"),
    ({"extra_input": True}, r"inputs \('image', 'rand', 'mask'\)"),
    ({"image_shape": ["batch", 1, 32, 32]}, r"image is tensor\(float\) \['batch', 1, 32, 32\], expected "
                                            r"tensor\(float\) \(batch, 1, 28, 28\)"),
    ({"image_shape": ["batch", 3, 28, 28]}, "image is"),
    ({"image_shape": ["batch", 28, 28]}, "image is"),
    ({"image_type": TensorProto.DOUBLE}, r"image is tensor\(double\)"),
    ({"rand_type": TensorProto.INT32}, r"rand is tensor\(int32\) \['batch'\], expected tensor\(int64\) \(batch\)"),
    ({"rand_shape": ["batch", 1]}, "rand is"),
    ({"digits": 9}, r"digit_logits is tensor\(float\) \['batch', 9\], expected tensor\(float\) \(batch, 10\)"),
    ({"sums": 18}, r"sum_logits is .*expected tensor\(float\) \(batch, 19\)"),
    ({"out_type": TensorProto.DOUBLE}, r"digit_logits is tensor\(double\)"),
], ids=["input-name", "output-name", "output-order", "extra-input", "image-32", "image-3-channels", "image-3d",
        "image-double", "rand-int32", "rand-2d", "digits-9", "sums-18", "outputs-double"])
def test_check_session_refuses_the_wrong_interface(change: dict, match: str) -> None:
    with pytest.raises(DigitsumError, match=match) as info:
        onnx_contract.check_session(_session(_contract_model(**change)), _info(), "m.onnx")
    assert str(info.value).startswith("m.onnx") and "\n" not in str(info.value)


# ---- the one verdict on an exported file (export and bench) --------------------------------------------------

HEADS = ("digit_logits", "sum_logits")
FP32_METRICS = {"digit_accuracy": 0.9965, "sum_accuracy": 0.9960}


def _verdict(precision: str, diff: float = 1e-6, agree: float = 1.0, metrics: dict | None = None,
             tolerance: float = onnx_contract.FP32_TOLERANCE) -> onnx_contract.Verdict:
    return onnx_contract.check_exported("m.tflite", precision, dict.fromkeys(HEADS, diff), dict.fromkeys(HEADS, agree),
                                        metrics or FP32_METRICS, FP32_METRICS, tolerance)


def test_a_file_exactly_at_the_tolerance_passes_and_just_over_fails() -> None:
    at = _verdict("fp32", diff=onnx_contract.FP32_TOLERANCE)
    assert at.passed and at.failures == [] and "max diff 1.0e-04 (<= 1e-04)" in at.summary()
    over = _verdict("fp32", diff=onnx_contract.FP32_TOLERANCE * 1.001)
    assert not over.passed and "over the tolerance 1e-04" in over.summary()
    assert _verdict("fp32", diff=0.01, tolerance=0.01).passed  # the tolerance given is the one used
    assert not _verdict("fp32", diff=0.0101, tolerance=0.01).passed
    assert _verdict("fp16", diff=onnx_contract.FP16_TOLERANCE).passed
    assert not _verdict("fp16", diff=onnx_contract.FP16_TOLERANCE + 1e-6).passed


def test_an_accuracy_drop_exactly_at_the_limit_passes() -> None:
    drop = onnx_contract.MAX_ACCURACY_DROP
    at = {"digit_accuracy": 0.9965 - drop, "sum_accuracy": 0.9960 - drop}  # 0.9915: not exactly 0.005 in floats
    assert _verdict("int8", diff=3.0, agree=0.98, metrics=at).passed  # int8 is judged on accuracy alone
    below = {"digit_accuracy": 0.9965 - drop - 1e-4, "sum_accuracy": 0.9960}
    verdict = _verdict("int8", metrics=below)
    assert not verdict.passed
    assert "digit_accuracy 99.1400% is more than 0.50% below fp32's 99.6500%" in verdict.summary()


def test_every_failure_is_reported_at_once() -> None:
    fp32 = _verdict("fp32", diff=0.5, agree=0.97)
    assert len(fp32.failures) == 2
    assert "largest logit difference 5.00e-01" in fp32.failures[0] and "argmax agreement 97.0000%" in fp32.failures[1]
    fp16 = _verdict("fp16", diff=0.2, metrics={"digit_accuracy": 0.90, "sum_accuracy": 0.80})
    assert len(fp16.failures) == 2 and "0.05" in fp16.failures[0].replace("5e-02", "0.05")
    assert "digit_accuracy 90.0000%" in fp16.failures[1] and "sum_accuracy 80.0000%" in fp16.failures[1]
    with pytest.raises(DigitsumError) as info:
        fp16.require()
    message = str(info.value)
    assert message.startswith("verification failed for m.tflite: ") and "\n" not in message
    assert all(failure in message for failure in fp16.failures)
    assert fp16.to_dict() == {"pass": False, "checks": fp16.checks, "failures": fp16.failures}


def test_a_reduced_precision_file_needs_fp32_figures_and_a_known_precision() -> None:
    verdict = onnx_contract.check_exported("m.onnx", "int8", dict.fromkeys(HEADS, 1.0), dict.fromkeys(HEADS, 0.99),
                                           FP32_METRICS, None)
    assert not verdict.passed and "no fp32 accuracy" in verdict.summary()
    with pytest.raises(DigitsumError, match="unknown precision 'bf16'"):
        _verdict("bf16")
