"""isocheck's face verification library: is this selfie the enrolled person?

Pure library (numpy, OpenCV, dlib via face_recognition's models; no Flask, no database).
Importing it loads nothing: models load on the first call (or :meth:`Verifier.load`).

    from verification import Verifier
    v = Verifier()                      # settings from ISOCHECK_* variables
    t = v.enrol(open("enrol.jpg", "rb").read())
    r = v.verify([t], open("selfie.jpg", "rb").read())
    r.decision, r.code, r.distance      # ("match", "face_match", 0.31)

See ``docs/verification.md`` for the measurements behind every default.
"""

from verification.errors import CODES, ERROR_CODES, RESULT_CODES, VerificationError
from verification.liveness import Challenge, new_challenge
from verification.messages import message
from verification.settings import VerificationSettings
from verification.templates import Template, add_template
from verification.verifier import FaceAnalysis, Result, Verifier

__all__ = [
    "CODES",
    "ERROR_CODES",
    "RESULT_CODES",
    "Challenge",
    "FaceAnalysis",
    "Result",
    "Template",
    "VerificationError",
    "VerificationSettings",
    "Verifier",
    "add_template",
    "message",
    "new_challenge",
]
