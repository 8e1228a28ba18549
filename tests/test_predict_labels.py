"""`predict --labels`: accuracy per folder that matches the JSON lines, the confusion matrix and the misread images;
`--min-confidence`: an unsure reading is marked uncertain in JSON and on the overlay."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from digitsum_edge.apps import score as scoring
from digitsum_edge.apps.overlay import YELLOW
from digitsum_edge.apps.reader import MIN_CONFIDENCE, Reading
from digitsum_edge.synth.frames import pick_digits, read_labels, write_images
from digitsum_edge.vision.settings import ReadingSettings
from helpers import invoke, one_line_error


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two folders of camera frames named by their digit (blank sheets: blank_...), as a user would keep them."""
    root = tmp_path_factory.mktemp("photos")
    for folder, seed, conditions in (("kitchen", 1, ("plain", "pen", "shadow")), ("desk", 2, ("marker", "lined"))):
        digits, labels = pick_digits(10, seed=seed, blank=0.2)
        write_images(root / "synth" / folder, digits, labels, seed=seed, conditions=conditions)
        (root / folder).mkdir()
        labels = read_labels(root / "synth" / folder)
        assert isinstance(labels, dict)
        for i, (name, label) in enumerate(labels.items()):
            named = f"{'blank' if label is None else label}_{i}.png"
            shutil.copy(root / "synth" / folder / name, root / folder / named)
    return root


def lines_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_labels_from_names_score_each_folder_and_write_the_report(photos: Path, tiny_onnx: Path,
                                                                    tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = invoke("predict", photos / "kitchen", photos / "desk", "--labels", "names", "--model", tiny_onnx,
                    "--roi", 0.6, "--rand", 2, "--report", report)
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stdout)
    assert len(lines) == 20 and all({"label", "correct", "uncertain"} <= set(line) for line in lines)
    for line in lines:  # the label is the file name's digit, and correct means read as labelled
        name = Path(line["source"]).name
        assert line["label"] == (None if name.startswith("blank") else int(name[0]))
        assert line["correct"] == ((line["digit"] if line["found"] else None) == line["label"])

    written = json.loads((report / "report.json").read_text())
    table = result.stderr.splitlines()
    for folder in ("kitchen", "desk"):  # printed per folder, and the same as the JSON lines say
        mine = [line for line in lines if Path(line["source"]).parent.name == folder]
        correct = sum(line["correct"] for line in mine)
        row = written["folders"][str(photos / folder)]
        assert row["images"] == len(mine) and row["correct"] == correct
        printed = next(t for t in table if t.startswith(str(photos / folder))).split()
        assert printed[1:4] == [str(len(mine)), str(correct), f"{100 * correct / len(mine):.1f}%"]
    assert written["all"]["correct"] == sum(line["correct"] for line in lines)
    assert any(t.startswith("all ") for t in table)

    confusion = np.array(written["confusion"]["rows_true_columns_read"])
    assert confusion.shape == (11, 11) and confusion.sum() == 20 and np.trace(confusion) == written["all"]["correct"]
    picture = cv2.imread(str(report / "confusion.png"))
    assert picture is not None and picture.shape[0] > 400 and picture.std() > 20

    misread = sorted(p.name for p in (report / "misread").iterdir())
    assert misread == sorted(written["misread"]) and len(misread) == 20 - written["all"]["correct"]
    for line in (line for line in lines if not line["correct"]):  # each misread photo, named by what happened
        stem = Path(line["source"]).stem
        read = line["digit"] if line["found"] else "none"
        truth = "none" if line["label"] is None else line["label"]
        name = f"{Path(line['source']).parent.name}_{stem}_true{truth}_read{read}.png"
        image = cv2.imread(str(report / "misread" / name))
        assert image is not None and image.shape[0] == scoring.CAPTION + 280
        right = cv2.cvtColor(image[scoring.CAPTION:, -280:], cv2.COLOR_BGR2GRAY)  # the model input, 10x
        if line["found"]:
            assert right.max() == 255 and (right[::10, ::10] > 0).mean() < 0.6  # a digit, white on black
        # the photo beside it is the photo, unobstructed: no text box or inset over it, only thin outlines
        photo = cv2.imread(line["source"])
        shown = image[scoring.CAPTION:, :round(photo.shape[1] * 280 / photo.shape[0])]
        same = cv2.resize(photo, shown.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert np.mean(np.abs(shown.astype(int) - same) < 12) > 0.97


def test_a_broken_reader_scores_low_and_misreads_are_pictured(photos: Path, tiny_onnx: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The score can fail: a reader that always answers 1 gets about a tenth right, and every miss is drawn."""
    from digitsum_edge.apps import reader as reader_module

    real = reader_module.finish

    def always_one(reading, digit_probs, sum_probs, min_confidence=MIN_CONFIDENCE):
        one = np.zeros_like(digit_probs)
        one[1] = 1.0
        return real(reading, one, sum_probs, min_confidence)

    monkeypatch.setattr(reader_module, "finish", always_one)
    from digitsum_edge.apps.predict import PredictConfig, run

    result = run(PredictConfig(images=(str(photos / "kitchen"),), model=str(tiny_onnx), labels="names",
                                reading=ReadingSettings(roi=0.6),
                               report=str(tmp_path / "r"), jsonl=str(tmp_path / "lines.jsonl")))
    assert result.score is not None and result.score.total.accuracy <= 0.4
    assert len(list((tmp_path / "r" / "misread").iterdir())) == 10 - result.score.total.correct


def test_labels_csv_and_synth_json(photos: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    folder = photos / "synth" / "desk"
    labels = read_labels(folder)
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("file,digit\n" + "".join(f"{name},{'' if v is None else v}\n" for name, v in labels.items()))
    by_csv = invoke("predict", folder, "--labels", csv_path, "--model", tiny_onnx, "--roi", 0.6, "--rand", 1,
                    "--report", tmp_path / "a")
    by_json = invoke("predict", folder, "--labels", folder / "labels.json", "--model", tiny_onnx, "--roi", 0.6,
                     "--rand", 1, "--report", tmp_path / "b")
    assert by_csv.exit_code == 0 and by_json.exit_code == 0, by_csv.output + by_json.output
    assert [line["label"] for line in lines_of(by_csv.stdout)] == list(labels.values())
    def same(lines: list[dict]) -> list[dict]:
        return [{k: v for k, v in line.items() if not k.endswith("ms")} for line in lines]

    assert same(lines_of(by_csv.stdout)) == same(lines_of(by_json.stdout))


def test_label_errors_are_one_line_before_any_reading(photos: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    folder = photos / "kitchen"
    partial = tmp_path / "partial.csv"
    partial.write_text(f"{sorted(folder.iterdir())[0].name},3\n")
    one_line_error(invoke("predict", folder, "--labels", partial, "--model", tiny_onnx), "has no label in")
    bad = tmp_path / "bad.csv"
    bad.write_text("".join(f"{p.name},seven\n" for p in folder.iterdir()))
    one_line_error(invoke("predict", folder, "--labels", bad, "--model", tiny_onnx), "'seven' is not a digit")
    one_line_error(invoke("predict", folder, "--labels", tmp_path / "none.csv", "--model", tiny_onnx), "does not exist")
    one_line_error(invoke("predict", photos / "synth" / "desk", "--labels", "names", "--model", tiny_onnx),
                   "frame_00000.png starts with neither a digit nor 'blank'")
    used = tmp_path / "used"
    used.mkdir()
    (used / "old.txt").write_text("keep")
    one_line_error(invoke("predict", folder, "--labels", "names", "--model", tiny_onnx, "--report", used),
                   "not empty", "--force")
    assert sorted(p.name for p in used.iterdir()) == ["old.txt"]


def test_the_score_report_needs_no_matplotlib() -> None:
    code = ("import sys, numpy as np; from digitsum_edge.apps import score; "
            "score.confusion_picture(np.eye(11, dtype=int)); print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_min_confidence_marks_unsure_readings_in_json_and_overlay(photos: Path, tiny_onnx: Path) -> None:
    image = sorted((photos / "kitchen").glob("[0-9]*.png"))[0]
    common = ("predict", image, "--model", tiny_onnx, "--rand", 3, "--roi", 0.6)
    sure = lines_of(invoke(*common, "--min-confidence", 0).stdout)[0]
    unsure = lines_of(invoke(*common, "--min-confidence", 1).stdout)[0]
    assert sure["found"] and sure["uncertain"] is False and unsure["uncertain"] is True
    assert {k: v for k, v in sure.items() if k != "uncertain" and not k.endswith("ms")} == \
        {k: v for k, v in unsure.items() if k != "uncertain" and not k.endswith("ms")}  # the digit is still reported
    one_line_error(invoke(*common, "--min-confidence", 1.5), "--min-confidence")

    from digitsum_edge.apps.overlay import draw
    frame = cv2.imread(str(image))
    roi = (176, 96, 288, 288)
    reading = Reading(True, 3, 0.5, roi, (250, 150, 80, 120), np.zeros((28, 28), np.uint8), digit=4,
                      digit_confidence=0.3, sum=7, sum_confidence=0.3, uncertain=True)
    top = draw(frame, reading)[96, 176 + 144]  # the middle of the region's top edge
    assert np.abs(top.astype(int) - YELLOW).sum() < 60, top
    confident = draw(frame, Reading(**{**reading.__dict__, "uncertain": False, "digit_confidence": 0.9}))
    assert np.abs(confident[96, 176 + 144].astype(int) - YELLOW).sum() > 100
    band = draw(frame, reading)[480 - 78:], confident[480 - 78:]
    assert not np.array_equal(*band)  # the readout says so too


def test_json_lines_of_live_carry_uncertain(photos: Path, tiny_onnx: Path) -> None:
    result = invoke("live", "--source", photos / "desk", "--model", tiny_onnx, "--no-window", "--rand", 0,
                    "--min-confidence", 0.99)
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stdout)
    assert all(line["uncertain"] == (line["found"] and line["digit_confidence"] < 0.99) for line in lines)
    assert any(line["uncertain"] for line in lines)


def test_score_counts() -> None:
    score = scoring.Score()
    roi = (0, 0, 10, 10)
    score.add(Path("a/1.png"), 1, Reading(True, 0, 1.0, roi, digit=1, digit_confidence=0.9))
    score.add(Path("a/2.png"), 2, Reading(False, 0, 1.0, roi, reason="blank"))
    score.add(Path("b/x.png"), None, Reading(True, 0, 1.0, roi, digit=5, digit_confidence=0.3, uncertain=True))
    score.add(Path("b/y.png"), None, Reading(False, 0, 1.0, roi, reason="blank"))
    a, b = score.folders["a"], score.folders["b"]
    assert (a.images, a.correct, a.no_digit, b.correct, b.false_digit, b.uncertain) == (2, 1, 1, 1, 1, 1)
    assert score.confusion[1, 1] == 1 and score.confusion[2, 10] == 1 and score.confusion[10, 5] == 1
    assert score.total.accuracy == 0.5 and "50.0%" in score.table().splitlines()[-1]
