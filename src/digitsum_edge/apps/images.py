"""Image files: decode one (an unreadable file is one UnreadableImage saying why: truncated, not an image, HEIC),
and list a folder's; OpenCV's and FFmpeg's own console messages silenced."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from digitsum_edge.errors import DigitsumError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
HEIF_SUFFIXES = (".heic", ".heif")  # iPhone photos: listed with a folder's images, so each is named as skipped
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")  # ISO BMFF brands of HEIF


def quiet_opencv() -> None:
    """Silence OpenCV's and FFmpeg's own console messages: failures become one DigitsumError line."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when a capture opens


class UnreadableImage(DigitsumError):
    """An image file that cannot be decoded: `why` says in a few words (truncated, not an image, HEIC)."""

    def __init__(self, path: Path, why: str):
        super().__init__(f"cannot read image {path}: {why}")
        self.path, self.why = path, why


def _why_undecodable(data: bytes, suffix: str) -> str:
    """Why OpenCV decoded nothing, from the file's first and last bytes."""
    if not data:
        return "the file is empty"
    if (data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS) or suffix in HEIF_SUFFIXES:
        return ("HEIC/HEIF photos are not supported (OpenCV cannot decode them): convert to JPEG, or set the "
                "phone's camera to 'Most Compatible'")
    if data.startswith(b"\xff\xd8"):
        return "truncated JPEG (the file ends before the image does)" if not data.rstrip(b"\0").endswith(
            b"\xff\xd9") else "corrupt JPEG"
    if data.startswith(b"\x89PNG"):
        return "truncated or corrupt PNG"
    return "not an image OpenCV can decode"


def skip_line(e: UnreadableImage) -> str:
    """The one line that names a skipped image and why."""
    return f"skipped {e.path}: {e.why}"


def none_read(count: int) -> str:
    """The error when not one of `count` images could be read."""
    return f"none of the {count} images could be read (each is named above)"


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 BGR; unreadable is one UnreadableImage saying why.

    Decoded from its bytes with cv2.imdecode, which fails on a truncated JPEG where cv2.imread prints libjpeg's
    "Premature end of JPEG file" on the terminal and returns the image padded with grey (OpenCV 5.1). The same
    pixels as cv2.imread on every complete file (the 140 real photos: all equal).
    """
    quiet_opencv()
    path = Path(path)
    if not path.is_file():
        raise DigitsumError(f"image {path} does not exist" if not path.exists() else f"image {path} is not a file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UnreadableImage(path, e.strerror or str(e)) from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise UnreadableImage(path, _why_undecodable(data, path.suffix.lower()))
    return image


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder and of its subfolders (hidden ones skipped), sorted by path: a folder of
    photos is often a folder per person or per session."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES + HEIF_SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise DigitsumError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}), nor do its subfolders")
    return files
