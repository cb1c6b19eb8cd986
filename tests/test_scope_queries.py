"""The scope queries the dashboard, the staff API and the FHIR export build on (server/scope.py,
issue 20: its mutation run after the module grew): alerts, attempts, images, doctors, areas and
area filters, for each role, straight against the database. Anything outside the caller's scope
is None / absent (the callers answer 404); the role rules are those of tests/test_scope.py."""

from __future__ import annotations

import secrets

import pytest

from server.alerts.models import Alert
from server.core.enums import AlertKind, AreaKind, ImageKind, StaffRole
from server.people.areas import create_area
from server.people.models import Person, StaffUser, StoredImage
from server.scope import (
    alert_in_scope,
    alert_visible,
    alerts_in_scope,
    area_for_filter,
    area_ids_under,
    areas_in_scope,
    attempt_in_scope,
    doctors_in_scope,
    image_in_scope,
    person_ids_in_area,
    person_ids_in_scope,
)
from tests.minimal_world import MiniWorld


def _staff(session, role: StaffRole, area_id: int | None, name: str, *, active=True):
    s = StaffUser(username=name, full_name=name, password_hash="x", role=role, area_id=area_id,
                  is_active=active)  # fmt: skip
    session.add(s)
    session.commit()
    return s


@pytest.fixture
def world(session, clock):
    """``here`` lives in ward 1, ``there`` in ward 2 and is the doctor's patient; each has an
    alert raised in their ward, an attempt and a kept selfie."""
    w = MiniWorld(session, clock.now())
    w.here, w.there = w.person(), w.person()
    w.there.ward_id = w.other_ward.id
    w.doctor = _staff(session, StaffRole.doctor, w.ward.id, "doctor")
    w.there.doctor_id = w.doctor.id
    w.district_staff = _staff(session, StaffRole.area_staff, w.district.id, "district")
    w.admin = _staff(session, StaffRole.admin, None, "admin")
    w.orphan = _staff(session, StaffRole.area_staff, None, "orphan")
    session.commit()
    w.alerts, w.attempts, w.images = {}, {}, {}
    for p in (w.here, w.there):
        w.alerts[p.id] = Alert(person_id=p.id, area_id=p.ward_id, kind=AlertKind.missed_checkin,
                              severity=2, dedupe_key=f"test:{secrets.token_hex(4)}")  # fmt: skip
        w.images[p.id] = StoredImage(person_id=p.id, kind=ImageKind.selfie.value,
                                    storage_key=secrets.token_hex(8), sha256="0" * 64,
                                    size_bytes=1)  # fmt: skip
        session.add_all([w.alerts[p.id], w.images[p.id]])
        session.commit()
        w.attempts[p.id] = w.attempt(w.prompt(p))
    return w


def _who(w):
    """staff → the persons (by name in the fixture) whose things they may see."""
    return {
        "ward": (w.staff, {w.here.id}),
        "other_ward": (w.other_staff, {w.there.id}),
        "district": (w.district_staff, {w.here.id, w.there.id}),
        "admin": (w.admin, {w.here.id, w.there.id}),
        "doctor": (w.doctor, {w.there.id}),
        "no_area": (w.orphan, set()),
    }


@pytest.mark.parametrize("who", ["ward", "other_ward", "district", "admin", "doctor", "no_area"])
def test_alerts_attempts_and_images_follow_the_persons_in_scope(world, session, who):
    staff, seen = _who(world)[who]
    people = (world.here.id, world.there.id)
    alerts = {a.person_id for a in session.scalars(alerts_in_scope(session=session, staff=staff))}
    assert alerts == seen
    assert set(session.scalars(person_ids_in_scope(session=session, staff=staff))) == seen
    for pid in people:
        alert = world.alerts[pid]
        found = alert_in_scope(session=session, staff=staff, alert_id=alert.id)
        assert (found is not None and found.id == alert.id) == (pid in seen), pid
        assert alert_visible(session=session, staff=staff, alert=alert) == (pid in seen), pid
        row = attempt_in_scope(session=session, staff=staff, attempt_id=world.attempts[pid].id)
        assert row == ((world.attempts[pid], session.get(Person, pid)) if pid in seen else None)
        row = image_in_scope(session=session, staff=staff, image_id=world.images[pid].id)
        assert row == ((world.images[pid], session.get(Person, pid)) if pid in seen else None)


def test_an_alert_belongs_to_the_ward_it_was_raised_in(world, session):
    """A person who moved ward after the alert: area staff see it by the alert's ward (as the
    escalation chain does), the new ward's staff do not; the doctor still sees it."""
    alert = world.alerts[world.here.id]
    session.get(Person, world.here.id).ward_id = world.other_ward.id
    session.get(Person, world.here.id).doctor_id = world.doctor.id
    session.commit()
    for staff, visible in ((world.staff, True), (world.other_staff, False), (world.doctor, True)):
        assert alert_visible(session=session, staff=staff, alert=alert) is visible, staff.username
        found = alert_in_scope(session=session, staff=staff, alert_id=alert.id)
        assert (found is not None) is visible, staff.username


def test_an_alert_of_a_deleted_area_or_person_is_not_visible(world, session):
    """``alert_visible`` on a loaded alert whose ward or person no longer resolves."""
    ghost = Alert(person_id=10_000, area_id=10_000, kind=AlertKind.outside_home, severity=3,
                  dedupe_key="ghost")  # never added to the session: only read  # fmt: skip
    assert not alert_visible(session=session, staff=world.admin, alert=ghost)
    assert not alert_visible(session=session, staff=world.doctor, alert=ghost)


def test_a_purged_image_is_out_of_everyones_scope(world, session, clock):
    image = world.images[world.here.id]
    assert image_in_scope(session=session, staff=world.admin, image_id=image.id) is not None
    image.purged_at = clock.now()
    session.commit()
    for staff in (world.admin, world.staff, world.district_staff):
        assert image_in_scope(session=session, staff=staff, image_id=image.id) is None


def test_unknown_ids_are_none(world, session):
    assert attempt_in_scope(session=session, staff=world.admin, attempt_id=10_000) is None
    assert image_in_scope(session=session, staff=world.admin, image_id=10_000) is None
    assert alert_in_scope(session=session, staff=world.admin, alert_id=10_000) is None


def test_doctors_in_scope_are_the_active_doctors_of_the_subtree_by_name(world, session):
    w = world
    _staff(session, StaffRole.doctor, w.other_ward.id, "b-doctor")
    _staff(session, StaffRole.doctor, w.other_ward.id, "a-doctor")
    _staff(session, StaffRole.doctor, w.other_ward.id, "gone", active=False)
    nowhere = _staff(session, StaffRole.doctor, None, "c-doctor-without-area")
    city = _staff(session, StaffRole.doctor, w.city.id, "d-city-doctor")

    def names(staff):
        return [d.username for d in doctors_in_scope(session=session, staff=staff)]

    assert names(w.staff) == ["doctor"]
    assert names(w.other_staff) == ["a-doctor", "b-doctor"]
    assert names(w.district_staff) == ["a-doctor", "b-doctor", "doctor"]
    assert names(w.admin) == ["a-doctor", "b-doctor", nowhere.username, city.username, "doctor"]
    assert names(w.orphan) == []


def test_areas_in_scope_are_the_subtree_by_path(world, session):
    w = world
    # a district created after the wards, then a ward of the first district: by id the new
    # district would come before that ward, by path it comes after the whole first district
    district2 = create_area(session=session, code="79-765", name="Q.3", kind=AreaKind.district,
                            parent=w.city)  # fmt: skip
    ward3 = create_area(session=session, code="79-764-3", name="Phường 3", kind=AreaKind.ward,
                        parent=w.district)  # fmt: skip
    session.commit()
    ids = {
        "ward": [w.ward.id],
        "district": [w.district.id, w.ward.id, w.other_ward.id, ward3.id],
        "admin": [w.city.id, w.district.id, w.ward.id, w.other_ward.id, ward3.id, district2.id],
        "doctor": [],
        "no_area": [],
    }
    for who, expected in ids.items():
        staff = _who(w)[who][0]
        assert [a.id for a in areas_in_scope(session=session, staff=staff)] == expected, who
        for area in (w.city, w.district, w.ward, w.other_ward, ward3, district2):
            got = area_for_filter(session=session, staff=staff, area_id=area.id)
            assert (got.id if got else None) == (area.id if area.id in expected else None), who
        assert area_for_filter(session=session, staff=staff, area_id=None) is None
        assert area_for_filter(session=session, staff=staff, area_id=10_000) is None


def test_the_export_covers_the_persons_of_an_area_subtree(world, session):
    w = world

    def under(area):
        return set(session.scalars(area_ids_under(area)))

    def persons(area):
        return set(session.scalars(person_ids_in_area(area)))

    assert under(w.district) == {w.district.id, w.ward.id, w.other_ward.id}
    assert under(w.ward) == {w.ward.id}
    assert persons(w.ward) == {w.here.id}
    assert persons(w.other_ward) == {w.there.id}
    assert persons(w.district) == persons(None) == {w.here.id, w.there.id}
    # a sibling ward whose path extends this one's (1/2/3/ and 1/2/31/) is outside
    w.other_ward.path = w.ward.path.rstrip("/") + "1/"
    session.commit()
    assert persons(w.ward) == {w.here.id}
    assert under(w.ward) == {w.ward.id}
