"""Helpers for the notification tests: a small world (city → district → ward, staff at each
level, a person with a phone) and local HTTP receivers running in threads."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from requests.structures import CaseInsensitiveDict

from server.config import Settings
from server.core.enums import AreaKind, StaffRole
from server.people.areas import create_area
from server.people.models import Area, Device, Person, StaffUser

WEBHOOK_SECRET = "test-webhook-secret-0123456789"
T0 = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)  # the clock fixture's start


@dataclass
class World:
    city: Area
    district: Area
    ward: Area
    ward_staff: StaffUser
    district_staff: StaffUser
    city_staff: StaffUser
    person: Person
    device: Device


def _staff(session, username: str, area: Area, *, email=None, push=None, role=None) -> StaffUser:
    # Created directly: password hashing (argon2) is not what these tests are about.
    user = StaffUser(
        username=username,
        full_name=username.title(),
        password_hash="not-a-login",
        role=role or StaffRole.area_staff,
        area_id=area.id,
        email=email,
        push_token=push,
    )
    session.add(user)
    session.flush()
    return user


def make_person(session, ward: Area, name: str = "Nguyễn Văn An") -> Person:
    person = Person(
        full_name=name,
        phone="0900000001",
        ward_id=ward.id,
        home_address="1 Lê Đức Thọ",
        home_lat=10.84,
        home_lon=106.66,
        isolation_start=T0 - timedelta(days=2),
        isolation_end=T0 + timedelta(days=5),
    )
    session.add(person)
    session.flush()
    return person


def build_world(session) -> World:
    city = create_area(session=session, code="HCM", name="TP. Hồ Chí Minh", kind=AreaKind.city)
    district = create_area(
        session=session, code="GV", name="Gò Vấp", kind=AreaKind.district, parent=city
    )
    ward = create_area(
        session=session, code="GV-P1", name="Phường 1", kind=AreaKind.ward, parent=district
    )
    ward_staff = _staff(session, "ward1", ward, email="ward1@example.org", push="tok-ward1")
    district_staff = _staff(session, "gv", district, email="gv@example.org")
    city_staff = _staff(session, "hcm", city, push="tok-hcm")
    person = make_person(session, ward)
    device = Device(person_id=person.id, token_hash="h" * 64, push_token="tok-phone-1")
    session.add(device)
    session.commit()
    return World(city, district, ward, ward_staff, district_staff, city_staff, person, device)


def notify_settings(settings: Settings, **overrides: Any) -> Settings:
    """The test settings with notification fields replaced (no validation, as in the app)."""
    base = {
        "webhook_secret": WEBHOOK_SECRET,
        "notify_rate_limits": {"fcm": 1000.0, "email": 1000.0, "webhook": 1000.0, "log": 1000.0},
    }
    return settings.model_copy(update={**base, **overrides})


# --------------------------------------------------------------------------- HTTP receivers


@dataclass
class Received:
    path: str
    headers: CaseInsensitiveDict  # HTTP header names are case-insensitive
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local HTTP server. ``respond(received) -> (status, headers, body)`` decides answers."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    respond: Callable[[Received], tuple[int, dict[str, str], bytes]] = lambda r: (200, {}, b"{}")
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Exceptions raised by ``respond`` (assertions of the fake server); tests check it is empty.
    errors: list[Exception] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"


def start_receiver() -> Receiver:
    """Start a threaded local HTTP server recording every POST; stop it with ``stop_receiver``."""
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 65536  # one write per response (no Nagle/delayed-ACK stall per request)

        def do_POST(self):  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", 0))
            headers = CaseInsensitiveDict(self.headers.items())
            got = Received(self.path, headers, self.rfile.read(length))
            rec = holder["r"]
            with rec.lock:
                rec.requests.append(got)
            try:
                status, headers, body = rec.respond(got)
            except Exception as exc:  # a failed check in the receiver: answer, and remember it
                rec.errors.append(exc)
                status, headers, body = 599, {}, repr(exc).encode()
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["r"] = Receiver(server=server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return holder["r"]


def stop_receiver(rec: Receiver) -> None:
    rec.server.shutdown()
    rec.server.server_close()


def run_delivery(session_factory, clock, settings: Settings, channels=None) -> int:
    """One delivery sweep as the scheduler's runner runs it: its own unit of work."""
    from server.core.db import session_scope
    from server.notify.delivery import build_channels, deliver_notifications

    with session_scope(session_factory) as session:
        return deliver_notifications(
            session=session,
            clock=clock,
            settings=settings,
            channels=channels if channels is not None else build_channels(settings),
        )
