"""APScheduler wiring: every job of :data:`scheduler.jobs.SWEEPS` on its interval.

APScheduler's job store stays in memory on purpose: the state lives in the database rows, so a
restarted scheduler simply sweeps again and catches up (docs/architecture.md).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.orm import Session, sessionmaker

from scheduler.jobs import SWEEPS, Job
from scheduler.runner import run_sweep
from server.config import Settings
from server.core.clock import Clock

log = logging.getLogger("isocheck.scheduler")


def build_scheduler(
    *,
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: Clock,
    blocking: bool = False,
    jobs: list[Job] | None = None,
) -> BaseScheduler:
    """A scheduler with one interval job per sweep. ``coalesce`` folds missed runs into one and
    ``max_instances=1`` keeps a slow sweep from overlapping itself."""
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(
        timezone="UTC",
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    for job in jobs if jobs is not None else SWEEPS:
        scheduler.add_job(
            run_sweep,
            "interval",
            seconds=job.every_s or settings.scheduler_interval_seconds,
            id=job.name,
            name=job.name,
            args=(job.name, job.fn),
            kwargs={"session_factory": session_factory, "clock": clock, "settings": settings},
            # run once at start-up: catch up on what the downtime left (housekeeping: later)
            next_run_time=clock.now()
            + timedelta(seconds=0 if job.at_start else job.every_s or 0),
        )
    return scheduler
