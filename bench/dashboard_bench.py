"""The dashboard and the phone API at city scale (issue 18): p50/p95 and SQL statements per page.

    uv run python bench/dashboard_bench.py --quick            # 10,000 persons (fill ~1 min)
    uv run python bench/dashboard_bench.py                    # 100,000 persons (fill: long)
    uv run python bench/dashboard_bench.py --quick --reuse    # keep the filled database
    uv run python bench/dashboard_bench.py --fill-only        # fill, no timing

1. A PostgreSQL database of its own (``isocheck_bench`` / ``isocheck_bench_quick`` on
   127.0.0.1:5432, ``--url`` to change), migrated with the project's Alembic migrations and
   filled in bulk with ``INSERT … SELECT generate_series`` inside the server: one city, 20
   districts, 300 wards; 100,000 persons of whom 30,000 isolate now; 25 check-in prompts a
   person (2.5 M) and 2.5 M attempts (one per answered prompt, a quality retake before one in
   five); 10 declarations a person (1 M); 2 alerts a person (200,000; 3,000 open, 3,000
   acknowledged), each with its escalation notification (outbox, delivered) and two audit events;
   a device for each isolating person. ``--quick`` is the same city with 10× fewer people. With
   ``--reuse`` a database already filled at that size is kept (filling is the slow part); only
   the benchmark phones' current prompts are moved to now.
2. The real app under gunicorn (``server.gunicorn_conf``: 2 workers × 2 threads, production
   mode, Redis rate-limit store, rate limits off so the load is not refused, no in-process
   scheduler) on loopback, ``ISOCHECK_SQL_STATEMENTS_HEADER=1`` so every response says how many
   statements it sent (``X-SQL-Statements``, a ``before_cursor_execute`` listener in the app:
   per request, unlike pg_stat_statements which is not installed here and aggregates per
   statement text).
3. A ward, a district and a city staff member log in (the real login form, CSRF token and
   session cookie) and load each page ``--runs`` times, sequentially: alert queue, review queue,
   persons list (default sort, a name search, a phone search, page 20), a person page with its
   charts, statistics (7 days) and the statistics CSV (31 days). Phones of isolating persons
   call ``listMyHistory`` and ``getCurrentPrompt`` with their device tokens.

Prints one table (p50, p95, max, the app's and the database's CPU ms per request, statements,
bytes) and writes
``bench/results/dashboard_bench.json`` under the key ``quick``/``full`` (and ``--label``).
"""

# ruff: noqa: E501 - the fill SQL reads better unwrapped
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from server import migrate  # noqa: E402
from server.core.security import hash_password  # noqa: E402

RESULTS = REPO / "bench" / "results"
PASSWORD = "bench-password-18"  # noqa: S105 - a throwaway bench account
STAFF = {"ward": "bench_ward", "district": "bench_district", "city": "bench_city"}
PROMPTS_PER_PERSON = 25
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
          "Đỗ", "Hồ", "Ngô", "Dương", "Lý"]  # fmt: skip
MIDDLE = ["Văn", "Thị", "Hữu", "Minh", "Ngọc", "Thanh", "Quốc", "Đức", "Thu", "Gia", "Bảo"]
GIVEN = ["An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hạnh", "Hiếu", "Hoa", "Hùng", "Hương",
         "Khánh", "Lan", "Linh", "Long", "Mai", "Nam", "Nga", "Phúc", "Phương", "Quân", "Sơn",
         "Tâm", "Thảo", "Trang", "Tuấn", "Vy", "Yến", "Khoa", "Nhung", "Thắng"]  # fmt: skip


def _array(values: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + v + "'" for v in values) + "]"


def fill_sql(n: int) -> list[tuple[str, str]]:
    """The statements that fill a migrated, empty database with ``n`` persons (``n`` ≥ 300),
    as (what, SQL). Everything is relative to ``:now`` (the fill time)."""
    active = n * 3 // 10
    k = PROMPTS_PER_PERSON
    fam, mid, giv = _array(FAMILY), _array(MIDDLE), _array(GIVEN)
    # ids: city 1, districts 2..21, wards 22..321 (15 a district); paths are the chains of ids
    # with a trailing slash, as the app writes them (server/people/models.py: "1/4/9/")
    return [
        ("areas", """
INSERT INTO areas (id, code, name, kind, parent_id, path, created_at)
SELECT 1, '79', 'TP Hồ Chí Minh', 'city', NULL, '1/', :now
UNION ALL
SELECT 2 + d, '79-' || d, 'Quận ' || (d + 1), 'district', 1, '1/' || (2 + d) || '/', :now
FROM generate_series(0, 19) d
UNION ALL
SELECT 22 + w, '79-' || (w / 15) || '-' || (w % 15), 'Phường ' || (w % 15 + 1), 'ward',
       2 + w / 15, '1/' || (2 + w / 15) || '/' || (22 + w) || '/', :now
FROM generate_series(0, 299) w"""),
        ("persons", f"""
INSERT INTO persons (id, full_name, phone, national_id, category, ward_id, home_address,
    home_lat, home_lon, geofence_radius_m, isolation_start, isolation_end, status, risk_factors,
    is_high_risk, risk_level, max_devices, released_at, created_at, updated_at)
SELECT i,
    ({fam})[1 + i % 16] || ' ' || ({mid})[1 + (i / 16) % 11] || ' ' || ({giv})[1 + (i / 176) % 31],
    '09' || lpad(i::text, 8, '0'), '079' || lpad(i::text, 9, '0'),
    CASE WHEN i % 3 = 0 THEN 'F1' ELSE 'F0' END,
    22 + (i - 1) % 300, i || ' Nguyễn Văn Nghi, Gò Vấp',
    10.8 + (i % 100) / 1000.0, 106.7 + (i % 97) / 1000.0, 100,
    s.start, s.start + interval '14 days',
    CASE WHEN i <= {active} THEN 'active' ELSE 'released' END, '{{}}',
    i % 7 = 0,
    CASE WHEN (i + i / 300) % 100 = 0 THEN 'red' WHEN (i + i / 300) % 33 = 0 THEN 'orange'
         WHEN (i + i / 300) % 10 = 0 THEN 'yellow' ELSE 'green' END,
    2, CASE WHEN i > {active} THEN s.start + interval '14 days' END, s.start, s.start
FROM generate_series(1, {n}) i,
LATERAL (SELECT CASE WHEN i <= {active}
                     THEN CAST(:now AS timestamptz) - (i % 10) * interval '1 day'
                     ELSE CAST(:now AS timestamptz) - (20 + i % 90) * interval '1 day'
                END AS start) s"""),
        ("staff", """
INSERT INTO staff_users (username, full_name, password_hash, role, area_id, is_active,
    failed_logins, created_at)
VALUES ('bench_ward', 'Cán bộ phường', :pw, 'area_staff', 22, true, 0, :now),
       ('bench_district', 'Cán bộ quận', :pw, 'area_staff', 2, true, 0, :now),
       ('bench_city', 'Cán bộ thành phố', :pw, 'area_staff', 1, true, 0, :now)"""),
        # prompt j of person i: active persons' prompt 22 is open now, 23 and 24 are planned;
        # released persons' prompts lie in their isolation. Past states by a hash of (i, j).
        ("checkin_prompts", f"""
INSERT INTO checkin_prompts (id, person_id, slot_key, kind, state, opens_at, remind_at, due_at,
    nonce, max_attempts, attempts_used, opened_at, closed_at, created_at)
SELECT (i - 1) * {k} + j + 1, i, 'bench:' || j, CASE WHEN j % 9 = 4 THEN 'spot' ELSE 'scheduled' END,
    CASE WHEN i <= {active} AND j = 22 THEN 'open'
         WHEN i <= {active} AND j > 22 THEN 'planned'
         WHEN h < 85 THEN 'completed' WHEN h < 93 THEN 'missed' WHEN h < 96 THEN 'failed'
         WHEN h < 98 THEN 'missed_system' ELSE 'cancelled' END,
    o.opens, o.opens + interval '90 minutes', o.opens + interval '2 hours',
    md5(i || ':' || j), 3,
    CASE WHEN i <= {active} AND j >= 22 THEN 0 WHEN h < 85 AND h % 5 = 0 THEN 2
         WHEN h < 85 THEN 1 WHEN h >= 93 AND h < 96 THEN 3 ELSE 0 END,
    CASE WHEN NOT (i <= {active} AND j > 22) THEN o.opens END,
    CASE WHEN NOT (i <= {active} AND j >= 22) THEN o.opens + interval '2 hours' END,
    o.opens - interval '1 day'
FROM generate_series(1, {n}) i CROSS JOIN generate_series(0, {k - 1}) j,
LATERAL (SELECT (i * 31 + j * 17) % 100 AS h) hh,
LATERAL (SELECT CASE WHEN i <= {active}
                     THEN CAST(:now AS timestamptz) - (22 - j) * interval '8 hours' - interval '1 hour'
                     ELSE p.isolation_start + j * interval '8 hours' END AS opens
         FROM persons p WHERE p.id = i) o"""),
        # an attempt for each answered prompt: verified for completed ones (a rejected quality
        # retake first for one in five), rejected face_mismatch for failed ones (reviewed,
        # except the isolating persons' last day: those wait in the review queue), and a review
        # decision on one in 50 isolating persons' latest answered prompt.
        ("checkin_attempts", f"""
INSERT INTO checkin_attempts (prompt_id, person_id, received_at, decision, code, score,
    latitude, longitude, accuracy_m, distance_from_home_m, review_outcome, reviewed_at)
SELECT p.id, p.person_id, p.opens_at + interval '10 minutes' + r * interval '3 minutes',
    CASE WHEN p.state = 'failed' THEN 'rejected'
         WHEN r = 0 AND p.attempts_used = 2 THEN 'rejected'
         WHEN p.person_id <= {active} AND (p.person_id + p.person_id / 300) % 50 = 0 AND (p.id - 1) % 25 = 21
              THEN 'review'
         ELSE 'verified' END,
    CASE WHEN p.state = 'failed' THEN 'face_mismatch'
         WHEN r = 0 AND p.attempts_used = 2 THEN 'too_dark'
         WHEN p.person_id <= {active} AND (p.person_id + p.person_id / 300) % 50 = 0 AND (p.id - 1) % 25 = 21
              THEN 'face_review'
         ELSE 'verified' END,
    0.3 + (p.id % 50) / 100.0, 10.8, 106.7, 12, 8,
    CASE WHEN p.state = 'failed' AND NOT (p.person_id <= {active} AND (p.id - 1) % 25 >= 19)
         THEN 'not_same_person' END,
    CASE WHEN p.state = 'failed' AND NOT (p.person_id <= {active} AND (p.id - 1) % 25 >= 19)
         THEN p.due_at END
FROM checkin_prompts p CROSS JOIN LATERAL generate_series(0, p.attempts_used - 1) r
WHERE p.state IN ('completed', 'failed')"""),
        ("declarations", f"""
INSERT INTO declarations (person_id, measured_at, received_at, temperature_c, spo2, heart_rate,
    symptoms, risk_level, fired_rules)
SELECT p.id, m.at, m.at, 36.5 + ((p.id + j) % 25) / 10.0, 92 + (p.id + j) % 8,
    68 + (p.id * j) % 30, CASE WHEN (p.id + j) % 3 = 0 THEN '["cough"]'::json ELSE '[]'::json END,
    'green', '[]'
FROM persons p CROSS JOIN generate_series(0, 9) j,
LATERAL (SELECT CASE WHEN p.id <= {active}
                     THEN CAST(:now AS timestamptz) - j * interval '1 day' - (p.id % 20) * interval '1 hour'
                     ELSE p.isolation_start + j * interval '1 day' END AS at) m"""),
        # two alerts a person; the isolating persons' second one is open ((i-1)/300 % 10 = 0) or
        # acknowledged (= 1: spread over every ward); everything else resolved.
        ("alerts", f"""
INSERT INTO alerts (person_id, area_id, kind, severity, state, dedupe_key, escalation_level,
    next_escalation_at, details, created_at, acknowledged_at, resolved_at, resolution_note,
    occurrences, last_occurred_at)
SELECT p.id, p.ward_id,
    (ARRAY['missed_checkin','failed_verification','outside_home','severe_symptoms','high_risk',
           'non_reporting'])[1 + (p.id + j) % 6],
    1 + (p.id + j) % 4, st.state, 'bench:' || p.id || ':' || j, (p.id + j) % 3,
    CASE WHEN st.state = 'open' THEN c.at + interval '30 minutes' END, '{{}}', c.at,
    CASE WHEN st.state <> 'open' THEN c.at + (p.id % 90) * interval '1 minute' END,
    CASE WHEN st.state = 'resolved' THEN c.at + interval '3 hours' END,
    CASE WHEN st.state = 'resolved' THEN 'Đã liên hệ, ổn' END, 1, c.at
FROM persons p CROSS JOIN generate_series(0, 1) j,
LATERAL (SELECT CASE WHEN p.id <= {active}
                     THEN CAST(:now AS timestamptz) - (1 - j) * interval '2 days' - (p.id % 50) * interval '1 hour'
                     ELSE p.isolation_start + (2 + 5 * j) * interval '1 day' END AS at) c,
LATERAL (SELECT CASE WHEN p.id <= {active} AND j = 1 AND ((p.id - 1) / 300) % 10 = 0 THEN 'open'
                     WHEN p.id <= {active} AND j = 1 AND ((p.id - 1) / 300) % 10 = 1 THEN 'acknowledged'
                     ELSE 'resolved' END AS state) st"""),
        ("notifications", """
INSERT INTO notifications (channel, recipient, payload, idempotency_key, state, attempts,
    next_attempt_at, person_id, staff_id, alert_id, created_at, sent_at)
SELECT 'log', 'staff:1', '{"kind": "alert"}', 'bench:alert:' || a.id,
    CASE WHEN a.state = 'open' THEN 'pending' ELSE 'sent' END,
    CASE WHEN a.state = 'open' THEN 0 ELSE 1 END, a.created_at, a.person_id, NULL, a.id,
    a.created_at, CASE WHEN a.state <> 'open' THEN a.created_at + interval '2 seconds' END
FROM alerts a"""),
        ("audit_events", """
INSERT INTO audit_events (at, actor_kind, actor_id, action, target_kind, target_id, area_id,
    details)
SELECT a.created_at + e * interval '30 minutes', CASE WHEN e = 0 THEN 'system' ELSE 'staff' END,
    CASE WHEN e = 0 THEN NULL ELSE 1 END, CASE WHEN e = 0 THEN 'alert.escalate' ELSE 'alert.resolve' END,
    'alert', a.id, a.area_id, '{}'
FROM alerts a CROSS JOIN generate_series(0, 1) e"""),
        ("devices", f"""
INSERT INTO devices (person_id, token_hash, platform, created_at, last_seen_at)
SELECT i, encode(sha256(convert_to('bench-token-' || i, 'UTF8')), 'hex'), 'android',
    CAST(:now AS timestamptz) - interval '5 days', CAST(:now AS timestamptz) - interval '1 hour'
FROM generate_series(1, {active}) i"""),
    ]


SEQUENCES = ["areas", "persons", "checkin_prompts", "checkin_attempts", "declarations", "alerts",
             "notifications", "audit_events", "devices", "staff_users"]  # fmt: skip


def fill(url: str, n: int) -> dict:
    engine = create_engine(url)
    now = datetime.now(UTC).replace(microsecond=0)
    timings = {}
    with engine.connect() as c:
        c.execute(text("SET synchronous_commit = off"))
        params = {"now": now, "pw": hash_password(PASSWORD)}
        for what, sql in fill_sql(n):
            t0 = time.perf_counter()
            rows = c.execute(text(sql), params).rowcount
            c.commit()
            timings[what] = {"rows": rows, "s": round(time.perf_counter() - t0, 1)}
            print(f"  {what}: {rows:,} rows in {timings[what]['s']} s", flush=True)
        for table in SEQUENCES:
            c.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT max(id) FROM {table}))"))  # fmt: skip
        c.execute(text("CREATE TABLE IF NOT EXISTS bench_meta (k text PRIMARY KEY, v text)"))
        c.execute(text("INSERT INTO bench_meta VALUES ('persons', :n), ('filled_at', :at) "
                       "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"),
                  {"n": str(n), "at": now.isoformat()})  # fmt: skip
        c.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        t0 = time.perf_counter()
        c.execute(text("VACUUM ANALYZE"))
        timings["vacuum_analyze"] = {"s": round(time.perf_counter() - t0, 1)}
    engine.dispose()
    return timings


def filled_size(url: str) -> int | None:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return int(c.scalar(text("SELECT v FROM bench_meta WHERE k = 'persons'")))
    except Exception:  # noqa: BLE001 - no such table: not filled
        return None
    finally:
        engine.dispose()


def ensure_database(url: str, reuse: bool, n: int) -> dict | None:
    base, name = url.rsplit("/", 1)
    admin = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        exists = c.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists and reuse and filled_size(url) == n:
            admin.dispose()
            migrate.upgrade(url)  # a new migration (indexes) applies to the kept data
            return None
        if exists:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    t0 = time.perf_counter()
    migrate.upgrade(url)
    print(f"filling {n:,} persons into {name} …", flush=True)
    timings = fill(url, n)
    timings["total_s"] = round(time.perf_counter() - t0, 1)
    return timings


def roll_up(url: str) -> dict:
    """What the scheduler's ``stats_rollup`` sweep does (the benchmark runs no scheduler): roll
    up the finished days and the snapshot of today so far, timed. None: a checkout before the
    rollup."""
    from datetime import datetime as dt
    from zoneinfo import ZoneInfo

    from server.core.db import make_engine, make_session_factory

    try:
        from server.dashboard.scheduled import roll_up as sweep
    except ImportError:  # a checkout before the rollup (the "before" numbers)
        return None

    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        t0 = time.perf_counter()
        rows = sweep(session=s, now=dt.now(UTC), zone=ZoneInfo("Asia/Ho_Chi_Minh"), budget_s=600)
        took = time.perf_counter() - t0
    engine.dispose()
    print(f"stats rollup: {rows:,} rows in {took:.1f} s", flush=True)
    return {"rows": rows, "s": round(took, 1)}


def drop_snapshots(url: str) -> int:
    """Delete the rollup's snapshots of the unfinished days (as if the scheduler had stopped
    more than ``FRESH`` ago): the statistics aggregate those days live again."""
    from datetime import datetime as dt
    from zoneinfo import ZoneInfo

    from server.dashboard.rollup import unfinished_days

    days = unfinished_days(now=dt.now(UTC), zone=ZoneInfo("Asia/Ho_Chi_Minh"))
    engine = create_engine(url)
    with engine.begin() as c:
        n = 0
        for table in ("stats_daily", "stats_daily_areas"):
            n += c.execute(text(f"DELETE FROM {table} WHERE day = ANY(:d)"), {"d": days}).rowcount
    engine.dispose()
    return n


def refresh_phones(url: str, persons: list[int]) -> None:
    """Put the benchmark phones' prompt 22 open around now (a kept database ages)."""
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(
            text("UPDATE checkin_prompts SET state = 'open', opens_at = now() - interval '1 hour', "
                 "due_at = now() + interval '1 hour', opened_at = now() - interval '1 hour', "
                 "closed_at = NULL, attempts_used = 0 "
                 "WHERE person_id = ANY(:ids) AND slot_key = 'bench:22'"),
            {"ids": persons},
        )  # fmt: skip
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, tmp: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    env = {
        **os.environ,
        "ISOCHECK_MODE": "production",
        "ISOCHECK_DATABASE_URL": url,
        "ISOCHECK_SECRET_KEY": secrets.token_urlsafe(48),
        "ISOCHECK_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ISOCHECK_RATELIMIT_STORAGE_URL": "redis://127.0.0.1:6379/7",
        "ISOCHECK_RATELIMIT_ENABLED": "false",
        "ISOCHECK_DATA_DIR": str(tmp / "data"),
        "ISOCHECK_BIND": f"127.0.0.1:{port}",
        "ISOCHECK_WORKERS": "2",
        "ISOCHECK_THREADS": "2",
        "ISOCHECK_LOG_LEVEL": "WARNING",
        "ISOCHECK_SQL_STATEMENTS_HEADER": "1",
    }
    log = tmp / "gunicorn.log"
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "-c", "python:server.gunicorn_conf",
         "--access-logfile", "/dev/null", "server.app:create_app()"],
        cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=10).status_code == 200:
                return proc, base, log
        except (requests.ConnectionError, requests.Timeout):
            pass
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited:\n" + log.read_text()[-3000:])
        time.sleep(0.5)
    raise SystemExit("gunicorn did not answer /healthz:\n" + log.read_text()[-3000:])


def worker_peak_rss_mb(master: int) -> float:
    """The largest peak RSS (VmHWM) of gunicorn's workers."""
    peak = 0.0
    for child in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        status = Path(f"/proc/{child}/status").read_text()
        m = re.search(r"VmHWM:\s+(\d+) kB", status)
        if m:
            peak = max(peak, int(m.group(1)) / 1024)
    return round(peak, 1)


class Staff:
    """A logged-in dashboard user: the session cookie is sent by hand, because production
    marks it Secure and this bench talks plain HTTP on loopback."""

    def __init__(self, base: str, username: str) -> None:
        self.base = base
        self.http = requests.Session()
        page = self.http.get(base + "/dashboard/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        self.cookie = self._cookie(page)
        r = self.http.post(
            base + "/dashboard/login",
            data={"csrf_token": token, "username": username, "password": PASSWORD},
            headers={"Cookie": self.cookie},
            allow_redirects=False,
        )
        if r.status_code != 302:
            raise SystemExit(f"login of {username} failed: {r.status_code}")
        self.cookie = self._cookie(r)

    @staticmethod
    def _cookie(response: requests.Response) -> str:
        m = re.search(r"(session=[^;]+)", response.headers.get("Set-Cookie", ""))
        return m.group(1) if m else ""

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, headers={"Cookie": self.cookie},
                             allow_redirects=False)  # fmt: skip


class CpuMeter:
    """CPU time (user + system) spent by the gunicorn workers and by the PostgreSQL backends of
    the bench database, read from /proc: the requests run one at a time, so the growth over a
    page's runs divided by the runs is that page's CPU cost, whatever else loads the machine
    (wall times here are several times their idle value; CPU time is not)."""

    TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")

    def __init__(self, master: int, url: str) -> None:
        self.master, self.name = master, url.rsplit("/", 1)[1]
        self.engine = create_engine(url.rsplit("/", 1)[0] + "/postgres")

    @staticmethod
    def _ticks(pid: int | str) -> int:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0
        return int(fields[11]) + int(fields[12])  # utime, stime

    def sample(self) -> tuple[float, float]:
        children = Path(f"/proc/{self.master}/task/{self.master}/children").read_text().split()
        with self.engine.connect() as c:
            backends = c.scalars(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": self.name}
            ).all()
        app = sum(self._ticks(p) for p in children) * self.TICK_MS
        db = sum(self._ticks(p) for p in backends) * self.TICK_MS
        return app, db


METER: CpuMeter | None = None


def timed(call, runs: int) -> dict:
    times, stmts, sizes, status = [], [], [], set()
    call()  # warm (template compile, connection)
    cpu0 = METER.sample() if METER else (0.0, 0.0)
    for _ in range(runs):
        t0 = time.perf_counter()
        r = call()
        times.append((time.perf_counter() - t0) * 1000)
        status.add(r.status_code)
        stmts.append(int(r.headers.get("X-SQL-Statements", -1)))
        sizes.append(len(r.content))
    cpu1 = METER.sample() if METER else (0.0, 0.0)
    times.sort()
    return {
        "app_cpu_ms": round((cpu1[0] - cpu0[0]) / runs, 1),
        "db_cpu_ms": round((cpu1[1] - cpu0[1]) / runs, 1),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[max(0, round(0.95 * len(times)) - 1)], 1),
        "max_ms": round(times[-1], 1),
        "statements": max(stmts),
        "bytes": max(sizes),
        "status": sorted(status),
    }


def pick_person(url: str, area_id: int) -> int:
    """An isolating person in the area's subtree with open alerts (the busiest kind of page)."""
    engine = create_engine(url)
    with engine.connect() as c:
        pid = c.scalar(
            text("SELECT p.id FROM persons p JOIN areas w ON w.id = p.ward_id "
                 "WHERE w.path LIKE (SELECT path FROM areas WHERE id = :a) || '%' "
                 "AND p.status = 'active' AND ((p.id - 1) / 300) % 10 = 0 ORDER BY p.id DESC LIMIT 1"),
            {"a": area_id},
        )  # fmt: skip
    engine.dispose()
    return int(pid)


def page_url(staff: Staff, page: int) -> str:
    """The persons list's page ``page`` as its "→" links lead there (keyset ``after=``; a
    server without them answers ``page=`` links, then this is the offset page)."""
    path = "/dashboard/persons"
    for _ in range(page - 1):
        html = staff.get(path).text
        links = re.findall(r'href="(/dashboard/persons\?[^"]*)"', html)
        path = links[-1].replace("&amp;", "&")
    return path


def bench(url: str, n: int, runs: int) -> dict:
    active = n * 3 // 10
    phones = list(range(active, active - 40, -1))
    refresh_phones(url, phones)
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        proc, base, log = start_server(url, Path(tmp))
        global METER
        METER = CpuMeter(proc.pid, url)
        try:
            for scope, area_id in (("ward", 22), ("district", 2), ("city", 1)):
                staff = Staff(base, STAFF[scope])
                person = pick_person(url, area_id)
                pages = {
                    "alert queue": "/dashboard/alerts",
                    "alert rows (poll)": "/dashboard/alerts/rows",
                    "review queue": "/dashboard/reviews",
                    "persons": "/dashboard/persons",
                    "persons ?q=name": "/dashboard/persons?q=Lan",
                    "persons ?q=phone": f"/dashboard/persons?q=09{person:08d}",
                    "persons page 20 (offset)": "/dashboard/persons?page=20",
                    "persons page 20 (keyset)": page_url(staff, 20),
                    "person page": f"/dashboard/persons/{person}",
                    "stats 7 days": "/dashboard/stats?days=7",
                    "stats CSV 31 days": "/dashboard/stats.csv?days=31",
                }
                fresh = roll_up(url)  # the scheduler's sweep (every 5 min): today's snapshot
                for page, path in pages.items():
                    results[f"{scope}: {page}"] = timed(lambda p=path, st=staff: st.get(p), runs)
                if scope == "city" and fresh is not None:  # the scheduler stopped: today live
                    print(f"snapshots dropped: {drop_snapshots(url)} rows", flush=True)
                    for page in ("stats 7 days", "stats CSV 31 days"):
                        results[f"city: {page} (today live)"] = timed(
                            lambda p=pages[page], st=staff: st.get(p), runs
                        )
                    roll_up(url)
            http = requests.Session()
            cycle = iter(phones * (runs + 2) * 2)

            def phone(path: str):
                pid = next(cycle)
                return http.get(base + path,
                                headers={"Authorization": f"Bearer bench-token-{pid}"})  # fmt: skip

            results["phone: listMyHistory (50)"] = timed(lambda: phone("/api/v1/me/history"), runs)
            results["phone: listMyHistory (200)"] = timed(
                lambda: phone("/api/v1/me/history?limit=200"), runs
            )
            results["phone: getCurrentPrompt"] = timed(lambda: phone("/api/v1/me/prompt"), runs)
            rss = worker_peak_rss_mb(proc.pid)
        finally:
            METER.engine.dispose()
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        errors = [line for line in log.read_text().splitlines() if "Traceback" in line]
    return {"pages": results, "worker_peak_rss_mb": rss, "server_tracebacks": len(errors)}


def table(pages: dict) -> None:
    print(f"| {'page':<36} | p50 ms | p95 ms | max ms | app CPU ms | db CPU ms | SQL | bytes |")
    print(f"|{'-' * 38}|-------:|-------:|-------:|-----------:|----------:|----:|------:|")
    for page, r in pages.items():
        print(f"| {page:<36} | {r['p50_ms']:>6} | {r['p95_ms']:>6} | {r['max_ms']:>6} | "
              f"{r['app_cpu_ms']:>10} | {r['db_cpu_ms']:>9} | {r['statements']:>3} | "
              f"{r['bytes']:>5} |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10,000 persons instead of 100,000")
    ap.add_argument("--persons", type=int, help="any other size (≥ 300)")
    ap.add_argument("--reuse", action="store_true", help="keep a database filled at this size")
    ap.add_argument("--fill-only", action="store_true")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--url", help="database URL (default: isocheck_bench[_quick] on localhost)")
    ap.add_argument("--label", default="", help="suffix of the results key (e.g. 'before')")
    args = ap.parse_args()
    n = args.persons or (10_000 if args.quick else 100_000)
    size = "quick" if n == 10_000 else "full" if n == 100_000 else f"n{n}"
    url = args.url or (
        "postgresql+psycopg://postgres@127.0.0.1:5432/isocheck_bench"
        + ("" if size == "full" else f"_{size}")
    )
    t0 = time.perf_counter()
    fill_timings = ensure_database(url, args.reuse, n)
    print(f"database ready in {time.perf_counter() - t0:.0f} s "
          f"({'filled' if fill_timings else 'reused'})", flush=True)  # fmt: skip
    if args.fill_only:
        return
    load_start = os.getloadavg()[0]
    rollup = roll_up(url)
    r = bench(url, n, args.runs)
    r["rollup"] = rollup
    r.update(persons=n, runs=args.runs, fill=fill_timings, load_average_start=load_start,
             load_average_end=os.getloadavg()[0])  # fmt: skip
    table(r["pages"])
    print(f"worker peak RSS {r['worker_peak_rss_mb']} MB; server tracebacks "
          f"{r['server_tracebacks']}; load average {load_start:.1f} → "
          f"{r['load_average_end']:.1f}")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "dashboard_bench.json"
    data = json.loads(out.read_text()) if out.is_file() else {}
    data[size + (f":{args.label}" if args.label else "")] = r
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
