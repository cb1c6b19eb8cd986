"""How far ahead each person's prompts are planned (one row per person)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base


class SchedulePlan(Base):
    """``planned_until`` is the UTC instant up to which every slot of the person is planned
    (the local midnight after the last planned day, or the isolation end if earlier). The
    planning sweep only looks at people whose ``planned_until`` falls inside the horizon, so an
    idle sweep costs one indexed query, not a re-plan of everyone."""

    __tablename__ = "schedule_plans"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    planned_until: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
