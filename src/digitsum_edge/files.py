"""Atomic file writes: a reader never sees a half-written file, a failed write never clobbers a good one."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from digitsum_edge.errors import DigitsumError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temporary and staged files are hidden and carry the writer's process id: `.model.~1234.x8f2k.pt`.
_OWNED = re.compile(r"^\..*\.~(\d+)\.")


def temp_name(path: Path, tag: str = "") -> Path:
    """A hidden name beside `path` that says which process owns it (so a later run can sweep it)."""
    return path.with_name(f".{path.name}.~{os.getpid()}.{tag}")


def sweep_stale(folder: Path) -> list[Path]:
    """Remove temporary files (and work folders) left in `folder` by processes that no longer exist (kill -9,
    power loss)."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _OWNED.match(entry.name)
        if match and not _alive(int(match.group(1))):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix); move it onto `path` only if the block succeeds.

    What a killed run left beside it (its own temporary files, named with their dead process id) is
    swept first.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path.parent)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.~{os.getpid()}.", suffix=path.suffix, dir=path.parent)
    except OSError as e:
        raise DigitsumError(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        _fsync(tmp)  # the data is on the disk before the name points at it (power loss on an SD card)
        os.replace(tmp, path)
        _fsync(path.parent)  # and the rename itself is on the disk
    finally:
        tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's) data and metadata to the storage device."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON to `path` atomically."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def check_writable(path: str | os.PathLike, *, force: bool) -> Path:
    """Refuse an existing output unless `force`, and a place that cannot be written, before any work."""
    path = Path(path)
    if path.is_dir():
        raise DigitsumError(f"output {path} is a directory")
    if path.exists() and not force:
        raise DigitsumError(f"output {path} exists (use --force to replace it)")
    check_folder(path.parent, output=path)
    return path


def check_folder(folder: str | os.PathLike, *, output: str | os.PathLike | None = None) -> Path:
    """Create `folder` if needed and prove a file can be made in it (permission bits do not stop root)."""
    folder = Path(folder) if str(folder) else Path(".")
    what = output if output is not None else folder
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise DigitsumError(f"cannot write {what}: {blocker} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise DigitsumError(f"cannot write {what}: {e.strerror or e}") from None
    return folder
