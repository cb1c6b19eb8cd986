"""``judge`` and ``_verdict_of`` called directly with the real verifier and real photographs
(issue 20: the judging survivors of ``bench/mutation.py checkin``): what each verdict carries —
decision, code, score, the library's result and its details — for a match, an impostor, a
review-band face, no templates, an unusable upload and a liveness challenge not answered."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from server.checkins.judging import Verdict, _verdict_of, judge
from server.checkins.service import Upload
from server.core.enums import AttemptDecision
from server.core.errors import DomainError
from server.core.jsonsafe import json_safe
from server.face_verifier import get_verifier
from server.http.problem import status_of
from tests.checkins.test_checkin_e2e import A_ENROL, A_SELFIES, B_PHOTO
from tests.photo_sets import photo

pytestmark = pytest.mark.faces


@pytest.fixture(scope="module")
def verifier():
    return get_verifier()


@pytest.fixture(scope="module")
def templates(verifier):
    return [verifier.enrol(photo(A_ENROL))]


def upload(image: bytes, frames: list[bytes] | None = None) -> Upload:
    return Upload(image=image, content_type="image/jpeg", nonce="n", latitude=10.8,
                  longitude=106.7, accuracy_m=10.0,
                  captured_at=datetime(2026, 12, 1, tzinfo=UTC), frames=frames or [])  # fmt: skip


def _refusal(verifier, templates, image):
    from verification import VerificationError

    with pytest.raises(VerificationError) as exc:
        verifier.verify(templates, image)
    return exc.value


def judged(verifier, templates, image, *, challenge=None, frames=None, hashes=()):
    return judge(verifier=verifier, templates=templates, upload=upload(image, frames),
                 challenge=challenge, hashes=list(hashes))  # fmt: skip


def test_no_templates_is_a_review_with_nothing_else(verifier):
    v = judged(verifier, [], photo(A_SELFIES[0]))
    assert v == Verdict(AttemptDecision.review, "no_templates")
    assert (v.score, v.details, v.result, v.bad_image_status) == (None, {}, None, None)


def test_a_match_is_verified_with_the_librarys_result(verifier, templates):
    image = photo(A_SELFIES[0])
    v = judged(verifier, templates, image)
    result = verifier.verify(templates, image)
    assert (v.decision, v.code) == (AttemptDecision.verified, "face_match")
    assert v.result is not None and v.result.decision == "match"
    assert v.score == pytest.approx(result.distance) and isinstance(v.score, float)
    assert v.details == json_safe(v.result.to_dict())
    assert v.details["code"] == "face_match" and v.details["sha256"] == result.sha256
    assert v.bad_image_status is None


def test_an_impostor_is_rejected_with_the_score(verifier, templates):
    v = judged(verifier, templates, photo(B_PHOTO))
    assert (v.decision, v.code) == (AttemptDecision.rejected, "face_mismatch")
    assert v.score == pytest.approx(v.result.distance) and v.score > v.result.review_threshold
    assert v.details["decision"] == "mismatch"
    assert v.bad_image_status is None


def test_a_replay_of_an_accepted_selfie_is_rejected(verifier, templates):
    image = photo(A_SELFIES[1])
    first = verifier.verify(templates, image)
    v = judged(verifier, templates, image, hashes=first.hashes)
    assert (v.decision, v.code) == (AttemptDecision.rejected, "replayed_image")


@pytest.mark.parametrize("library,decision", [
    ("match", AttemptDecision.verified),
    ("review", AttemptDecision.review),
    ("mismatch", AttemptDecision.rejected),
])
def test_the_librarys_decision_maps_to_the_attempts(verifier, templates, library, decision):
    """The three bands of a real result, by re-labelling one real result (the distance bands
    themselves are pinned in tests/verification)."""
    result = replace(verifier.verify(templates, photo(A_SELFIES[2])), decision=library,
                     code=f"face_{library}")  # fmt: skip
    v = _verdict_of(result)
    assert (v.decision, v.code, v.result) == (decision, f"face_{library}", result)
    assert v.score == pytest.approx(result.distance)
    assert v.details == json_safe(result.to_dict())


@pytest.mark.parametrize("image,code,status", [
    (b"", "image_empty", 422),
    (b"not an image at all", "unsupported_format", 415),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "image_unreadable", 422),
])
def test_an_unusable_upload_is_rejected_with_its_http_status(verifier, templates, image, code,
                                                             status):
    v = judged(verifier, templates, image)
    assert (v.decision, v.code, v.bad_image_status) == (AttemptDecision.rejected, code, status)
    assert v.score is None and v.result is None
    assert v.details == json_safe(_refusal(verifier, templates, image).details)


def test_a_quality_refusal_carries_the_librarys_details_and_no_status(verifier, templates):
    """A real selfie darkened to a tenth: it decodes and holds a face, but the quality gate
    refuses it with the library's code and details (what was measured, the limit) and no
    unusable-image status (it is a retake, not a 4xx)."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(photo(A_SELFIES[0]))).convert("RGB")
    buf = io.BytesIO()
    img.point(lambda x: x // 10).save(buf, "JPEG", quality=95)
    v = judged(verifier, templates, buf.getvalue())
    refusal = _refusal(verifier, templates, buf.getvalue())
    assert (v.decision, v.code) == (AttemptDecision.rejected, refusal.code)
    assert v.code not in ("image_empty", "image_unreadable", "face_match")
    assert v.details == json_safe(refusal.details) and v.details  # what the library said
    assert v.bad_image_status is None and v.result is None


def test_a_match_whose_liveness_was_not_seen_goes_to_review_keeping_the_selfies_result(
    verifier, templates
):
    """The same still frame twice answers no blink: the face matched, so a human looks; the
    verdict carries the liveness code and details but the selfie's own result (its hashes)."""
    image = photo(A_SELFIES[0])
    challenge = {"kind": "blink", "nonce": "0123456789abcdef"}
    v = judged(verifier, templates, image, challenge=challenge, frames=[image, image])
    assert (v.decision, v.code) == (AttemptDecision.review, "liveness_failed")
    assert v.result is not None and v.result.code == "face_match"
    assert v.details["code"] == "liveness_failed"
    assert v.details["details"]["challenge"] == challenge


def test_a_challenge_is_not_checked_when_the_face_did_not_match(verifier, templates):
    image = photo(B_PHOTO)
    v = judged(verifier, templates, image, challenge={"kind": "blink", "nonce": "0" * 16},
               frames=[])  # fmt: skip
    # no frames would be an invalid challenge: it was never looked at
    assert (v.decision, v.code) == (AttemptDecision.rejected, "face_mismatch")


def test_without_a_challenge_a_match_is_verified_whatever_the_frames(verifier, templates):
    image = photo(A_SELFIES[0])
    v = judged(verifier, templates, image, challenge=None, frames=[image, image])
    assert (v.decision, v.code) == (AttemptDecision.verified, "face_match")


def test_a_broken_model_is_our_fault_a_503(tmp_path, templates):
    """A model file that fails its checksum is the server's fault: 503 with Retry-After, never
    a verdict against the person."""
    from verification import Verifier

    bad = tmp_path / "sface.onnx"
    bad.write_bytes(b"not the model")
    with pytest.raises(DomainError) as exc:
        judged(Verifier(sface_model_path=bad), templates, photo(A_SELFIES[0]))
    assert (exc.value.code, status_of(exc.value)) == ("service_unavailable", 503)
    assert exc.value.retry_after_s == 60


def test_a_match_whose_turn_was_seen_is_verified(verifier, templates):
    """Two real photos of A, the head a quarter turned between them (yaw ratio 0.11 → -0.24, over
    the 0.25 the turn needs): the challenge is answered, the check-in is verified on the
    selfie's own result."""
    selfie = photo("lfw_Gloria_Macapagal_Arroyo/2.jpg")
    turned = photo("lfw_Gloria_Macapagal_Arroyo/6.jpg")
    challenge = {"kind": "turn_right", "nonce": "0123456789abcdef"}
    assert verifier.check_liveness(templates, challenge, [selfie, turned]).decision == "match"
    v = judged(verifier, templates, selfie, challenge=challenge, frames=[selfie, turned])
    assert (v.decision, v.code) == (AttemptDecision.verified, "face_match")
    assert v.details["code"] == "face_match" and "challenge" not in v.details["details"]
    # the other way round the turn is not seen: a human looks
    wrong = {"kind": "turn_left", "nonce": "0123456789abcdef"}
    v = judged(verifier, templates, selfie, challenge=wrong, frames=[selfie, turned])
    assert (v.decision, v.code) == (AttemptDecision.review, "liveness_failed")
