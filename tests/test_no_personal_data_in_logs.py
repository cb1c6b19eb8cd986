"""Issue #13 finding 7: a database error does not carry bound parameters (personal data) into
the logs: neither the exception's text nor the app's log line of a failing request."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import IntegrityError

from server.core.db import make_engine
from server.people.models import Area

SECRET_NAME = "Nguyễn Bí Mật 0909123456"


def test_database_errors_hide_bound_parameters(db_url, engine):
    eng = make_engine(db_url)
    try:
        with pytest.raises(IntegrityError) as info, eng.begin() as conn:
            # areas.code is unique: the second insert fails with the values bound
            for _ in range(2):
                conn.execute(
                    Area.__table__.insert().values(code="x-1", name=SECRET_NAME, kind="ward")
                )
        assert SECRET_NAME not in str(info.value)
        assert "0909123456" not in str(info.value)
    finally:
        eng.dispose()


def test_a_failing_request_logs_no_bound_values(app, caplog):
    @app.get("/_test/db-fault")
    def _fault():
        from server.http.context import db_session

        s = db_session()
        for _ in range(2):  # areas.code is unique: the second insert is an IntegrityError
            s.execute(Area.__table__.insert().values(code="x-2", name=SECRET_NAME, kind="ward"))
        return "unreachable"

    with caplog.at_level(logging.DEBUG):
        r = app.test_client().get("/_test/db-fault")
    assert r.status_code == 500
    logged = "\n".join(
        rec.getMessage()
        + (logging.Formatter().formatException(rec.exc_info) if rec.exc_info else "")
        for rec in caplog.records
    )
    assert "IntegrityError" in logged  # the fault itself was logged
    assert SECRET_NAME not in logged and "0909123456" not in logged
