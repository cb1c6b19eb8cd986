"""The delivery sweep's own rules: the log default, configuration errors, containment of a
failing channel, unknown channels, the rate limit."""

from __future__ import annotations

import logging

import pytest
from notify_helpers import notify_settings, run_delivery

from server.config import ConfigError
from server.core.enums import NotificationState
from server.notify.alerts import notify_alert
from server.notify.channel import Outcome, Result
from server.notify.delivery import backoff_seconds, build_channels, channels_for
from server.notify.log import LogChannel
from server.notify.models import Notification
from server.notify.outbox import enqueue
from server.notify.ratelimit import TokenBucket


def _states(session_factory) -> dict[str, NotificationState]:
    with session_factory() as s:
        return {n.idempotency_key: n.state for n in s.query(Notification)}


def test_default_settings_log_every_channel_without_credentials(
    session, session_factory, clock, settings, world, caplog
):
    from server.alerts.service import raise_alert
    from server.core.enums import AlertKind

    assert settings.notify_channels == "log"
    channels = build_channels(settings)
    assert all(isinstance(c, LogChannel) for c in channels.channels.values())
    assert channels_for(settings) is channels_for(settings)  # built once per process
    alert, _ = raise_alert(
        session=session, person=world.person, kind=AlertKind.outside_home, now=clock.now(),
        dedupe_key="out:1",
    )  # fmt: skip
    notify_alert(session=session, alert=alert, now=clock.now())
    session.commit()

    with caplog.at_level(logging.INFO, logger="isocheck.notify"):
        moved = run_delivery(session_factory, clock, settings)
    assert moved >= 2
    assert set(_states(session_factory).values()) == {NotificationState.sent}
    assert "via fcm (channel disabled: logged only)" in caplog.text
    assert "tok-ward1" in caplog.text


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"notify_channels": "fcm"}, "ISOCHECK_FCM_CREDENTIALS_FILE"),
        ({"notify_channels": "email", "smtp_host": "mail"}, "ISOCHECK_SMTP_FROM"),
        ({"notify_channels": "webhook", "webhook_secret": "short"}, "ISOCHECK_WEBHOOK_SECRET"),
        ({"notify_channels": "fcm,pigeon"}, "unknown channels ['pigeon']"),
    ],
)
def test_an_enabled_channel_without_its_settings_is_a_config_error(settings, overrides, variable):
    with pytest.raises(ConfigError, match=variable.replace("[", r"\[").replace("]", r"\]")):
        build_channels(settings.model_copy(update=overrides))


class Exploding:
    name, max_batch = "webhook", 10

    def send_batch(self, messages):
        raise RuntimeError("library bug")


class Counting:
    """Accepts everything, remembering the chunk sizes it was given."""

    def __init__(self, name, max_batch):
        self.name, self.max_batch, self.chunks = name, max_batch, []

    def send_batch(self, messages):
        self.chunks.append(len(messages))
        return [Result(Outcome.sent) for _ in messages]


def _rows(session, clock, channel, n, prefix="r"):
    for i in range(n):
        enqueue(
            session=session, channel=channel, recipient="x", payload={}, now=clock.now(),
            idempotency_key=f"{prefix}{i}",
        )  # fmt: skip
    session.commit()


def test_a_channel_that_raises_pushes_its_rows_forward_and_the_sweep_goes_on(
    session, session_factory, clock, settings
):
    _rows(session, clock, "webhook", 3, "w")
    _rows(session, clock, "email", 2, "e")
    s = notify_settings(settings)
    channels = build_channels(s)
    channels.channels["webhook"] = Exploding()
    channels.channels["email"] = Counting("email", 50)

    assert run_delivery(session_factory, clock, s, channels) == 5
    with session_factory() as check:
        for row in check.query(Notification).filter_by(channel="webhook"):
            assert row.state is NotificationState.pending and row.attempts == 1
            assert row.last_error == "RuntimeError: library bug"
            assert row.next_attempt_at > clock.now()
    assert channels.channels["email"].chunks == [2]
    assert _states(session_factory)["e0"] is NotificationState.sent


def test_a_row_for_an_unknown_channel_is_dead_not_stuck(session, session_factory, clock, settings):
    _rows(session, clock, "pigeon", 1)
    run_delivery(session_factory, clock, settings)
    with session_factory() as check:
        [row] = check.query(Notification).all()
        assert row.state is NotificationState.dead and "no channel named 'pigeon'" in row.last_error


def test_rate_limit_sizes_chunks_and_waits_for_tokens(session, session_factory, clock, settings):
    _rows(session, clock, "email", 7)
    s = notify_settings(settings, notify_rate_limits={"email": 3.0})
    channels = build_channels(s)
    slept: list[float] = []
    fake_now = [0.0]
    bucket = TokenBucket(
        3.0, monotonic=lambda: fake_now[0],
        sleep=lambda t: (slept.append(t), fake_now.__setitem__(0, fake_now[0] + t)),
    )  # fmt: skip
    channels.buckets["email"] = bucket
    counting = channels.channels["email"] = Counting("email", 50)

    assert run_delivery(session_factory, clock, s, channels) == 7
    assert counting.chunks == [3, 3, 1]  # never more than a second's worth at once
    assert sum(slept) == pytest.approx(7 / 3 - 1)  # 3 at once, then 3 per second


def test_token_bucket_refills_at_its_rate():
    now = [100.0]
    bucket = TokenBucket(
        2.0, monotonic=lambda: now[0], sleep=lambda t: now.__setitem__(0, now[0] + t)
    )
    assert bucket.acquire(2) == 0  # full at start
    assert bucket.acquire(1) == pytest.approx(0.5)
    now[0] += 10  # idle: capped at capacity
    assert bucket.acquire(2) == 0
    with pytest.raises(ValueError):
        bucket.acquire(3)


def test_backoff_doubles_with_jitter_and_is_capped():
    import random

    rng = random.Random(7)
    for attempt in range(1, 12):
        nominal = min(600, 30 * 2 ** (attempt - 1))
        d = backoff_seconds(attempt, base=30, cap=600, rng=rng)
        assert nominal / 2 <= d <= nominal


def test_released_rows_are_due_again_without_losing_an_attempt(
    session, session_factory, clock, settings
):
    from server.notify.delivery import claim, release

    _rows(session, clock, "log", 2)
    with session_factory() as s1:
        claimed = claim(session=s1, channel="log", now=clock.now(), limit=10, lease_s=300)
        assert [m.attempts for m in claimed] == [1, 1]
        assert claim(session=s1, channel="log", now=clock.now(), limit=10, lease_s=300) == []
        assert release(session=s1, messages=claimed, now=clock.now()) == 2
    with session_factory() as check:
        rows = check.query(Notification).all()
        assert {(r.state, r.attempts) for r in rows} == {(NotificationState.pending, 0)}
    assert run_delivery(session_factory, clock, settings) == 2
