"""The scheduler's heartbeat, one row per sweep name, so /readyz and operators see its lag; and
where a sweep that walks a table by keyset stopped (``sweep_cursors``), so its next run goes on
from there instead of from the table's start.

Owned by the server (its table, /readyz, the metrics read it); the scheduler writes it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base


class SchedulerHeartbeat(Base):
    __tablename__ = "scheduler_heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[datetime]
    last_duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    instance: Mapped[str] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(String(2000))


class SweepCursor(Base):
    """The last id a keyset sweep finished with (0: start from the beginning), one row per
    sweep; written in the sweep's own transaction after each batch (issue 18)."""

    __tablename__ = "sweep_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]
