"""Delivering the outbox: claim due rows, send them through their channel, record the outcome.

Guarantees (docs/notifications.md):

- **At least once, never lost.** A row is claimed by a compare-and-swap ``pending → sending``
  that also pushes ``next_attempt_at`` one lease ahead and counts the attempt. If the process dies
  after sending but before recording, the row is due again when the lease ends and is sent once
  more: at most one duplicate per crash, which receivers drop by the idempotency key.
- **Never twice at the same time.** Two scheduler processes cannot both claim a row: the swap
  only takes rows that are still due, and taking one moves it a lease into the future (on
  PostgreSQL the candidate rows are also selected ``FOR UPDATE SKIP LOCKED``, so the two take
  disjoint batches without waiting). Recording a result checks the ``attempts`` value of the
  claim, so a sender whose lease ran out cannot overwrite the row another sender has reclaimed.
- **Bounded retries.** Retryable failures wait ``backoff × 2^(attempt-1)`` with jitter (or the
  receiver's ``Retry-After``), up to ``notify_max_attempts``; then the row is ``dead`` and shows in
  ``isocheck outbox --dead``.
- **Rate limits.** One token bucket per channel per process (``notify_rate_limits``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from server.config import ConfigError, Settings
from server.core.clock import Clock
from server.core.enums import NotificationState
from server.notify.channel import Channel, OutboxMessage, Outcome, Result
from server.notify.log import LogChannel
from server.notify.models import Notification
from server.notify.persons import EXPIRED_IN_QUIET_HOURS, QuietHours
from server.notify.ratelimit import TokenBucket
from server.people.models import Device, StaffUser

log = logging.getLogger("isocheck.notify")

#: Channels that can really send; each is replaced by a :class:`LogChannel` unless enabled.
REAL_CHANNELS = ("fcm", "email", "webhook")
#: Messages per second per channel when ``notify_rate_limits`` does not name the channel.
DEFAULT_RATES = {"fcm": 100.0, "email": 5.0, "webhook": 20.0, "log": 1000.0}
#: Rows in these states are delivered once ``next_attempt_at`` has passed (``sending`` = a lease
#: that ran out: its sender died).
DUE_STATES = (NotificationState.pending, NotificationState.sending)
_rng = random.Random()  # noqa: S311 - jitter, not security


# --------------------------------------------------------------------------- channels


@dataclass
class Channels:
    """The channel objects of one process, with their token buckets."""

    channels: dict[str, Channel]
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def get(self, name: str) -> Channel | None:
        return self.channels.get(name)

    def bucket(self, name: str) -> TokenBucket:
        if name not in self.buckets:
            self.buckets[name] = TokenBucket(DEFAULT_RATES.get(name, 10.0))
        return self.buckets[name]

    def close(self) -> None:
        for channel in self.channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                close()


def enabled_channels(settings: Settings) -> set[str]:
    """The real channels named in ``ISOCHECK_NOTIFY_CHANNELS`` (``log`` and blanks ignored)."""
    names = {n.strip().lower() for n in settings.notify_channels.split(",") if n.strip()}
    unknown = names - set(REAL_CHANNELS) - {"log"}
    if unknown:
        raise ConfigError(
            f"ISOCHECK_NOTIFY_CHANNELS names unknown channels {sorted(unknown)}; "
            f"choose from {', '.join(REAL_CHANNELS)} (anything not listed is logged)"
        )
    return names & set(REAL_CHANNELS)


def build_channels(settings: Settings) -> Channels:
    """Channel objects from the settings. A disabled channel is a :class:`LogChannel` under its
    name; an enabled one without its configuration is a :class:`ConfigError` naming the variable.
    """
    enabled = enabled_channels(settings)
    channels: dict[str, Channel] = {"log": LogChannel()}
    for name in REAL_CHANNELS:
        channels[name] = LogChannel(name, stand_in=True)
    if "fcm" in enabled:
        from server.notify.fcm import FcmChannel

        path = settings.fcm_credentials_file
        if path is None or not path.is_file():
            raise ConfigError(
                "channel fcm is enabled: set ISOCHECK_FCM_CREDENTIALS_FILE to the Firebase "
                f"service-account JSON file (now {path or 'unset'})"
            )
        channels["fcm"] = FcmChannel(credentials_file=path, public_url=settings.public_url)
    if "email" in enabled:
        from server.notify.email import EmailChannel

        if not settings.smtp_host or not settings.smtp_from:
            raise ConfigError(
                "channel email is enabled: set ISOCHECK_SMTP_HOST and ISOCHECK_SMTP_FROM"
            )
        channels["email"] = EmailChannel(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            ca_file=settings.smtp_ca_file,
        )
    if "webhook" in enabled:
        from server.notify.webhook import WebhookChannel

        if len(settings.webhook_secret) < 16:
            raise ConfigError(
                "channel webhook is enabled: set ISOCHECK_WEBHOOK_SECRET to a random string of "
                "at least 16 characters"
            )
        channels["webhook"] = WebhookChannel(secret=settings.webhook_secret)
    rates = {**DEFAULT_RATES, **settings.notify_rate_limits}
    buckets = {name: TokenBucket(rates.get(name, 10.0)) for name in channels}
    return Channels(channels=channels, buckets=buckets)


_cache: dict[int, tuple[Settings, Channels]] = {}
_cache_lock = threading.Lock()


def channels_for(settings: Settings) -> Channels:
    """The process's channels for ``settings``, built once (firebase apps and SMTP settings are
    set up once; token buckets keep their state between sweeps)."""
    with _cache_lock:
        cached = _cache.get(id(settings))
        if cached is None or cached[0] is not settings:
            cached = (settings, build_channels(settings))
            _cache[id(settings)] = cached
        return cached[1]


# --------------------------------------------------------------------------- the steps


def backoff_seconds(
    attempts: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Delay before the next try after ``attempts`` failed tries (1-based), in seconds:
    ``min(cap, base × 2^(attempts-1))`` scaled by a random factor in [0.5, 1] ("equal jitter"),
    so retries of many rows spread out yet each delay is at least half the nominal one."""
    nominal = min(cap, base * 2 ** max(0, attempts - 1))
    return nominal * (0.5 + 0.5 * (rng or _rng).random())


def due_channels(*, session: Session, now: datetime) -> list[str]:
    """Channels that have rows due at ``now``."""
    return list(
        session.scalars(
            select(Notification.channel)
            .where(Notification.state.in_(DUE_STATES), Notification.next_attempt_at <= now)
            .distinct()
        )
    )


def claim(
    *, session: Session, channel: str, now: datetime, limit: int, lease_s: float
) -> list[OutboxMessage]:
    """Claim up to ``limit`` due rows of ``channel`` and commit (see :func:`claim_with_count`)."""
    return claim_with_count(
        session=session, channel=channel, now=now, limit=limit, lease_s=lease_s
    )[0]


def claim_with_count(
    *, session: Session, channel: str, now: datetime, limit: int, lease_s: float
) -> tuple[list[OutboxMessage], int]:
    """Claim up to ``limit`` due rows of ``channel`` for this sender, and commit.

    1. Select the ids of due rows (``pending``, or ``sending`` with an expired lease), oldest
       first; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` so concurrent senders take disjoint rows.
    2. Swap them in one statement: ``UPDATE … SET state='sending', attempts=attempts+1,
       next_attempt_at=now+lease WHERE id IN (…) AND state IN (pending, sending) AND
       next_attempt_at<=now RETURNING …``. A row another sender swapped first is no longer due
       (its ``next_attempt_at`` moved a lease ahead), so it is not returned: the swap is the lock.
    3. Commit, so the lease is visible to every other sender before anything is sent.
    Returns the claimed rows and how many due rows were seen (more seen than claimed: another
    sender won those swaps; none seen: nothing is due).
    """
    ids = list(
        session.scalars(
            select(Notification.id)
            .where(
                Notification.channel == channel,
                Notification.state.in_(DUE_STATES),
                Notification.next_attempt_at <= now,
            )
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        session.commit()
        return [], 0
    swapped = session.execute(
        update(Notification)
        .where(
            Notification.id.in_(ids),
            Notification.state.in_(DUE_STATES),
            Notification.next_attempt_at <= now,
        )
        .values(
            state=NotificationState.sending,
            attempts=Notification.attempts + 1,
            next_attempt_at=now + timedelta(seconds=lease_s),
        )
        .returning(
            Notification.id,
            Notification.recipient,
            Notification.payload,
            Notification.idempotency_key,
            Notification.attempts,
        )
        .execution_options(synchronize_session=False)
    ).all()
    session.commit()
    order = {row_id: i for i, row_id in enumerate(ids)}
    claimed = [
        OutboxMessage(
            id=row.id,
            channel=channel,
            recipient=row.recipient,
            idempotency_key=row.idempotency_key,
            attempts=row.attempts,
            payload=dict(row.payload or {}),
        )
        for row in sorted(swapped, key=lambda r: order[r.id])
    ]
    return claimed, len(ids)


def record(
    *,
    session: Session,
    messages: Sequence[OutboxMessage],
    results: Sequence[Result],
    now: datetime,
    settings: Settings,
    rng: random.Random | None = None,
) -> Counter[str]:
    """Write each result onto its row, and commit; returns counts per new state.

    1. ``sent`` → state ``sent``, ``sent_at`` (all of them in one statement).
    2. ``retry`` → ``pending`` at ``now + max(backoff, Retry-After)``; ``dead`` once
       ``attempts`` reaches ``notify_max_attempts``.
    3. ``permanent`` → ``dead``; ``invalid_recipient`` → ``dead`` and the recipient is forgotten
       (an FCM token is removed from its device or staff record).
    Every update is guarded by ``state='sending' AND attempts=<our attempt>``: if our lease ran
    out and another sender took the row over, its result wins and ours is dropped (logged).
    """
    counts: Counter[str] = Counter()
    quiet = QuietHours(session=session, settings=settings)
    sent = [m for m, r in zip(messages, results, strict=True) if r.outcome is Outcome.sent]
    if sent:  # the common case, in one statement
        n = session.execute(
            update(Notification)
            .where(
                tuple_(Notification.id, Notification.attempts).in_(
                    [(m.id, m.attempts) for m in sent]
                ),
                Notification.state == NotificationState.sending,
            )
            .values(state=NotificationState.sent, sent_at=now, last_error=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        counts[NotificationState.sent.value] += n
        if n != len(sent):
            log.warning("%d sent notifications were taken over by another sender", len(sent) - n)
    for m, result in zip(messages, results, strict=True):
        values: dict[str, object] = {"last_error": result.detail}
        if result.outcome is Outcome.sent:
            continue
        held: datetime | None = None
        if result.outcome is Outcome.retry and m.attempts < settings.notify_max_attempts:
            delay = backoff_seconds(
                m.attempts,
                base=settings.notify_backoff_seconds,
                cap=settings.notify_backoff_max_seconds,
                rng=rng,
            )
            if result.retry_after is not None:
                delay = max(delay, min(result.retry_after, settings.notify_backoff_max_seconds))
            held = quiet.not_before(m, now + timedelta(seconds=delay))
        if held is not None:
            values.update(state=NotificationState.pending, next_attempt_at=held)
        else:
            given_up = f"gave up after {m.attempts} attempts: "
            if m.attempts < settings.notify_max_attempts:  # held past its due time
                given_up = EXPIRED_IN_QUIET_HOURS
            prefix = {
                Outcome.retry: given_up,
                Outcome.invalid_recipient: "invalid recipient: ",
            }.get(result.outcome, "")
            values.update(
                state=NotificationState.dead, last_error=(prefix + (result.detail or ""))[:4000]
            )
        swapped = session.execute(
            update(Notification)
            .where(
                Notification.id == m.id,
                Notification.state == NotificationState.sending,
                Notification.attempts == m.attempts,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if swapped != 1:
            log.warning("notification %s was taken over by another sender; result dropped", m.id)
            continue
        counts[str(values["state"])] += 1
        if result.outcome is Outcome.invalid_recipient:
            forget_recipient(session=session, channel=m.channel, recipient=m.recipient, now=now)
    session.commit()
    return counts


def release(*, session: Session, messages: Sequence[OutboxMessage], now: datetime) -> int:
    """Give claimed but unsent rows back (``pending`` at ``now``, the attempt not counted), and
    commit. Used when a sweep runs out of time before it reaches them."""
    released = 0
    for m in messages:
        released += session.execute(
            update(Notification)
            .where(
                Notification.id == m.id,
                Notification.state == NotificationState.sending,
                Notification.attempts == m.attempts,
            )
            .values(state=NotificationState.pending, attempts=m.attempts - 1, next_attempt_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    session.commit()
    return released


def forget_recipient(*, session: Session, channel: str, recipient: str, now: datetime) -> int:
    """A recipient the channel reported as nonexistent. For ``fcm``: clear the token from every
    device and staff record holding it, and mark the token's other pending rows dead (FCM would
    refuse them too). E-mail addresses and URLs are left for a person to correct. Returns the
    number of records changed."""
    if channel != "fcm":
        return 0
    changed = 0
    for model in (Device, StaffUser):
        changed += session.execute(
            update(model)
            .where(model.push_token == recipient)
            .values(push_token=None)
            .execution_options(synchronize_session=False)
        ).rowcount
    session.execute(
        update(Notification)
        .where(
            Notification.channel == channel,
            Notification.recipient == recipient,
            Notification.state == NotificationState.pending,
        )
        .values(state=NotificationState.dead, last_error="invalid recipient: token unregistered")
        .execution_options(synchronize_session=False)
    )
    if changed:
        log.info("forgot an unregistered FCM token on %d record(s)", changed)
    return changed


# --------------------------------------------------------------------------- the sweep


def deliver_notifications(
    *,
    session: Session,
    clock: Clock,
    settings: Settings,
    channels: Channels | None = None,
    rng: random.Random | None = None,
    max_seconds: float | None = None,
) -> int:
    """The delivery sweep (``scheduler.jobs``); returns how many rows it moved.

    1. List the channels with due rows.
    2. Per channel: :func:`claim` up to ``notify_batch_size`` rows (committed lease).
    3. Send them in chunks no larger than the channel's ``max_batch`` and its token bucket,
       waiting for tokens (the rate limit). A channel that raises fails only its chunk, as
       retryable: the rows are pushed forward with backoff and the loop goes on.
    4. :func:`record` each chunk's results at once (committed), so a crash loses little.
    5. Claim again until a claim sees fewer due rows than it asked for (rows lost to another
       sender's swap do not count as the end), or stop after ``max_seconds`` (default: a third of
       the lease); rows claimed but not reached by then are :func:`release`\\ d, so a lease never
       runs out under a live sender.
    """
    channels = channels if channels is not None else channels_for(settings)
    budget = max_seconds if max_seconds is not None else settings.notify_lease_seconds / 3
    started = time.monotonic()
    moved = 0
    for name in due_channels(session=session, now=clock.now()):
        session.commit()
        channel = channels.get(name)
        while time.monotonic() - started < budget:
            batch, seen = claim_with_count(
                session=session,
                channel=name,
                now=clock.now(),
                limit=settings.notify_batch_size,
                lease_s=settings.notify_lease_seconds,
            )
            if seen == 0:
                break
            moved += _send_claimed(
                session=session,
                channel=channel,
                name=name,
                batch=batch,
                clock=clock,
                settings=settings,
                channels=channels,
                rng=rng,
                deadline=started + budget,
            )
            if seen < settings.notify_batch_size:
                break
    return moved


def _send_claimed(
    *,
    session: Session,
    channel: Channel | None,
    name: str,
    batch: list[OutboxMessage],
    clock: Clock,
    settings: Settings,
    channels: Channels,
    rng: random.Random | None,
    deadline: float,
) -> int:
    """Steps 3-5 of :func:`deliver_notifications` for one claimed batch."""
    if channel is None:
        results = [Result(Outcome.permanent, f"no channel named {name!r}") for _ in batch]
        return sum(
            record(
                session=session,
                messages=batch,
                results=results,
                now=clock.now(),
                settings=settings,
                rng=rng,
            ).values()
        )
    bucket = channels.bucket(name)
    size = max(1, min(channel.max_batch, int(bucket.capacity)))
    moved = 0
    for start in range(0, len(batch), size):
        if time.monotonic() >= deadline:
            release(session=session, messages=batch[start:], now=clock.now())
            break
        chunk = batch[start : start + size]
        bucket.acquire(len(chunk))
        try:
            results = channel.send_batch(chunk)
            if len(results) != len(chunk):
                raise RuntimeError(f"{len(results)} results for {len(chunk)} messages")
        except Exception as exc:  # noqa: BLE001 - one failing chunk must not stop the sweep
            log.exception("channel %s failed on notifications %s", name, [m.id for m in chunk])
            detail = f"{exc.__class__.__name__}: {exc}"[:500]
            results = [Result(Outcome.retry, detail) for _ in chunk]
        counts = record(
            session=session,
            messages=chunk,
            results=results,
            now=clock.now(),
            settings=settings,
            rng=rng,
        )
        moved += sum(counts.values())
    return moved
