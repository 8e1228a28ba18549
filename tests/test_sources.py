"""Frame sources: image files, folders, videos and cameras (real files; a fake capture for camera failures)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from digitsum_edge.apps import sources
from digitsum_edge.apps.sources import CameraLost, Source, list_images, read_image
from digitsum_edge.errors import DigitsumError


def _image(value: int, size: tuple[int, int] = (40, 30)) -> np.ndarray:
    """(H, W, 3) uint8 BGR with a value-dependent pattern, so that every image is told apart."""
    w, h = size
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = value
    image[..., 1] = (np.arange(w) * 3 + value) % 256
    image[..., 2] = (np.arange(h)[:, None] * 5) % 256
    return image


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


# ---- read_image and list_images --------------------------------------------------------------------------------

def test_read_image_round_trip(tmp_path: Path) -> None:
    image = _image(77)
    read = read_image(_write(tmp_path / "a.png", image))  # PNG is lossless
    assert read.dtype == np.uint8 and np.array_equal(read, image)
    gray = read_image(_write(tmp_path / "g.png", image[..., 1]))  # a grayscale file still gives BGR
    assert gray.shape == (30, 40, 3) and np.array_equal(gray[..., 0], image[..., 1])
    assert np.array_equal(gray[..., 0], gray[..., 2])


def test_read_image_errors(tmp_path: Path) -> None:
    with pytest.raises(DigitsumError, match=r"image .*nope\.png does not exist"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(DigitsumError, match=r"dir\.png is not a file"):
        read_image(tmp_path / "dir.png")
    for name, data in (("junk.png", b"not a png at all" * 20), ("empty.jpg", b""),
                       ("half.png", cv2.imencode(".png", _image(3))[1].tobytes()[:40])):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DigitsumError, match=rf"cannot read image .*{name}") as info:
            read_image(tmp_path / name)
        assert "\n" not in str(info.value)


def test_list_images_sorts_and_filters(tmp_path: Path) -> None:
    for name in ("b.png", "a.jpg", "C.PNG", "d.JPEG", "e.bmp", "f.tif", "g.webp"):
        _write(tmp_path / name, _image(1))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "video.mp4").write_bytes(b"\x00" * 10)
    (tmp_path / "png").write_bytes(b"no suffix")
    names = [p.name for p in list_images(tmp_path)]
    assert names == sorted(names) == ["C.PNG", "a.jpg", "b.png", "d.JPEG", "e.bmp", "f.tif", "g.webp"]
    assert all(p.parent == tmp_path for p in list_images(tmp_path))


def test_list_images_looks_into_subfolders(tmp_path: Path) -> None:
    """A folder of folders (one per person) is read whole, sorted by path; hidden folders are skipped."""
    (tmp_path / "folder.png").mkdir()  # a folder with an image's name is not an image, its image is
    _write(tmp_path / "folder.png" / "inside.png", _image(2))
    for person in ("bob", "ann"):
        _write(tmp_path / person / "photos" / "7.jpg", _image(3))
        _write(tmp_path / person / "1.png", _image(4))
    _write(tmp_path / ".cache" / "thumb.png", _image(5))
    _write(tmp_path / "top.png", _image(6))
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["ann/1.png", "ann/photos/7.jpg", "bob/1.png", "bob/photos/7.jpg", "folder.png/inside.png",
                     "top.png"]
    empty = tmp_path / "empty"
    (empty / "a" / "b").mkdir(parents=True)
    (empty / "a" / "notes.txt").write_text("x")
    with pytest.raises(DigitsumError, match="nor do its subfolders"):
        list_images(empty)


def test_list_images_of_a_folder_without_images(tmp_path: Path) -> None:
    with pytest.raises(DigitsumError, match="holds no images"):
        list_images(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DigitsumError, match=r"holds no images \(\.png, \.jpg"):
        list_images(tmp_path)


# ---- Source over files -------------------------------------------------------------------------------------------

def test_source_over_one_image(tmp_path: Path) -> None:
    path = _write(tmp_path / "one.png", _image(9))
    with Source(str(path)) as source:
        assert source.kind == "image" and source.fps is None and source.capture is None
        frames = list(source)
        assert [name for name, _ in frames] == [str(path)] and np.array_equal(frames[0][1], _image(9))
        assert len(list(source)) == 1  # iterating again reads it again


def test_a_bad_image_source_fails_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(DigitsumError, match="cannot read image"):
        Source(str(tmp_path / "bad.jpg"))


def test_source_over_a_folder(tmp_path: Path) -> None:
    for i, name in enumerate(("frame_2.png", "frame_0.png", "frame_1.png")):
        _write(tmp_path / name, _image(10 * i))
    (tmp_path / "labels.json").write_text("{}")
    source = Source(str(tmp_path))
    assert source.kind == "images" and source.fps is None and source.name == str(tmp_path)
    frames = list(source)
    assert [Path(name).name for name, _ in frames] == ["frame_0.png", "frame_1.png", "frame_2.png"]
    assert [int(frame[0, 0, 0]) for _, frame in frames] == [10, 20, 0]  # each file's own pixels, in name order
    source.close()
    source.close()


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(DigitsumError, match=r"source .*gone\.mp4 does not exist \(a camera index, video, image"):
        Source(str(tmp_path / "gone.mp4"))


def _write_video(path: Path, count: int, fps: float, size: tuple[int, int] = (64, 48)) -> list[int]:
    """A video whose frame i is a flat grey of level 20 + 20*i; returns the levels."""
    fourcc = cv2.VideoWriter_fourcc(*sources.VIDEO_FOURCC[path.suffix])
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    assert writer.isOpened()
    levels = [20 + 20 * i for i in range(count)]
    for level in levels:
        writer.write(np.full((size[1], size[0], 3), level, np.uint8))
    writer.release()
    return levels


@pytest.mark.parametrize(("suffix", "fps"), [(".avi", 12.0), (".mp4", 25.0)])
def test_source_over_a_video(tmp_path: Path, suffix: str, fps: float) -> None:
    path = tmp_path / f"clip{suffix}"
    levels = _write_video(path, 7, fps)
    with Source(str(path)) as source:
        assert source.kind == "video" and source.name == str(path)
        assert source.fps == pytest.approx(fps, rel=0.01)
        frames = list(source)
        assert source.capture is not None  # still open until close()
    assert source.capture is None
    assert len(frames) == len(levels) and all(name == str(path) for name, _ in frames)
    assert all(frame.shape == (48, 64, 3) and frame.dtype == np.uint8 for _, frame in frames)
    read_levels = [float(frame.mean()) for _, frame in frames]
    assert np.allclose(read_levels, levels, atol=4), read_levels  # the frames, in order (codecs are lossy)


def test_a_file_that_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "fake.mp4"
    path.write_bytes(b"this is not a video " * 50)
    with pytest.raises(DigitsumError, match=r"cannot read video .*fake\.mp4"):
        list(Source(str(path)))


# ---- cameras (a fake capture: no test depends on the machine having one) ------------------------------------

class FakeCapture:
    """cv2.VideoCapture stand-in: `frames` good frames, then `gap` failed reads, then `more` good frames."""

    instances: ClassVar[list[FakeCapture]] = []

    def __init__(self, index: int, *, opened: bool = True, frames: int = 3, gap: int = 10**9, more: int = 0,
                 fps: float = 30.0) -> None:
        self.index, self.opened, self.fps = index, opened, fps
        self.script = [True] * frames + [False] * min(gap, 10**6) + [True] * more
        self.reads = 0
        self.releases = 0
        FakeCapture.instances.append(self)

    def isOpened(self) -> bool:
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        ok = self.reads < len(self.script) and self.script[self.reads]
        self.reads += 1
        return (True, np.full((48, 64, 3), self.reads, np.uint8)) if ok else (False, None)

    def get(self, prop: int) -> float:
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        self.releases += 1


@pytest.fixture
def camera(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Install a fake camera built with the given options; returns the list of captures made."""
    monkeypatch.chdir(tmp_path)  # "0" must not name a file in the working folder
    FakeCapture.instances = []
    sleeps: list[float] = []
    monkeypatch.setattr(sources.time, "sleep", sleeps.append)

    def install(**options):
        monkeypatch.setattr(sources.cv2, "VideoCapture", lambda index: FakeCapture(index, **options))
        return FakeCapture.instances, sleeps

    return install


def test_a_camera_that_stops_delivering_raises_camera_lost_after_the_retries(camera) -> None:
    captures, sleeps = camera(frames=4)
    source = Source("0", retries=3, retry_wait=0.05)
    assert source.kind == "camera" and source.name == "camera:0" and captures[0].index == 0
    got = []
    with pytest.raises(CameraLost, match=r"camera:0 stopped delivering frames after 4 \(3 retries\)") as info:
        for name, frame in source:
            got.append((name, int(frame[0, 0, 0])))
    assert isinstance(info.value, DigitsumError)
    assert got == [("camera:0", i) for i in (1, 2, 3, 4)]  # every frame delivered before the loss
    assert captures[0].reads == 4 + 1 + 3 and sleeps == [0.05] * 3  # the first failure, then 3 waited retries
    source.close()
    source.close()
    assert captures[0].releases == 1  # released once, even when closed twice


def test_a_camera_that_recovers_within_the_retries_keeps_going(camera) -> None:
    captures, sleeps = camera(frames=2, gap=2, more=3)
    frames = []
    with Source("0", retries=3, retry_wait=0) as source, pytest.raises(CameraLost, match="after 5"):
        for _, frame in source:
            frames.append(int(frame[0, 0, 0]))
    assert frames == [1, 2, 5, 6, 7]  # reads 3 and 4 failed, then it delivered again
    assert len(sleeps) == 2 + 3  # two waits before it recovered, three before it was given up
    assert captures[0].releases == 1


def test_a_camera_that_never_delivers_is_not_a_lost_camera(camera) -> None:
    camera(frames=0)
    with pytest.raises(DigitsumError, match=r"camera:0 opened but delivers no frames \(2 retries\)") as info:
        list(Source("0", retries=2, retry_wait=0))
    assert not isinstance(info.value, CameraLost)


def test_a_missing_camera_index(camera) -> None:
    captures, _ = camera(opened=False)
    with pytest.raises(DigitsumError, match="no camera at index 7") as info:
        Source("7")
    assert "--source" in str(info.value) and captures[0].index == 7 and captures[0].releases == 1


def test_a_missing_camera_index_on_this_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capfd: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DigitsumError, match="no camera at index 97"):
        Source("97")  # no machine running the tests has 98 cameras
    err = capfd.readouterr().err
    assert "WARN" not in err and "ERROR" not in err, err  # OpenCV's own messages are silenced


def test_a_digit_that_names_a_file_is_the_file(camera, tmp_path: Path) -> None:
    captures, _ = camera()
    (tmp_path / "0").mkdir()
    _write(tmp_path / "0" / "img.png", _image(5))
    source = Source("0")
    assert source.kind == "images" and captures == []


@pytest.mark.parametrize(("reported", "fps"), [(30.0, 30.0), (0.0, None), (-1.0, None), (1000.0, None), (1.0, 1.0)])
def test_camera_fps(camera, reported: float, fps: float | None) -> None:
    camera(fps=reported)
    with Source("0") as source:
        assert source.fps == fps
    assert source.fps is None  # closed: nothing to ask
