"""Issue 18: the non-reporting sweep walks the persons by keyset and keeps its place between runs
(``sweep_cursors``): a run cut short by its budget is continued by the next one after the last
id it finished with, to the end of the table, then from the start up to where it began."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from scheduler_helpers import World, tick
from sqlalchemy import delete, select, text

from server.alerts.models import Alert
from server.core.clock import FrozenClock
from server.core.enums import AlertKind
from server.declarations.models import Declaration
from server.heartbeat import SweepCursor

T0 = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)


def _alerted(session_factory) -> list[int]:
    with session_factory() as s:
        return list(s.scalars(select(Alert.person_id).where(Alert.kind == AlertKind.non_reporting)
                              .order_by(Alert.id)))  # fmt: skip


def _position(session_factory) -> int | None:
    with session_factory() as s:
        row = s.get(SweepCursor, "non_reporting")
        return None if row is None else row.position


def test_a_second_run_continues_after_the_first_batch_and_wraps_around(session_factory,
                                                                       settings):  # fmt: skip
    clock = FrozenClock(T0)
    with session_factory() as s:
        world = World(s)
        people = [world.person(start=T0 - timedelta(days=3), end=T0 + timedelta(days=5)).id
                  for _ in range(12)]  # fmt: skip
        # the first person declared an hour ago: not due now (the sweep passes over them)
        s.add(Declaration(person_id=people[0], measured_at=T0 - timedelta(hours=1),
                          received_at=T0 - timedelta(hours=1)))  # fmt: skip
        s.commit()
    # batches of 5 and a budget spent by the first batch: one batch per run
    small = settings.model_copy(
        update={"scheduler_batch_size": 5, "scheduler_sweep_budget_seconds": 1e-9}
    )
    tick(session_factory, clock, small, ["non_reporting"])
    assert _alerted(session_factory) == people[1:6]
    assert _position(session_factory) == people[5]  # the first batch's last id
    # meanwhile the first person becomes due (their declaration is withdrawn)
    with session_factory() as s:
        s.execute(delete(Declaration).where(Declaration.person_id == people[0]))
        s.commit()
    tick(session_factory, clock, small, ["non_reporting"])
    # the second run went on after people[5], not from the start (people[0] is left for later)
    assert _alerted(session_factory) == people[1:11]
    assert _position(session_factory) == people[10]
    tick(session_factory, clock, small, ["non_reporting"])
    # the end of the table (one left): the place wraps around to the start …
    assert _alerted(session_factory) == people[1:]
    assert _position(session_factory) == 0
    tick(session_factory, clock, small, ["non_reporting"])
    # … where the next run finds people[0]
    assert _alerted(session_factory) == people[1:] + people[:1]
    assert _position(session_factory) == 0
    tick(session_factory, clock, small, ["non_reporting"])
    assert len(_alerted(session_factory)) == 12  # nobody twice


def test_an_unlimited_run_takes_everyone_in_one_turn(session_factory, settings):
    clock = FrozenClock(T0)
    with session_factory() as s:
        world = World(s)
        people = [world.person(start=T0 - timedelta(days=3), end=T0 + timedelta(days=5)).id
                  for _ in range(12)]  # fmt: skip
        s.add(SweepCursor(name="non_reporting", position=people[7], updated_at=T0))
        s.commit()
    small = settings.model_copy(update={"scheduler_batch_size": 5})
    moved = tick(session_factory, clock, small, ["non_reporting"])
    assert moved == {"non_reporting": 12}
    # from the kept place to the end, then the start up to it
    assert _alerted(session_factory) == people[8:] + people[:8]
    assert _position(session_factory) == 0


def test_a_row_held_by_another_transaction_is_come_back_for(session_factory, settings, engine):
    """The walk takes what SKIP LOCKED leaves it; a person another transaction held (planning's
    batch, the other scheduler's) is not stepped over for good: the run goes back for them and,
    while they are still held, the kept position stays before them."""
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite has one writer)")
    clock = FrozenClock(T0)
    with session_factory() as s:
        world = World(s)
        people = [world.person(start=T0 - timedelta(days=3), end=T0 + timedelta(days=5)).id
                  for _ in range(12)]  # fmt: skip
    small = settings.model_copy(update={"scheduler_batch_size": 5})
    held = people[6]
    with engine.connect() as other:
        other.execute(text("SELECT id FROM persons WHERE id = :id FOR UPDATE"), {"id": held})
        tick(session_factory, clock, small, ["non_reporting"])
        assert sorted(_alerted(session_factory)) == sorted(set(people) - {held})
        assert _position(session_factory) == held - 1  # the next run starts before them
        other.rollback()
    tick(session_factory, clock, small, ["non_reporting"])
    assert sorted(_alerted(session_factory)) == sorted(people)
    assert _position(session_factory) == 0
