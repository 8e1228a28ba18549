"""Image bodies: what a PNG or JPEG header says (size, channels, depth) and the cost of decoding it, checked
before anything is decoded; the decoding itself, reduced for large JPEGs when the reader needs less.

numpy, struct and OpenCV only. Refusals are protocol.BadRequest (HTTP 400, one line).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from digitsum_edge.serve.protocol import BadRequest

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"
MAX_PIXELS = 40_000_000  # a 12-24 MP phone photo decodes; a small PNG that inflates to gigabytes does not
# What decoding costs is bytes, not pixels: width x height x channels x bytes per sample of the stored image.
# 40 MP of 8-bit RGB decodes; the same pixels as 16-bit RGBA (320 MB, seconds of work) do not.
MAX_DECODE_BYTES = 128 * 2**20


@dataclass(frozen=True)
class ImageHeader:
    """What a PNG or JPEG says about itself before anything is decoded."""

    kind: str  # PNG | JPEG
    width: int
    height: int
    channels: int  # samples per pixel as stored (a palette PNG decodes to 3)
    sample_bytes: int  # 1, or 2 for 16-bit PNGs and 12/16-bit JPEGs

    def decode_bytes(self, factor: int = 1) -> int:
        """Bytes of the decoded image at 1/factor scale (JPEGs decode reduced; PNGs never do)."""
        return -(-self.width // factor) * -(-self.height // factor) * self.channels * self.sample_bytes


_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # IHDR colour type -> samples per decoded pixel


def image_header(data: bytes) -> ImageHeader:
    """A PNG or JPEG header: format, size, channels and depth, before anything is decoded."""
    if data.startswith(PNG):
        if len(data) < 26 or data[12:16] != b"IHDR":
            raise BadRequest("the PNG image is truncated (no IHDR header)")
        width, height = struct.unpack(">II", data[16:24])
        return ImageHeader("PNG", width, height, _PNG_CHANNELS.get(data[25], 4), 2 if data[24] == 16 else 1)
    if data.startswith(JPEG):
        return _jpeg_header(data)
    if not data:
        raise BadRequest("the request has no body; send PNG or JPEG bytes")
    raise BadRequest("the body is not a PNG or JPEG image")


def _jpeg_header(data: bytes) -> ImageHeader:
    """Walk the JPEG markers to the frame header (SOF0-SOF15 but DHT, JPG, DAC) and read it."""
    i = 2
    while i + 10 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            precision, height, width, components = struct.unpack(">BHHB", data[i + 4:i + 10])
            return ImageHeader("JPEG", width, height, max(components, 1), 1 if precision <= 8 else 2)
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    raise BadRequest("the JPEG image is corrupt or truncated (no frame header)")


def reduction(header: ImageHeader, keep: int) -> int:
    """The JPEG scale (1, 2, 4 or 8) to decode at so that the shorter side stays at least `keep` pixels
    (0: full size). libjpeg scales in the DCT, so a 12 MP photo costs a quarter of its decoding at 1/2."""
    if header.kind != "JPEG" or keep <= 0:
        return 1
    return max((f for f in (1, 2, 4, 8) if min(header.width, header.height) // f >= keep), default=1)


def check_decode(header: ImageHeader, factor: int = 1) -> None:
    """Refuse an image whose decoding would cost too much (pixels or bytes), before decoding it."""
    width, height = header.width, header.height
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise BadRequest(f"the {header.kind} image is {width}x{height}: at most {MAX_PIXELS / 1e6:.0f} megapixels")
    if header.decode_bytes(factor) > MAX_DECODE_BYTES:
        raise BadRequest(f"the {header.kind} image is {width}x{height} with {header.channels} channel(s) of "
                         f"{8 * header.sample_bytes} bits: {header.decode_bytes(factor) / 2**20:.0f} MiB to decode, "
                         f"at most {MAX_DECODE_BYTES / 2**20:.0f} MiB")


_REDUCED = {1: "IMREAD_COLOR", 2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4", 8: "IMREAD_REDUCED_COLOR_8"}


def decode_image(data: bytes, keep: int = 0) -> np.ndarray:
    """PNG or JPEG bytes -> (H, W, 3) uint8 BGR, exactly as `predict` reads the same file from disk; with
    `keep`, a large JPEG is decoded reduced while its shorter side stays at least `keep` pixels."""
    import cv2

    header = image_header(data)
    factor = reduction(header, keep)
    check_decode(header, factor)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), getattr(cv2, _REDUCED[factor]))
    if image is None:
        raise BadRequest(f"cannot decode the {header.kind} image (corrupt or truncated)")
    return image
