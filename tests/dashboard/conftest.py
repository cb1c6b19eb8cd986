"""Fixtures of the dashboard tests (the shared ones are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.dashboard.world import World


@pytest.fixture
def world(app, session, settings, clock) -> World:
    return World(session, settings, clock)
