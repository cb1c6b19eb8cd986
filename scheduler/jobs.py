"""The periodic jobs. Each is a thin call into a domain service; see :mod:`scheduler.runner`.

A job loops over batches (``Settings.scheduler_batch_size`` rows each) and commits after each
batch, so a long backlog is worked off in short transactions, and a crash keeps the batches
already done. It stops when a batch comes back short or after
``Settings.scheduler_sweep_budget_seconds`` (the next run continues).

The order of :data:`SWEEPS` is the order of a tick (start-up and tests run them in this order):
release before planning (nobody released is planned), close before open (a backlog of overdue
prompts after downtime is excused before anything new is pushed), open before remind,
and delivery last, so what a tick enqueued goes out in the same tick.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from scheduler.runner import Sweep
from server.alerts.escalation import escalate_batch
from server.checkins import lifecycle as prompts
from server.checkins.planning import plan_batch
from server.config import Settings
from server.core import sql
from server.core.clock import Clock
from server.declarations.non_reporting import raise_non_reporting
from server.declarations.reminders import send_declaration_reminders
from server.flows import person_lifecycle as people
from server.heartbeat import SchedulerHeartbeat, SweepCursor
from server.notify.delivery import deliver_notifications
from server.schedule.policy import resolver_for

#: Name of the close sweep; its previous heartbeat is the downtime evidence.
CLOSE_SWEEP = "close_overdue"
#: Name of the non-reporting sweep (its job and its row in ``sweep_cursors``).
NON_REPORTING = "non_reporting"
#: Times a run goes back for rows another transaction held when its walk passed them.
NON_REPORTING_RETRIES = 5


def _batches(
    session: Session, settings: Settings, step: Callable[[], int], limit: int | None = None
) -> int:
    """Run ``step`` (one batch of at most ``limit`` rows, default the batch size; returns rows
    moved) until a batch is short or the budget is spent, committing after each batch."""
    started = time.perf_counter()
    total = 0
    while True:
        moved = step()
        session.commit()
        total += moved
        if moved < (limit or settings.scheduler_batch_size):
            return total
        if time.perf_counter() - started > settings.scheduler_sweep_budget_seconds:
            return total


def heartbeat(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Proves the scheduler is alive; the runner writes its heartbeat row."""
    return 0


def release_people(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Start monitoring people whose isolation began; release those whose isolation ended."""
    now, limit = clock.now(), settings.scheduler_batch_size
    started = _batches(
        session, settings, lambda: people.activate_started(session=session, now=now, limit=limit)
    )
    resolver = resolver_for(session=session, settings=settings)
    return started + _batches(
        session,
        settings,
        lambda: people.release_ended(session=session, now=now, limit=limit, resolver=resolver),
    )


def plan_prompts(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Plan prompts for the next ``schedule_horizon_hours`` (idempotent)."""
    now = clock.now()
    planned, after = 0, 0

    def step() -> int:
        nonlocal planned, after
        batch = plan_batch(
            session=session, now=now, settings=settings, limit=settings.scheduler_batch_size,
            after_id=after,
        )  # fmt: skip
        planned, after = planned + batch.inserted, batch.last_id
        return batch.people

    _batches(session, settings, step)
    return planned


def close_overdue(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Close prompts past due: ``missed`` (+ alert) or, after our downtime, ``missed_system``."""
    now = clock.now()
    beat = session.get(SchedulerHeartbeat, CLOSE_SWEEP)
    last_alive = beat.last_run_at if beat is not None else None
    margin = timedelta(seconds=settings.scheduler_downtime_margin_seconds)

    def step() -> int:
        missed, system = prompts.close_overdue(
            session=session, now=now, limit=settings.scheduler_batch_size,
            last_alive=last_alive, margin=margin,
        )  # fmt: skip
        return missed + system

    return _batches(session, settings, step)


def open_due(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Open prompts whose time has come and push "check in now"."""
    now, limit = clock.now(), settings.scheduler_batch_size
    return _batches(
        session, settings, lambda: prompts.open_due(
            session=session, now=now, limit=limit,
            resolver=resolver_for(session=session, settings=settings),
        )
    )


def remind_due(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Remind people who have not answered an open prompt shortly before its due time."""
    now, limit = clock.now(), settings.scheduler_batch_size
    return _batches(
        session, settings, lambda: prompts.remind_due(
            session=session, now=now, limit=limit,
            resolver=resolver_for(session=session, settings=settings),
        )
    )


def escalate_alerts(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Escalate unacknowledged alerts past their deadline (ward → district → city)."""
    now, limit = clock.now(), settings.scheduler_batch_size
    return _batches(
        session, settings, lambda: escalate_batch(session=session, now=now, limit=limit)
    )


def non_reporting(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Alert the ward about people who sent no health declaration for a day.

    A keyset walk over the persons (issue 18: every batch used to start again from the first
    person): it goes on after the id the previous run stopped at (``sweep_cursors``), to the end
    of the table, then wraps around from the start up to where it began; one turn per run
    unless the budget runs out first (the next run goes on from there). Rows another
    transaction held when the walk passed them (the other scheduler's batch, planning's) are
    gone over again from the first of them, up to :data:`NON_REPORTING_RETRIES` times, and
    else the next run starts there. Two schedulers may walk at once: the per-day dedupe key
    keeps one alert per person; the kept position is the last one written."""
    now, limit = clock.now(), settings.scheduler_batch_size
    window = timedelta(hours=settings.non_reporting_hours)
    resolver = resolver_for(session=session, settings=settings)
    saved = session.get(SweepCursor, NON_REPORTING)
    start = saved.position if saved else 0
    position, up_to, wrapped, total = start, None, start == 0, 0
    retry, retries = None, 0
    started = time.perf_counter()
    while True:
        batch = raise_non_reporting(session=session, now=now, window=window, resolver=resolver,
                                    limit=limit, after_id=position, up_to_id=up_to)  # fmt: skip
        total += batch.raised
        if batch.skipped is not None and (retry is None or batch.skipped < retry):
            retry = batch.skipped
        done = False
        if batch.last_id is not None:
            position = batch.last_id
        elif not wrapped:  # the end of the table: from the start, up to where the run began
            position, up_to, wrapped = 0, start, True
        elif retry is not None and retries < NON_REPORTING_RETRIES:
            position, up_to, retry, retries = retry - 1, None, None, retries + 1
        else:
            done = True
        kept = (retry - 1) if retry is not None else (0 if done else position)
        _keep_position(session, NON_REPORTING, kept, now)
        session.commit()
        if done or time.perf_counter() - started > settings.scheduler_sweep_budget_seconds:
            return total


def _keep_position(session: Session, name: str, position: int, now) -> None:
    sql.upsert(session, SweepCursor.__table__,
               [{"name": name, "position": position, "updated_at": now}],
               conflict=("name",), update_columns=("position", "updated_at"))  # fmt: skip


def declaration_reminders(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Remind people who have not declared today, at their policy's reminder time."""
    now, limit = clock.now(), settings.scheduler_batch_size
    resolver = resolver_for(session=session, settings=settings)
    total, cursor = 0, 0
    while True:
        sent, cursor = send_declaration_reminders(
            session=session, now=now, resolver=resolver, after_id=cursor, limit=limit
        )
        session.commit()
        total += sent
        if cursor == 0:
            return total


def purge_biometrics(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Delete photos, selfies and face templates ``retention_days`` after release."""
    now = clock.now()
    retention = timedelta(days=settings.retention_days)
    limit = min(settings.scheduler_batch_size, 200)  # file deletions: keep transactions short
    return _batches(
        session, settings,
        lambda: people.purge_biometrics(
            session=session, now=now, retention=retention, data_dir=settings.data_dir,
            limit=limit,
        ),
        limit,
    )  # fmt: skip


#: An image file this old without a row will never get one (no request lives this long).
ORPHAN_GRACE = timedelta(hours=1)


def purge_orphan_files(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Delete image files a crashed upload left without a row (server/storage.py)."""
    return people.purge_orphan_files(
        session=session, data_dir=settings.data_dir, now=clock.now(), grace=ORPHAN_GRACE
    )


def stats_rollup(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Roll up finished days, and a snapshot of today so far, into ``stats_daily`` for the
    statistics page (issue 18)."""
    from server.dashboard.scheduled import roll_up

    return roll_up(
        session=session, now=clock.now(), zone=settings.zone,
        budget_s=settings.scheduler_sweep_budget_seconds,
    )  # fmt: skip


def retention(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Delete delivered outbox rows and archive old audit events (issue 18, audited)."""
    from server.flows import retention as sweep

    return sweep.sweep(
        session=session, now=clock.now(), outbox_days=settings.outbox_retention_days,
        audit_days=settings.audit_retention_days, limit=settings.scheduler_batch_size,
    )  # fmt: skip


@dataclass(frozen=True)
class Job:
    name: str
    fn: Sweep
    #: Seconds between runs; None = the settings' ``scheduler_interval_seconds``.
    every_s: float | None = None
    #: Run once at start-up (catch up on the downtime); housekeeping waits one interval, so it
    #: never takes a thread of the pool from the sweeps that catch up.
    at_start: bool = True


SWEEPS: list[Job] = [
    Job("heartbeat", heartbeat),
    Job("release_people", release_people),
    Job("plan_prompts", plan_prompts, every_s=60),
    Job(CLOSE_SWEEP, close_overdue),
    Job("open_due", open_due),
    Job("remind_due", remind_due),
    Job("escalate_alerts", escalate_alerts),
    Job(NON_REPORTING, non_reporting, every_s=300),
    Job("declaration_reminders", declaration_reminders, every_s=300),
    Job("purge_biometrics", purge_biometrics, every_s=3600),
    Job("purge_orphan_files", purge_orphan_files, every_s=3600),
    Job("stats_rollup", stats_rollup, every_s=300, at_start=False),
    Job("retention", retention, every_s=3600, at_start=False),
    Job("deliver_notifications", deliver_notifications),
]
