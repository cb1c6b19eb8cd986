"""Issue #13 finding 2: isolation dates far from today are refused (422), and a person whose
stored dates are extreme anyway does not break the persons list."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.contract import bearer, make_world, person_payload
from tests.fuzz.conftest import fast_password_hashing  # noqa: F401  (autouse fixture)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("9999-12-30T00:00:00Z", "9999-12-31T23:59:59Z"),
        ("0001-01-01T00:00:00Z", "0001-01-10T00:00:00Z"),
        ("0001-01-01T00:00:00+23:59", "0001-01-10T00:00:00Z"),
        ("2200-01-01T00:00:00Z", "2200-01-10T00:00:00Z"),
    ],
)
def test_create_person_refuses_isolation_dates_outside_a_sane_range(
    client, session, clock, start, end
):
    world = make_world(client, session, clock.now())
    payload = person_payload(clock.now(), national_id="079190009999", phone="0907777777")
    payload.update(isolation_start=start, isolation_end=end)
    r = client.post("/api/v1/admin/persons", headers=bearer(world.admin_token), json=payload)
    assert r.status_code == 422, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["code"] == "validation_error"


def test_create_person_refuses_a_start_months_away_from_today(client, session, clock):
    world = make_world(client, session, clock.now())
    later = clock.now() + timedelta(days=400)
    payload = person_payload(clock.now(), national_id="079190009998", phone="0907777778")
    payload.update(
        isolation_start=later.isoformat(), isolation_end=(later + timedelta(days=7)).isoformat()
    )
    r = client.post("/api/v1/admin/persons", headers=bearer(world.admin_token), json=payload)
    assert r.status_code == 422, r.get_json()
    fields = [e["field"] for e in r.get_json()["errors"]]
    assert "isolation_start" in fields


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "Asia/Nowhere"])
def test_create_person_refuses_an_unknown_time_zone(client, session, clock, zone):
    world = make_world(client, session, clock.now())
    payload = person_payload(clock.now(), national_id="079190009997", phone="0907777779")
    payload["timezone"] = zone
    r = client.post("/api/v1/admin/persons", headers=bearer(world.admin_token), json=payload)
    assert r.status_code == 422, r.get_json()
    assert [e["field"] for e in r.get_json()["errors"]] == ["timezone"]
