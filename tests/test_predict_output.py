"""What predict prints: one line a person reads per image on a terminal, JSON lines when piped or asked for."""

from __future__ import annotations

import json
import re
from pathlib import Path

from newcomer_helpers import cli, cli_on_a_terminal, digits_folder, json_lines

# the JSON line's fields, which other commands and users' scripts read: kept as they are
FIELDS = {"frame", "source", "found", "digit", "digit_confidence", "rand", "sum", "sum_confidence", "ms",
          "prepare_ms", "infer_ms", "box", "reason", "uncertain", "provider"}
LINE = re.compile(r"^image (\d)/3 (\S+): (\d)\?? \((\d\.\d\d)\) \+ 4 = (\d+)\?? \((\d\.\d\d)\)( uncertain)? \d+\.\dms$")


def test_a_terminal_gets_one_line_per_image(tiny_onnx: Path, tmp_path: Path) -> None:
    labels = digits_folder(tmp_path / "photos", 3)
    status, shown, stderr = cli_on_a_terminal("predict", tmp_path / "photos", "--model", tiny_onnx, "--rand", "4",
                                              "--provider", "cpu")
    assert status == 0, stderr
    lines = shown.strip().splitlines()
    assert len(lines) == 3 and all(LINE.match(line) for line in lines), shown
    matches = [LINE.match(line) for line in lines]
    assert [int(m.group(1)) for m in matches if m] == [1, 2, 3]
    assert [Path(m.group(2).rstrip(":")).name for m in matches if m] == ["digit_1.jpg", "digit_2.jpg", "digit_3.jpg"]
    read = [int(m.group(3)) for m in matches if m]
    assert sum(r == t for r, t in zip(read, labels, strict=True)) >= 2
    assert all(int(m.group(5)) == int(m.group(3)) + 4 for m in matches if m and not m.group(7))
    assert "{" not in shown and "3 images" in stderr


def test_json_on_a_terminal_when_asked_and_when_piped(tiny_onnx: Path, tmp_path: Path) -> None:
    digits_folder(tmp_path / "photos", 2)
    status, shown, stderr = cli_on_a_terminal("predict", tmp_path / "photos", "--model", tiny_onnx, "--rand", "1",
                                              "--provider", "cpu", "--json")
    assert status == 0, stderr
    on_terminal = json_lines(shown)
    assert [line["frame"] for line in on_terminal] == [0, 1] and set(on_terminal[0]) >= FIELDS
    piped = cli("predict", tmp_path / "photos", "--model", tiny_onnx, "--rand", "1", "--provider", "cpu")
    assert piped.returncode == 0, piped.stderr
    assert [{k: v for k, v in line.items() if not k.endswith("ms")} for line in json_lines(piped.stdout)] == \
           [{k: v for k, v in line.items() if not k.endswith("ms")} for line in on_terminal]


def test_jsonl_file_beside_the_terminal_lines(tiny_onnx: Path, tmp_path: Path) -> None:
    digits_folder(tmp_path / "photos", 2)
    status, shown, stderr = cli_on_a_terminal("predict", tmp_path / "photos", "--model", tiny_onnx,
                                              "--provider", "cpu", "--jsonl", tmp_path / "out.jsonl")
    assert status == 0, stderr
    assert [line.split(":")[0] for line in shown.strip().splitlines()] == [
        f"image 1/2 {tmp_path / 'photos' / 'digit_1.jpg'}", f"image 2/2 {tmp_path / 'photos' / 'digit_2.jpg'}"]
    assert len([json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]) == 2
