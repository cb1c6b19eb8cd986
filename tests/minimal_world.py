"""A small real world for state-machine and concurrency tests that need no photographs: a city →
district → ward chain with one staff account each, people, a device, prompts and attempts
written through the models (the same rows the services write)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.core.enums import (
    AreaKind,
    AttemptDecision,
    PersonStatus,
    PromptKind,
    PromptState,
    StaffRole,
)
from server.people.areas import create_area
from server.people.models import Area, Device, Person, StaffUser


class MiniWorld:
    def __init__(self, session: Session, now: datetime) -> None:
        self.session, self.now = session, now
        self.city = create_area(session=session, code="79", name="TP HCM", kind=AreaKind.city)
        self.district = create_area(
            session=session, code="79-764", name="Gò Vấp", kind=AreaKind.district, parent=self.city
        )
        self.ward = create_area(
            session=session, code="79-764-1", name="Phường 1", kind=AreaKind.ward,
            parent=self.district,
        )  # fmt: skip
        self.other_ward = create_area(
            session=session, code="79-764-2", name="Phường 2", kind=AreaKind.ward,
            parent=self.district,
        )  # fmt: skip
        self.staff = self._staff("ward-staff", self.ward)
        self.other_staff = self._staff("other-staff", self.other_ward)
        session.commit()

    def _staff(self, username: str, area: Area) -> StaffUser:
        user = StaffUser(
            username=username, full_name=username, email=f"{username}@example.invalid",
            password_hash="not-a-hash", role=StaffRole.area_staff, area_id=area.id,
        )  # fmt: skip
        self.session.add(user)
        self.session.flush()
        return user

    def person(self, *, status: PersonStatus = PersonStatus.active) -> Person:
        p = Person(
            full_name="Nguyễn Văn A", phone="0900000000", ward_id=self.ward.id,
            home_address="1 Đường A", home_lat=10.8129, home_lon=106.6866,
            isolation_start=self.now - timedelta(days=2),
            isolation_end=self.now + timedelta(days=5), status=status, risk_factors={},
        )  # fmt: skip
        self.session.add(p)
        self.session.flush()
        self.session.add(
            Device(person_id=p.id, token_hash=secrets.token_hex(32), platform="android")
        )
        self.session.commit()
        return p

    def device(self, person: Person) -> Device:
        return self.session.query(Device).filter_by(person_id=person.id).one()

    def prompt(
        self,
        person: Person,
        *,
        state: PromptState = PromptState.open,
        opens_at: datetime | None = None,
        due_at: datetime | None = None,
        remind_at: datetime | None = None,
        opened_at: datetime | None = None,
    ) -> CheckinPrompt:
        opens_at = opens_at or self.now - timedelta(minutes=1)
        prompt = CheckinPrompt(
            person_id=person.id, slot_key=f"test/{secrets.token_hex(4)}",
            kind=PromptKind.scheduled, state=state, opens_at=opens_at, remind_at=remind_at,
            due_at=due_at or opens_at + timedelta(minutes=20), nonce=secrets.token_urlsafe(16),
            max_attempts=3, opened_at=opened_at,
        )  # fmt: skip
        self.session.add(prompt)
        self.session.commit()
        return prompt

    def attempt(
        self,
        prompt: CheckinPrompt,
        *,
        decision: AttemptDecision | None = None,
        code: str | None = None,
        received_at: datetime | None = None,
    ) -> CheckinAttempt:
        person = self.session.get(Person, prompt.person_id)
        attempt = CheckinAttempt(
            prompt_id=prompt.id, person_id=prompt.person_id, device_id=self.device(person).id,
            received_at=received_at or self.now, latitude=person.home_lat,
            longitude=person.home_lon, accuracy_m=10.0, distance_from_home_m=0.0,
            decision=decision, code=code,
        )  # fmt: skip
        self.session.add(attempt)
        self.session.commit()
        return attempt
