"""Fixtures of the fuzz tests: cheap argon2 (the real hasher), limits too high to reach, and a
world made through the API (an administrator and an activated phone)."""

from __future__ import annotations

import pytest

from server.config import Settings
from tests.api.contract import World, make_world


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        "server.core.security._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def settings(settings: Settings) -> Settings:
    high = "1000000/minute"
    return settings.model_copy(
        update={
            "rate_limit_activation": high,
            "rate_limit_checkin": high,
            "rate_limit_device": high,
            "rate_limit_staff_login": high,
            "rate_limit_ip": high,
        }
    )


@pytest.fixture
def world(client, session, clock) -> World:
    return make_world(client, session, clock.now())


def pytest_collection_modifyitems(config, items):
    """About parsing and validation, not the database: SQLite only."""
    skip = pytest.mark.skip(reason="fuzzing runs on SQLite")
    for item in items:
        if "tests/fuzz/" in item.nodeid and "[postgresql" in item.nodeid:
            item.add_marker(skip)
