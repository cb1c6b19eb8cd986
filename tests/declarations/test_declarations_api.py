"""Declarations over HTTP: validation, risk levels, advice, alerts exactly once, staff entry."""

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from server.alerts.models import Alert, AlertOccurrence
from server.core.enums import AlertKind, AreaKind, PersonStatus, RiskLevel, StaffRole
from server.declarations.models import Declaration
from server.people.areas import create_area
from server.people.enrolment import activate_device, issue_activation_code
from server.people.models import Person, StaffUser
from server.people.staff import create_staff


@pytest.fixture
def world(client, session, clock, settings):
    city = create_area(session=session, code="79", name="HCM", kind=AreaKind.city)
    district = create_area(session=session, code="79-764", name="Gò Vấp",
                           kind=AreaKind.district, parent=city)
    ward1 = create_area(session=session, code="w1", name="Phường 1", kind=AreaKind.ward,
                        parent=district)
    ward3 = create_area(session=session, code="w3", name="Phường 3", kind=AreaKind.ward,
                        parent=district)
    now = clock.now()

    def person(name, ward, **kw):
        p = Person(full_name=name, phone="0900000000", ward_id=ward.id, home_address="x",
                   home_lat=10.8, home_lon=106.6, isolation_start=now - timedelta(days=2),
                   isolation_end=now + timedelta(days=5), status=PersonStatus.active, **kw)
        session.add(p)
        session.flush()
        return p

    young = person("An", ward1)
    elderly = person("Bình", ward1, date_of_birth=date(1950, 3, 1),
                     risk_factors={"comorbidities": ["diabetes"]})
    code = issue_activation_code(session=session, person=young, now=now, actor_id=None,
                                 server_url="x", secret=settings.secret_key).code
    _d, _p, token = activate_device(session=session, code=code, now=now, platform=None,
                                    push_token=None, secret=settings.secret_key)
    code = issue_activation_code(session=session, person=elderly, now=now, actor_id=None,
                                 server_url="x", secret=settings.secret_key).code
    _d, _p, token_elderly = activate_device(session=session, code=code, now=now,
                                            platform=None, push_token=None,
                                            secret=settings.secret_key)
    create_staff(session=session, username="p1", password="pw-p1-123456", full_name="P1",
                 role=StaffRole.area_staff, area=ward1)
    create_staff(session=session, username="p3", password="pw-p3-123456", full_name="P3",
                 role=StaffRole.area_staff, area=ward3)
    session.commit()

    def staff_token(username, password):
        r = client.post("/api/v1/auth/token", json={"username": username, "password": password})
        return {"Authorization": f"Bearer {r.get_json()['token']}"}

    return {
        "young": young, "elderly": elderly,
        "device": {"Authorization": f"Bearer {token}"},
        "device_elderly": {"Authorization": f"Bearer {token_elderly}"},
        "p1": staff_token("p1", "pw-p1-123456"), "p3": staff_token("p3", "pw-p3-123456"),
    }


def declare(client, headers, clock, lang=None, **body):
    body.setdefault("measured_at", clock.now().isoformat())
    h = dict(headers)
    if lang:
        h["Accept-Language"] = lang
    return client.post("/api/v1/me/declarations", json=body, headers=h)


def count_alerts(session, kind):
    return session.scalar(select(func.count()).select_from(Alert).where(Alert.kind == kind))


def test_green_declaration(client, clock, world, session):
    r = declare(client, world["device"], clock, temperature_c=36.7, spo2=98, symptoms=[])
    assert r.status_code == 201
    body = r.get_json()
    assert body["risk_level"] == "green" and body["fired_rules"] == []
    assert body["alerts_raised"] == []
    assert count_alerts(session, "severe_symptoms") == 0


def test_red_raises_one_severe_alert_per_triggering_declaration(client, clock, world, session):
    r = declare(client, world["device"], clock, lang="en", spo2=93, symptoms=["dyspnea"])
    body = r.get_json()
    assert body["risk_level"] == "red"
    assert body["alerts_raised"] == ["severe_symptoms"]
    assert "115" in body["advice"]
    assert {"dyspnea", "spo2_severe"} <= {f["id"] for f in body["fired_rules"]}
    assert any(f["text"] == "Shortness of breath" for f in body["fired_rules"])
    alert = session.scalar(select(Alert).where(Alert.kind == "severe_symptoms"))
    assert alert.severity == 4
    assert alert.next_escalation_at == clock.now() + timedelta(minutes=10)
    assert alert.declaration_id == body["id"]
    session.expire_all()
    assert session.get(Person, world["young"].id).risk_level is RiskLevel.red

    # once staff have taken it on, the next red declaration is news: a new alert
    from server.alerts.service import acknowledge_alert

    staff = session.scalar(select(StaffUser).where(StaffUser.username == "p1"))
    acknowledge_alert(session=session, alert_id=alert.id, staff=staff, now=clock.now())
    session.commit()
    clock.advance(hours=1)
    declare(client, world["device"], clock, spo2=92)
    assert count_alerts(session, "severe_symptoms") == 2  # a second triggering declaration
    clock.advance(hours=1)
    declare(client, world["device"], clock, spo2=98)
    assert count_alerts(session, "severe_symptoms") == 2  # a green one raises nothing


def test_a_red_declaration_while_its_alert_is_open_is_absorbed(client, clock, world, session):
    """Two red declarations a minute apart: one alert, one queue row, one message; the second
    is counted on the alert and kept as evidence (docs/declarations.md, Repeated alerts)."""
    first = declare(client, world["device"], clock, spo2=93, symptoms=["dyspnea"]).get_json()
    alert = session.scalar(select(Alert).where(Alert.kind == "severe_symptoms"))
    messages = _alert_messages(session, alert.id)
    assert messages > 0
    deadline = alert.next_escalation_at

    clock.advance(minutes=1)
    second = declare(client, world["device"], clock, spo2=91, symptoms=["bluish_lips"])
    assert second.status_code == 201
    assert second.get_json()["alerts_raised"] == ["severe_symptoms"]  # the ward has it open
    session.expire_all()
    assert count_alerts(session, "severe_symptoms") == 1
    alert = session.get(Alert, alert.id)
    assert alert.declaration_id == first["id"]
    assert alert.occurrences == 2
    assert alert.last_occurred_at == clock.now()
    assert alert.next_escalation_at == deadline  # the escalation clock does not move
    assert _alert_messages(session, alert.id) == messages  # nobody told twice
    [evidence] = session.scalars(select(AlertOccurrence)).all()
    assert evidence.alert_id == alert.id
    assert evidence.declaration_id == second.get_json()["id"]
    assert evidence.dedupe_key == f"severe_symptoms:declaration:{evidence.declaration_id}"
    assert evidence.details == {"rules": ["bluish_lips", "spo2_severe"]}

    # the same event raised again (a retried sweep, a replay) is not counted twice
    from server.alerts.service import raise_alert

    raise_alert(session=session, person=session.get(Person, world["young"].id),
                kind=AlertKind.severe_symptoms, now=clock.now(),
                dedupe_key=evidence.dedupe_key, declaration_id=evidence.declaration_id)
    session.flush()
    session.refresh(alert)
    assert alert.occurrences == 2


def _alert_messages(session, alert_id):
    from server.notify.models import Notification

    return session.scalar(
        select(func.count()).select_from(Notification).where(Notification.alert_id == alert_id)
    )


def test_high_risk_alert_once_per_person(client, clock, world, session):
    for _ in range(3):
        r = declare(client, world["device_elderly"], clock, spo2=98)
        assert r.get_json()["risk_level"] == "yellow"
        clock.advance(hours=6)
    assert count_alerts(session, "high_risk") == 1
    session.expire_all()
    assert session.get(Person, world["elderly"].id).is_high_risk


def test_spo2_trend_over_24h(client, clock, world):
    declare(client, world["device"], clock, spo2=99)
    clock.advance(hours=8)
    r = declare(client, world["device"], clock, spo2=96)
    assert r.get_json()["risk_level"] == "orange"
    assert [f["id"] for f in r.get_json()["fired_rules"]] == ["spo2_falling"]


@pytest.mark.parametrize("field,value", [
    ("temperature_c", 50), ("temperature_c", 20), ("spo2", 101), ("spo2", 12),
    ("heart_rate", 400), ("symptoms", ["sneezing_fits"]), ("symptoms", ["cough", "cough"]),
    ("measured_at", "yesterday"),
])
def test_values_outside_ranges_name_the_field(client, clock, world, field, value):
    r = declare(client, world["device"], clock, **{field: value})
    assert r.status_code == 422
    body = r.get_json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"].startswith(field)


def test_future_or_stale_measurement_is_refused(client, clock, world):
    r = declare(client, world["device"], clock,
                measured_at=(clock.now() + timedelta(hours=2)).isoformat())
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "measured_at"
    r = declare(client, world["device"], clock,
                measured_at=(clock.now() - timedelta(days=9)).isoformat())
    assert r.status_code == 422


def test_staff_enter_a_declaration_for_a_person_in_scope_only(client, clock, world, session):
    pid = world["young"].id
    body = {"measured_at": clock.now().isoformat(), "spo2": 97, "symptoms": ["cough"]}
    r = client.post(f"/api/v1/admin/persons/{pid}/declarations", json=body, headers=world["p3"])
    assert r.status_code == 404  # another ward's person does not exist for them
    r = client.post(f"/api/v1/admin/persons/{pid}/declarations", json=body, headers=world["p1"])
    assert r.status_code == 201
    assert r.get_json()["entered_by_staff"] is True
    d = session.get(Declaration, r.get_json()["id"])
    assert d.entered_by_id is not None and d.risk_level is RiskLevel.yellow


def test_a_device_lists_only_its_own_declarations(client, clock, world):
    declare(client, world["device"], clock, spo2=98)
    declare(client, world["device_elderly"], clock, spo2=97)
    items = client.get("/api/v1/me/declarations", headers=world["device"]).get_json()["items"]
    assert [i["spo2"] for i in items] == [98]
