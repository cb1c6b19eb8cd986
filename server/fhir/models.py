"""An asynchronous FHIR Bulk Data ``$export`` job: one row per kick-off (issue 17).

The row is the truth (docs/fhir.md): the worker thread writes its progress and heartbeat here,
any worker process answers status polls from it, and a job whose heartbeat stops is failed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, utcnow


class FhirExportJob(Base):
    __tablename__ = "fhir_export_jobs"

    #: Random (uuid4 hex): status and file URLs are not guessable, and owner-checked anyway.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    #: Root of the exported area subtree; None = everything (administrators).
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    since: Mapped[datetime | None]
    #: Resource types asked for (``_type``), in export order.
    types: Mapped[list[str]] = mapped_column(JSON)
    #: accepted → in_progress → completed | failed | cancelled.
    status: Mapped[str] = mapped_column(String(16), default="accepted", index=True)
    request_url: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The "transactionTime" of the manifest: the export sees rows up to this instant.
    transaction_time: Mapped[datetime]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    #: Files and job are deleted after this instant.
    expires_at: Mapped[datetime] = mapped_column(index=True)
    written: Mapped[int] = mapped_column(Integer, default=0)
    #: Lines per resource type once completed.
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(500))
