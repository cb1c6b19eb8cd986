"""Changing a person's isolation period by staff: extend it by 1–30 days (at most
:data:`MAX_ISOLATION` in all) or end it now. Ending sets the end to now; the scheduler's
release sweep then releases the person and tells their phone, as for any isolation that ends.
The caller re-plans the person's prompts and commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from server.core.enums import PersonStatus
from server.people.models import Person

MAX_ISOLATION = timedelta(days=60)
MIN_EXTENSION_DAYS, MAX_EXTENSION_DAYS = 1, 30


class IsolationChangeError(ValueError):
    """The change is refused (``code``: ``isolation_released``, ``isolation_invalid`` or
    ``invalid_value``); nothing was changed."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def change_isolation(
    *, person: Person, action: str | None, days: int | None, confirmed: bool, now: datetime
) -> str:
    """Apply ``action`` (``extend`` by ``days``, or ``end`` when ``confirmed``) to ``person``'s
    isolation end; returns the message key of what was done (``isolation_extended`` /
    ``isolation_ended``) or raises :class:`IsolationChangeError`."""
    if person.status is PersonStatus.released:
        raise IsolationChangeError("isolation_released")
    if action == "extend":
        days = days or 0
        new_end = max(person.isolation_end, now) + timedelta(days=days)
        if (
            not MIN_EXTENSION_DAYS <= days <= MAX_EXTENSION_DAYS
            or new_end - person.isolation_start > MAX_ISOLATION
        ):
            raise IsolationChangeError("isolation_invalid")
        person.isolation_end = new_end
        message = "isolation_extended"
    elif action == "end" and confirmed:
        person.isolation_end = max(now, person.isolation_start)
        message = "isolation_ended"
    else:
        raise IsolationChangeError("invalid_value")
    person.updated_at = now
    return message
