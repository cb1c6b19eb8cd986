"""/metrics, request ids and structured logs."""

import json
import logging
from datetime import timedelta

from sqlalchemy import func, select

from scheduler.runner import run_sweep
from server.alerts.service import raise_alert
from server.core.enums import AlertKind, AreaKind, PersonStatus
from server.http.observability import configure_logging
from server.models import Notification, Person
from server.notify.outbox import enqueue
from server.people.areas import create_area


def _sample(text, name, **labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_report_state_from_the_database(client, session, clock, settings,
                                                session_factory):
    city = create_area(session=session, code="c", name="c", kind=AreaKind.city)
    district = create_area(session=session, code="d", name="d", kind=AreaKind.district,
                           parent=city)
    ward = create_area(session=session, code="w", name="w", kind=AreaKind.ward, parent=district)
    person = Person(full_name="A", phone="0900000000", ward_id=ward.id, home_address="x",
                    home_lat=10.8, home_lon=106.6, isolation_start=clock.now(),
                    isolation_end=clock.now() + timedelta(days=7), status=PersonStatus.active)
    session.add(person)
    session.flush()
    raise_alert(session=session, person=person, kind=AlertKind.missed_checkin, now=clock.now(),
                dedupe_key="k1")
    enqueue(session=session, channel="log", recipient="x", payload={}, idempotency_key="n1",
            now=clock.now())
    session.commit()
    run_sweep("heartbeat", lambda **_: 0, session_factory=session_factory, clock=clock,
              settings=settings)
    clock.advance(seconds=42)

    client.get("/healthz")
    r = client.get("/metrics")
    assert r.status_code == 200
    text = r.get_data(as_text=True)
    assert _sample(text, "isocheck_alerts_open", kind="missed_checkin", level="0") == 1
    pending_log = session.scalar(select(func.count()).select_from(Notification).where(
        Notification.state == "pending", Notification.channel == "log"))
    assert pending_log >= 1
    assert _sample(text, "isocheck_outbox_notifications", state="pending",
                   channel="log") == pending_log
    assert _sample(text, "isocheck_sweep_lag_seconds", sweep="heartbeat") == 42
    assert "isocheck_verification_seconds_bucket" in text
    assert "isocheck_http_request_seconds_bucket" in text


def test_request_id_is_echoed_or_created(client):
    mine = client.get("/healthz", headers={"X-Request-ID": "phone-abc-12345"})
    assert mine.headers["X-Request-ID"] == "phone-abc-12345"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id; with spaces"})
    assert len(made.headers["X-Request-ID"]) == 32
    assert made.headers["X-Request-ID"] != client.get("/healthz").headers["X-Request-ID"]


def test_json_logs_carry_the_request_id(app, client, capsys):
    configure_logging("INFO", "json")

    @app.get("/log-something")
    def log_something():
        logging.getLogger("isocheck.test").info("hello from a request")
        return "ok"

    client.get("/log-something", headers={"X-Request-ID": "req-0123456789"})
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    mine = [x for x in lines if x.get("message") == "hello from a request"]
    assert mine and mine[0]["request_id"] == "req-0123456789"
    assert mine[0]["level"] == "INFO"
    configure_logging("INFO", "text")
