"""A confident check-in match becomes a template (``learn_template`` from ``apply_verdict``;
issue 20: survivors of ``bench/mutation.py checkin``). The learned row says where it came from:
``source = checkin`` (an ``enrolment`` template always stays, a learned one makes room for the
next), the selfie it was taken from (``image_id``: purging that selfie's person purges it) and
the time of the check-in (the request's clock, not the wall clock)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.checkins.models import CheckinAttempt
from server.face_verifier import get_verifier
from server.people.models import FaceTemplate
from tests.checkins.test_checkin_e2e import A_ENROL, A_SELFIES, world  # noqa: F401 (fixture)
from tests.photo_sets import photo

pytestmark = pytest.mark.faces


def _templates(world):  # noqa: F811
    return world.session.scalars(
        select(FaceTemplate)
        .where(FaceTemplate.person_id == world.person_id)
        .order_by(FaceTemplate.id)
    ).all()


def test_a_confident_match_is_learned_as_a_checkin_template_of_its_selfie(world):  # noqa: F811
    selfie = photo(A_SELFIES[3])
    verifier = get_verifier()
    expected = verifier.verify([verifier.enrol(photo(A_ENROL))], selfie)
    assert verifier.should_add_template(expected, []), expected.to_dict()  # the photo's premise
    [enrolled] = _templates(world)
    r = world.check_in(world.new_prompt(), selfie)
    assert r.get_json()["result"] == "verified", r.get_json()
    attempt = world.session.get(CheckinAttempt, r.get_json()["attempt_id"])
    world.session.expire_all()
    first, learned = _templates(world)
    assert (first.id, first.source) == (enrolled.id, "enrolment")
    assert (learned.source, learned.image_id, learned.created_at) == (
        "checkin",
        attempt.image_id,
        world.clock.now(),
    )
    assert attempt.image_id is not None
