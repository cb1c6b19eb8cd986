"""Yêu cầu điểm danh ngay: staff ask one person or a ward to check in now — a prompt that opens
at once, audited, once per person per 15 minutes, never in quiet hours, within scope only; and
`isocheck demo` leaves one person with an open prompt."""

from __future__ import annotations

from sqlalchemy import select

from server.checkins.models import CheckinPrompt
from server.core.audit import AuditEvent
from server.core.enums import PromptState
from tests.dashboard.world import csrf_token, log_in


def _post(client, url):
    return client.post(url, data={"csrf_token": csrf_token(client)})


def _requested(session, person_id):
    session.expire_all()
    return session.scalars(select(CheckinPrompt).where(
        CheckinPrompt.person_id == person_id, CheckinPrompt.slot_key.startswith("demand/"))).all()


def _close_live(session, person_id, clock):
    for p in session.scalars(select(CheckinPrompt).where(
            CheckinPrompt.person_id == person_id,
            CheckinPrompt.state.in_([PromptState.planned, PromptState.open]))):
        p.state, p.closed_at = PromptState.cancelled, clock.now()
    session.commit()


def test_staff_ask_one_person_to_check_in_now(app, client, world, session, clock):
    person = world.own.person
    _close_live(session, person.id, clock)
    log_in(client, world.staff["ward_a"])
    page = client.get(f"/dashboard/persons/{person.id}").get_data(as_text=True)
    assert "Yêu cầu điểm danh ngay" in page
    r = _post(client, f"/dashboard/persons/{person.id}/checkin-now")
    assert r.status_code == 302
    [prompt] = _requested(session, person.id)
    assert prompt.state is PromptState.planned and prompt.opens_at == clock.now()
    from server.schedule.policy import SchedulePolicy

    assert prompt.due_at == clock.now() + SchedulePolicy().response
    [event] = session.scalars(select(AuditEvent).where(
        AuditEvent.action == "checkin.request")).all()
    assert event.actor_id == world.staff["ward_a"].id and event.target_id == person.id
    assert "Đã yêu cầu điểm danh ngay: 1 người." in client.get("/dashboard/alerts").get_data(
        as_text=True)

    # the open sweep opens it and tells the phone, like any prompt
    from scheduler.jobs import open_due

    open_due(session=session, clock=clock, settings=app.extensions["isocheck"].settings)
    session.commit()
    session.refresh(prompt)
    assert prompt.state is PromptState.open

    # rate limit: a second request while it is open, or within 15 minutes, makes nothing
    _post(client, f"/dashboard/persons/{person.id}/checkin-now")
    _close_live(session, person.id, clock)
    clock.advance(minutes=5)
    r = _post(client, f"/dashboard/persons/{person.id}/checkin-now")
    assert "15 phút" in client.get("/dashboard/alerts").get_data(as_text=True)
    assert len(_requested(session, person.id)) == 1
    clock.advance(minutes=11)
    _post(client, f"/dashboard/persons/{person.id}/checkin-now")
    assert len(_requested(session, person.id)) == 2


def test_never_in_quiet_hours_and_never_out_of_scope(app, client, world, session, clock):
    person = world.own.person
    _close_live(session, person.id, clock)
    log_in(client, world.staff["ward_b"])  # another ward of the district
    assert _post(client, f"/dashboard/persons/{person.id}/checkin-now").status_code == 404
    assert _post(client, f"/dashboard/areas/{world.ward_a.id}/checkin-now").status_code == 404
    log_in(client, world.staff["ward_a"])
    clock.set(clock.now().replace(hour=16))  # 23:00 in Ho Chi Minh City
    _post(client, f"/dashboard/persons/{person.id}/checkin-now")
    assert _requested(session, person.id) == []
    assert "giờ yên lặng" in client.get("/dashboard/alerts").get_data(as_text=True)


def test_a_ward_is_asked_at_once(app, client, world, session, clock):
    _close_live(session, world.own.person.id, clock)
    log_in(client, world.staff["district"])
    r = _post(client, f"/dashboard/areas/{world.ward_a.id}/checkin-now")
    assert r.status_code == 302
    assert len(_requested(session, world.own.person.id)) == 1
    assert _requested(session, world.other.person.id) == []  # another district


def test_demo_leaves_one_person_with_an_open_prompt(session, clock):
    from scheduler.jobs import open_due
    from server.config import load_settings
    from server.demo import load_demo

    settings = load_settings()
    report = load_demo(session=session, clock=clock, settings=settings)
    assert report.open_prompt is not None
    open_due(session=session, clock=clock, settings=settings)
    session.commit()
    assert session.scalars(select(CheckinPrompt).where(
        CheckinPrompt.state == PromptState.open)).all()
    again = load_demo(session=session, clock=clock, settings=settings)
    assert again.created_persons == 0 and again.open_prompt is None


def test_the_phone_sees_a_requested_prompt_as_open_before_the_sweep(app, client, world,
                                                                     session, clock):
    from server.people.enrolment import activate_device, issue_activation_code
    from server.people.models import Person

    person = session.get(Person, world.own.person.id)
    _close_live(session, person.id, clock)
    secret = app.extensions["isocheck"].settings.secret_key
    code = issue_activation_code(session=session, person=person, now=clock.now(),
                                 actor_id=None, server_url="x", secret=secret).code
    _d, _p, token = activate_device(session=session, code=code, now=clock.now(),
                                    platform=None, push_token=None, secret=secret)
    session.commit()
    log_in(client, world.staff["ward_a"])
    _post(client, f"/dashboard/persons/{person.id}/checkin-now")
    [prompt] = _requested(session, person.id)
    assert prompt.state is PromptState.planned  # the open sweep has not run yet
    r = client.get("/api/v1/me/prompt", headers={"Authorization": f"Bearer {token}"})
    body = r.get_json()["prompt"]
    assert body["id"] == prompt.id and body["state"] == "open"
