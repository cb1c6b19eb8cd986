"""Embedding variants built on one embedder's ``embed`` call (no model code here, so the OpenCV and
the OpenVINO engines of :mod:`verification.face_models` can both use them)."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Embed = Callable[[np.ndarray], np.ndarray]


def mirror_average(embed: Embed, aligned: np.ndarray) -> np.ndarray:
    """The L2-normalised mean of the vectors of the aligned crop and of its horizontal flip.

    ``embed`` maps an aligned crop (BGR uint8) to an L2-normalised vector; the result is
    float32 and L2-normalised too. Two passes of the embedder (``embed`` is called twice)."""
    a = np.asarray(embed(aligned), np.float32).reshape(-1)
    b = np.asarray(embed(cv2.flip(aligned, 1)), np.float32).reshape(-1)
    v = a + b
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
