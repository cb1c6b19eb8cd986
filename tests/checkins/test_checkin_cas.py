"""The verdict's compare-and-swap: an attempt is judged once. Dropping ``decision IS NULL`` from
the update passed the whole suite before this file."""

from __future__ import annotations

from sqlalchemy import select

from server.checkins.judging import Verdict
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.checkins.service import apply_verdict
from server.core.enums import AttemptDecision, PromptState
from server.face_verifier import get_verifier
from server.people.models import Person
from tests.checkins.test_checkin_e2e import A_SELFIES, world  # noqa: F401 (fixture)
from tests.photo_sets import photo


def _rejudge(
    world,  # noqa: F811
    settings,
    attempt_id: int,
    verdict: Verdict,
) -> bool:
    s = world.session
    attempt = s.get(CheckinAttempt, attempt_id)
    prompt = s.get(CheckinPrompt, attempt.prompt_id)
    person = s.get(Person, prompt.person_id)
    won = apply_verdict(
        session=s,
        settings=settings,
        verifier=get_verifier(),
        person=person,
        prompt=prompt,
        attempt=attempt,
        verdict=verdict,
        templates=[],
        now=world.clock.now(),
    )
    s.commit()
    return won


def test_a_decided_attempt_judged_again_is_refused_and_nothing_changes(world, settings):  # noqa: F811
    prompt = world.new_prompt()
    r = world.check_in(prompt, photo(A_SELFIES[0]))
    assert r.get_json()["result"] == "verified"
    attempt_id = r.get_json()["attempt_id"]
    before = world.session.get(CheckinAttempt, attempt_id)
    world.session.refresh(before)
    snapshot = (before.decision, before.code, before.score)

    won = _rejudge(
        world, settings, attempt_id, Verdict(AttemptDecision.rejected, "face_mismatch", score=1.5)
    )

    assert won is False
    world.session.expire_all()
    after = world.session.get(CheckinAttempt, attempt_id)
    assert (after.decision, after.code, after.score) == snapshot
    assert world.session.get(CheckinPrompt, prompt.id).state is PromptState.completed
    # the verified answer used one attempt; judging it again added none
    assert world.session.get(CheckinPrompt, prompt.id).attempts_used == 1
    n = world.session.scalars(
        select(CheckinAttempt).where(CheckinAttempt.prompt_id == prompt.id)
    ).all()
    assert len(n) == 1
