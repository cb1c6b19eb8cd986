"""Fixtures of the FHIR tests: the dashboard tests' world (three wards, one account per role)."""

from __future__ import annotations

import pytest

from tests.dashboard.world import World


@pytest.fixture
def world(app, session, settings, clock) -> World:
    return World(session, settings, clock)


@pytest.fixture
def bearer(app, world):
    """``bearer("ward_a")`` → the Authorization header of that role's staff token."""
    from server.http.auth import issue_staff_token

    def make(role: str) -> dict[str, str]:
        with app.app_context():
            return {"Authorization": f"Bearer {issue_staff_token(world.staff[role])}"}

    return make


@pytest.fixture(autouse=True)
def _join_export_threads():
    """$export jobs run in threads; none may outlive its test's database."""
    yield
    from server.fhir import bulk

    bulk.join_all()
