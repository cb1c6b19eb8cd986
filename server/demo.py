"""``isocheck demo``: a small, realistic world to click through, created idempotently.

Ho Chi Minh City → Gò Vấp district → three wards; an administrator and one staff account per
ward (passwords generated and printed once, when the account is created); a few persons in home
isolation. Running it again creates nothing new and prints no password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.config import Settings
from server.core import audit
from server.core.clock import Clock
from server.core.enums import AreaKind, Category, PersonStatus, StaffRole
from server.core.security import new_password
from server.people.areas import ensure_area
from server.people.models import Person
from server.people.staff import create_staff, get_staff_by_username

CITY = ("79", "Thành phố Hồ Chí Minh")
DISTRICT = ("79-764", "Quận Gò Vấp")
#: (code, name, (lat, lon) of the ward's centre).
WARDS = [
    ("79-764-26896", "Phường 1", (10.8129, 106.6866)),
    ("79-764-26899", "Phường 3", (10.8151, 106.6771)),
    ("79-764-26902", "Phường 5", (10.8254, 106.6907)),
]
#: (national id, name, phone, birth date, ward index, address, offset from ward centre (deg),
#:  category, risk factors, days since isolation began).
PERSONS = [
    (
        "079190000101",
        "Nguyễn Văn An",
        "0901000101",
        date(1985, 3, 14),
        0,
        "12 Nguyễn Văn Nghi, Phường 1",
        (0.0004, 0.0002),
        Category.f0,
        {},
        2,
    ),
    (
        "079190000102",
        "Trần Thị Bình",
        "0901000102",
        date(1956, 7, 2),
        0,
        "45 Lê Quang Định, Phường 1",
        (-0.0003, 0.0005),
        Category.f0,
        {"comorbidities": ["diabetes", "hypertension"]},
        4,
    ),
    (
        "079190000103",
        "Lê Hoàng Cường",
        "0901000103",
        date(1998, 11, 23),
        1,
        "7 Phạm Văn Chiêu, Phường 3",
        (0.0002, -0.0004),
        Category.f1,
        {},
        1,
    ),
    (
        "079190000104",
        "Phạm Thị Dung",
        "0901000104",
        date(1992, 1, 9),
        1,
        "88 Quang Trung, Phường 3",
        (0.0006, 0.0001),
        Category.f0,
        {"pregnant": True},
        5,
    ),
    (
        "079190000105",
        "Võ Minh Đức",
        "0901000105",
        date(1949, 5, 30),
        2,
        "3 Nguyễn Oanh, Phường 5",
        (-0.0005, -0.0002),
        Category.f0,
        {"comorbidities": ["chronic_lung_disease"]},
        3,
    ),
]
ISOLATION_DAYS = {Category.f0: 7, Category.f1: 7}


@dataclass
class DemoReport:
    created_areas: int = 0
    created_persons: int = 0
    #: (username, role, area, password) for accounts created by this run only.
    credentials: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: (person's name, due time) of the check-in prompt left open for the first run, if any.
    open_prompt: tuple[str, datetime] | None = None


def load_demo(*, session: Session, clock: Clock, settings: Settings) -> DemoReport:
    """Create whatever part of the demo world is missing. Safe to run any number of times.
    ``settings`` (schedule policy, time zone) plan the demo's open prompt."""
    report = DemoReport()
    city, created = ensure_area(session=session, code=CITY[0], name=CITY[1], kind=AreaKind.city)
    report.created_areas += created
    district, created = ensure_area(
        session=session, code=DISTRICT[0], name=DISTRICT[1], kind=AreaKind.district, parent=city
    )
    report.created_areas += created
    wards = []
    for code, name, _centre in WARDS:
        ward, created = ensure_area(
            session=session, code=code, name=name, kind=AreaKind.ward, parent=district
        )
        report.created_areas += created
        wards.append(ward)

    accounts = [("admin", "Quản trị viên hệ thống", StaffRole.admin, None)]
    accounts += [
        (f"tramyte.p{name.split()[-1]}", f"Trạm Y tế {name}", StaffRole.area_staff, ward)
        for (_code, name, _c), ward in zip(WARDS, wards, strict=True)
    ]
    for username, full_name, role, area in accounts:
        if get_staff_by_username(session=session, username=username) is not None:
            continue
        password = new_password()
        create_staff(
            session=session,
            username=username,
            password=password,
            full_name=full_name,
            role=role,
            area=area,
            email=f"{username}@demo.isocheck.invalid",
        )
        report.credentials.append((username, role.value, area.name if area else "—", password))

    now = clock.now()
    for nid, name, phone, dob, ward_index, address, (
        dlat,
        dlon,
    ), category, factors, days_in in PERSONS:
        if session.scalar(select(Person.id).where(Person.national_id == nid)) is not None:
            continue
        centre = WARDS[ward_index][2]
        start = now - timedelta(days=days_in)
        person = Person(
            full_name=name,
            phone=phone,
            date_of_birth=dob,
            national_id=nid,
            category=category,
            ward_id=wards[ward_index].id,
            home_address=address,
            home_lat=centre[0] + dlat,
            home_lon=centre[1] + dlon,
            isolation_start=start,
            isolation_end=start + timedelta(days=ISOLATION_DAYS[category]),
            status=PersonStatus.active,
            risk_factors=factors,
        )
        session.add(person)
        session.flush()
        report.created_persons += 1
        audit.record(
            session=session,
            actor_kind="cli",
            action="person.create",
            target_kind="person",
            target_id=person.id,
            area_id=person.ward_id,
            details={"source": "demo"},
        )
    report.open_prompt = _open_demo_prompt(session=session, now=now, settings=settings)
    return report


def reset_demo_passwords(*, session: Session, clock: Clock) -> list[tuple[str, str, str, str]]:
    """New passwords for the demo accounts that exist (admin and the ward stations), returned
    once as (username, role, area, password) — the first run's were printed once and may be lost.
    Sessions and API tokens of those accounts end (``password_changed_at``) and the change is
    audited. Demo mode only (the command refuses in production)."""
    from server.core.security import hash_password
    from server.people.models import StaffUser

    names = ["admin"] + [f"tramyte.p{name.split()[-1]}" for _code, name, _c in WARDS]
    now = clock.now()
    out = []
    for username in names:
        user = session.scalar(select(StaffUser).where(StaffUser.username == username))
        if user is None:
            continue
        password = new_password()
        user.password_hash = hash_password(password)
        user.password_changed_at = now
        user.failed_logins = 0
        user.locked_until = None
        audit.record(
            session=session, actor_kind="cli", action="staff.password_change",
            target_kind="staff", target_id=user.id, area_id=user.area_id, at=now,
            details={"source": "demo --reset-passwords"},
        )  # fmt: skip
        area = user.area.name if user.area else "—"
        out.append((username, user.role.value, area, password))
    return out


def _open_demo_prompt(
    *, session: Session, now: datetime, settings: Settings
) -> tuple[str, datetime] | None:
    """Leave the first demo person with a check-in prompt open now (unless one is live or was
    asked for recently), so the first ``make run`` shows a check-in end to end."""
    from server.checkins.on_demand import request_checkins
    from server.schedule.policy import resolver_for

    session.flush()
    person = session.scalar(select(Person).where(Person.national_id == PERSONS[0][0]))
    if person is None:
        return None
    made = request_checkins(
        session=session,
        persons=[person],
        now=now,
        resolver=resolver_for(session=session, settings=settings),
        actor_id=None,
        quiet_hours=False,
    )
    if not made.prompts:
        return None
    return person.full_name, made.prompts[0].due_at
