"""The public API a user embeds: digitsum_edge.load(...).read(frame) and .predict(images), and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

import digitsum_edge
from digitsum_edge import mnist, onnx_contract
from digitsum_edge.apps.reader import softmax
from digitsum_edge.engine.onnx_runtime import cuda_usable
from digitsum_edge.errors import DigitsumError, InvalidInput
from digitsum_edge.synth.frames import camera_frame, pick_digits
from helpers import invoke

LIVE_JSON_EXTRA = {"frame", "source", "provider"}  # what a `live`/`predict` line adds to Reading.to_dict()
# the fields of a live JSON line as README documents them, in order
LIVE_JSON_FIELDS = ["frame", "source", "found", "digit", "digit_confidence", "rand", "sum", "sum_confidence", "ms",
                    "prepare_ms", "infer_ms", "box", "reason", "uncertain", "candidates", "provider"]
TIMES = {"ms", "prepare_ms", "infer_ms"}


@pytest.fixture(scope="module")
def reader(tiny_onnx: Path) -> digitsum_edge.DigitReader:
    return digitsum_edge.load(tiny_onnx, provider="auto", threads=1)


@pytest.fixture(scope="module")
def test_set() -> mnist.Split:
    return mnist.load("test")


def _direct(path: Path, images: np.ndarray, rands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits from onnxruntime itself, inputs normalised with the statistics stored in the file."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    info = onnx_contract.parse(session.get_modelmeta().custom_metadata_map)
    feed = {"image": onnx_contract.normalize(images[:, None], info.mean, info.std), "rand": rands.astype(np.int64)}
    digit_logits, sum_logits = session.run(list(onnx_contract.OUTPUTS), feed)
    return digit_logits, sum_logits


def test_load_picks_the_provider_that_really_works(reader: digitsum_edge.DigitReader, tiny_onnx: Path) -> None:
    assert isinstance(reader, digitsum_edge.DigitReader)
    assert reader.provider == ("cuda" if cuda_usable() else "cpu")
    assert reader.backend.path == Path(tiny_onnx) and reader.info.num_rand == 10


def test_read_a_frame(reader: digitsum_edge.DigitReader) -> None:
    digits, labels = pick_digits(8, seed=21)
    correct = 0
    for i, (digit, label) in enumerate(zip(digits, labels, strict=True)):
        reading = reader.read(camera_frame(digit, np.random.default_rng([i, 21])), rand=7)
        assert isinstance(reading, digitsum_edge.Reading) and reading.found and reading.rand == 7
        assert reading.sum == int(np.argmax(reading.sum_probs)) and 0 < reading.digit_confidence <= 1
        correct += reading.digit == label and reading.sum == label + 7
    assert correct >= 6  # the tiny model reads about 95 % of camera frames; a broken reader reads 10 %
    blank = reader.read(camera_frame(None, np.random.default_rng(3)), rand=2)
    assert not blank.found and blank.digit is None and blank.to_dict()["reason"] == "blank"


def test_reading_to_dict_is_a_live_json_line_without_frame_source_provider(
        reader: digitsum_edge.DigitReader, tiny_onnx: Path, tmp_path: Path) -> None:
    digits, labels = pick_digits(1, seed=17)
    frame = camera_frame(digits[0], np.random.default_rng(17))
    image = tmp_path / "frame.png"
    assert cv2.imwrite(str(image), frame)  # lossless: predict reads the very same pixels
    result = invoke("predict", image, "--model", tiny_onnx, "--rand", 7, "--provider", "cpu", "--roi", 0.6)
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    reading = reader.read(frame, rand=7).to_dict()
    assert list(line) == LIVE_JSON_FIELDS
    assert list(reading) == [k for k in line if k not in LIVE_JSON_EXTRA]  # same fields, same order
    assert set(line) - set(reading) == LIVE_JSON_EXTRA
    assert json.loads(json.dumps(reading)) == reading  # plain JSON values
    assert all(reading[k] == round(reading[k], 4) for k in ("digit_confidence", "sum_confidence"))  # short lines
    assert all(reading[k] == round(reading[k], 3) and reading[k] > 0 for k in TIMES)
    assert reading["ms"] == pytest.approx(reading["prepare_ms"] + reading["infer_ms"], abs=2e-3)  # the stages add up
    same = {k: v for k, v in line.items() if k not in LIVE_JSON_EXTRA | TIMES}
    assert same == {k: v for k, v in reading.items() if k not in TIMES}  # the CLI reads what the API reads
    assert reading["found"] and reading["digit"] == labels[0] and reading["sum"] == labels[0] + 7


@pytest.mark.parametrize("per_image", [False, True], ids=["one-rand", "rand-per-image"])
def test_predict_equals_onnxruntime_on_the_normalised_images(reader: digitsum_edge.DigitReader, tiny_onnx: Path,
                                                             test_set: mnist.Split, per_image: bool) -> None:
    images, labels = test_set.images[:500], test_set.labels[:500].astype(np.int64)
    rands = np.random.default_rng(0).integers(0, 10, 500) if per_image else np.full(500, 3)
    prediction = reader.predict(images, rands if per_image else 3)
    assert isinstance(prediction, digitsum_edge.Prediction)
    digit_logits, sum_logits = _direct(tiny_onnx, images, rands)
    assert np.array_equal(prediction.digits, digit_logits.argmax(1))
    assert np.array_equal(prediction.sums, sum_logits.argmax(1))
    np.testing.assert_allclose(prediction.digit_probs, softmax(digit_logits), atol=1e-6)
    np.testing.assert_allclose(prediction.sum_probs, softmax(sum_logits), atol=1e-6)
    assert np.allclose(prediction.digit_probs.sum(1), 1) and prediction.sum_probs.shape == (500, 19)
    assert np.array_equal(prediction.digit_confidences, prediction.digit_probs.max(1))
    assert (prediction.digits == labels).mean() > 0.9  # the tiny model: about 95 %
    assert (prediction.sums == labels + rands).mean() > 0.9


def test_predict_uses_the_normalisation_stored_in_the_file(tiny_onnx: Path, tmp_path: Path,
                                                           test_set: mnist.Split) -> None:
    model = onnx.load(str(tiny_onnx))
    for prop in model.metadata_props:
        if prop.key == "normalization_mean":
            prop.value = "0.5"
    path = tmp_path / "shifted.onnx"
    onnx.save(model, str(path))
    images, rands = test_set.images[:64], np.arange(64) % 10
    shifted = digitsum_edge.load(path, provider="cpu").predict(images, rands)
    np.testing.assert_allclose(shifted.digit_probs, softmax(_direct(path, images, rands)[0]), atol=1e-6)
    default = digitsum_edge.load(tiny_onnx, provider="cpu").predict(images, rands)
    assert np.abs(shifted.digit_probs - default.digit_probs).max() > 0.01  # the stored mean is really used


def test_predict_one_image(reader: digitsum_edge.DigitReader, test_set: mnist.Split) -> None:
    one = reader.predict(test_set.images[0], 9)  # (28, 28): a batch of one
    batch = reader.predict(test_set.images[:1], np.array([9]))
    assert one.digits.shape == (1,) and np.array_equal(one.digit_probs, batch.digit_probs)
    assert reader.predict(test_set.images[:0], 4).digits.shape == (0,)


@pytest.mark.parametrize(("images", "rand", "match"), [
    (np.zeros((2, 28, 28), np.float32), 1, "images must be uint8 .N, 28, 28., got float32"),
    (np.zeros((2, 28, 28), np.int64), 1, "got int64"),
    (np.zeros((2, 28, 27), np.uint8), 1, r"got uint8 \(2, 28, 27\)"),
    (np.zeros((2, 1, 28, 28), np.uint8), 1, r"\(2, 1, 28, 28\)"),
    (np.zeros(28, np.uint8), 1, "images must be uint8"),
    (np.zeros((2, 28, 28), np.uint8), 10, r"rand must be an integer in 0-9, got 10"),
    (np.zeros((2, 28, 28), np.uint8), -1, "rand must be an integer in 0-9"),
    (np.zeros((2, 28, 28), np.uint8), np.array([1, 10]), "rand must be an integer in 0-9"),
    (np.zeros((2, 28, 28), np.uint8), np.array([1, 2, 3]), r"one per image \(2\), got shape \(3,\)"),
    (np.zeros((2, 28, 28), np.uint8), np.array([[1, 2]]), "one per image"),
    (np.zeros((2, 28, 28), np.uint8), np.array([1.0, 2.0]), "rand must be an integer"),
    (np.zeros((2, 28, 28), np.uint8), 2.0, "rand must be an integer"),
    (np.zeros((2, 28, 28), np.uint8), True, "rand must be an integer"),
    (np.zeros((2, 28, 28), np.uint8), np.array([True, False]), "rand must be an integer"),
], ids=["float32", "int64", "27-wide", "channel-axis", "1-d", "rand-10", "rand-neg", "rand-array-10",
        "rand-wrong-length", "rand-2d", "rand-float-array", "rand-float", "rand-bool", "rand-bool-array"])
def test_predict_bad_input(reader: digitsum_edge.DigitReader, images: np.ndarray, rand, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as info:
        reader.predict(images, rand)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


@pytest.mark.parametrize(("frame", "rand", "match"), [
    (np.zeros((48, 64, 3), np.float32), 1, "frame must be a uint8 image"),
    (np.zeros((48, 64, 3, 1), np.uint8), 1, "frame must be"),
    (np.zeros((48, 64, 2), np.uint8), 1, "frame must be"),
    (np.zeros((0, 64, 3), np.uint8), 1, "frame must be"),
    (np.zeros(64, np.uint8), 1, "frame must be"),
    ([[0, 1], [2, 3]], 1, "frame must be .*list"),
    (np.zeros((48, 64, 3), np.uint8), 10, "rand must be an integer in 0-9"),
    (np.zeros((48, 64, 3), np.uint8), 1.5, "rand must be an integer in 0-9"),
    (np.zeros((48, 64, 3), np.uint8), "7", "rand must be an integer in 0-9"),
])
def test_read_bad_input(reader: digitsum_edge.DigitReader, frame, rand, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        reader.read(frame, rand=rand)


@pytest.mark.parametrize("layout", ["gray", "bgra", "one-channel"])
def test_read_other_frame_layouts(reader: digitsum_edge.DigitReader, layout: str) -> None:
    """The frame layouts read() accepts, (H, W), (H, W, 4) and (H, W, 1), read like the BGR frame they show."""
    digits, _ = pick_digits(1, seed=17)
    frame = camera_frame(digits[0], np.random.default_rng(17))
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    other = {"gray": gray, "bgra": cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA), "one-channel": gray[..., None]}[layout]
    expected, reading = reader.read(frame, rand=5), reader.read(other, rand=5)
    assert reading.found and (reading.digit, reading.sum, reading.box) == (expected.digit, expected.sum, expected.box)
    assert not reader.read(np.zeros_like(other), rand=0).found


def _not_digitsum(path: Path) -> Path:
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "other",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9), str(path))
    return path


@pytest.mark.parametrize(("make", "match"), [
    (lambda tmp: _not_digitsum(tmp / "other.onnx"), r"other\.onnx is not a digitsum-edge ONNX model"),
    (lambda tmp: tmp / "missing.onnx", r"model .*missing\.onnx does not exist"),
    (lambda tmp: tmp, "is not a file"),
    (lambda tmp: (tmp / "junk.onnx", (tmp / "junk.onnx").write_bytes(b"\x08\x07junk" * 30))[0],
     r"junk\.onnx is not a readable ONNX model"),
], ids=["other-onnx", "missing", "folder", "junk"])
@pytest.mark.parametrize("provider", ["auto", "cpu"])
def test_a_file_that_is_not_a_model_is_one_clear_line(tmp_path: Path, make, match: str, provider: str,
                                                      capfd: pytest.CaptureFixture) -> None:
    path = make(tmp_path)
    with pytest.raises(DigitsumError, match=match) as info:
        digitsum_edge.load(path, provider=provider)
    assert "\n" not in str(info.value) and not isinstance(info.value, InvalidInput)
    assert "[E:" not in capfd.readouterr().err  # no onnxruntime error spam beside the one line


@pytest.mark.parametrize(("options", "match"), [({"provider": "tpu"}, "unknown provider"), ({"roi": 0}, "^roi must"),
                                                ({"roi": 1.5}, "^roi must"), ({"ink": "blue"}, "^ink must"),
                                                ({"min_confidence": 2}, "^min_confidence must"),
                                                ({"threads": 0}, "threads")])
def test_load_bad_options(tiny_onnx: Path, options: dict, match: str) -> None:
    with pytest.raises(DigitsumError, match=match):
        digitsum_edge.load(tiny_onnx, **options)


@pytest.mark.parametrize(("options", "match"), [({"roi": 0}, "^roi must"), ({"roi": "0.5"}, "^roi must"),
                                                ({"roi": True}, "^roi must"), ({"ink": "blue"}, "^ink must"),
                                                ({"min_confidence": -0.1}, "^min_confidence must"),
                                                ({"search": "no"}, "^search must")])
def test_reading_settings_are_checked_when_made(options: dict, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        digitsum_edge.ReadingSettings(**options)


def test_settings_are_passed_whole_and_the_shorthand_is_the_same(tiny_onnx: Path) -> None:
    settings = digitsum_edge.ReadingSettings(roi=0.8, ink="dark", min_confidence=0.7)
    whole = digitsum_edge.load(tiny_onnx, provider="cpu", settings=settings)
    short = digitsum_edge.load(tiny_onnx, provider="cpu", roi=0.8, ink="dark", min_confidence=0.7)
    assert whole.settings == short.settings == settings and whole.min_confidence == 0.7
    assert whole.preprocess.reading == settings  # the preprocessing reads with the same object
    assert digitsum_edge.load(tiny_onnx, provider="cpu").settings.roi == 0.6  # frames read as a camera's
    with pytest.raises(InvalidInput, match="settings or roi, not both"):
        digitsum_edge.load(tiny_onnx, settings=settings, roi=0.5)
    with pytest.warns(DeprecationWarning, match="by position are deprecated"):  # as before, for one release
        old = digitsum_edge.load(tiny_onnx, "cpu", 1, 0.8, "dark", 0.7)
    assert old.settings == settings


def test_the_region_read_is_region_and_roi_still_answers_with_a_warning(reader: digitsum_edge.DigitReader) -> None:
    frame = camera_frame(pick_digits(1, 0)[0][0], np.random.default_rng(0))
    reading = reader.read(frame, rand=3)
    assert reading.region[2] == reading.region[3] == round(0.6 * 480)  # the guide square, in pixels
    with pytest.warns(DeprecationWarning, match="Reading.region"):
        assert reading.roi == reading.region


def test_the_public_names_come_from_the_package_root() -> None:
    from digitsum_edge import DigitReader, DigitsumError, InvalidInput, Prediction, Reading, __version__, errors, load
    from digitsum_edge.apps import reader
    from digitsum_edge.vision import settings

    assert (load, DigitReader, Reading, Prediction) == (reader.load, reader.DigitReader, reader.Reading,
                                                        reader.Prediction)
    assert (DigitsumError, InvalidInput) == (errors.DigitsumError, errors.InvalidInput)
    assert digitsum_edge.ReadingSettings is settings.ReadingSettings
    assert issubclass(InvalidInput, DigitsumError) and issubclass(InvalidInput, ValueError)
    assert isinstance(__version__, str) and __version__.count(".") >= 1
    assert all(hasattr(digitsum_edge, name) for name in digitsum_edge.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Readr'"):
        digitsum_edge.Readr  # noqa: B018


HEAVY = ("cv2", "onnxruntime", "torch", "onnx", "matplotlib")


def _imported_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.split()


def test_import_digitsum_edge_imports_no_heavy_library() -> None:
    assert _imported_after("import digitsum_edge") == []
    assert _imported_after("import digitsum_edge; digitsum_edge.DigitsumError; digitsum_edge.InvalidInput") == []


def test_the_reader_runs_without_torch(tiny_onnx: Path) -> None:
    code = (f"import numpy as np, digitsum_edge\n"
            f"r = digitsum_edge.load({str(tiny_onnx)!r}, provider='cpu')\n"
            f"r.predict(np.zeros((2, 28, 28), np.uint8), 3); r.read(np.zeros((48, 64, 3), np.uint8), 3)")
    assert _imported_after(code) == ["cv2", "onnxruntime"]  # the runtime imports nothing from training
