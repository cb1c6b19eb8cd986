"""How the notification outbox's costs grow with its size.

    uv run python bench/notify_bench.py            # SQLite; PostgreSQL too when
                                                   # ISOCHECK_TEST_DATABASE_URL is set

For each backend and outbox size N it measures:

- ``enqueue``: writing one row with :func:`server.notify.outbox.enqueue` (a key lookup and an
  insert), per row, in one transaction of 1,000 rows;
- ``deliver``: a delivery sweep moving N due rows through the ``log`` channel (no network, no
  rate limit), i.e. the outbox's own overhead per row: claim (select + compare-and-swap), record
  (compare-and-swap) and the commits;
- ``idle sweep``: a sweep that finds nothing due in a table holding N delivered rows — what every
  scheduler pays every few seconds.

Prints a table and writes ``bench/results/notify_bench.json``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from server.config import load_settings  # noqa: E402
from server.core.clock import FrozenClock  # noqa: E402
from server.core.db import make_engine, make_session_factory, session_scope  # noqa: E402
from server.core.enums import NotificationState  # noqa: E402
from server.models import Base  # noqa: E402
from server.notify.delivery import build_channels, deliver_notifications  # noqa: E402
from server.notify.models import Notification  # noqa: E402
from server.notify.outbox import enqueue  # noqa: E402

SIZES = (1_000, 10_000, 50_000)
T0 = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
RESULTS = REPO / "bench" / "results" / "notify_bench.json"


def _bulk_rows(session, n: int, prefix: str) -> None:
    rows = [
        {
            "channel": "log",
            "recipient": f"person:{i}",
            "payload": {"kind": "bench", "idempotency_key": f"{prefix}{i}"},
            "idempotency_key": f"{prefix}{i}",
            "state": NotificationState.pending,
            "attempts": 0,
            "next_attempt_at": T0,
            "created_at": T0,
        }
        for i in range(n)
    ]
    for start in range(0, n, 5000):
        session.execute(insert(Notification), rows[start : start + 5000])
    session.commit()


def run(url: str, backend: str) -> list[dict]:
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    settings = load_settings(
        database_url=url,
        secret_key="bench-" + "x" * 40,
        encryption_key="",
        data_dir=Path("/tmp/isocheck-notify-bench"),
        notify_batch_size=500,
        notify_rate_limits={"log": 1e9},
        notify_lease_seconds=3600,
    )
    channels = build_channels(settings)
    clock = FrozenClock(T0)
    out = []
    done = 0
    with session_scope(factory) as session:
        started = time.perf_counter()
        for i in range(1000):
            enqueue(
                session=session, channel="log", recipient="x", payload={"kind": "bench"},
                idempotency_key=f"enq-{i}", now=T0,
            )  # fmt: skip
        enqueue_ms = (time.perf_counter() - started) * 1000 / 1000
    for n in SIZES:
        with factory() as session:
            _bulk_rows(session, n - (1000 if done == 0 else 0), f"b{n}-")
        started = time.perf_counter()
        with session_scope(factory) as session:
            moved = deliver_notifications(
                session=session, clock=clock, settings=settings, channels=channels,
                max_seconds=3600,
            )  # fmt: skip
        deliver_s = time.perf_counter() - started
        done += moved
        idle = []
        for _ in range(20):
            started = time.perf_counter()
            with session_scope(factory) as session:
                deliver_notifications(
                    session=session, clock=clock, settings=settings, channels=channels
                )
            idle.append(time.perf_counter() - started)
        idle.sort()
        out.append(
            {
                "backend": backend,
                "rows_delivered": moved,
                "rows_in_table": done,
                "enqueue_ms_per_row": round(enqueue_ms, 3),
                "deliver_s": round(deliver_s, 3),
                "deliver_rows_per_s": round(moved / deliver_s),
                "idle_sweep_ms_median": round(idle[len(idle) // 2] * 1000, 2),
            }
        )
        print(
            f"{backend:<10} {moved:>7} {done:>8} {enqueue_ms:>9.3f} {deliver_s:>9.2f} "
            f"{moved / deliver_s:>9.0f} {idle[len(idle) // 2] * 1000:>9.2f}",
            flush=True,
        )
    engine.dispose()
    return out


def main() -> None:
    logging.getLogger("isocheck.notify").setLevel(logging.WARNING)  # the log channel is quiet
    print(
        f"{'backend':<10} {'moved':>7} {'in table':>8} {'enq ms/r':>9} {'deliver s':>9} "
        f"{'rows/s':>9} {'idle ms':>9}"
    )
    results = []
    with TemporaryDirectory() as tmp:
        results += run(f"sqlite:///{tmp}/bench.db", "sqlite")
    pg = os.environ.get("ISOCHECK_TEST_DATABASE_URL")
    if pg:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = make_engine(pg)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(pg).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            results += run(url.render_as_string(hide_password=False), "postgresql")
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"machine": f"{os.cpu_count()} cores", "sizes": SIZES, "results": results}, indent=2
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
