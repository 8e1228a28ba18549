"""A folder with files that cannot be read: each is one line naming it and why, the rest is read, the summary
counts the skipped, exit status 3 says so; no native library's own message reaches the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from newcomer_helpers import HEIC_HEAD, cli, digits_folder, json_lines, paper_digit, write

RAW = ("Premature end of JPEG", "libpng", "Corrupt JPEG", "Traceback", "[ WARN", "[ERROR")


def _bad_files(folder: Path) -> dict[str, str]:
    """Unreadable files beside good ones; name -> the words their line must hold."""
    jpeg = write(folder / "whole.jpg", paper_digit(7)[0]).read_bytes()
    (folder / "whole.jpg").unlink()
    (folder / "cut.jpg").write_bytes(jpeg[:len(jpeg) // 2])
    (folder / "notes.png").write_bytes(b"shopping list: milk, eggs\n" * 20)
    (folder / "IMG_0001.HEIC").write_bytes(HEIC_HEAD + bytes(2000))
    (folder / "empty.jpg").write_bytes(b"")
    return {"cut.jpg": "truncated JPEG", "notes.png": "not an image", "IMG_0001.HEIC": "HEIC",
            "empty.jpg": "empty"}


@pytest.mark.parametrize("command", ["predict", "live"])
def test_a_folder_with_unreadable_files_is_read_whole(command: str, tiny_onnx: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    labels = digits_folder(folder, 3)
    bad = _bad_files(folder)
    args = ([folder] if command == "predict" else ["--source", folder, "--no-window"])
    done = cli(command, *args, "--model", tiny_onnx, "--provider", "cpu", "--rand", "2", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert not any(raw in done.stderr for raw in RAW), done.stderr
    read = json_lines(done.stdout)
    assert [Path(r["source"]).name for r in read] == ["digit_1.jpg", "digit_2.jpg", "digit_3.jpg"]
    assert sum(r["digit"] == label for r, label in zip(read, labels, strict=True)) >= 2
    skipped = [line for line in done.stderr.splitlines() if "skipped" in line and "could not" not in line]
    assert len(skipped) == len(bad), done.stderr
    for name, why in bad.items():
        assert sum(f"{name}: " in line and why in line for line in skipped) == 1, (name, done.stderr)
    assert "4 skipped (could not be read)" in done.stderr or "4 images skipped (could not be read)" in done.stderr


def test_one_truncated_jpeg_is_one_error_line(tiny_onnx: Path, tmp_path: Path) -> None:
    jpeg = write(tmp_path / "whole.jpg", paper_digit(1)[0]).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(jpeg[:len(jpeg) * 2 // 3])
    done = cli("predict", tmp_path / "cut.jpg", "--model", tiny_onnx, "--provider", "cpu")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == f"error: cannot read image {tmp_path / 'cut.jpg'}: truncated JPEG " \
                                                   "(the file ends before the image does)"
    assert not any(raw in done.stderr for raw in RAW), done.stderr


def test_a_folder_of_heic_photos_names_heic(tiny_onnx: Path, tmp_path: Path) -> None:
    for i in range(2):
        (tmp_path / "iphone" / f"IMG_{i}.heic").parent.mkdir(exist_ok=True)
        (tmp_path / "iphone" / f"IMG_{i}.heic").write_bytes(HEIC_HEAD + bytes(100))
    done = cli("predict", tmp_path / "iphone", "--model", tiny_onnx, "--provider", "cpu")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and done.stdout == ""
    assert sum("HEIC/HEIF photos are not supported" in line for line in lines) == 2, done.stderr
    assert lines[-1] == "error: none of the 2 images could be read (each is named above)"
