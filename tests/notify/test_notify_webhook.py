"""Signed webhooks delivered to a local HTTP server; retries, dead-lettering, crash recovery."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta

import pytest
from click.testing import CliRunner
from notify_helpers import WEBHOOK_SECRET, Received, notify_settings, run_delivery
from sqlalchemy import select

from server.core.enums import NotificationState
from server.notify.cli import outbox_command
from server.notify.delivery import build_channels, claim, deliver_notifications
from server.notify.models import Notification
from server.notify.outbox import enqueue
from server.notify.service import outbox_report, requeue_dead
from server.notify.webhook import sign, verify_signature


def _signature_ok(r: Received) -> bool:
    """The receiver's own check, written from the documented scheme (not our helper)."""
    ts = r.headers["X-Isocheck-Timestamp"]
    expected = hmac.new(WEBHOOK_SECRET.encode(), ts.encode() + b"." + r.body, hashlib.sha256)
    fresh = abs(time.time() - int(ts)) < 300
    return fresh and hmac.compare_digest(
        r.headers["X-Isocheck-Signature"], "sha256=" + expected.hexdigest()
    )


def _enqueue(session, receiver, clock, key="evt-1", **payload):
    row = enqueue(
        session=session,
        channel="webhook",
        recipient=receiver.url + "/hook",
        payload={"kind": "alert.missed_checkin", "data": {"alert_id": "7"}, **payload},
        idempotency_key=key,
        now=clock.now(),
    )
    session.commit()
    return row


def _row(session_factory, row_id) -> Notification:
    with session_factory() as s:
        return s.get(Notification, row_id)


def test_webhook_is_signed_and_carries_the_idempotency_key(
    session, session_factory, clock, settings, receiver
):
    s = notify_settings(settings, notify_channels="webhook")
    row = _enqueue(session, receiver, clock, title="Cảnh báo")

    assert run_delivery(session_factory, clock, s) == 1

    [got] = receiver.requests
    assert got.path == "/hook"
    assert _signature_ok(got)
    assert got.json == {
        "kind": "alert.missed_checkin",
        "data": {"alert_id": "7"},
        "title": "Cảnh báo",
        "idempotency_key": "evt-1",
    }
    assert got.headers["X-Isocheck-Idempotency-Key"] == "evt-1"
    done = _row(session_factory, row.id)
    assert done.state is NotificationState.sent and done.sent_at == clock.now()
    assert done.attempts == 1
    # Nothing left to do: a second sweep sends nothing.
    assert run_delivery(session_factory, clock, s) == 0
    assert len(receiver.requests) == 1


def test_signature_helper_rejects_tampering_and_old_timestamps():
    body = b'{"a":1}'
    sig = sign("k" * 20, 1_000_000, body)
    assert verify_signature("k" * 20, "1000000", body, sig, now=1_000_010)
    assert not verify_signature("k" * 20, "1000000", body + b" ", sig, now=1_000_010)
    assert not verify_signature("x" * 20, "1000000", body, sig, now=1_000_010)
    assert not verify_signature("k" * 20, "1000000", body, sig, now=1_000_000 + 301)
    assert not verify_signature("k" * 20, "soon", body, sig, now=1_000_000)


def test_failing_receiver_backs_off_exponentially_then_dead_letters(
    session, session_factory, clock, settings, receiver
):
    receiver.respond = lambda r: (500, {}, b'{"error": "down"}')
    s = notify_settings(
        settings, notify_channels="webhook", notify_max_attempts=5, notify_backoff_seconds=10
    )
    row = _enqueue(session, receiver, clock)
    delays = []
    for attempt in range(1, 6):
        assert run_delivery(session_factory, clock, s) == 1
        current = _row(session_factory, row.id)
        assert current.attempts == attempt
        if attempt < 5:
            assert current.state is NotificationState.pending
            assert "HTTP 500" in current.last_error
            delay = (current.next_attempt_at - clock.now()).total_seconds()
            nominal = 10 * 2 ** (attempt - 1)
            assert nominal / 2 <= delay <= nominal  # equal jitter
            delays.append(delay)
            # Not due before its time: a sweep now sends nothing.
            assert run_delivery(session_factory, clock, s) == 0
            clock.advance(seconds=delay)
    assert delays == sorted(delays) and delays[-1] > 4 * delays[0]
    dead = _row(session_factory, row.id)
    assert dead.state is NotificationState.dead
    assert dead.last_error.startswith("gave up after 5 attempts: HTTP 500")
    assert len(receiver.requests) == 5
    assert all(_signature_ok(r) for r in receiver.requests)

    # Administrators see it: the service, the CLI, and a requeue once the receiver is fixed.
    with session_factory() as s2:
        report = outbox_report(session=s2, dead=True)
        assert report.total(NotificationState.dead) == 1
        assert [r.id for r in report.rows] == [row.id]


def test_outbox_cli_lists_dead_rows_and_requeues(
    session, session_factory, clock, settings, receiver, db_url, tmp_path, monkeypatch
):
    receiver.respond = lambda r: (400, {}, b'{"error": "bad"}')
    s = notify_settings(settings, notify_channels="webhook")
    row = _enqueue(session, receiver, clock)
    run_delivery(session_factory, clock, s)
    assert _row(session_factory, row.id).state is NotificationState.dead  # 400: permanent

    monkeypatch.setenv("ISOCHECK_DATABASE_URL", db_url)
    monkeypatch.setenv("ISOCHECK_DATA_DIR", str(tmp_path / "cli"))
    result = CliRunner().invoke(outbox_command, ["--dead"])
    assert result.exit_code == 0, result.output
    assert "dead notifications (1 listed)" in result.output
    assert "HTTP 400" in result.output and "key=evt-1" in result.output
    assert CliRunner().invoke(outbox_command, []).output.count("#") == 0

    result = CliRunner().invoke(outbox_command, ["--requeue", str(row.id)])
    assert "requeued 1 of 1" in result.output
    receiver.respond = lambda r: (204, {}, b"")
    with session_factory() as s2:  # requeue_dead is a CAS: a second call finds nothing dead
        assert requeue_dead(session=s2, ids=[row.id], now=clock.now()) == 0
    # The CLI requeued at the wall-clock time; the frozen clock is before it, so move it on.
    clock.set(_row(session_factory, row.id).next_attempt_at)
    assert run_delivery(session_factory, clock, s) == 1
    assert _row(session_factory, row.id).state is NotificationState.sent


def test_retry_after_is_honoured(session, session_factory, clock, settings, receiver):
    receiver.respond = lambda r: (429, {"Retry-After": "900"}, b"{}")
    s = notify_settings(settings, notify_channels="webhook", notify_backoff_seconds=10)
    row = _enqueue(session, receiver, clock)
    run_delivery(session_factory, clock, s)
    current = _row(session_factory, row.id)
    assert current.state is NotificationState.pending
    assert current.next_attempt_at == clock.now() + timedelta(seconds=900)


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing catches it."""


class CrashAfterSending:
    """Wraps the real webhook channel: sends for real, then the process 'dies' before the
    sweep can record the result."""

    def __init__(self, channel):
        self.inner, self.name, self.max_batch = channel, channel.name, channel.max_batch

    def send_batch(self, messages):
        self.inner.send_batch(messages)
        raise Crash


def test_crash_between_send_and_mark_gives_at_most_one_duplicate_never_a_loss(
    session, session_factory, clock, settings, receiver
):
    s = notify_settings(settings, notify_channels="webhook", notify_lease_seconds=120)
    rows = [_enqueue(session, receiver, clock, key=f"evt-{i}") for i in range(3)]
    crashing = build_channels(s)
    crashing.channels["webhook"] = CrashAfterSending(crashing.channels["webhook"])

    with pytest.raises(Crash), session_factory() as s1:
        deliver_notifications(session=s1, clock=clock, settings=s, channels=crashing)
    assert len(receiver.requests) == 3
    for row in rows:  # claimed and leased, not marked
        current = _row(session_factory, row.id)
        assert current.state is NotificationState.sending and current.attempts == 1
        assert current.next_attempt_at == clock.now() + timedelta(seconds=120)

    # A healthy scheduler (this or another process) leaves the rows alone during the lease …
    clock.advance(seconds=119)
    assert run_delivery(session_factory, clock, s) == 0
    assert len(receiver.requests) == 3
    # … and resends them once when it has run out.
    clock.advance(seconds=1)
    assert run_delivery(session_factory, clock, s) == 3
    assert run_delivery(session_factory, clock, s) == 0
    clock.advance(hours=1)
    assert run_delivery(session_factory, clock, s) == 0

    keys = [r.json["idempotency_key"] for r in receiver.requests]
    assert sorted(keys) == sorted(["evt-0", "evt-1", "evt-2"] * 2)  # each exactly twice
    assert all(_signature_ok(r) for r in receiver.requests)
    for row in rows:
        current = _row(session_factory, row.id)
        assert current.state is NotificationState.sent and current.attempts == 2


def test_a_sender_whose_lease_ran_out_cannot_overwrite_the_new_owner(
    session, session_factory, clock, settings, receiver
):
    """Sender A claims, stalls past its lease; B reclaims and delivers; A's late 'retry' result
    must not put the delivered row back to pending."""
    from server.notify.channel import Outcome, Result
    from server.notify.delivery import record

    s = notify_settings(settings, notify_channels="webhook", notify_lease_seconds=60)
    row = _enqueue(session, receiver, clock)
    with session_factory() as a:
        [stale] = claim(session=a, channel="webhook", now=clock.now(), limit=10, lease_s=60)
    clock.advance(seconds=61)
    assert run_delivery(session_factory, clock, s) == 1  # B
    with session_factory() as a:
        counts = record(
            session=a,
            messages=[stale],
            results=[Result(Outcome.retry, "late")],
            now=clock.now(),
            settings=s,
        )
    assert sum(counts.values()) == 0
    current = _row(session_factory, row.id)
    assert current.state is NotificationState.sent and current.last_error is None
    with session_factory() as s3:
        assert s3.scalars(select(Notification)).all()[0].attempts == 2
