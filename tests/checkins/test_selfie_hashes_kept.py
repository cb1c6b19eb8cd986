"""The perceptual hash of an accepted selfie is kept on its stored image (issue 20: the
``keep_perceptual_hashes`` survivor of ``bench/mutation.py checkin``), and a re-encoded copy of
it (new bytes, new SHA-256) sent for a later check-in is caught as a replay. (The second test
alone does not need the stored hash: a confident match is also learned as a template, whose
hashes catch the copy too.)"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from server.checkins.models import CheckinAttempt
from server.face_verifier import get_verifier
from server.people.models import StoredImage
from tests.checkins.test_checkin_e2e import A_ENROL, A_SELFIES, world  # noqa: F401 (fixture)
from tests.photo_sets import photo

pytestmark = pytest.mark.faces


def _reencoded(data: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, "JPEG", quality=85)
    assert buf.getvalue() != data
    return buf.getvalue()


def test_an_accepted_selfie_keeps_its_perceptual_hashes(world):  # noqa: F811
    selfie = photo(A_SELFIES[2])
    prompt = world.new_prompt()
    r = world.check_in(prompt, selfie)
    assert r.get_json()["result"] == "verified", r.get_json()
    attempt = world.session.get(CheckinAttempt, r.get_json()["attempt_id"])
    image = world.session.get(StoredImage, attempt.image_id)
    verifier = get_verifier()
    expected = verifier.verify([verifier.enrol(photo(A_ENROL))], selfie)
    assert image.phash == expected.phash and len(image.phash) == 16
    # a selfie's Result has no face-crop hash (only enrolment templates carry one)
    assert image.face_phash == getattr(expected, "face_phash", None)


def test_a_reencoded_copy_of_an_accepted_selfie_is_a_replay(world):  # noqa: F811
    selfie = photo(A_SELFIES[3])
    assert world.check_in(world.new_prompt(), selfie).get_json()["result"] == "verified"
    r = world.check_in(world.new_prompt(), _reencoded(selfie))
    body = r.get_json()
    assert (body["result"], body["code"]) == ("rejected", "replayed_image"), body
