"""What :class:`verification.Verifier` returns: the measurements of one photo and the outcome of
a check (:class:`FaceAnalysis`, :class:`Result`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from verification import face_models as F
from verification.pad import PadResult
from verification.quality import Quality
from verification.replay import ImageHashes
from verification.templates import Template

Decision = Literal["match", "review", "mismatch"]


@dataclass(frozen=True, eq=False)
class FaceAnalysis:
    """Everything measured on one photo.

    ``face``: the face used, in decoded-image px. ``faces_found``: detections above the score
    threshold (including ignored small background faces). ``vectors``: embedder -> float32 (128,).
    ``landmarks68``: dlib's (68, 2) px landmarks, or ``None`` when not needed.
    ``timings_ms``: stage -> milliseconds.
    """

    face: F.Face
    faces_found: int
    quality: Quality
    vectors: dict[str, np.ndarray]
    hashes: ImageHashes
    image_size: tuple[int, int]
    landmarks68: np.ndarray | None
    timings_ms: dict[str, float]
    pad: PadResult | None = None


@dataclass(frozen=True, eq=False)
class Result:
    """The outcome of :meth:`Verifier.verify` or :meth:`Verifier.check_liveness`.

    ``decision``: ``"match"`` (accept), ``"review"`` (a person decides) or ``"mismatch"``.
    ``code``: ``face_match`` / ``face_review`` / ``face_mismatch``, or ``replayed_image`` /
    ``liveness_failed`` (then ``decision`` is ``"mismatch"``). ``distance``: the best (smallest)
    distance to the templates in the embedder's unit (``sface``: 1 - cosine similarity;
    ``dlib``: Euclidean); ``distances``: one per template, in the order given.
    ``accept_threshold`` / ``review_threshold``: the band limits used.
    ``quality``: the selfie's measurements. ``sha256`` / ``phash``: its hashes —
    the server stores :attr:`hashes` of every accepted selfie for later replay checks.
    ``candidate``: the selfie as a ``checkin`` template (see :meth:`Verifier.should_add_template`).
    """

    decision: Decision
    code: str
    distance: float
    accept_threshold: float
    review_threshold: float
    embedder: str
    distances: list[float]
    best_template: int
    quality: Quality
    sha256: str
    phash: str
    replay_of: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    candidate: Template | None = field(default=None, repr=False)
    timings_ms: dict[str, float] = field(default_factory=dict)
    pad: PadResult | None = None

    @property
    def hashes(self) -> list[str]:
        """Tagged hash strings to store (``sha256:…``, ``phash:…``)."""
        return ImageHashes(self.sha256, self.phash).tagged()

    @property
    def accepted(self) -> bool:
        """True only for an automatic match."""
        return self.decision == "match"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the candidate template's vector)."""
        return {
            "decision": self.decision,
            "code": self.code,
            "distance": round(self.distance, 5),
            "accept_threshold": self.accept_threshold,
            "review_threshold": self.review_threshold,
            "embedder": self.embedder,
            "distances": [round(d, 5) for d in self.distances],
            "best_template": self.best_template,
            "quality": self.quality.to_dict(),
            "sha256": self.sha256,
            "phash": self.phash,
            "replay_of": self.replay_of,
            "details": self.details,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "pad": None if self.pad is None else self.pad.to_dict(),
        }
