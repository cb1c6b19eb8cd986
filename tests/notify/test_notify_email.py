"""E-mail to a real SMTP server (aiosmtpd) on localhost: STARTTLS with a certificate the test
generates (verified by the client through ``ISOCHECK_SMTP_CA_FILE``), then AUTH, then the message
is read back from the server's side."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from notify_helpers import notify_settings, run_delivery

from server.alerts.service import raise_alert
from server.core.enums import AlertKind, NotificationState
from server.notify.alerts import notify_alert
from server.notify.models import Notification
from server.people.models import StaffUser

USER, PASSWORD = "isocheck", "s3cret-pass"


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost, valid for a day; returns (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "smtp-cert.pem", tmp / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Mailbox:
    """What the SMTP server accepted, with how each session was secured."""

    messages: list[dict] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "message": email.message_from_bytes(envelope.content, policy=policy.default),
                "tls": session.ssl is not None,
                "login": session.auth_data if session.authenticated else None,
            }
        )
        return "250 Message accepted"


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    )
    if not ok:  # handled=False: aiosmtpd answers "535 authentication failed" itself
        return AuthResult(success=False, handled=False)
    return AuthResult(success=True, auth_data=USER)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server(tmp_path) -> Iterator[tuple[Mailbox, int, Path]]:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,  # nothing, not even AUTH, before STARTTLS
        auth_required=True,  # no MAIL FROM before AUTH
        auth_require_tls=True,
        authenticator=_authenticate,
    )
    controller.start()
    yield mailbox, port, cert
    controller.stop()


def _email_settings(settings, port: int, ca: Path | None, **extra):
    fields = {
        "notify_channels": "email",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_user": USER,
        "smtp_password": PASSWORD,
        "smtp_from": "isocheck@example.org",
        "smtp_starttls": True,
        "smtp_ca_file": ca,
    }
    return notify_settings(settings, **{**fields, **extra})


def _email_rows(session_factory) -> list[Notification]:
    with session_factory() as s:
        return list(s.query(Notification).filter_by(channel="email").order_by(Notification.id))


def test_alert_email_delivered_over_starttls_with_auth(
    session, session_factory, clock, settings, world, smtp_server
):
    mailbox, port, cert = smtp_server
    s = _email_settings(settings, port, cert)
    alert, _ = raise_alert(
        session=session,
        person=world.person,
        kind=AlertKind.missed_checkin,
        now=clock.now(),
        dedupe_key="missed:1",
    )
    notify_alert(session=session, alert=alert, now=clock.now())
    session.commit()

    run_delivery(session_factory, clock, s)

    [got] = mailbox.messages
    assert got["tls"] and got["login"] == USER
    assert got["mail_from"] == "isocheck@example.org"
    assert got["rcpt_tos"] == ["ward1@example.org"]
    msg = got["message"]
    assert msg["Subject"] == f"Cảnh báo mức {alert.severity}: Bỏ lỡ điểm danh — Phường 1"
    key = f"alert:{alert.id}:L0:email:s{world.ward_staff.id}"
    assert msg["X-Isocheck-Idempotency-Key"] == key
    text = msg.get_content()
    assert f"Alert #{alert.id}: Missed check-in" in text and "GV-P1" in text
    assert world.person.full_name not in text  # no names through mail relays
    [row] = _email_rows(session_factory)
    assert row.state is NotificationState.sent and row.staff_id == world.ward_staff.id


def test_refused_mailbox_is_dead_while_the_rest_of_the_batch_is_delivered(
    session, session_factory, clock, settings, world, smtp_server
):
    mailbox, port, cert = smtp_server
    mailbox.refuse.add("ward1@example.org")
    s = _email_settings(settings, port, cert)
    alert, _ = raise_alert(
        session=session,
        person=world.person,
        kind=AlertKind.high_risk,
        now=clock.now(),
        dedupe_key="risk:1",
    )
    for level in (0, 1):  # ward staff (refused), then district staff (accepted)
        alert.escalation_level = level
        notify_alert(session=session, alert=alert, now=clock.now())
    session.commit()

    run_delivery(session_factory, clock, s)

    assert [m["rcpt_tos"] for m in mailbox.messages] == [["gv@example.org"]]
    refused, accepted = _email_rows(session_factory)
    assert refused.state is NotificationState.dead
    assert refused.last_error.startswith("invalid recipient: SMTP 550")
    assert accepted.state is NotificationState.sent
    with session_factory() as s2:  # an address is for a person to fix, not ours to delete
        assert s2.get(StaffUser, world.ward_staff.id).email == "ward1@example.org"


def test_untrusted_certificate_or_wrong_password_is_retried_not_sent(
    session, session_factory, clock, settings, world, smtp_server
):
    mailbox, port, cert = smtp_server
    alert, _ = raise_alert(
        session=session,
        person=world.person,
        kind=AlertKind.missed_checkin,
        now=clock.now(),
        dedupe_key="missed:2",
    )
    notify_alert(session=session, alert=alert, now=clock.now())
    session.commit()

    run_delivery(
        session_factory, clock, _email_settings(settings, port, ca=None)
    )  # system CAs only
    [row] = _email_rows(session_factory)
    assert row.state is NotificationState.pending and "CERTIFICATE_VERIFY_FAILED" in row.last_error

    clock.set(row.next_attempt_at)
    run_delivery(
        session_factory, clock, _email_settings(settings, port, cert, smtp_password="nope")
    )
    [row] = _email_rows(session_factory)
    assert row.state is NotificationState.pending and "SMTPAuthenticationError" in row.last_error
    assert mailbox.messages == []

    clock.set(row.next_attempt_at)
    run_delivery(session_factory, clock, _email_settings(settings, port, cert))
    assert len(mailbox.messages) == 1
    assert _email_rows(session_factory)[0].state is NotificationState.sent
