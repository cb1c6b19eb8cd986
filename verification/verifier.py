"""The :class:`Verifier`: decode -> detect -> PAD -> quality gate -> embed -> match -> replay /
liveness.

One object per process (or per worker); models load on first use (or on :meth:`Verifier.load`),
never at import, and are safe to use from many threads (:mod:`verification.analysis`). The
decision rules live in :mod:`verification.decisions`, the returned types in
:mod:`verification.results`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from verification import face_models as F
from verification.analysis import Analyser
from verification.decisions import DecisionRules
from verification.errors import VerificationError
from verification.liveness import Challenge, blink_observed, turn_observed
from verification.quality import Thresholds, gate
from verification.replay import find_replay
from verification.results import Decision, FaceAnalysis, Result
from verification.templates import Template, coerce_all


class Verifier(Analyser, DecisionRules):
    """Face verification with the settings of :class:`VerificationSettings`.

    ``settings``: a settings object (default: read from ``ISOCHECK_*`` variables);
    ``overrides``: single fields on top, e.g. ``Verifier(verify_embedder="dlib")``.
    """

    def enrol(self, image_bytes: bytes) -> Template:
        """An ``enrolment`` template from a reference photo, under the stricter enrolment gate.

        Raises :class:`VerificationError` (decoding, detection or quality code, or
        ``presentation_suspected`` when the photo looks like a print or a screen: staff retake it
        of the person, not of a picture)."""
        a = self.analyse(image_bytes, purpose="enrol")
        if a.pad is not None and a.pad.suspected:
            raise VerificationError(
                "presentation_suspected",
                "the enrolment photo looks like a photo of a print or a screen",
                pad=a.pad.to_dict(),
            )
        return self._template(a, source="enrolment")

    def _template(self, a: FaceAnalysis, *, source: str) -> Template:
        return Template(
            embedder=self.embedder,
            model_sha256=self.model_sha256(),
            vector=a.vectors[self.embedder],
            quality=a.quality.to_dict(),
            source=source,
            image_sha256=a.hashes.sha256,
            image_phash=a.hashes.phash,
        )

    def _compatible(self, templates: Iterable[Any]) -> list[Template]:
        ts = coerce_all(templates)
        kind = (self.embedder, self.model_sha256())
        wrong = [t.kind for t in ts if t.kind != kind]
        if wrong:
            raise VerificationError(
                "template_incompatible",
                f"templates made by {sorted(set(wrong))} cannot be compared with {kind}",
                expected=list(kind),
                found=[list(k) for k in sorted(set(wrong))],
            )
        return ts

    def _distances(self, templates: list[Template], vector: np.ndarray) -> list[float]:
        dist = F.DISTANCES[self.embedder]
        return [dist(t.vector, vector) for t in templates]

    def verify(
        self,
        templates: Iterable[Template | dict[str, Any] | bytes],
        image_bytes: bytes,
        *,
        previous_hashes: Iterable[str] = (),
    ) -> Result:
        """Compare a check-in selfie with a person's templates.

        ``templates``: the person's :class:`Template` objects (or their stored dict/bytes forms),
        all of the verifier's kind. ``previous_hashes``: tagged hash strings of earlier accepted
        selfies (the templates' own source photos are always included).
        The decision uses the best (smallest) distance over the templates.
        Raises :class:`VerificationError` when the selfie is unusable or a template is of another
        kind; returns a :class:`Result` otherwise.
        """
        ts = self._compatible(templates)
        a = self.analyse(image_bytes, purpose="checkin")
        distances = self._distances(ts, a.vectors[self.embedder])
        best = int(np.argmin(distances))
        decision, code = self.decide(distances[best], templates=len(ts))
        old = [h for t in ts for h in t.hashes()] + list(previous_hashes or ())
        replay = find_replay(a.hashes, old, max_hamming=self.settings.replay_max_hamming)
        details: dict[str, Any] = {}
        if replay is not None:
            decision, code = "mismatch", "replayed_image"
            details = {"replay_of": replay[0], "hamming": replay[1]}
        decision, code = self._pad_gate(a.pad, decision, code, details)
        return self._result(a, ts, distances, decision, code, details, replay)

    def _result(
        self,
        a: FaceAnalysis,
        ts: list[Template],
        distances: list[float],
        decision: Decision,
        code: str,
        details: dict[str, Any],
        replay: tuple[str, int] | None,
    ) -> Result:
        """Assemble a :class:`Result` for analysis ``a`` against templates ``ts``."""
        best = int(np.argmin(distances))
        accept, review = self.thresholds(templates=len(ts))
        return Result(
            decision=decision,
            code=code,
            distance=float(distances[best]),
            accept_threshold=accept,
            review_threshold=review,
            embedder=self.embedder,
            distances=[float(d) for d in distances],
            best_template=best,
            quality=a.quality,
            sha256=a.hashes.sha256,
            phash=a.hashes.phash,
            replay_of=None if replay is None else replay[0],
            details=details,
            candidate=self._template(a, source="checkin"),
            timings_ms=a.timings_ms,
            pad=a.pad,
        )

    def check_liveness(
        self,
        templates: Iterable[Template | dict[str, Any] | bytes],
        challenge: Challenge | dict[str, Any] | str,
        frames: Sequence[bytes],
        *,
        previous_hashes: Iterable[str] = (),
    ) -> Result:
        """Check a burst of frames answers ``challenge`` and shows the enrolled person throughout.

        ``frames``: 2..``liveness_max_frames`` photos (bytes) in capture order, the first looking
        straight at the camera. Every frame must hold one face of usable size, sharpness and
        exposure (pose and eyes are not gated: they are what moves) and be within the review
        distance of the templates. The band of the result follows the best frame. Returns a
        :class:`Result` with code ``liveness_failed`` (``details["reason"]``) when the motion was
        not seen or a frame shows someone else; raises for unusable input.
        """
        ch = Challenge.coerce(challenge)
        s = self.settings
        if isinstance(frames, bytes | bytearray) or not (2 <= len(frames) <= s.liveness_max_frames):
            raise VerificationError(
                "invalid_challenge",
                f"need 2 to {s.liveness_max_frames} frames",
                max_frames=s.liveness_max_frames,
            )
        ts = self._compatible(templates)
        loose = Thresholds.for_purpose(s, "checkin")
        loose = Thresholds(
            loose.min_face_px,
            loose.min_sharpness,
            loose.min_brightness,
            loose.max_brightness,
            max_yaw=10.0,
            min_ear=0.0,
        )
        analyses = []
        for i, frame in enumerate(frames):
            try:
                a = self.analyse(
                    frame,
                    apply_gate=False,
                    need_landmarks68=ch.kind == "blink",
                    with_pad=True,
                )
                gate(a.quality, loose)
            except VerificationError as exc:
                exc.details.setdefault("frame", i)
                raise
            analyses.append(a)
        per_frame = [self._distances(ts, a.vectors[self.embedder]) for a in analyses]
        best_per_frame = [min(d) for d in per_frame]
        best_frame = int(np.argmin(best_per_frame))
        accept, review = self.thresholds(templates=len(ts))
        yaws = [a.quality.yaw for a in analyses]
        ears = [a.quality.ear for a in analyses if a.quality.ear is not None]
        details: dict[str, Any] = {
            "challenge": ch.to_dict(),
            "frame_distances": [round(d, 4) for d in best_per_frame],
            "yaws": [round(y, 3) for y in yaws],
            "ears": [round(e, 3) for e in ears],
        }
        if ch.kind == "blink":
            moved = blink_observed(ears, s.liveness_ear_open, s.liveness_blink_ratio)
        else:
            moved = turn_observed(yaws, ch.kind, s.liveness_min_turn)
        old = [h for t in ts for h in t.hashes()] + list(previous_hashes or ())
        replay = None
        for a in analyses:
            replay = replay or find_replay(a.hashes, old, max_hamming=s.replay_max_hamming)
        decision, code = self.decide(best_per_frame[best_frame], templates=len(ts))
        if max(best_per_frame) > review:
            decision, code = "mismatch", "liveness_failed"
            details["reason"] = "different_person"
        elif not moved:
            decision, code = "mismatch", "liveness_failed"
            details["reason"] = "no_blink" if ch.kind == "blink" else "no_turn"
        elif replay is not None:
            decision, code = "mismatch", "replayed_image"
            details.update(replay_of=replay[0], hamming=replay[1])
        pads = [a.pad for a in analyses if a.pad is not None]
        worst = min(pads, key=lambda p: p.score if p.score is not None else 1.0, default=None)
        decision, code = self._pad_gate(worst, decision, code, details)
        return self._result(
            analyses[best_frame], ts, per_frame[best_frame], decision, code, details, replay
        )
