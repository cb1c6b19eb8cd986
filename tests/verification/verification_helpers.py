"""Helpers shared by the verification tests (synthetic images, encoding)."""

from __future__ import annotations

import cv2
import numpy as np


def encode(bgr: np.ndarray, ext: str = ".jpg", **params: int) -> bytes:
    """Encode a BGR array with OpenCV (``.jpg``, ``.png``, ``.webp``)."""
    flags = []
    for k, v in params.items():
        flags += [getattr(cv2, k), v]
    ok, buf = cv2.imencode(ext, bgr, flags)
    assert ok
    return buf.tobytes()


def synthetic_image(width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """A deterministic colourful BGR test card (no face): gradients plus a red square."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack(
        [x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=2
    ).astype(np.uint8)
    img[: height // 4, : width // 4] = (0, 0, 255)
    img = cv2.add(img, rng.integers(0, 8, img.shape, dtype=np.uint8))
    return img
