"""The scheduler's heartbeat, one row per sweep name, so /readyz and operators see its lag.

Owned by the server (its table, /readyz, the metrics read it); the scheduler writes it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base


class SchedulerHeartbeat(Base):
    __tablename__ = "scheduler_heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[datetime]
    last_duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    instance: Mapped[str] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(String(2000))
