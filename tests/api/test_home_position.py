"""Issue 19, item 7, through the API: a person enrolled without coordinates gets their home
position from the phone — at activation (``ActivationRequest.home``) or afterwards
(``proposeHomePosition``) — kept as *proposed* until staff confirm it; meanwhile no check-in is
judged against home, and a confirmed home is never moved by the phone. Every answer is checked
against mobile_api_spec/openapi.yaml by the contract client."""

from __future__ import annotations

from sqlalchemy import select

from server.core.audit import AuditEvent
from server.people import home
from server.people.models import Person
from tests.api.contract import bearer, person_payload

AT_HOME = {"latitude": 10.81301, "longitude": 106.68655, "accuracy_m": 18.0}


def _enrol_without_coordinates(contract, world, clock):
    body = person_payload(clock.now(), national_id=None)
    del body["home_lat"], body["home_lon"]
    r = contract.post("/api/v1/admin/persons", headers=world.staff, json=body)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["home_position"] == "needed"
    return r.get_json()


def test_the_phone_proposes_home_at_activation_and_staff_confirm(world, contract, session, clock):
    created = _enrol_without_coordinates(contract, world, clock)
    r = contract.post("/api/v1/devices/activate", json={
        "code": created["activation"]["code"], "platform": "web", "home": AT_HOME})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["person"]["home_position"] == "proposed"
    person = session.get(Person, created["id"])
    session.refresh(person)
    assert home.pending(person)
    assert (person.home_proposed_lat, person.home_proposed_lon) == (10.81301, 106.68655)
    assert person.home_proposed_accuracy_m == 18.0
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "person.home_proposed"))
    assert event.details == {"accuracy_m": 18.0}  # no coordinates in the audit trail
    device = bearer(r.get_json()["token"])
    assert contract.get("/api/v1/me", headers=device).get_json()["home_position"] == "proposed"
    # staff confirm (the dashboard's step, tests/dashboard/test_home_position.py): confirmed
    assert home.confirm_proposed(person=person, now=clock.now())
    session.commit()
    assert (person.home_lat, person.home_lon, person.home_source) == (10.81301, 106.68655, "phone")
    assert contract.get("/api/v1/me", headers=device).get_json()["home_position"] == "confirmed"
    # a confirmed home is never moved by the phone
    r = contract.put("/api/v1/me/home-position", headers=device,
                     json={**AT_HOME, "latitude": 10.9})
    assert r.status_code == 200 and r.get_json() == {"home_position": "confirmed"}
    session.refresh(person)
    assert person.home_lat == 10.81301 and person.home_proposed_lat is None


def test_after_activation_the_phone_can_send_it_from_home(world, contract, session, clock):
    created = _enrol_without_coordinates(contract, world, clock)
    r = contract.post("/api/v1/devices/activate", json={"code": created["activation"]["code"]})
    assert r.get_json()["person"]["home_position"] == "needed"
    device = bearer(r.get_json()["token"])
    for bad in ({**AT_HOME, "latitude": 91}, {**AT_HOME, "accuracy_m": 0},
                {"latitude": 10.8, "longitude": 106.6}, {**AT_HOME, "extra": 1},
                # booleans are not coordinates (found by the live schemathesis run: 200 before)
                {**AT_HOME, "longitude": False}, {**AT_HOME, "latitude": True}):
        r = contract.put("/api/v1/me/home-position", headers=device, json=bad)
        assert (r.status_code, r.get_json()["code"]) == (422, "validation_error"), bad
    r = contract.put("/api/v1/me/home-position", headers=device, json=AT_HOME)
    assert r.status_code == 200 and r.get_json() == {"home_position": "proposed"}
    r = contract.put("/api/v1/me/home-position", json=AT_HOME)
    assert r.status_code == 401


def test_a_typed_home_is_still_the_default_and_one_coordinate_is_refused(world, contract, clock):
    assert contract.get("/api/v1/me", headers=world.device).get_json()["home_position"] == (
        "confirmed"
    )
    body = person_payload(clock.now(), national_id=None)
    del body["home_lon"]
    r = contract.post("/api/v1/admin/persons", headers=world.staff, json=body)
    assert (r.status_code, r.get_json()["code"]) == (422, "validation_error")


def test_no_distance_from_a_home_not_yet_confirmed(world, contract, session, clock, settings):
    """A selfie uploaded while the home waits for staff is not measured against the placeholder
    (0, 0): no distance, so no outside_home verdict or alert."""
    from server.checkins.service import Upload, record_upload
    from server.people.models import Device
    from server.storage import image_store
    from tests.api.contract import add_prompt
    from tests.dashboard.world import jpeg

    created = _enrol_without_coordinates(contract, world, clock)
    r = contract.post("/api/v1/devices/activate", json={"code": created["activation"]["code"]})
    person = session.get(Person, created["id"])
    device = session.get(Device, r.get_json()["device_id"])
    prompt = add_prompt(session, person.id, clock.now())
    upload = Upload(image=jpeg(), content_type="image/jpeg", nonce=prompt.nonce,
                    latitude=10.8129, longitude=106.6866, accuracy_m=20.0, captured_at=None)
    attempt = record_upload(session=session, store=image_store(settings), person=person,
                            device=device, prompt=prompt, upload=upload, idempotency_key=None,
                            now=clock.now())
    assert attempt.distance_from_home_m is None
    person.home_source = "typed"  # once a home is known, the same fix is measured
    person.home_lat, person.home_lon = 10.8129, 106.6886
    prompt2 = add_prompt(session, person.id, clock.now())
    attempt = record_upload(session=session, store=image_store(settings), person=person,
                            device=device, prompt=prompt2, upload=upload, idempotency_key=None,
                            now=clock.now())
    assert 200 < attempt.distance_from_home_m < 240


def test_a_boolean_is_no_coordinate_at_enrolment(world, contract, clock):
    """``home_lat: true`` was taken as 1.0 (pydantic's lax floats): a home near (1, 0)."""
    for field, value in (("home_lat", True), ("home_lon", False), ("geofence_radius_m", True)):
        body = person_payload(clock.now(), national_id=None, **{field: value})
        r = contract.post("/api/v1/admin/persons", headers=world.staff, json=body)
        assert (r.status_code, r.get_json()["code"]) == (422, "validation_error"), field
        assert any(e["field"] == field for e in r.get_json()["errors"]), field
