"""A small world for the dashboard tests: two districts, three wards, one account per role,
and in ward A and ward C each a person with an enrolment photo, a failed check-in (a selfie
in the review band), a failed-verification alert and two declarations.

Ward A (``own``) is the ward of the ward-A staff and the doctor; ward C (``other``) lies in
another district, so only the administrator sees it. Ward B's staff see neither.
"""

from __future__ import annotations

import functools
import io
import re
import secrets
from datetime import timedelta

from PIL import Image
from sqlalchemy.orm import object_session

from server.alerts.service import raise_alert
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.core.enums import (
    AlertKind,
    AreaKind,
    AttemptDecision,
    Category,
    ImageKind,
    PersonStatus,
    PromptKind,
    PromptState,
    StaffRole,
)
from server.core.security import hash_password
from server.declarations.schemas import DeclarationIn
from server.declarations.service import submit
from server.http.auth import password_fingerprint
from server.people.areas import create_area
from server.people.enrolment import store_image
from server.people.models import Person, StaffUser
from server.storage import image_store

PASSWORD = "mat-khau-thu-nghiem-1"  # noqa: S105 - test accounts only
HOME_A = (10.8129, 106.6866)
HOME_C = (10.7769, 106.7009)
ROLES = ("admin", "ward_a", "district", "doctor", "ward_b", "anonymous")


@functools.cache
def password_hash() -> str:
    """One argon2 hash of :data:`PASSWORD` per test process (hashing costs ~0.3 s)."""
    return hash_password(PASSWORD)


def jpeg(colour=(200, 160, 140), size=(96, 96)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="JPEG")
    return out.getvalue()


class World:
    def __init__(
        self,
        session,
        settings,
        clock,
        *,
        selfie: bytes | None = None,
        enrolment: bytes | None = None,
    ) -> None:
        self.session, self.settings, self.clock = session, settings, clock
        now = clock.now()
        city = create_area(session=session, code="79", name="TP Hồ Chí Minh", kind=AreaKind.city)
        govap = create_area(
            session=session, code="79-764", name="Quận Gò Vấp", kind=AreaKind.district, parent=city
        )
        q1 = create_area(
            session=session, code="79-760", name="Quận 1", kind=AreaKind.district, parent=city
        )
        self.ward_a = create_area(
            session=session, code="79-764-26896", name="Phường 1", kind=AreaKind.ward, parent=govap
        )
        self.ward_b = create_area(
            session=session, code="79-764-26899", name="Phường 3", kind=AreaKind.ward, parent=govap
        )
        self.ward_c = create_area(
            session=session,
            code="79-760-26734",
            name="Phường Bến Nghé",
            kind=AreaKind.ward,
            parent=q1,
        )
        self.district = govap

        def staff(username, role, area, name):
            user = StaffUser(
                username=username,
                password_hash=password_hash(),
                full_name=name,
                role=role,
                area_id=area.id if area else None,
            )
            session.add(user)
            session.flush()
            return user

        self.staff = {
            "admin": staff("admin", StaffRole.admin, None, "Quản trị viên"),
            "ward_a": staff("p1", StaffRole.area_staff, self.ward_a, "Lê Thị Lan"),
            "district": staff("govap", StaffRole.area_staff, govap, "Phạm Văn Quận"),
            "doctor": staff("bs-an", StaffRole.doctor, self.ward_a, "BS. Đỗ Văn An"),
            "ward_b": staff("p3", StaffRole.area_staff, self.ward_b, "Võ Thị Ba"),
        }
        self.own = self._person(
            "Nguyễn Thị Hoa",
            "0901234567",
            self.ward_a,
            HOME_A,
            doctor=self.staff["doctor"],
            selfie=selfie,
            enrolment=enrolment,
        )
        self.other = self._person(
            "Trần Văn Cường",
            "0907654321",
            self.ward_c,
            HOME_C,
            doctor=None,
            selfie=None,
            enrolment=None,
        )
        session.commit()
        self.now = now

    def _person(self, name, phone, ward, home, *, doctor, selfie, enrolment):
        s, now = self.session, self.clock.now()
        p = Person(
            full_name=name,
            phone=phone,
            category=Category.f0,
            ward_id=ward.id,
            home_address="12 Nguyễn Văn Nghi",
            home_lat=home[0],
            home_lon=home[1],
            isolation_start=now - timedelta(days=2),
            isolation_end=now + timedelta(days=5),
            status=PersonStatus.active,
            risk_factors={},
            doctor_id=doctor.id if doctor else None,
            created_at=now,
            updated_at=now,
        )
        s.add(p)
        s.flush()
        store = image_store(self.settings)
        enrol_img = store_image(
            session=s,
            store=store,
            person=p,
            kind=ImageKind.enrolment,
            data=enrolment or jpeg((120, 90, 80)),
            content_type="image/jpeg",
            now=now,
        )
        selfie_img = store_image(
            session=s,
            store=store,
            person=p,
            kind=ImageKind.selfie,
            data=selfie or jpeg(),
            content_type="image/jpeg",
            now=now,
        )
        prompt = CheckinPrompt(
            person_id=p.id,
            slot_key=f"t/{secrets.token_hex(4)}",
            kind=PromptKind.scheduled,
            state=PromptState.failed,
            opens_at=now - timedelta(minutes=40),
            due_at=now - timedelta(minutes=20),
            nonce=secrets.token_hex(8),
            max_attempts=3,
            attempts_used=3,
            closed_at=now,
        )
        s.add(prompt)
        s.flush()
        lat, lon = home[0] + 0.0003, home[1] + 0.0002
        attempt = CheckinAttempt(
            prompt_id=prompt.id,
            person_id=p.id,
            image_id=selfie_img.id,
            received_at=now - timedelta(minutes=25),
            latitude=lat,
            longitude=lon,
            accuracy_m=25.0,
            distance_from_home_m=39.0,
            decision=AttemptDecision.rejected,
            code="face_mismatch",
            score=0.62,
            details={
                "accept_threshold": 0.56,
                "review_threshold": 0.7,
                "embedder": "sface",
                "counted": True,
            },
        )
        s.add(attempt)
        s.flush()
        alert, _ = raise_alert(
            session=s,
            person=p,
            kind=AlertKind.failed_verification,
            now=now - timedelta(minutes=20),
            dedupe_key=f"failed_verification:prompt:{prompt.id}",
            prompt_id=prompt.id,
            attempt_id=attempt.id,
        )
        for hours, spo2, temp in ((30, 97, 37.2), (6, 94, 38.4)):
            submit(
                session=s,
                settings=self.settings,
                person=p,
                now=now,
                data=DeclarationIn(
                    measured_at=now - timedelta(hours=hours), spo2=spo2, temperature_c=temp
                ),
            )
        s.flush()
        return Bundle(
            person=p,
            prompt=prompt,
            attempt=attempt,
            alert=alert,
            selfie=selfie_img,
            enrolment=enrol_img,
            area=ward,
        )


class Bundle:
    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)


def log_in(client, staff) -> None:
    """A dashboard session for ``staff`` without the argon2 round (the login form has its own
    tests)."""
    db = object_session(staff)
    if db is not None:  # a logout elsewhere may have moved the session epoch on
        db.refresh(staff)
    with client.session_transaction() as sess:
        sess["staff_id"] = staff.id
        sess["pw"] = password_fingerprint(staff)
        sess["ep"] = staff.session_epoch or 0


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, logged_in: bool = True) -> str:
    page = client.get("/dashboard/password" if logged_in else "/dashboard/login")
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, page.status_code
    return match.group(1)
