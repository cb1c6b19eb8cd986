"""What request handlers share: the app's state (:class:`Isocheck`), the request's database
session."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from sqlalchemy.orm import Session, sessionmaker

from server.config import Settings
from server.core.clock import Clock
from server.core.db import make_engine, make_session_factory


class Isocheck:
    """What the app shares between requests: settings, engine, session factory and clock.
    Reached as ``current_app.extensions["isocheck"]`` (see :func:`ctx`)."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.engine = make_engine(settings.effective_database_url)
        self.session_factory: sessionmaker[Session] = make_session_factory(self.engine)
        #: Set when the scheduler runs inside this process (``isocheck serve``).
        self.scheduler: Any = None


def ctx() -> Isocheck:
    return current_app.extensions["isocheck"]


def db_session() -> Session:
    """The request's session, opened on first use and closed at teardown. Handlers commit."""
    if "db_session" not in g:
        g.db_session = ctx().session_factory()
    return g.db_session
