"""Issue #13 finding 6: ids beyond the database's INTEGER range are a 404 problem, not a 500."""

from __future__ import annotations

import pytest

from tests.api.contract import make_world
from tests.fuzz.conftest import fast_password_hashing  # noqa: F401  (autouse fixture)


@pytest.mark.parametrize("big", [2**31, 2**63, 10**30])
def test_id_beyond_integer_range_is_not_found(client, session, clock, big):
    world = make_world(client, session, clock.now())
    r = client.get(f"/api/v1/admin/persons/{big}", headers=world.staff)
    assert r.status_code == 404
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["code"] == "not_found"
    own = client.get(f"/api/v1/admin/persons/{world.person_id}", headers=world.staff)
    assert own.status_code == 200
