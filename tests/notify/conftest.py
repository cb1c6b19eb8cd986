"""Fixtures for the notification tests (helpers in ``notify_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from notify_helpers import Receiver, World, build_world, start_receiver, stop_receiver


@pytest.fixture
def world(session) -> World:
    return build_world(session)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = start_receiver()
    yield rec
    stop_receiver(rec)
    assert not rec.errors, rec.errors
