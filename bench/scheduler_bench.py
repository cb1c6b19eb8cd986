"""Scheduler benchmark on PostgreSQL: planning a day, and sweeps with many prompts due at once.

    uv run python bench/scheduler_bench.py            # 1k / 10k / 100k people
    uv run python bench/scheduler_bench.py --quick    # 1k / 10k people

Works in a dedicated schema of the database ``--url`` (default: the test database), dropped
afterwards. Prints a table and writes ``bench/results/scheduler_bench.json``.

What is measured, for each size N:

- **plan a day**: N active people (bulk-loaded with COPY) get one local day of prompts planned
  (3 windows + 1 spot check = 4 N prompts) by the planning sweep's batches, committed per batch;
- **open sweep**: N/10 … N prompts fall due at the same instant; one run of the ``open_due`` job
  opens them all and writes one push per prompt to the outbox;
- **remind sweep** and **close sweep** (every prompt unanswered: ``missed`` + one alert each,
  told to the ward's staff) on the same prompts.

Statements are counted with a ``before_cursor_execute`` listener (one per round trip: a
multi-row ``INSERT`` page counts once), to show the sweeps are batched, not one per row.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event, func, select, text, update
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scheduler import jobs  # noqa: E402
from server.checkins.models import CheckinPrompt  # noqa: E402
from server.config import load_settings  # noqa: E402
from server.core.clock import FrozenClock  # noqa: E402
from server.core.db import make_engine, make_session_factory  # noqa: E402
from server.core.enums import AreaKind, PromptState, StaffRole  # noqa: E402
from server.heartbeat import SchedulerHeartbeat  # noqa: E402
from server.models import Base  # noqa: E402
from server.people.models import Area, StaffUser  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: 00:05 on Tuesday 24 November 2026 in Ho Chi Minh City: a 12 h horizon plans exactly that day.
MIDNIGHT = datetime(2026, 11, 23, 17, 5, tzinfo=UTC)
WARDS = 20
TARGETS = {"plan_100k_s": 60.0, "sweep_10k_s": 5.0}


class Counter:
    def __init__(self, engine) -> None:
        self.n = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_args) -> None:
        self.n += 1


def _world(factory) -> list[int]:
    with factory() as s:
        city = Area(code="C", name="City", kind=AreaKind.city, path="")
        s.add(city)
        s.flush()
        city.path = f"{city.id}/"
        district = Area(code="D", name="District", kind=AreaKind.district, parent_id=city.id)
        s.add(district)
        s.flush()
        district.path = f"{city.path}{district.id}/"
        wards = []
        for i in range(WARDS):
            ward = Area(code=f"W{i}", name=f"Ward {i}", kind=AreaKind.ward, parent_id=district.id)
            s.add(ward)
            s.flush()
            ward.path = f"{district.path}{ward.id}/"
            wards.append(ward.id)
        for area_id in [city.id, district.id, *wards]:
            s.add(
                StaffUser(
                    username=f"s{area_id}",
                    full_name="Staff",
                    password_hash="x",
                    role=StaffRole.area_staff,
                    area_id=area_id,
                    email=f"s{area_id}@example.invalid",
                )
            )
        s.commit()
        return wards


def _copy_people(engine, n: int, wards: list[int], offset: int) -> None:
    """COPY ``n`` active people (ids after ``offset``) in one round trip."""
    start = (MIDNIGHT - timedelta(days=2)).isoformat()
    end = (MIDNIGHT + timedelta(days=10)).isoformat()
    buf = io.StringIO()
    for i in range(offset, offset + n):
        buf.write(
            f"Person {i}\t09{i:08d}\tF0\t{wards[i % len(wards)]}\tHome {i}\t10.8\t106.7\t100\t"
            f"{start}\t{end}\tactive\t{{}}\tf\tgreen\t1\t{start}\t{start}\n"
        )
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(
            "COPY persons (full_name, phone, category, ward_id, home_address, home_lat, home_lon,"
            " geofence_radius_m, isolation_start, isolation_end, status, risk_factors,"
            " is_high_risk, risk_level, max_devices, created_at, updated_at) FROM STDIN"
        ) as copy:
            copy.write(buf.getvalue())
        raw.commit()
    finally:
        raw.close()


def _run(job, factory, settings, at: datetime, counter: Counter) -> tuple[float, int, int]:
    before = counter.n
    started = time.perf_counter()
    with factory() as session:
        moved = job(session=session, clock=FrozenClock(at), settings=settings)
        session.commit()
    return time.perf_counter() - started, counter.n - before, moved


def _stage_due(factory, k: int, at: datetime, *, overdue: bool) -> None:
    """Make the first ``k`` prompts fall due at ``at`` (planned, opening now), or be overdue
    (open since 30 min, due 10 min ago) with the close sweep's heartbeat fresh."""
    with factory() as s:
        s.execute(text("UPDATE checkin_prompts SET state = 'cancelled'"))
        ids = select(CheckinPrompt.id).order_by(CheckinPrompt.id).limit(k).scalar_subquery()
        if overdue:
            values = dict(
                state=PromptState.open,
                opens_at=at - timedelta(minutes=30),
                opened_at=at - timedelta(minutes=30),
                reminded_at=None,
                remind_at=at - timedelta(minutes=15),
                due_at=at - timedelta(minutes=10),
            )
        else:
            values = dict(
                state=PromptState.planned,
                opens_at=at - timedelta(seconds=1),
                opened_at=None,
                reminded_at=None,
                remind_at=at + timedelta(minutes=14),
                due_at=at + timedelta(minutes=19),
            )
        s.execute(update(CheckinPrompt).where(CheckinPrompt.id.in_(ids)).values(**values))
        s.execute(text("DELETE FROM notifications"))
        s.execute(text("DELETE FROM audit_events"))
        s.execute(text("DELETE FROM alerts"))
        s.merge(
            SchedulerHeartbeat(
                name=jobs.CLOSE_SWEEP, last_run_at=at - timedelta(seconds=5), instance="bench"
            )
        )
        s.commit()
        s.execute(text("ANALYZE"))
        s.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ISOCHECK_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--quick", action="store_true", help="1k and 10k people only")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scheduler_bench.json"))
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    due_sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]

    schema = f"bench_sched_{uuid.uuid4().hex[:8]}"
    admin = make_engine(args.url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(args.url).update_query_dict({"options": f"-csearch_path={schema}"})
    url_s = url.render_as_string(hide_password=False)
    results: dict = {"plan": [], "sweeps": [], "targets": TARGETS}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings(
                database_url=url_s, data_dir=Path(tmp), secret_key="b" * 48,
                schedule_horizon_hours=12, scheduler_sweep_budget_seconds=1e9,
            )  # fmt: skip
            engine = make_engine(url_s)
            Base.metadata.create_all(engine)
            factory = make_session_factory(engine)
            counter = Counter(engine)
            wards = _world(factory)
            loaded = 0
            for n in sizes:
                t = time.perf_counter()
                _copy_people(engine, n - loaded, wards, loaded)
                loaded = n
                with factory() as s:
                    s.execute(
                        text(
                            "TRUNCATE schedule_plans, notifications, alerts, "
                            "checkin_prompts CASCADE"
                        )
                    )
                    s.commit()
                    s.execute(text("ANALYZE"))
                    s.commit()
                copy_s = time.perf_counter() - t
                seconds, statements, prompts = _run(
                    jobs.plan_prompts, factory, settings, MIDNIGHT, counter
                )
                row = {
                    "people": n,
                    "load_people_s": round(copy_s, 2),
                    "plan_day_s": round(seconds, 2),
                    "prompts": prompts,
                    "statements": statements,
                    "us_per_prompt": round(seconds / max(prompts, 1) * 1e6, 1),
                }
                results["plan"].append(row)
                print(
                    f"plan  N={n:>7}: {seconds:7.2f} s  {prompts:>7} prompts  "
                    f"{statements:>5} statements  (COPY {copy_s:.2f} s)",
                    flush=True,
                )
            at = MIDNIGHT + timedelta(hours=3)
            with factory() as s:
                total = s.scalar(select(func.count()).select_from(CheckinPrompt))
            for k in [k for k in due_sizes if k <= total]:
                row = {"due": k, "people": loaded}
                _stage_due(factory, k, at, overdue=False)
                row["open_s"], row["open_statements"], moved = _run(
                    jobs.open_due, factory, settings, at, counter
                )
                assert moved == k, (moved, k)
                row["remind_s"], row["remind_statements"], moved = _run(
                    jobs.remind_due, factory, settings, at + timedelta(minutes=15), counter
                )
                assert moved == k, (moved, k)
                if True:  # every prompt missed: one alert each, told to the ward
                    _stage_due(factory, k, at, overdue=True)
                    row["close_s"], row["close_statements"], moved = _run(
                        jobs.close_overdue, factory, settings, at, counter
                    )
                    assert moved == k, (moved, k)
                for key in list(row):
                    if key.endswith("_s"):
                        row[key] = round(row[key], 2)
                results["sweeps"].append(row)
                print(
                    f"sweep K={k:>7}: open {row['open_s']:6.2f} s / {row['open_statements']}"
                    f" st, remind {row['remind_s']:6.2f} s / {row['remind_statements']} st, "
                    f"close {row.get('close_s', '-')} s / {row.get('close_statements', '-')} st",
                    flush=True,
                )
            engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "database": make_url(args.url).render_as_string(hide_password=True),
    }
    results["quick"] = args.quick
    print()
    print("| people | plan a day (s) | prompts | statements | µs/prompt |")
    print("|---:|---:|---:|---:|---:|")
    for r in results["plan"]:
        print(
            f"| {r['people']:,} | {r['plan_day_s']} | {r['prompts']:,} | {r['statements']} "
            f"| {r['us_per_prompt']} |"
        )
    print()
    print(
        "| prompts due at once | open sweep (s) | statements | remind (s) | statements "
        "| close, all missed (s) | statements |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results["sweeps"]:
        print(
            f"| {r['due']:,} | {r['open_s']} | {r['open_statements']} | {r['remind_s']} | "
            f"{r['remind_statements']} | {r.get('close_s', '–')} | "
            f"{r.get('close_statements', '–')} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
