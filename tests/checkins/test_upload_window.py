"""Which prompt an upload may answer (``find_prompt_for_upload``), at the edges: the window opens
at ``opens_at`` (inclusive), uploads count until ``due_at + LATE_GRACE`` (exclusive), another
person's nonce is unknown, the last attempt used up refuses the next. No photographs needed.

Found by mutation testing (bench/mutation.py): these edges were only reached through the face
tests, which asserted few of them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.checkins.service import LATE_GRACE, find_prompt_for_upload
from server.core.errors import DomainError
from server.http.problem import status_of
from tests.minimal_world import MiniWorld

S = timedelta(seconds=1)


@pytest.fixture
def world(session, clock):
    return MiniWorld(session, clock.now())


def _refusal(session, person, prompt, now):
    try:
        find_prompt_for_upload(session=session, person=person, nonce=prompt.nonce, now=now)
    except DomainError as exc:
        return exc.code, status_of(exc), exc.extra
    return None


def test_the_window_opens_at_opens_at_and_closes_after_the_grace(world, session):
    person = world.person()
    prompt = world.prompt(person, opens_at=world.now, due_at=world.now + timedelta(minutes=20))
    assert _refusal(session, person, prompt, world.now - S) == (
        "window_not_open", 409, {"opens_at": prompt.opens_at.isoformat()})
    assert _refusal(session, person, prompt, world.now) is None
    end = prompt.due_at + LATE_GRACE
    assert _refusal(session, person, prompt, prompt.due_at) is None
    assert _refusal(session, person, prompt, end - S) is None
    assert _refusal(session, person, prompt, end) == (
        "window_closed", 409, {"due_at": prompt.due_at.isoformat()})


def test_another_persons_nonce_is_unknown(world, session):
    a, b = world.person(), world.person()
    prompt = world.prompt(b)
    assert _refusal(session, a, prompt, world.now) == ("invalid_nonce", 400, {})
    assert _refusal(session, b, prompt, world.now) is None


def test_the_last_attempt_used_refuses_the_next(world, session):
    person = world.person()
    prompt = world.prompt(person)
    prompt.attempts_used = prompt.max_attempts - 1
    session.commit()
    assert _refusal(session, person, prompt, world.now) is None
    prompt.attempts_used = prompt.max_attempts
    session.commit()
    assert _refusal(session, person, prompt, world.now) == ("attempts_exhausted", 409, {})
