"""Atomic writes and output checks: a file appears whole or not at all, with normal permissions, on the disk."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from digitsum_edge import files
from digitsum_edge.errors import DigitsumError


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask after a test that sets its own."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_file_appears_only_when_the_block_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    with files.atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".json" and tmp != path
        tmp.write_text("{}")
        assert not path.exists()  # nothing under the real name while the block runs
    assert path.read_text() == "{}" and not tmp.exists()
    assert _names(tmp_path) == ["out.json"]


def test_an_exception_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"good old weights")
    before = path.stat()
    with pytest.raises(RuntimeError, match="boom"), files.atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert path.read_bytes() == b"good old weights" and path.stat().st_ino == before.st_ino
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert _names(tmp_path) == ["model.pt"]


def test_an_exception_leaves_no_new_file(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), files.atomic_path(tmp_path / "new.onnx") as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt  # Ctrl-C is not an Exception and must clean up too
    assert _names(tmp_path) == []


def test_replaces_an_existing_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("x" * 10_000)
    files.write_json(path, {"accuracy": 0.99, "rows": [1, 2]})
    assert json.loads(path.read_text()) == {"accuracy": 0.99, "rows": [1, 2]}
    assert path.read_text().endswith("}\n") and _names(tmp_path) == ["metrics.json"]
    files.write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"


def test_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c.bin"
    files.write_bytes(path, b"data")
    assert path.read_bytes() == b"data" and _names(path.parent) == ["c.bin"]


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
@pytest.mark.usefixtures("umask")
def test_permissions_follow_the_umask_not_0600(tmp_path: Path, mask: int) -> None:
    os.umask(mask)
    path = tmp_path / "out.txt"
    files.write_bytes(path, b"x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    reference = tmp_path / "plain.txt"  # what open() would have made
    reference.write_bytes(b"x")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)


def test_fsync_file_then_replace_then_fsync_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        events.append(("fsync", stat.S_ISDIR(st.st_mode), st.st_ino, st.st_size))
        real_fsync(fd)

    def replace(src, dst, *args, **kwargs) -> None:
        events.append(("replace", Path(src), Path(dst)))
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    with files.atomic_path(path) as tmp:
        tmp.write_bytes(b"new contents")
    monkeypatch.undo()

    replaces = [i for i, e in enumerate(events) if e[0] == "replace"]
    assert len(replaces) == 1, events
    r = replaces[0]
    assert events[r][1] == tmp and events[r][2] == path
    file_ino, folder_ino = path.stat().st_ino, tmp_path.stat().st_ino  # the renamed file keeps its inode
    before, after = events[:r], events[r + 1:]
    # the temporary file, already holding all its data, is flushed before its name replaces the old one
    assert ("fsync", False, file_ino, len(b"new contents")) in before, events
    # the folder is flushed after the rename, so the rename itself is on the disk
    assert any(e[:3] == ("fsync", True, folder_ino) for e in after), events
    assert not any(e[:3] == ("fsync", True, folder_ino) for e in before), events
    assert path.read_bytes() == b"new contents"


def test_no_fsync_or_replace_when_the_block_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(os, "replace", lambda *a, **k: calls.append("replace"))
    with pytest.raises(ValueError), files.atomic_path(tmp_path / "x.txt") as tmp:
        tmp.write_text("partial")
        raise ValueError
    assert calls == [] and _names(tmp_path) == []


def test_atomic_path_under_a_file_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "runs").write_text("a file where a folder should be")
    with pytest.raises(DigitsumError, match="cannot write"), files.atomic_path(tmp_path / "runs" / "model.pt"):
        pytest.fail("the block must not run")
    assert (tmp_path / "runs").read_text() == "a file where a folder should be"


def test_check_writable_refuses_an_existing_output_without_force(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    assert files.check_writable(path, force=False) == path  # a new name is fine
    path.write_bytes(b"keep")
    with pytest.raises(DigitsumError, match=r"model\.onnx exists \(use --force to replace it\)"):
        files.check_writable(path, force=False)
    assert files.check_writable(path, force=True) == path
    assert path.read_bytes() == b"keep" and _names(tmp_path) == ["model.onnx"]  # checking writes nothing


@pytest.mark.parametrize("force", [False, True])
def test_check_writable_refuses_a_directory(tmp_path: Path, force: bool) -> None:
    (tmp_path / "out.json").mkdir()
    with pytest.raises(DigitsumError, match=r"out\.json is a directory"):
        files.check_writable(tmp_path / "out.json", force=force)


@pytest.mark.parametrize("depth", [1, 3])
def test_a_parent_that_is_a_file(tmp_path: Path, depth: int) -> None:
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    output = blocker.joinpath(*["sub"] * (depth - 1), "model.pt")
    with pytest.raises(DigitsumError, match=r"cannot write .*model\.pt: .*runs is a file, not a folder"):
        files.check_writable(output, force=True)
    with pytest.raises(DigitsumError, match="runs is a file, not a folder"):
        files.check_folder(output.parent)
    assert blocker.read_text() == "not a folder" and _names(tmp_path) == ["runs"]


def test_check_folder_creates_missing_folders_and_leaves_them_empty(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b" / "c"
    assert files.check_folder(folder) == folder
    assert folder.is_dir() and _names(folder) == []
    output = tmp_path / "x" / "y" / "out.jsonl"
    assert files.check_writable(output, force=False) == output
    assert output.parent.is_dir() and _names(output.parent) == []  # the folder exists, the output does not


def test_check_folder_of_an_empty_name_is_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert files.check_folder("") == Path(".")
    assert files.check_writable("out.txt", force=False) == Path("out.txt")
    assert _names(tmp_path) == []
