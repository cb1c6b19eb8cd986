"""The retake before a human (issue 16): a selfie in the face review band asks for one more, and
the two decide together. Over HTTP with the real models and real photographs; the bands are set
around the photos' own measured distances so each path is taken on purpose."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from server.alerts.models import Alert
from server.checkins import lifecycle
from server.checkins.models import CheckinAttempt
from server.core.enums import AttemptDecision, PromptState
from tests.checkins.test_checkin_e2e import A_ENROL, A_SELFIES, World
from tests.photo_sets import faces_dir, photo
from verification import Verifier

EPS = 1e-3


def test_decide_retake_from_both_sides_of_each_threshold():
    v = Verifier(sface_accept=0.40, sface_accept_shift=[0.0, -0.03], retake_accept=0.45)
    # the retake alone matches at its own (template-shifted) accept threshold
    assert v.decide_retake(0.70, 0.40, templates=1) == ("match", "face_match")
    assert v.decide_retake(0.70, 0.40 + EPS, templates=1) == ("review", "face_review")
    assert v.decide_retake(0.70, 0.37, templates=2) == ("match", "face_match")
    assert v.decide_retake(0.70, 0.37 + EPS, templates=2) == ("review", "face_review")
    # together: the mean of the two at or below retake_accept
    assert v.decide_retake(0.44, 0.46, templates=1) == ("match", "face_match")
    assert v.decide_retake(0.44, 0.46 + 2 * EPS, templates=1) == ("review", "face_review")
    # never a mismatch: the first capture was close
    assert v.decide_retake(0.60, 1.5, templates=1) == ("review", "face_review")
    # the mean rule is calibrated for SFace only
    d = Verifier(verify_embedder="dlib", retake_accept=0.45)
    accept, _ = d.thresholds(templates=1)
    assert d.decide_retake(accept + 0.05, accept + 0.01, templates=1) == ("review", "face_review")


@pytest.fixture
def measured():
    """Distances of two selfies of A to A's enrolment template (real models)."""
    faces_dir("asia")
    v = Verifier(pad_model_path=None)
    tpl = v.enrol(photo(A_ENROL))
    d1 = v.verify([tpl], photo(A_SELFIES[0])).distance
    d2 = v.verify([tpl], photo(A_SELFIES[1])).distance
    return d1, d2


def _world(client, session, clock, monkeypatch, d1, d2, *, together: bool) -> World:
    """A's world with a verifier whose bands put both selfies in the review band, and whose
    retake threshold lets their mean match (``together``) or not."""
    import server.face_verifier

    mean = (d1 + d2) / 2
    verifier = Verifier(
        pad_model_path=None,
        sface_accept=min(d1, d2) - 0.02,
        sface_accept_shift=[0.0],
        sface_review=max(d1, d2) + 0.1,
        retake_accept=mean + EPS if together else mean - EPS,
        augment_templates=False,
    )
    monkeypatch.setattr(server.face_verifier, "_verifier", verifier)
    return World(client, session, clock)


@pytest.mark.faces
def test_a_review_band_selfie_asks_for_a_retake_and_both_together_verify(
    client, session, clock, monkeypatch, measured
):
    world = _world(client, session, clock, monkeypatch, *measured, together=True)
    prompt = world.new_prompt()
    r = world.check_in(prompt, photo(A_SELFIES[0]), lang="en")
    body = r.get_json()
    assert r.status_code == 200, body
    assert (body["result"], body["code"]) == ("rejected", "retake_requested"), body
    assert body["attempts_left"] == 3 and body["prompt_state"] == "open"
    assert "eye level" in body["message"]

    r = world.check_in(prompt, photo(A_SELFIES[1]))
    body = r.get_json()
    assert (body["result"], body["code"], body["prompt_state"]) == (
        "verified",
        "face_match",
        "completed",
    ), body
    second = world.session.get(CheckinAttempt, body["attempt_id"])
    assert second.details["retake"]["first"] == pytest.approx(measured[0], abs=1e-4)


@pytest.mark.faces
def test_a_retake_that_does_not_settle_it_goes_to_review_and_only_one_is_asked(
    client, session, clock, monkeypatch, measured
):
    world = _world(client, session, clock, monkeypatch, *measured, together=False)
    prompt = world.new_prompt()
    assert world.check_in(prompt, photo(A_SELFIES[0])).get_json()["code"] == "retake_requested"
    body = world.check_in(prompt, photo(A_SELFIES[1])).get_json()
    assert (body["result"], body["code"], body["attempts_left"]) == ("review", "face_review", 3)
    assert body["prompt_state"] == "completed"
    # the next prompt asks again (once per prompt, not once per person)
    prompt2 = world.new_prompt()
    assert world.check_in(prompt2, photo(A_SELFIES[2])).get_json()["code"] in (
        "retake_requested",
        "face_match",
    )


@pytest.mark.faces
def test_sending_the_first_capture_again_is_a_replay_not_a_second_look(
    client, session, clock, monkeypatch, measured
):
    world = _world(client, session, clock, monkeypatch, *measured, together=True)
    prompt = world.new_prompt()
    selfie = photo(A_SELFIES[0])
    assert world.check_in(prompt, selfie).get_json()["code"] == "retake_requested"
    body = world.check_in(prompt, selfie).get_json()
    assert (body["result"], body["code"]) == ("rejected", "replayed_image"), body


@pytest.mark.faces
def test_a_retake_never_sent_goes_to_review_when_the_window_closes_not_to_missed(
    client, session, clock, monkeypatch, measured
):
    world = _world(client, session, clock, monkeypatch, *measured, together=True)
    prompt = world.new_prompt(window_min=5)
    first = world.check_in(prompt, photo(A_SELFIES[0])).get_json()
    assert first["code"] == "retake_requested"
    clock.advance(timedelta(minutes=30))
    lifecycle.close_overdue(
        session=world.session,
        now=clock.now(),
        limit=100,
        last_alive=clock.now() - timedelta(seconds=5),
        margin=timedelta(minutes=2),
    )
    world.session.commit()
    world.session.refresh(prompt)
    attempt = world.session.get(CheckinAttempt, first["attempt_id"])
    world.session.refresh(attempt)
    assert prompt.state is PromptState.completed
    assert (attempt.decision, attempt.code) == (AttemptDecision.review, "face_review")
    missed = world.session.scalars(select(Alert).where(Alert.prompt_id == prompt.id)).all()
    assert missed == []


@pytest.mark.faces
def test_a_review_band_selfie_after_the_due_time_is_reviewed_without_a_retake(
    client, session, clock, monkeypatch, measured
):
    world = _world(client, session, clock, monkeypatch, *measured, together=True)
    prompt = world.new_prompt(opens_in_min=-10, window_min=9)  # due a minute ago, in the grace
    body = world.check_in(prompt, photo(A_SELFIES[0])).get_json()
    assert (body["result"], body["code"]) == ("review", "face_review"), body
