"""Running one sweep: a unit of work, timed, its heartbeat recorded, its failure contained.

A sweep is a function ``fn(*, session, clock, settings) -> int`` returning how many rows it moved.
Sweeps are idempotent and use compare-and-swap updates, so running one twice, or in two
processes at once, is harmless (docs/architecture.md, "the database is the truth").
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from server.config import Settings
from server.core import sql
from server.core.clock import Clock
from server.core.db import session_scope
from server.heartbeat import SchedulerHeartbeat

log = logging.getLogger("isocheck.scheduler")

Sweep = Callable[..., int]

#: Identifies this process in the heartbeat table (host:pid).
INSTANCE = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class SweepOutcome:
    name: str
    moved: int
    duration_s: float
    error: str | None = None


def run_sweep(
    name: str,
    fn: Sweep,
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    settings: Settings,
) -> SweepOutcome:
    """Run ``fn`` in its own transaction, then record the heartbeat in another one.

    1. Open a session; call the sweep; commit (roll back on error).
    2. Whatever happened, upsert ``scheduler_heartbeats[name]`` with the time, duration and the
       error text, so operators and ``/readyz`` see a failing sweep instead of a silent one.
    3. Never raise: one bad sweep must not stop the scheduler's other jobs.
    """
    started = time.perf_counter()
    error = None
    moved = 0
    try:
        with session_scope(session_factory) as session:
            moved = fn(session=session, clock=clock, settings=settings)
    except Exception as exc:  # noqa: BLE001 - contained and recorded below
        error = f"{exc.__class__.__name__}: {exc}"[:2000]
        log.exception("sweep %s failed", name)
    duration = time.perf_counter() - started
    try:
        with session_scope(session_factory) as session:
            # an upsert, not get-then-insert: two schedulers writing a sweep's first heartbeat
            # at once must not collide on pk_scheduler_heartbeats (issue 20)
            sql.upsert(
                session, SchedulerHeartbeat.__table__,
                [{"name": name, "last_run_at": clock.now(), "last_duration_s": duration,
                  "instance": INSTANCE, "last_error": error}],
                conflict=("name",),
                update_columns=("last_run_at", "last_duration_s", "instance", "last_error"),
            )  # fmt: skip
    except Exception:  # noqa: BLE001 - the database may be down; the next run retries
        log.exception("could not record heartbeat of sweep %s", name)
    if moved:
        log.info("sweep %s moved %d rows in %.3f s", name, moved, duration)
    return SweepOutcome(name=name, moved=moved, duration_s=duration, error=error)
