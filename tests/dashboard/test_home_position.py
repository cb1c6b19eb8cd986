"""Issue 19, item 7, on the dashboard: enrolment without typing coordinates, then the staff's
confirm step on the person's page — confirm the phone's position, refuse it, or type it (the
fallback) — scoped, audited, in Vietnamese."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from server.core.audit import AuditEvent
from server.people.models import Person
from tests.dashboard.world import csrf_token, log_in


def _pending(session, world, clock, proposed=True):
    person = session.get(Person, world.own.person.id)
    person.home_source = "pending"
    person.home_lat = person.home_lon = 0.0
    if proposed:
        person.home_proposed_lat, person.home_proposed_lon = 10.81301, 106.68655
        person.home_proposed_accuracy_m = 140.0
        person.home_proposed_at = clock.now() - timedelta(minutes=3)
    session.commit()
    return person


def _post(client, pid, **data):
    return client.post(f"/dashboard/persons/{pid}/home",
                       data={**data, "csrf_token": csrf_token(client)})


def test_staff_confirm_the_phone_s_position(app, client, world, session, clock):
    person = _pending(session, world, clock)
    log_in(client, world.staff["ward_a"])
    html = client.get(f"/dashboard/persons/{person.id}").get_data(as_text=True)
    assert "Vị trí nhà chờ xác nhận" in html and "10.81301, 106.68655" in html
    assert "Vị trí kém chính xác" in html  # ± 140 m
    assert 'id="home-confirm"' in html
    r = _post(client, person.id, action="confirm")
    assert r.status_code == 302
    session.refresh(person)
    assert (person.home_lat, person.home_lon, person.home_source) == (10.81301, 106.68655, "phone")
    assert person.home_proposed_lat is None
    html = client.get(f"/dashboard/persons/{person.id}").get_data(as_text=True)
    assert 'id="home-position"' not in html and "từ điện thoại, đã xác nhận" in html
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "person.home_confirm"))
    assert event.actor_id == world.staff["ward_a"].id
    assert "10.81301" not in str(event.details)  # no coordinates in the audit trail
    assert "Xác nhận vị trí nhà" in html  # the audit trail, in words


def test_refuse_then_type_it(app, client, world, session, clock):
    person = _pending(session, world, clock)
    log_in(client, world.staff["ward_a"])
    assert _post(client, person.id, action="reject").status_code == 302
    session.refresh(person)
    assert person.home_source == "pending" and person.home_proposed_lat is None
    html = client.get(f"/dashboard/persons/{person.id}").get_data(as_text=True)
    assert 'id="home-needed"' in html
    assert _post(client, person.id, action="confirm").status_code == 302  # nothing to confirm
    session.refresh(person)
    assert person.home_source == "pending"
    for lat, lon in (("91", "106.7"), ("x", "106.7"), ("nan", "106.7")):
        _post(client, person.id, action="typed", home_lat=lat, home_lon=lon)
        session.refresh(person)
        assert person.home_source == "pending", (lat, lon)
    _post(client, person.id, action="typed", home_lat="10.8129", home_lon="106.6866")
    session.refresh(person)
    assert (person.home_lat, person.home_lon, person.home_source) == (10.8129, 106.6866, "typed")


def test_out_of_scope_and_doctors_cannot(app, client, world, session, clock):
    other = session.get(Person, world.other.person.id)
    other.home_source = "pending"
    session.commit()
    log_in(client, world.staff["ward_a"])
    assert _post(client, other.id, action="reject").status_code == 404
    log_in(client, world.staff["doctor"])
    assert _post(client, world.own.person.id, action="reject").status_code == 404


def test_enrolment_form_takes_no_coordinates(app, client, world, session):
    log_in(client, world.staff["ward_a"])
    html = client.get("/dashboard/enrol").get_data(as_text=True)
    assert "Có thể để trống vĩ độ và kinh độ" in html
    assert 'name="home_lat" value="" step="any" min="-90" max="90" >' in html  # not required


def test_the_activation_page_says_to_activate_at_home(app, client, world, session, clock):
    person = _pending(session, world, clock, proposed=False)
    log_in(client, world.staff["ward_a"])
    html = client.post(f"/dashboard/persons/{person.id}/activation-code",
                       data={"csrf_token": csrf_token(client)}).get_data(as_text=True)
    assert 'id="home-at-activation"' in html and "khi đang ở nhà" in html
