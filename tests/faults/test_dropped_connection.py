"""Issue 13, finding 14: the database connection dies after the handler has done its work,
while the request's session is being closed. That must be the app's 503 problem+json (the client
retries, with its Idempotency-Key), never an exception escaping the app (gunicorn's HTML 500).

PostgreSQL only: the backend of the request's own connection is terminated for real
(pg_terminate_backend), as a failover or an idle-killer would."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from server.core.db import make_engine
from tests.conftest import PG_URL


@pytest.mark.postgres
def test_a_connection_dropped_before_the_session_closes_is_a_503_problem(
    app, db_backend, db_url
):
    if db_backend != "postgresql":
        pytest.skip("needs PostgreSQL (ISOCHECK_TEST_DATABASE_URL): SQLite has no server")
    from server.http.context import db_session

    def handler():
        s = db_session()
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()  # transaction left open
        killer = make_engine(PG_URL)
        try:
            with killer.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        finally:
            killer.dispose()
        return {"pid": pid}

    app.add_url_rule("/_test/dropped", "dropped", handler)
    app.config["PROPAGATE_EXCEPTIONS"] = True  # what escapes the app reaches the test (gunicorn)
    response = app.test_client().get("/_test/dropped")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "service_unavailable"
    assert response.headers["Retry-After"]
    # and the next request gets a working connection from the pool
    assert app.test_client().get("/readyz").status_code in (200, 503)
