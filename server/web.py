"""Helpers for request handlers: the request's database session and the shared state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app, g
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from server.app import Isocheck


def ctx() -> Isocheck:
    return current_app.extensions["isocheck"]


def db_session() -> Session:
    """The request's session, opened on first use and closed at teardown. Handlers commit."""
    if "db_session" not in g:
        g.db_session = ctx().session_factory()
    return g.db_session
