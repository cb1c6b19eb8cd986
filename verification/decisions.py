"""The decision rules of :class:`verification.Verifier`: distance bands, the retake rule, the
presentation-attack gate and when a selfie may join a person's templates (:class:`DecisionRules`).
Pure functions of the settings and the measured numbers: no model is needed here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from verification import face_models as F
from verification.errors import VerificationError
from verification.pad import PadResult
from verification.quality import Thresholds, gate
from verification.results import Decision, Result
from verification.templates import Template

if TYPE_CHECKING:
    from typing import Any

    from verification.settings import VerificationSettings


class DecisionRules:
    """Mixed into :class:`verification.Verifier`; needs ``settings`` and ``embedder``."""

    settings: VerificationSettings
    embedder: str

    def thresholds(self, embedder: str | None = None, templates: int = 1) -> tuple[float, float]:
        """(accept, review) distances for ``embedder`` (default: the deciding one) when the best of
        ``templates`` comparisons decides: the accept threshold tightens with each extra template
        (``*_accept_shift``) so the false-match rate stays at the calibrated 0.1 %."""
        name = embedder or self.embedder
        s = self.settings
        accept, review, shifts = (
            (s.sface_accept, s.sface_review, s.sface_accept_shift)
            if name == "sface"
            else (s.dlib_accept, s.dlib_review, s.dlib_accept_shift)
        )
        shift = shifts[min(max(templates, 1), len(shifts)) - 1] if shifts else 0.0
        return round(accept + shift, 4), review

    def decide(
        self, distance: float, embedder: str | None = None, templates: int = 1
    ) -> tuple[Decision, str]:
        """(decision, code) for the best distance over ``templates`` templates: <= accept ->
        match, <= review -> review, else mismatch."""
        accept, review = self.thresholds(embedder, templates)
        if distance <= accept:
            return "match", "face_match"
        if distance <= review:
            return "review", "face_review"
        return "mismatch", "face_mismatch"

    def decide_retake(
        self, first: float, second: float, templates: int = 1, embedder: str | None = None
    ) -> tuple[Decision, str]:
        """(decision, code) of a retake: ``first`` is the best distance of a selfie that landed
        in the review band, ``second`` the retake's. The retake matches on its own (<= accept),
        or both together when their mean is <= ``retake_accept`` (calibrated so the two chances
        keep the false-accept rate of the whole policy at 0.1 %). Otherwise a person reviews:
        a first capture in the review band means the face was close, so a retake outside it is
        not a mismatch either."""
        accept, _review = self.thresholds(embedder, templates)
        together = (embedder or self.embedder) == "sface" and (
            (first + second) / 2 <= self.settings.retake_accept
        )  # calibrated for SFace only
        if second <= accept or together:
            return "match", "face_match"
        return "review", "face_review"

    @staticmethod
    def _pad_gate(
        pad: PadResult | None, decision: Decision, code: str, details: dict[str, Any]
    ) -> tuple[Decision, str]:
        """A likely presentation attack is never ``match``: a face that matched (or was in the
        review band) goes to a person with ``presentation_suspected``. A face mismatch or a replay
        keeps its own code (those are decided without PAD). PAD never makes a ``mismatch``."""
        if pad is not None:
            details["pad"] = pad.to_dict()
            if pad.suspected and decision in ("match", "review"):
                details["face_code"] = code
                return "review", "presentation_suspected"
        return decision, code

    def should_add_template(
        self,
        result: Result,
        templates: Sequence[Template] = (),
        *,
        staff_confirmed: bool = False,
    ) -> bool:
        """Whether ``result.candidate`` should join the person's templates.

        Yes only when augmentation is on (``augment_templates``) and (1) the selfie was a confident
        automatic match (distance <= ``augment_max_distance`` and <= the accept threshold for the
        current number of templates) or staff confirmed it after review, (2) it was not a replay,
        (3) it passes the *enrolment* quality gate, and (4) it is not a near-duplicate of a template
        (distance < 0.1 adds nothing). Store it with :func:`verification.templates.add_template`,
        which bounds the list to ``max_templates``.
        """
        if not self.settings.augment_templates:
            return False
        if result.candidate is None or result.code in (
            "replayed_image",
            "liveness_failed",
            "presentation_suspected",
        ):
            return False
        confident = (
            result.decision == "match"
            and result.distance <= self.settings.augment_max_distance
            and result.distance <= result.accept_threshold
        )
        if not (confident or (staff_confirmed and result.decision in ("match", "review"))):
            return False
        try:
            gate(result.quality, Thresholds.for_purpose(self.settings, "enrol"))
        except VerificationError:
            return False
        return all(
            F.DISTANCES[self.embedder](t.vector, result.candidate.vector) >= 0.1
            for t in templates
            if t.kind == result.candidate.kind
        )
