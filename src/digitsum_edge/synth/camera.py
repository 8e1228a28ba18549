"""The camera's own steps, shared by every scene synth draws: the light on the paper, something dark at the
frame's edge, and the sensor (noise, then JPEG)."""

from __future__ import annotations

import cv2
import numpy as np


def lighting(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(height, width, 3) float32 paper brightness: a gradient, a soft spot or shadow, a colour tint."""
    gw, gh = 32, 24  # computed coarse, then smoothly upscaled
    yy, xx = np.mgrid[-1:1:gh * 1j, -1:1:gw * 1j].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    light = rng.uniform(130, 225) + rng.uniform(15, 60) * (np.cos(angle) * xx + np.sin(angle) * yy)
    sx, sy = rng.uniform(-1, 1, 2)
    light += rng.uniform(-40, 30) * np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / rng.uniform(0.2, 0.8))
    light = cv2.resize(light, (width, height), interpolation=cv2.INTER_CUBIC)
    tint = rng.uniform(0.88, 1.05, 3)  # B, G, R
    return cv2.merge([light * np.float32(t) for t in tint])  # (H, W, 3)


def sleeve(image: np.ndarray, rng: np.random.Generator, rx: int) -> None:
    """In place, half the time: something dark at the frame's left edge, outside the region (a sleeve, a table)."""
    if rng.random() < 0.5:
        band = int(rng.integers(10, max(11, rx // 2)))
        image[:, :band] *= rng.uniform(0.3, 0.6)


def sensor(frame: np.ndarray, noise_rng: np.random.Generator, noise_seed: int, sigma: float) -> np.ndarray:
    """The camera's last steps: sensor noise of `sigma` grey levels, then JPEG (quality 50-90) and back."""
    noise = np.empty(frame.shape[:2], np.int16)  # (H, W): mostly luma after JPEG anyway
    cv2.setRNGSeed(noise_seed)  # OpenCV's generator, seeded: fast and repeatable
    noise[:] = cv2.randn(noise, np.zeros(1), np.full(1, sigma))
    frame = cv2.add(frame, cv2.merge([noise] * 3), dtype=cv2.CV_8U)  # saturating
    _, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(noise_rng.integers(50, 91))])
    return np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
