"""FCM through firebase-admin's own message encoding, OAuth token exchange and HTTP sending, with
Google replaced by a local HTTP server (there is no network to Google here).

How Google is replaced, and nothing else:
- The service-account JSON the test writes (RSA key from ``cryptography``, project
  ``isocheck-test``) has ``"token_uri": "http://127.0.0.1:<port>/token"`` — a documented field
  of the file, honoured by google-auth — so the OAuth token exchange (a JWT signed with the key)
  comes to the local server, which checks the JWT's signature and hands out an access token.
- firebase-admin has no public option for the FCM endpoint: ``messaging._MessagingService``
  builds ``self._fcm_url`` from ``FCM_URL`` in its constructor. The test sets that one instance
  attribute on the app's messaging service to the local server; the code that builds the JSON
  and sends it (``send_each``, its thread pool, the authorised session) is firebase-admin's.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from firebase_admin import messaging
from google.auth import jwt
from notify_helpers import Received, make_person, notify_settings, run_delivery

from server.checkins.models import CheckinPrompt
from server.core.enums import AlertKind, NotificationState, PromptKind
from server.notify.alerts import notify_alert
from server.notify.delivery import build_channels
from server.notify.models import Notification
from server.notify.routing import notify_person
from server.people.models import Device, StaffUser

PROJECT = "isocheck-test"
PUBLIC_URL = "https://isocheck.example.vn"
ACCESS_TOKEN = "ya29.local-test-token"
UNREGISTERED = {
    "error": {
        "code": 404,
        "message": "Requested entity was not found.",
        "status": "NOT_FOUND",
        "details": [
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": "UNREGISTERED",
            }
        ],
    }
}


class FakeGoogle:
    """Answers the token exchange and FCM's ``messages:send`` like Google does."""

    def __init__(self, public_pem: bytes, token_uri: str) -> None:
        self.public_pem, self.token_uri = public_pem, token_uri
        self.dead_tokens: set[str] = set()
        self.token_requests = 0
        self.sent: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, r: Received) -> tuple[int, dict[str, str], bytes]:
        if r.path == "/token":
            form = parse_qs(r.body.decode())
            assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
            # Signed with the service account's key; google-auth names Google's token endpoint
            # as the audience whatever ``token_uri`` the request is sent to.
            claims = jwt.decode(
                form["assertion"][0],
                certs=self.public_pem,
                audience="https://oauth2.googleapis.com/token",
            )
            assert claims["iss"] == f"notify@{PROJECT}.iam.gserviceaccount.com"
            assert "https://www.googleapis.com/auth/firebase" in claims["scope"].split()
            with self.lock:
                self.token_requests += 1
            body = {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
            return 200, {}, json.dumps(body).encode()
        assert r.path == f"/v1/projects/{PROJECT}/messages:send", r.path
        if r.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return 401, {}, b'{"error": {"code": 401, "status": "UNAUTHENTICATED"}}'
        message = r.json["message"]
        if message["token"] in self.dead_tokens:
            return 404, {}, json.dumps(UNREGISTERED).encode()
        with self.lock:
            self.sent.append({"message": message, "headers": r.headers})
            n = len(self.sent)
        return 200, {}, json.dumps({"name": f"projects/{PROJECT}/messages/{n}"}).encode()


@pytest.fixture
def fcm(receiver, settings, tmp_path):
    """Settings with ``fcm`` enabled, channels whose firebase app talks to the local server, and
    the fake Google recording what it got."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token_uri = f"{receiver.url}/token"
    service_account = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "test-key-1",
        "private_key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "client_email": f"notify@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path = tmp_path / "firebase-service-account.json"
    path.write_text(json.dumps(service_account))
    google = FakeGoogle(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        token_uri,
    )
    receiver.respond = google
    s = notify_settings(
        settings, notify_channels="fcm", fcm_credentials_file=path, public_url=PUBLIC_URL
    )
    channels = build_channels(s)
    app = channels.get("fcm").app  # the channel's own firebase app, from the credentials file
    assert app.project_id == PROJECT
    # The one override (see the module docstring): FCM's endpoint on this app's service.
    service = messaging._get_messaging_service(app)
    service._fcm_url = f"{receiver.url}/v1/projects/{PROJECT}/messages:send"
    yield s, channels, google
    channels.close()


def _prompt(session, person, clock) -> CheckinPrompt:
    prompt = CheckinPrompt(
        person_id=person.id,
        slot_key="2026-11-24/morning",
        kind=PromptKind.scheduled,
        opens_at=clock.now(),
        due_at=clock.now() + timedelta(minutes=30),
        nonce="n" * 32,
    )
    session.add(prompt)
    session.flush()
    return prompt


def test_prompt_push_is_built_and_sent_by_firebase_admin(
    session, session_factory, clock, world, fcm
):
    s, channels, google = fcm
    prompt = _prompt(session, world.person, clock)
    [row] = notify_person(
        session=session,
        person=world.person,
        kind="checkin_prompt",
        payload={"prompt_id": prompt.id, "due_at": prompt.due_at, "ttl_seconds": 1800},
        now=clock.now(),
        idempotency_key=f"prompt:{prompt.id}:open",
    )
    session.commit()
    assert row.channel == "fcm" and row.recipient == "tok-phone-1"

    assert run_delivery(session_factory, clock, s, channels) == 1

    assert google.token_requests == 1
    [got] = google.sent
    message = got["message"]
    assert message["token"] == "tok-phone-1"
    assert message["data"] == {
        "prompt_id": str(prompt.id),
        "due_at": prompt.due_at.isoformat(),
        "kind": "checkin_prompt",
        "idempotency_key": f"prompt:{prompt.id}:open:d{world.device.id}",
    }
    assert message["notification"] == {
        "title": "Đến giờ điểm danh",
        "body": "Mở isocheck và chụp ảnh điểm danh trước 09:00.",  # 02:00 UTC in Hồ Chí Minh
    }
    assert message["android"] == {"priority": "high", "ttl": "1800s"}
    apns = message["apns"]
    assert apns["headers"]["apns-priority"] == "10"
    assert apns["headers"]["apns-push-type"] == "alert"
    assert int(apns["headers"]["apns-expiration"]) > 0
    assert len(apns["headers"]["apns-collapse-id"]) <= 64
    assert apns["payload"] == {"aps": {"sound": "default"}}
    assert got["headers"]["X-GOOG-API-FORMAT-VERSION"] == "2"
    with session_factory() as check:
        assert check.get(Notification, row.id).state is NotificationState.sent


def test_web_app_device_gets_a_webpush_message(session, session_factory, clock, world, fcm):
    """A browser's token (platform ``web``) is sent with firebase-admin's WebpushConfig: the
    service worker shows the notification (Vietnamese, plus the English texts for a person who
    chose English in the app) and a click opens /app/. Both the one-person path (notify_person)
    and the scheduler's bulk path (send_to_persons) mark the row; the phone keeps its message."""
    from server.notify.persons import PersonMessage, send_to_persons

    s, channels, google = fcm
    web = Device(
        person_id=world.person.id, token_hash="w" * 64, push_token="tok-web-1", platform="web"
    )
    session.add(web)
    session.flush()
    prompt = _prompt(session, world.person, clock)
    rows = notify_person(
        session=session,
        person=world.person,
        kind="checkin_prompt",
        payload={"prompt_id": prompt.id, "due_at": prompt.due_at, "ttl_seconds": 1800},
        now=clock.now(),
        idempotency_key=f"prompt:{prompt.id}:open",
    )
    session.commit()
    assert [(r.recipient, r.payload.get("platform")) for r in rows] == [
        ("tok-phone-1", None), ("tok-web-1", "web"),
    ]  # fmt: skip

    assert run_delivery(session_factory, clock, s, channels) == 2

    by_token = {g["message"]["token"]: g["message"] for g in google.sent}
    phone, browser = by_token["tok-phone-1"], by_token["tok-web-1"]
    assert "android" in phone and "apns" in phone and "webpush" not in phone
    assert set(browser) == {"token", "webpush"}  # nothing for Android/iOS, nothing outside webpush
    webpush = browser["webpush"]
    assert webpush["headers"]["Urgency"] == "high"
    assert webpush["headers"]["TTL"] == "1800"
    assert 0 < len(webpush["headers"]["Topic"]) <= 32
    assert webpush["notification"] == {
        "title": "Đến giờ điểm danh",
        "body": "Mở isocheck và chụp ảnh điểm danh trước 09:00.",
        "icon": "/app/icon.svg",
        "lang": "vi",
        "tag": f"prompt-{prompt.id}",
    }
    assert webpush["data"] == {
        "prompt_id": str(prompt.id),
        "due_at": prompt.due_at.isoformat(),
        "kind": "checkin_prompt",
        "idempotency_key": f"prompt:{prompt.id}:open:d{web.id}",
        "title_en": "Time to check in",
        "body_en": "Open isocheck and take your check-in photo by 09:00.",
        "link": "/app/",
    }
    assert webpush["fcm_options"] == {"link": f"{PUBLIC_URL}/app/"}
    assert world.person.full_name not in json.dumps(browser, ensure_ascii=False)

    # The scheduler's bulk writer marks the browser's row the same way.
    payload = {"prompt_id": prompt.id, "due_at": prompt.due_at}
    message = PersonMessage(world.person.id, "checkin_reminder", payload, f"p:{prompt.id}:r")
    assert send_to_persons(session=session, messages=[message], now=clock.now()) == 2
    session.commit()
    bulk = {
        n.recipient: n.payload
        for n in session.query(Notification).filter(Notification.idempotency_key.like("p:%"))
    }
    assert bulk["tok-web-1"]["platform"] == "web" and "platform" not in bulk["tok-phone-1"]
    assert bulk["tok-web-1"]["en"]["title"] == "Check-in reminder"


def test_alert_push_to_staff_carries_the_alert_id(session, session_factory, clock, world, fcm):
    from server.alerts.service import raise_alert

    s, channels, google = fcm
    alert, _ = raise_alert(
        session=session, person=world.person, kind=AlertKind.severe_symptoms,
        now=clock.now(), dedupe_key="sev:1",
    )  # fmt: skip
    notify_alert(session=session, alert=alert, now=clock.now())
    session.commit()

    run_delivery(session_factory, clock, s, channels)

    [got] = [g for g in google.sent if g["message"]["token"] == "tok-ward1"]
    data = got["message"]["data"]
    assert data["alert_id"] == str(alert.id) and data["alert_kind"] == "severe_symptoms"
    assert data["level"] == "0" and data["idempotency_key"].startswith(f"alert:{alert.id}:L0:fcm")
    assert got["message"]["android"]["priority"] == "high"
    assert world.person.full_name not in json.dumps(got["message"], ensure_ascii=False)


def test_unregistered_token_is_cleared_from_device_and_staff(
    session, session_factory, clock, world, fcm
):
    s, channels, google = fcm
    google.dead_tokens.add("tok-gone")
    other = make_person(session, world.ward, name="Trần Thị Bình")
    gone = Device(person_id=other.id, token_hash="g" * 64, push_token="tok-gone")
    session.add(gone)
    staff = session.get(StaffUser, world.city_staff.id)
    staff.push_token = "tok-gone"  # the same phone once registered for both
    session.flush()
    for key in ("a", "b"):
        notify_person(
            session=session, person=other, kind="checkin_reminder", payload={},
            now=clock.now(), idempotency_key=f"remind:{key}",
        )  # fmt: skip
    notify_person(
        session=session, person=world.person, kind="checkin_reminder", payload={},
        now=clock.now(), idempotency_key="remind:ok",
    )  # fmt: skip
    session.commit()

    run_delivery(session_factory, clock, s, channels)

    assert [g["message"]["token"] for g in google.sent] == ["tok-phone-1"]
    with session_factory() as check:
        assert check.get(Device, gone.id).push_token is None
        assert check.get(StaffUser, staff.id).push_token is None
        assert check.get(Device, world.device.id).push_token == "tok-phone-1"
        rows = {
            r.idempotency_key: r
            for r in check.query(Notification).filter(Notification.person_id == other.id)
        }
        assert {r.state for r in rows.values()} == {NotificationState.dead}
        assert any("UnregisteredError" in (r.last_error or "") for r in rows.values())
        # A later message to the person finds no token: it is logged, not pushed.
        [later] = notify_person(
            session=check, person=check.get(type(other), other.id), kind="checkin_reminder",
            payload={}, now=clock.now(), idempotency_key="remind:c",
        )  # fmt: skip
        assert later.channel == "log"
