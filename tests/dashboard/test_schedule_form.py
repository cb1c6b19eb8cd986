"""Issue 19, item 6: the person's schedule is a form with the policy's fields (windows, minutes
to answer, spot checks, quiet hours), each refusal shown at its field; what is stored is what
differs from the ward's schedule."""

from __future__ import annotations

import re

from server.people.models import Person
from tests.dashboard.world import csrf_token, log_in

DEFAULT_ROWS = {
    "windows_count": "4",
    "w0_name": "morning", "w0_start": "07:30", "w0_end": "09:30",
    "w1_name": "midday", "w1_start": "11:30", "w1_end": "13:30",
    "w2_name": "evening", "w2_start": "17:30", "w2_end": "19:30",
    "w3_name": "", "w3_start": "", "w3_end": "",
    "response_minutes": "20", "spot_checks_per_day": "1",
    "quiet_start": "22:00", "quiet_end": "06:00",
}


def _send(client, pid, **changes):
    data = {**DEFAULT_ROWS, **changes, "csrf_token": csrf_token(client)}
    return client.post(f"/dashboard/persons/{pid}/schedule-form", data=data)


def _error_at(html, field):
    """The message shown right after the field ``field`` (inside its label), or None."""
    m = re.search(
        rf'<input[^>]*id="{field}"[^>]*aria-invalid="true"[^>]*>'
        rf'<span class="field-error" id="{field}-error" role="alert">([^<]+)</span>', html
    )
    return m.group(1) if m else None


def test_the_form_shows_the_effective_schedule(app, client, world):
    log_in(client, world.staff["ward_a"])
    html = client.get(f"/dashboard/persons/{world.own.person.id}").get_data(as_text=True)
    assert 'id="schedule-form"' in html
    for field, value in (("w0_start", "07:30"), ("w2_end", "19:30"), ("quiet_start", "22:00"),
                         ("response_minutes", "20"), ("spot_checks_per_day", "1")):
        assert re.search(rf'id="{field}" [^>]*value="{value}"', html), field
    assert "Đang dùng lịch của phường" in html


def test_saving_stores_only_what_differs_from_the_ward(app, client, world, session):
    log_in(client, world.staff["ward_a"])
    pid = world.own.person.id
    r = _send(client, pid, response_minutes="15", spot_checks_per_day="2")
    assert r.status_code == 302 and r.headers["Location"].endswith("#schedule")
    person = session.get(Person, pid)
    session.refresh(person)
    assert person.schedule_policy == {"response_minutes": 15, "spot_checks_per_day": 2}
    # a fourth window in the empty row, the midday one removed
    r = _send(client, pid, w1_remove="1", w3_start="14:00", w3_end="15:00",
              response_minutes="15", spot_checks_per_day="2")
    assert r.status_code == 302
    session.refresh(person)
    assert person.schedule_policy["windows"] == [
        {"name": "morning", "start": "07:30", "end": "09:30"},
        {"name": "evening", "start": "17:30", "end": "19:30"},
        {"name": "w1", "start": "14:00", "end": "15:00"},
    ]
    html = client.get(f"/dashboard/persons/{pid}").get_data(as_text=True)
    assert "Người này có lịch riêng" in html
    # back to the ward's schedule
    r = _send(client, pid, reset="1")
    assert r.status_code == 302
    session.refresh(person)
    assert person.schedule_policy is None


def test_a_bad_window_is_refused_at_its_field(app, client, world, session):
    log_in(client, world.staff["ward_a"])
    pid = world.own.person.id
    for changes, field, message in (
        ({"w0_end": "07:00"}, "w0_end", "Giờ kết thúc phải sau giờ bắt đầu"),
        ({"w1_start": "25:00"}, "w1_start", "Cần giờ dạng HH:MM"),
        ({"w3_start": "21:30", "w3_end": "23:00"}, "w3_start", "Khung rơi vào giờ yên lặng"),
        ({"w3_start": "09:00", "w3_end": "10:00"}, "w3_start", "Trùng với khung 1"),
        ({"w2_start": "17:30", "w2_end": "17:40"}, "w2_end",
         "Khung ngắn hơn thời gian phản hồi (20 phút)"),
        ({"response_minutes": "90"}, "response_minutes", "Cần số nguyên từ 5 đến 60"),
        ({"quiet_end": "22:30"}, "quiet_end", "Giờ yên lặng phải kéo dài ít nhất 60 phút"),
    ):
        r = _send(client, pid, **changes)
        html = r.get_data(as_text=True)
        assert r.status_code == 422, changes
        got = _error_at(html, field)
        assert got and got.startswith(message), (changes, got)
        assert re.search(rf'id="{field}"[^>]*autofocus', html), field  # the page opens there
    person = session.get(Person, pid)
    session.refresh(person)
    assert person.schedule_policy is None  # nothing refused was stored
    en = client.post(
        f"/dashboard/persons/{pid}/schedule-form?lang=en",
        data={**DEFAULT_ROWS, "w0_end": "07:00", "csrf_token": csrf_token(client)},
    ).get_data(as_text=True)
    assert _error_at(en, "w0_end") == "The end must be after the start (same day)."


def test_other_fields_set_in_json_are_kept(app, client, world, session):
    person = session.get(Person, world.own.person.id)
    person.schedule_policy = {"max_attempts": 5}
    session.commit()
    log_in(client, world.staff["ward_a"])
    assert _send(client, person.id, response_minutes="30").status_code == 302
    session.refresh(person)
    assert person.schedule_policy == {"max_attempts": 5, "response_minutes": 30}
