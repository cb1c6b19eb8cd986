"""Fixtures of the scheduler tests; helpers are in ``scheduler_helpers``."""

from __future__ import annotations

import pytest
from sqlalchemy import event


@pytest.fixture(autouse=True)
def _fast_commits(request):
    """The simulations commit thousands of small transactions: skip the fsync on each (the
    tests never survive a power cut, so durability buys nothing here)."""
    if "engine" not in request.fixturenames:
        yield
        return
    engine = request.getfixturevalue("engine")

    def relax(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA synchronous=OFF")
        else:
            cursor.execute("SET synchronous_commit TO off")
        cursor.close()

    event.listen(engine, "connect", relax)
    engine.dispose()  # connections made before the listener reconnect with it
    yield
    event.remove(engine, "connect", relax)
