"""Shared fixtures: a fresh database (SQLite, and PostgreSQL when ISOCHECK_TEST_DATABASE_URL is
set), settings pointing at a temporary data directory, a frozen clock, an app and its client."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from server.config import Settings, load_settings
from server.core.clock import FrozenClock
from server.core.db import make_engine, make_session_factory

REPO = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("ISOCHECK_TEST_DATABASE_URL")
#: A Tuesday morning in Ho Chi Minh City (01:30 UTC = 08:30 ICT).
T0 = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)


def pytest_report_header(config):
    if PG_URL:
        return f"database tests: SQLite and PostgreSQL ({make_url(PG_URL).render_as_string()})"
    return "database tests: SQLite only (set ISOCHECK_TEST_DATABASE_URL to add PostgreSQL)"


def pytest_generate_tests(metafunc):
    """Every test that uses ``db_url`` runs on SQLite, and on PostgreSQL when configured."""
    if "db_backend" in metafunc.fixturenames:
        backends = ["sqlite"] + (["postgresql"] if PG_URL else [])
        metafunc.parametrize("db_backend", backends)


@pytest.fixture
def db_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """The schema built from the models (the migration test proves migrations build the same)."""
    from server.models import Base

    eng = make_engine(db_url)
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        secret_key="test-secret-key-" + "x" * 32,
        encryption_key="",
        # generous in tests; tests/checkins shows the limits themselves
        rate_limit_checkin="100/minute",
        rate_limit_activation="100/minute",
        rate_limit_device="1000/minute",
        rate_limit_staff_login="100/minute",
    )


@pytest.fixture
def app(settings: Settings, engine: Engine, clock: FrozenClock):
    from server.app import create_app
    from server.http.limits import limiter

    application = create_app(settings, clock=clock, test_config={"TESTING": True})
    if limiter.enabled:
        limiter.reset()  # counters are per process; every test starts from zero
    yield application
    application.extensions["isocheck"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def chromium(tmp_path: Path):
    """A factory of headless Chromium browsers (``tests/browser.py``), each quit afterwards:
    ``chromium(window=(360, 740), languages="en-GB,en", fake_camera=path)``. Skips without one."""
    from tests.browser import start_chromium

    started = []

    def start(**options):
        driver = start_chromium(tmp_path / f"chrome-profile-{len(started)}", **options)
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.quit()


@pytest.fixture
def browser(chromium):
    """One headless Chromium, Vietnamese, 1400x1000 (the dashboard's)."""
    return chromium()
