"""The asynchronous FHIR Bulk Data ``$export`` job (issue 17): a row in ``fhir_export_jobs`` and
a background thread in the web process that took the kick-off.

Why a thread and not a scheduler sweep: the scheduler may run in another process or not at all
(``isocheck serve --no-scheduler``), and a sweep would add up to its interval to every export; the
thread starts at once and needs nothing else running. The row keeps it honest across processes:
any worker answers status polls from it, the thread writes a heartbeat every batch, and a job
whose heartbeat is older than :data:`STALE_AFTER` (its process died) is failed on the next poll.
Files live under ``<data_dir>/fhir-exports/<job id>/`` and are deleted with the row after
:data:`EXPIRES_AFTER` (swept lazily on every ``$export`` request).
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.core.clock import Clock
from server.fhir.export import TYPES, ExportCancelled, export_ndjson
from server.fhir.models import FhirExportJob
from server.people.models import Area

log = logging.getLogger("isocheck.fhir")

#: Completed files are kept this long, then deleted with their job.
EXPIRES_AFTER = timedelta(hours=24)
#: A running job without a heartbeat for this long lost its process: failed.
STALE_AFTER = timedelta(minutes=5)
#: Jobs one caller may have running at once (more: 429).
MAX_ACTIVE_PER_CALLER = 2
ACTIVE = ("accepted", "in_progress")
#: Threads started by this process (tests and shutdown wait for them with :func:`join_all`).
_threads: list[threading.Thread] = []


def jobs_dir(data_dir: Path) -> Path:
    return data_dir / "fhir-exports"


def job_dir(data_dir: Path, job_id: str) -> Path:
    return jobs_dir(data_dir) / job_id


def create_job(
    *,
    session: Session,
    staff_id: int,
    area: Area | None,
    since: datetime | None,
    types: list[str],
    request_url: str,
    now: datetime,
) -> FhirExportJob:
    job = FhirExportJob(
        id=uuid.uuid4().hex,
        staff_id=staff_id,
        area_id=area.id if area else None,
        since=since,
        types=[t for t in TYPES if t in types],
        status="accepted",
        request_url=request_url[:2000],
        created_at=now,
        transaction_time=now,
        heartbeat_at=now,
        expires_at=now + EXPIRES_AFTER,
        written=0,
    )
    session.add(job)
    return job


def active_jobs(*, session: Session, staff_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(FhirExportJob)
            .where(FhirExportJob.staff_id == staff_id, FhirExportJob.status.in_(ACTIVE))
        )
        or 0
    )


def start(factory: sessionmaker[Session], data_dir: Path, clock: Clock, job_id: str) -> None:
    """Run the job in a daemon thread (the caller has committed the row)."""
    thread = threading.Thread(
        target=run_job,
        args=(factory, data_dir, clock, job_id),
        name=f"fhir-export-{job_id[:8]}",
        daemon=True,
    )
    _threads[:] = [t for t in _threads if t.is_alive()]
    _threads.append(thread)
    thread.start()


def join_all(timeout: float = 30.0) -> None:
    """Wait for this process's export threads to end."""
    for thread in list(_threads):
        thread.join(timeout)


def run_job(factory: sessionmaker[Session], data_dir: Path, clock: Clock, job_id: str) -> None:
    """Write the job's NDJSON files; the row says how far it got and how it ended."""
    out = job_dir(data_dir, job_id)
    with factory() as s:
        job = s.get(FhirExportJob, job_id)
        if job is None or job.status != "accepted":
            return
        job.status, job.heartbeat_at = "in_progress", clock.now()
        area_id, since, types = job.area_id, job.since, list(job.types)
        s.commit()

    def progress(written: int) -> bool:
        with factory() as s2:
            row = s2.get(FhirExportJob, job_id)
            if row is None or row.status != "in_progress":
                return False  # cancelled (DELETE) or expired
            row.written, row.heartbeat_at = written, clock.now()
            s2.commit()
            return True

    try:
        with factory() as s:
            area = s.get(Area, area_id) if area_id is not None else None
            counts = export_ndjson(
                session=s, out_dir=out, area=area, since=since, types=types, on_progress=progress
            )
    except ExportCancelled:
        shutil.rmtree(out, ignore_errors=True)
        return
    except Exception as exc:  # the row says so; the log has the job id and the error type only
        log.exception("FHIR export job %s failed", job_id)
        shutil.rmtree(out, ignore_errors=True)
        _finish(factory, clock, job_id, "failed", error=type(exc).__name__)
        return
    if not _finish(factory, clock, job_id, "completed", counts=counts):
        shutil.rmtree(out, ignore_errors=True)  # cancelled while the last batch was written


def _finish(factory, clock, job_id, status, *, counts=None, error=None) -> bool:
    with factory() as s:
        job = s.get(FhirExportJob, job_id)
        if job is None or job.status != "in_progress":
            return False
        job.status, job.finished_at, job.heartbeat_at = status, clock.now(), clock.now()
        job.counts, job.error = counts, error
        if counts is not None:
            job.written = sum(counts.values())
        s.commit()
        return True


def cancel(*, session: Session, data_dir: Path, job: FhirExportJob) -> None:
    """Forget the job: the thread sees the row gone at its next batch and stops; files go now
    (a completed job's) or when the thread stops (a running one's)."""
    session.delete(job)
    session.flush()
    if job.status not in ACTIVE:
        shutil.rmtree(job_dir(data_dir, job.id), ignore_errors=True)


def sweep(*, session: Session, data_dir: Path, now: datetime) -> int:
    """Delete expired jobs and their files; fail running jobs whose process went away.
    Returns how many jobs were deleted."""
    stale = session.scalars(
        select(FhirExportJob).where(
            FhirExportJob.status.in_(ACTIVE), FhirExportJob.heartbeat_at < now - STALE_AFTER
        )
    )
    for job in stale:
        job.status, job.finished_at, job.error = "failed", now, "worker lost"
        shutil.rmtree(job_dir(data_dir, job.id), ignore_errors=True)
    expired = list(session.scalars(select(FhirExportJob).where(FhirExportJob.expires_at < now)))
    for job in expired:
        shutil.rmtree(job_dir(data_dir, job.id), ignore_errors=True)
        session.delete(job)
    session.flush()
    return len(expired)
