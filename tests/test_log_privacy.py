"""Issue 13, finding 7: no personal data in log lines. Database errors carried their bound
parameters (full name, phone, home address, home coordinates) into the log."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.core.enums import StaffRole
from server.people.models import StaffUser

SECRET_NAME = "Nguyễn Thị Bí Mật"
SECRET_PHONE = "0987654321"


def _duplicate(session: Session) -> IntegrityError:
    for _ in range(2):
        session.add(
            StaffUser(
                username="trung-ten",
                full_name=SECRET_NAME,
                phone=SECRET_PHONE,
                password_hash="x",
                role=StaffRole.admin,
            )
        )
        try:
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            return exc
    raise AssertionError("no IntegrityError")


def test_database_errors_do_not_carry_bound_values(session):
    exc = _duplicate(session)
    text = str(exc)  # (PostgreSQL's own DETAIL names the duplicate key: see the next test)
    assert SECRET_NAME not in text and SECRET_PHONE not in text
    assert "hidden" in text.lower()  # SQLAlchemy says the parameters were hidden


def test_an_unhandled_database_error_logs_no_personal_data(app, session, caplog):
    """The app's 500 handler logs the exception with its traceback: scan every line."""

    @app.get("/_boom")
    def _boom():
        from server.http.context import db_session

        _duplicate(db_session())
        raise _duplicate(db_session())

    with caplog.at_level(logging.DEBUG):
        r = app.test_client().get("/_boom")
    assert r.status_code == 500
    fmt = logging.Formatter()
    logged = "\n".join(
        rec.getMessage() + (fmt.formatException(rec.exc_info) if rec.exc_info else "")
        for rec in caplog.records
    )
    assert "unhandled database error" in logged
    for value in (SECRET_NAME, SECRET_PHONE, "trung-ten"):
        assert value not in logged


pytestmark = pytest.mark.usefixtures("engine")
