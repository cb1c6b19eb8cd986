"""The outbox's claims, results and releases row by row (issue 20: ``bench/mutation.py outbox``):
which rows a claim takes and in what order, what it writes, what each result writes (sent,
retry with backoff or Retry-After, giving up, permanent, invalid recipient), and the exact
backoff formula. ``server.notify.delivery`` on the real database."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from notify_helpers import notify_settings

from server.core.enums import NotificationState
from server.notify import delivery
from server.notify.channel import OutboxMessage, Outcome, Result
from server.notify.models import Notification

P, S, SENT, DEAD = (NotificationState.pending, NotificationState.sending, NotificationState.sent,
                    NotificationState.dead)  # fmt: skip


def _row(session, clock, *, key, channel="log", state=P, attempts=0, due_in_s=-1.0,
         payload=None, recipient="person:1"):  # fmt: skip
    payload = payload if payload is not None else {"k": key}
    n = Notification(
        channel=channel, recipient=recipient, payload=payload,
        idempotency_key=key, state=state, attempts=attempts,
        next_attempt_at=clock.now() + timedelta(seconds=due_in_s), created_at=clock.now(),
    )  # fmt: skip
    session.add(n)
    session.commit()
    return n


def _get(session, n_id) -> Notification:
    session.expire_all()
    return session.get(Notification, n_id)


def test_a_claim_takes_due_rows_of_its_channel_oldest_first_up_to_the_limit(session, clock):
    now = clock.now()
    rows = [_row(session, clock, key=f"k{i}", due_in_s=-10 + i) for i in range(4)]  # all due
    _row(session, clock, key="due-exactly-now", due_in_s=0)
    _row(session, clock, key="other-channel", channel="email", due_in_s=-100)
    _row(session, clock, key="not-due", due_in_s=1)
    expired = _row(session, clock, key="expired-lease", state=S, attempts=1, due_in_s=-100)
    # finished rows whose time is long past are never picked (nor counted as seen)
    _row(session, clock, key="sent-long-ago", state=SENT, attempts=1, due_in_s=-1000)
    _row(session, clock, key="dead-long-ago", state=DEAD, attempts=5, due_in_s=-1000)
    claimed, seen = delivery.claim_with_count(session=session, channel="log", now=now, limit=3,
                                              lease_s=300)  # fmt: skip
    assert [m.idempotency_key for m in claimed] == ["expired-lease", "k0", "k1"]
    assert seen == 3
    [first] = [m for m in claimed if m.id == expired.id]
    assert (first.channel, first.recipient, first.attempts, first.payload) == (
        "log", "person:1", 2, {"k": "expired-lease"})
    r = _get(session, rows[0].id)
    assert (r.state, r.attempts, r.next_attempt_at) == (S, 1, now + timedelta(seconds=300))
    claimed, seen = delivery.claim_with_count(session=session, channel="log", now=now, limit=10,
                                              lease_s=300)  # fmt: skip
    assert [m.idempotency_key for m in claimed] == ["k2", "k3", "due-exactly-now"]
    assert seen == 3
    assert delivery.claim_with_count(session=session, channel="log", now=now, limit=10,
                                     lease_s=300) == ([], 0)  # fmt: skip


def test_a_claimed_rows_payload_is_a_copy_and_an_empty_one_is_a_dict(session, clock):
    _row(session, clock, key="empty", payload={})
    [m] = delivery.claim(session=session, channel="log", now=clock.now(), limit=5, lease_s=60)
    assert m.payload == {} and isinstance(m.payload, dict)


def _claim_one(session, clock, key, **kw) -> OutboxMessage:
    n = _row(session, clock, key=key, **kw)
    [m] = [m for m in delivery.claim(session=session, channel=n.channel, now=clock.now(),
                                     limit=50, lease_s=300) if m.id == n.id]  # fmt: skip
    return m


def _record(session, settings, clock, messages, results, rng=None):
    return delivery.record(session=session, messages=messages, results=results,
                           now=clock.now(), settings=settings, rng=rng)  # fmt: skip


def test_sent_rows_are_sent_with_the_time_and_no_error(session, clock, settings):
    a, b = _claim_one(session, clock, "a"), _claim_one(session, clock, "b")
    counts = _record(session, settings, clock, [a, b], [Result.ok(), Result(Outcome.sent, "x")])
    assert dict(counts) == {"sent": 2}
    for m in (a, b):
        r = _get(session, m.id)
        assert (r.state, r.sent_at, r.last_error, r.attempts) == (SENT, clock.now(), None, 1)


def test_a_retry_waits_the_jittered_backoff(session, clock, settings):
    s = notify_settings(settings, notify_max_attempts=5, notify_backoff_seconds=10,
                        notify_backoff_max_seconds=600)  # fmt: skip
    m = _claim_one(session, clock, "r", attempts=2)  # this is the 3rd attempt
    counts = _record(session, s, clock, [m], [Result(Outcome.retry, "HTTP 503")],
                     rng=random.Random(3))  # fmt: skip
    assert dict(counts) == {"pending": 1}
    expected = delivery.backoff_seconds(3, base=10, cap=600, rng=random.Random(3))
    r = _get(session, m.id)
    assert (r.state, r.last_error, r.attempts) == (P, "HTTP 503", 3)
    assert r.next_attempt_at == clock.now() + timedelta(seconds=expected)
    assert 20 <= expected <= 40


@pytest.mark.parametrize("retry_after,wait", [
    (1000, 600),  # the receiver's wish, capped at our longest backoff
    (300, 300),  # longer than our backoff: the receiver's
    (1, None),  # shorter than our backoff: ours
])
def test_a_retry_after_is_honoured_within_the_cap(session, clock, settings, retry_after, wait):
    s = notify_settings(settings, notify_max_attempts=5, notify_backoff_seconds=10,
                        notify_backoff_max_seconds=600)  # fmt: skip
    m = _claim_one(session, clock, f"ra{retry_after}")
    _record(session, s, clock, [m], [Result(Outcome.retry, "429", retry_after=retry_after)],
            rng=random.Random(1))  # fmt: skip
    ours = delivery.backoff_seconds(1, base=10, cap=600, rng=random.Random(1))
    r = _get(session, m.id)
    assert r.next_attempt_at == clock.now() + timedelta(seconds=wait if wait else ours)


def test_the_last_retry_gives_up_with_the_count_in_the_error(session, clock, settings):
    s = notify_settings(settings, notify_max_attempts=3)
    below = _claim_one(session, clock, "below", attempts=1)  # 2nd of 3
    last = _claim_one(session, clock, "last", attempts=2)  # 3rd of 3
    counts = _record(session, s, clock, [below, last],
                     [Result(Outcome.retry, "timeout"), Result(Outcome.retry, "timeout")])
    assert dict(counts) == {"pending": 1, "dead": 1}
    assert _get(session, below.id).state is P
    r = _get(session, last.id)
    assert (r.state, r.last_error) == (DEAD, "gave up after 3 attempts: timeout")


def test_a_permanent_failure_is_dead_with_the_receivers_words(session, clock, settings):
    m = _claim_one(session, clock, "perm")
    n = _claim_one(session, clock, "perm-none")
    counts = _record(session, settings, clock, [m, n],
                     [Result(Outcome.permanent, "HTTP 400 bad payload"),
                      Result(Outcome.permanent)])  # fmt: skip
    assert dict(counts) == {"dead": 2}
    assert (_get(session, m.id).state, _get(session, m.id).last_error) == (
        DEAD, "HTTP 400 bad payload")
    assert _get(session, n.id).last_error == ""


def test_a_long_error_is_cut_to_4000_characters(session, clock, settings):
    m = _claim_one(session, clock, "long")
    _record(session, settings, clock, [m], [Result(Outcome.permanent, "x" * 5000)])
    assert _get(session, m.id).last_error == "x" * 4000


def test_an_invalid_fcm_recipient_is_forgotten_everywhere(session, clock, settings, world):
    from server.people.models import Device

    device = session.query(Device).first()
    device.push_token = "tok-1"
    session.commit()
    m = _claim_one(session, clock, "fcm-1", channel="fcm", recipient="tok-1")
    other = _row(session, clock, key="fcm-2", channel="fcm", recipient="tok-1", due_in_s=600)
    counts = _record(session, settings, clock, [m],
                     [Result(Outcome.invalid_recipient, "UNREGISTERED")])  # fmt: skip
    assert dict(counts) == {"dead": 1}
    r = _get(session, m.id)
    assert (r.state, r.last_error) == (DEAD, "invalid recipient: UNREGISTERED")
    assert session.get(Device, device.id).push_token is None
    assert _get(session, other.id).state is DEAD


def test_an_invalid_email_recipient_is_dead_but_kept(session, clock, settings):
    m = _claim_one(session, clock, "mail", channel="email", recipient="x@example.invalid")
    _record(session, settings, clock, [m], [Result(Outcome.invalid_recipient, "550")])
    r = _get(session, m.id)
    assert (r.state, r.last_error, r.recipient) == (
        DEAD, "invalid recipient: 550", "x@example.invalid")


def test_one_taken_over_row_does_not_drop_the_others_results(session, clock, settings):
    a, b, c = (_claim_one(session, clock, k) for k in "abc")
    stale = OutboxMessage(id=b.id, channel="log", recipient=b.recipient,
                          idempotency_key=b.idempotency_key, attempts=b.attempts + 1)  # fmt: skip
    counts = _record(session, settings, clock, [a, stale, c],
                     [Result(Outcome.permanent, "no"), Result(Outcome.permanent, "no"),
                      Result.ok()])  # fmt: skip
    assert dict(counts) == {"dead": 1, "sent": 1}
    assert [_get(session, m.id).state for m in (a, b, c)] == [DEAD, S, SENT]


def test_release_gives_back_the_rows_due_now_without_the_attempt(session, clock):
    m = _claim_one(session, clock, "rel", attempts=2)
    assert m.attempts == 3
    later = clock.now() + timedelta(seconds=5)
    assert delivery.release(session=session, messages=[m], now=later) == 1
    r = _get(session, m.id)
    assert (r.state, r.attempts, r.next_attempt_at) == (P, 2, later)
    assert delivery.release(session=session, messages=[m], now=later) == 0


@pytest.mark.parametrize("attempts,nominal", [
    (0, 30), (1, 30), (2, 60), (3, 120), (5, 480), (6, 600), (30, 600),
])
def test_backoff_formula(attempts, nominal):
    class Fixed(random.Random):
        def __init__(self, x):
            super().__init__()
            self.x = x

        def random(self):
            return self.x

    assert delivery.backoff_seconds(attempts, base=30, cap=600, rng=Fixed(0.0)) == nominal / 2
    assert delivery.backoff_seconds(attempts, base=30, cap=600, rng=Fixed(1.0)) == nominal
    assert delivery.backoff_seconds(attempts, base=30, cap=600, rng=Fixed(0.5)) == nominal * 0.75


def test_backoff_without_an_rng_uses_the_modules_own():
    values = {delivery.backoff_seconds(2, base=10, cap=100) for _ in range(50)}
    assert all(10 <= v <= 20 for v in values) and len(values) > 1


def test_release_gives_back_only_its_own_rows(session, clock):
    a, b = _claim_one(session, clock, "mine"), _claim_one(session, clock, "not-mine")
    assert a.attempts == b.attempts == 1
    assert delivery.release(session=session, messages=[a], now=clock.now()) == 1
    assert (_get(session, a.id).state, _get(session, b.id).state) == (P, S)
    assert _get(session, b.id).attempts == 1


def test_a_row_sent_between_the_pick_and_the_swap_is_not_claimed(session, clock):
    """Another sender finished the row (``sent``) after this claim read its id: the swap checks
    the state again and leaves it alone. The change is injected on the claim's own connection
    just before its UPDATE, as a concurrent commit would look."""
    from sqlalchemy import event

    n = _row(session, clock, key="raced")
    conn = session.connection()
    done = []

    def before(conn_, cursor, statement, params, context, executemany):
        if not done and statement.lstrip().upper().startswith("UPDATE NOTIFICATIONS"):
            done.append(True)
            cursor.execute(f"UPDATE notifications SET state = 'sent' WHERE id = {n.id}")

    event.listen(conn, "before_cursor_execute", before)
    try:
        claimed, seen = delivery.claim_with_count(session=session, channel="log",
                                                  now=clock.now(), limit=5, lease_s=60)
    finally:
        event.remove(conn, "before_cursor_execute", before)
    assert done and (claimed, seen) == ([], 1)
    r = _get(session, n.id)
    assert (r.state, r.attempts) == (SENT, 0)


def test_a_sent_result_before_others_does_not_stop_their_recording(session, clock, settings):
    a, b = _claim_one(session, clock, "first-sent"), _claim_one(session, clock, "then-dead")
    counts = _record(session, settings, clock, [a, b], [Result.ok(), Result(Outcome.permanent)])
    assert dict(counts) == {"sent": 1, "dead": 1}
    assert (_get(session, a.id).state, _get(session, b.id).state) == (SENT, DEAD)


def test_sent_rows_taken_over_are_counted_in_the_log(session, clock, settings, caplog):
    import logging

    a, b, c = (_claim_one(session, clock, k) for k in ("s1", "s2", "s3"))
    stale = [OutboxMessage(id=m.id, channel="log", recipient=m.recipient,
                           idempotency_key=m.idempotency_key, attempts=m.attempts + 1)
             for m in (b, c)]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="isocheck"):
        counts = _record(session, settings, clock, [a, *stale], [Result.ok()] * 3)
    assert dict(counts) == {"sent": 1}
    assert "2 sent notifications were taken over by another sender" in caplog.messages


def test_a_dropped_result_is_logged_and_the_next_ones_still_recorded(session, clock, settings,
                                                                     caplog):
    import logging

    b, c = _claim_one(session, clock, "taken"), _claim_one(session, clock, "after")
    stale = OutboxMessage(id=b.id, channel="log", recipient=b.recipient,
                          idempotency_key=b.idempotency_key, attempts=b.attempts + 1)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="isocheck"):
        counts = _record(session, settings, clock, [stale, c],
                         [Result(Outcome.permanent, "no"), Result(Outcome.permanent, "no")])
    assert dict(counts) == {"dead": 1}
    assert _get(session, c.id).state is DEAD
    assert (f"notification {b.id} was taken over by another sender; result dropped"
            in caplog.messages)  # fmt: skip


def test_a_sent_row_forgets_the_error_of_an_earlier_try(session, clock, settings):
    n = _row(session, clock, key="retried")
    n.last_error = "HTTP 503"
    session.commit()
    [m] = delivery.claim(session=session, channel="log", now=clock.now(), limit=5, lease_s=60)
    _record(session, settings, clock, [m], [Result.ok()])
    assert (_get(session, n.id).state, _get(session, n.id).last_error) == (SENT, None)
