"""The stable codes of the verification library and the one exception it raises.

Every refusal has a code from :data:`CODES`; clients branch on the code, never on a message.
:mod:`verification.messages` holds a Vietnamese and an English text for each code.

Two kinds of outcome, on purpose:

* :class:`VerificationError` — the input could not be measured or used (unreadable image, no face,
  too dark, wrong template kind, model file damaged). Nothing was decided about the person.
* :class:`verification.Result` — the face was measured and a decision taken; its ``code`` is one of
  :data:`RESULT_CODES` (``face_match``, ``face_review``, ``face_mismatch``, ``replayed_image``,
  ``liveness_failed``).
"""

from __future__ import annotations

from typing import Any

#: Raised as :class:`VerificationError` (the input was unusable), grouped by pipeline stage.
ERROR_CODES: tuple[str, ...] = (
    # decoding (verification.image)
    "image_empty",
    "image_unreadable",
    "unsupported_format",
    "image_too_large",
    # detection (verification.face_models)
    "face_not_found",
    "multiple_faces",
    # quality gate (verification.quality)
    "face_too_small",
    "image_blurred",
    "image_too_dark",
    "image_too_bright",
    "head_turned",
    "eyes_closed",
    # templates and inputs
    "template_incompatible",
    "template_invalid",
    "no_templates",
    "invalid_challenge",
    # presentation-attack detection (verification.pad), at enrolment: the photo is refused
    "presentation_suspected",
    # configuration
    "model_invalid",
)

#: Carried by :class:`verification.Result` (a decision was taken).
RESULT_CODES: tuple[str, ...] = (
    "face_match",
    "face_review",
    "face_mismatch",
    "replayed_image",
    "liveness_failed",
    "presentation_suspected",
    # a check-in selfie in the review band, with the window open: one more capture is asked for
    # before a person reviews (the server's retake policy; Verifier.decide_retake)
    "retake_requested",
)

#: Every stable code, in a fixed order (``presentation_suspected`` is both: a refused enrolment
#: photo, or a check-in decided ``review``).
CODES: tuple[str, ...] = ERROR_CODES + tuple(c for c in RESULT_CODES if c not in ERROR_CODES)


class VerificationError(Exception):
    """An input the library could not use. ``code`` is one of :data:`ERROR_CODES`.

    ``details`` carries the measurements behind the refusal (e.g. ``{"face_px": 31.0,
    "min_face_px": 64.0}``) so a reviewer, a log or the server's problem+json can show them.
    """

    def __init__(self, code: str, message: str = "", **details: Any) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown verification error code {code!r}")
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        """``{"code": ..., "message": ..., "details": {...}}`` — JSON-ready."""
        return {"code": self.code, "message": self.message, "details": dict(self.details)}
