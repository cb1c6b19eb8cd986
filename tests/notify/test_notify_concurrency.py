"""Two delivery sweeps at once (two threads, own sessions; PostgreSQL when configured) never send
one row twice."""

from __future__ import annotations

import threading
from collections import Counter

from notify_helpers import notify_settings
from sqlalchemy import func, select

from server.core.enums import NotificationState
from server.notify.delivery import build_channels, deliver_notifications
from server.notify.models import Notification
from server.notify.outbox import enqueue

ROWS = 240


def test_two_concurrent_sweeps_never_send_a_row_twice(
    session, session_factory, clock, settings, receiver, db_backend
):
    for i in range(ROWS):
        enqueue(
            session=session,
            channel="webhook",
            recipient=f"{receiver.url}/hook",
            payload={"kind": "test", "n": i},
            idempotency_key=f"k-{i}",
            now=clock.now(),
        )
    session.commit()
    # Small batches so the two senders go back for more many times and meet on the same rows.
    s = notify_settings(settings, notify_channels="webhook", notify_batch_size=8)
    start = threading.Barrier(2)
    moved: list[int] = []
    errors: list[BaseException] = []

    def sender() -> None:
        channels = build_channels(s)  # each "process" has its own channels and buckets
        try:
            start.wait()
            with session_factory() as own:
                moved.append(
                    deliver_notifications(session=own, clock=clock, settings=s, channels=channels)
                )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors

    seen = Counter(r.json["idempotency_key"] for r in receiver.requests)
    assert len(seen) == ROWS, "every row delivered"
    assert max(seen.values()) == 1, [k for k, n in seen.items() if n > 1]
    assert sum(moved) == ROWS
    with session_factory() as check:
        states = dict(
            check.execute(
                select(Notification.state, func.count()).group_by(Notification.state)
            ).all()
        )
        assert states == {NotificationState.sent: ROWS}
        assert check.scalar(select(func.max(Notification.attempts))) == 1
    print(f"{db_backend}: the two senders moved {sorted(moved)} rows")
