"""Area scope (server/scope.py) directly, for each role: administrators see everything,
area staff their subtree (a district sees its wards, a ward not its sister ward nor its
district), doctors only their assigned people and no area; staff without an area see nothing."""

from __future__ import annotations

import pytest

from server.core.enums import StaffRole
from server.people.models import Person, StaffUser
from server.scope import area_in_scope, person_in_scope, persons_in_scope, scope_root
from tests.minimal_world import MiniWorld


@pytest.fixture
def world(session, clock):
    w = MiniWorld(session, clock.now())
    w.here = w.person()
    w.there = w.person()
    w.there.ward_id = w.other_ward.id
    session.commit()
    return w


def _staff(session, role: StaffRole, area_id: int | None, name: str) -> StaffUser:
    s = StaffUser(username=name, full_name=name, password_hash="x", role=role, area_id=area_id)
    session.add(s)
    session.commit()
    return s


def _seen(session, staff) -> set[int]:
    return {p.id for p in session.scalars(persons_in_scope(session=session, staff=staff))}


def test_ward_staff_see_their_ward_only(world, session):
    staff = world.staff
    assert scope_root(session=session, staff=staff).id == world.ward.id
    assert _seen(session, staff) == {world.here.id}
    assert area_in_scope(session=session, staff=staff, area=world.ward)
    for area in (world.other_ward, world.district, world.city):
        assert not area_in_scope(session=session, staff=staff, area=area)
    assert person_in_scope(session=session, staff=staff, person_id=world.here.id).id == (
        world.here.id
    )
    assert person_in_scope(session=session, staff=staff, person_id=world.there.id) is None


def test_district_staff_see_every_ward_below_and_not_above(world, session):
    staff = _staff(session, StaffRole.area_staff, world.district.id, "district")
    assert _seen(session, staff) == {world.here.id, world.there.id}
    for area in (world.ward, world.other_ward, world.district):
        assert area_in_scope(session=session, staff=staff, area=area)
    assert not area_in_scope(session=session, staff=staff, area=world.city)


def test_admins_see_everything(world, session):
    admin = _staff(session, StaffRole.admin, None, "admin")
    assert scope_root(session=session, staff=admin) is None
    assert _seen(session, admin) == {world.here.id, world.there.id}
    assert all(area_in_scope(session=session, staff=admin, area=a)
               for a in (world.city, world.ward, world.other_ward))  # fmt: skip


def test_doctors_see_their_patients_and_no_area(world, session):
    doctor = _staff(session, StaffRole.doctor, world.ward.id, "doctor")
    assert _seen(session, doctor) == set()
    session.get(Person, world.there.id).doctor_id = doctor.id
    session.commit()
    assert _seen(session, doctor) == {world.there.id}
    assert person_in_scope(session=session, staff=doctor, person_id=world.here.id) is None
    assert not area_in_scope(session=session, staff=doctor, area=world.other_ward)
    assert not area_in_scope(session=session, staff=doctor, area=world.ward)


def test_area_staff_without_an_area_see_nothing(world, session):
    orphan = _staff(session, StaffRole.area_staff, None, "orphan")
    assert scope_root(session=session, staff=orphan) is None
    assert _seen(session, orphan) == set()
    assert not area_in_scope(session=session, staff=orphan, area=world.ward)


def test_a_sibling_whose_path_shares_a_prefix_is_outside(world, session):
    """Paths are ``1/2/3/``: ward 3's scope must not contain ward 31 (``1/2/31/``)."""
    world.other_ward.path = world.ward.path.rstrip("/") + "1/"
    session.commit()
    assert not area_in_scope(session=session, staff=world.staff, area=world.other_ward)
    assert _seen(session, world.staff) == {world.here.id}
