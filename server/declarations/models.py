"""Health declarations (khai báo y tế)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, utcnow
from server.core.enums import RiskLevel, db_enum


class Declaration(Base):
    __tablename__ = "declarations"
    __table_args__ = (Index("ix_declarations_person_measured", "person_id", "measured_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    measured_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    spo2: Mapped[int | None] = mapped_column(Integer)
    heart_rate: Mapped[int | None] = mapped_column(Integer)
    symptoms: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(String(2000))
    #: Set when staff entered it on the person's behalf (people without smartphones).
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    risk_level: Mapped[RiskLevel | None] = mapped_column(db_enum(RiskLevel, "risk_level"))
    #: Rules that fired: [{"id": ..., "level": ..., "vi": ..., "en": ...}].
    fired_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
