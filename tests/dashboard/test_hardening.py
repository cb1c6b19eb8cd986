"""Issue #13 (part A) on the dashboard: findings 2, 5, 12, 13."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.dashboard.world import log_in


def test_persons_list_survives_a_person_with_extreme_stored_dates(app, client, world):
    person = world.own.person
    person.isolation_start = datetime(9999, 12, 30, tzinfo=UTC)
    person.isolation_end = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    world.session.commit()
    for role in ("admin", "district", "ward_a"):
        c = app.test_client()
        log_in(c, world.staff[role])
        r = c.get("/dashboard/persons")
        assert r.status_code == 200, role
        r = c.get(f"/dashboard/persons/{person.id}")
        assert r.status_code == 200, role
