"""Quality measurements of one detected face, and the gate that turns them into refusal codes.

All measurements are small pure functions. Units:

* ``face_px`` — face box side (the smaller of width and height) in px of the *original* image;
* ``sharpness`` — variance of the Laplacian of the aligned 112x112 grey face crop scaled to a mean
  grey of 128 (unitless; the crop has a fixed scale and exposure, so the value depends on neither
  the photo's resolution nor its brightness);
* ``brightness`` — mean grey level 0-255 of the central part of the aligned crop (the face skin,
  not the background);
* ``yaw`` — nose offset from the eye midpoint along the eye line, divided by the eye distance
  (0 frontal; positive = nose towards the image's right, i.e. the person turned to *their*
  left in an un-mirrored photo; about +-0.5 at 30 degrees);
* ``ear`` — eye aspect ratio (Soukupova and Cech 2016) from dlib's 68 landmarks, mean of both eyes:
  about 0.25-0.35 open, below 0.15 closed. ``None`` when not measured.

:func:`gate` checks them in a fixed order (size, dark, bright, blur, pose, eyes) and raises the
first failure, with the measurement and the threshold in the error's details.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import cv2
import numpy as np

from verification.errors import VerificationError
from verification.settings import VerificationSettings

Purpose = Literal["enrol", "checkin"]


@dataclass(frozen=True)
class Quality:
    """Measurements of one face (see the module docstring for units)."""

    face_px: float
    sharpness: float
    brightness: float
    yaw: float
    ear: float | None
    detector_score: float

    def to_dict(self) -> dict[str, float | None]:
        """Field name -> value, rounded for storage and display."""
        return {k: (None if v is None else round(float(v), 4)) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Thresholds:
    """Limits of the quality gate for one purpose (enrolment is stricter than check-in)."""

    min_face_px: float
    min_sharpness: float
    min_brightness: float
    max_brightness: float
    max_yaw: float
    min_ear: float

    @classmethod
    def for_purpose(cls, settings: VerificationSettings, purpose: Purpose) -> Thresholds:
        """The ``enrol_*`` or ``checkin_*`` settings as a :class:`Thresholds`."""
        p = "enrol" if purpose == "enrol" else "checkin"
        return cls(
            min_face_px=getattr(settings, f"{p}_min_face_px"),
            min_sharpness=getattr(settings, f"{p}_min_sharpness"),
            min_brightness=getattr(settings, f"{p}_min_brightness"),
            max_brightness=getattr(settings, f"{p}_max_brightness"),
            max_yaw=getattr(settings, f"{p}_max_yaw"),
            min_ear=getattr(settings, f"{p}_min_ear"),
        )


def _grey(bgr: np.ndarray) -> np.ndarray:
    return bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def sharpness(aligned: np.ndarray) -> float:
    """Exposure-compensated variance of the Laplacian of the grey aligned crop.

    ``aligned``: uint8 (112, 112[, 3]). The crop is first scaled to a mean grey level of 128, so
    a dark but sharp face is not mistaken for a blurred one (the raw variance falls with the
    square of the exposure: a face at 20 % light measured 17 instead of 300).
    """
    g = _grey(aligned).astype(np.float64)
    g *= 128.0 / max(float(g.mean()), 1.0)
    return float(cv2.Laplacian(g, cv2.CV_64F).var())


def brightness(aligned: np.ndarray) -> float:
    """Mean grey level (0-255) of the central 60 % of the aligned crop (cheeks, nose, eyes)."""
    g = _grey(aligned)
    h, w = g.shape
    return float(g[int(0.2 * h) : int(0.8 * h), int(0.2 * w) : int(0.8 * w)].mean())


def yaw_ratio(landmarks5: np.ndarray) -> float:
    """Horizontal head turn from YuNet's 5 landmarks (float array (5, 2), px).

    Returns the nose's offset from the eye midpoint, projected on the eye line (so head roll does
    not count) and divided by the eye distance. Sign: positive = nose towards the image's right.
    """
    right_eye, left_eye, nose = (np.asarray(landmarks5[i], np.float64) for i in range(3))
    axis = left_eye - right_eye
    dist = float(np.linalg.norm(axis))
    if dist < 1e-6:
        return 0.0
    return float(np.dot(nose - (left_eye + right_eye) / 2.0, axis / dist) / dist)


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """EAR of one eye from its 6 dlib landmarks (float array (6, 2), px, dlib's order p1..p6):
    (|p2-p6| + |p3-p5|) / (2 |p1-p4|). Open eyes 0.25-0.35; 0 when the lids touch."""
    p = np.asarray(eye, np.float64)
    width = float(np.linalg.norm(p[0] - p[3]))
    if width < 1e-6:
        return 0.0
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width))


def mean_ear(landmarks68: np.ndarray) -> float:
    """Mean EAR of both eyes from dlib's 68 landmarks (float array (68, 2), px)."""
    return (eye_aspect_ratio(landmarks68[36:42]) + eye_aspect_ratio(landmarks68[42:48])) / 2.0


def gate(q: Quality, t: Thresholds) -> None:
    """Raise :class:`VerificationError` for the first limit ``q`` breaks, in the order: size,
    darkness, over-exposure, blur, head pose, closed eyes (exposure first: a badly exposed face
    also loses detail, and "too dark" is the advice that helps). ``None`` when all pass."""
    checks = (
        ("face_too_small", q.face_px < t.min_face_px, "face_px", q.face_px, t.min_face_px),
        (
            "image_too_dark",
            q.brightness < t.min_brightness,
            "brightness",
            q.brightness,
            t.min_brightness,
        ),
        (
            "image_too_bright",
            q.brightness > t.max_brightness,
            "brightness",
            q.brightness,
            t.max_brightness,
        ),
        ("image_blurred", q.sharpness < t.min_sharpness, "sharpness", q.sharpness, t.min_sharpness),
        ("head_turned", abs(q.yaw) > t.max_yaw, "yaw", q.yaw, t.max_yaw),
        (
            "eyes_closed",
            q.ear is not None and t.min_ear > 0 and q.ear < t.min_ear,
            "ear",
            q.ear,
            t.min_ear,
        ),
    )
    for code, failed, name, value, limit in checks:
        if failed:
            raise VerificationError(
                code,
                f"{name} {value:.3f} beyond limit {limit}",
                measured=name,
                value=round(float(value), 4),
                limit=limit,
                quality=q.to_dict(),
            )
