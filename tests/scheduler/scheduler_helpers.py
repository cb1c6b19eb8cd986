"""Helpers for the scheduler tests (imported as ``scheduler_helpers``): a small area tree with
staff, people, and a driver that runs every sweep of a tick against a simulated clock."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.jobs import SWEEPS
from scheduler.runner import run_sweep
from server.alerts.models import Alert
from server.checkins.models import CheckinPrompt
from server.checkins.service import LATE_GRACE
from server.config import Settings
from server.core.clock import FrozenClock
from server.core.enums import AreaKind, PersonStatus, PromptState, StaffRole
from server.notify.models import Notification
from server.people.models import Area, Person, StaffUser

#: Sweeps the tests drive; delivery (another team's) is left out so rows stay countable.
MY_SWEEPS = [j for j in SWEEPS if j.name != "deliver_notifications"]


class World:
    """City → district → ward, one staff account per area (e-mail, so routing reaches them)."""

    def __init__(self, session: Session, *, city_zone: str | None = None, prefix: str = ""):
        self.session = session
        self.city = self._area(f"{prefix}C", AreaKind.city, None, city_zone)
        self.district = self._area(f"{prefix}D", AreaKind.district, self.city, None)
        self.ward = self._area(f"{prefix}W", AreaKind.ward, self.district, None)
        self.staff = {
            a.kind: self._staff(a) for a in (self.city, self.district, self.ward)
        }
        session.commit()

    def _area(self, code, kind, parent, zone) -> Area:
        area = Area(code=code, name=f"Area {code}", kind=kind,
                    parent_id=parent.id if parent else None, timezone=zone)
        self.session.add(area)
        self.session.flush()
        area.path = f"{parent.path if parent else ''}{area.id}/"
        return area

    def _staff(self, area: Area) -> StaffUser:
        user = StaffUser(
            username=f"staff-{area.code}", full_name=f"Staff {area.code}",
            email=f"{area.code.lower()}@example.invalid", password_hash="not-a-hash",
            role=StaffRole.area_staff, area_id=area.id,
        )
        self.session.add(user)
        self.session.flush()
        return user

    def person(
        self,
        *,
        start: datetime,
        end: datetime,
        zone: str | None = None,
        status: PersonStatus = PersonStatus.active,
        policy: dict | None = None,
        name: str = "Nguyễn Văn A",
    ) -> Person:
        p = Person(
            full_name=name, phone="0900000000", ward_id=self.ward.id, home_address="1 Đường A",
            home_lat=10.8, home_lon=106.7, isolation_start=start, isolation_end=end,
            status=status, timezone=zone, schedule_policy=policy, risk_factors={},
        )
        self.session.add(p)
        self.session.commit()
        return p


def tick(session_factory: sessionmaker, clock: FrozenClock, settings: Settings,
         names: Iterable[str] | None = None) -> dict[str, int]:
    """Run the sweeps of one tick (all of mine, or ``names``) in SWEEPS order."""
    wanted = set(names) if names is not None else None
    out = {}
    for job in MY_SWEEPS:
        if wanted is None or job.name in wanted:
            outcome = run_sweep(job.name, job.fn, session_factory=session_factory, clock=clock,
                                settings=settings)
            assert outcome.error is None, f"{job.name}: {outcome.error}"
            out[job.name] = outcome.moved
    return out


def next_events(session: Session, now: datetime) -> tuple[datetime | None, datetime | None]:
    """``(next moment anything is due to happen, next prompt due time)`` after ``now``."""
    P = CheckinPrompt
    live = P.state.in_((PromptState.planned, PromptState.open))
    due = session.scalar(select(func.min(P.due_at)).where(live, P.due_at > now))
    candidates = [
        due,
        session.scalar(select(func.min(P.opens_at)).where(P.state == PromptState.planned,
                                                           P.opens_at > now)),
        session.scalar(select(func.min(P.remind_at)).where(P.state == PromptState.open,
                                                            P.reminded_at.is_(None),
                                                            P.remind_at > now)),
        session.scalar(select(func.min(Alert.next_escalation_at)).where(
            Alert.next_escalation_at > now)),
        session.scalar(select(func.min(Person.isolation_end)).where(
            Person.status != PersonStatus.released, Person.isolation_end > now)),
    ]
    found = [c for c in candidates if c is not None]
    return (min(found) if found else None), due


def run_until(session_factory, clock: FrozenClock, settings: Settings, until: datetime, *,
              max_step: timedelta = timedelta(hours=3), on_tick=None) -> int:
    """Drive the scheduler through simulated time as if it ticked continuously.

    A real scheduler ticks every few seconds; ticking only when something can happen gives the
    same result: at every prompt or alert deadline, 60 s before each due time (the heartbeat a
    live scheduler would have left, which the downtime rule reads), after each due time's late
    grace, and at least every ``max_step``. Returns the number of ticks."""
    ticks = 0
    while True:
        tick(session_factory, clock, settings)
        ticks += 1
        if on_tick:
            on_tick(clock.now())
        now = clock.now()
        if now >= until:
            return ticks
        with session_factory() as s:
            nxt, due = next_events(s, now)
            closing = s.scalar(select(func.min(CheckinPrompt.due_at)).where(
                CheckinPrompt.state.in_((PromptState.planned, PromptState.open)),
                CheckinPrompt.due_at <= now,
                CheckinPrompt.due_at > now - LATE_GRACE - timedelta(seconds=10)))
        step = now + max_step
        if nxt is not None:
            step = min(step, nxt)
        if due is not None and due - timedelta(seconds=60) > now:
            step = min(step, due - timedelta(seconds=60))
        if closing is not None:
            step = min(step, closing + LATE_GRACE + timedelta(seconds=5))
        clock.set(min(max(step, now + timedelta(seconds=1)), until))


def count(session: Session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def notifications(session: Session, *where) -> list[Notification]:
    return list(session.scalars(select(Notification).where(*where).order_by(Notification.id)))
