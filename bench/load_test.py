"""Load test: a city's morning check-in burst against gunicorn + PostgreSQL on this machine.

1. a fresh PostgreSQL schema, migrated; P persons enrolled fast (each identity of the
   East/South-East-Asian set enrolled once, its encrypted template copied to many persons:
   ``checkin_bench.prepare``), each with its own device token and an open prompt;
2. gunicorn with ``server/gunicorn_conf.py`` (2 gthread workers x 2 threads by default),
   PROMETHEUS_MULTIPROC_DIR, JSON logs, rate limits on (the per-IP ceiling raised: every phone
   here shares 127.0.0.1, as many do behind a carrier's NAT);
3. P simulated phones (asyncio + httpx) arrive as a Poisson process at ``--rate`` per second,
   the last ``--burst`` of them all at once; each GETs its prompt and POSTs a 1080-px selfie.
   The mix: genuine selfies, impostors (another identity), bad images (random bytes, a
   truncated JPEG, a picture with no face), a retry with the same Idempotency-Key after the
   answer ("the answer got lost") and a double tap (two concurrent uploads, one key). A phone
   answered 409 ``checkin_in_progress``/429/503 waits ``Retry-After`` and sends again;
4. accounting: every answer that names an attempt has that row with that decision, every row
   was answered to some phone, no row is undecided, replays name the first attempt, refusals are
   4xx problems (429/503 with ``Retry-After``), no 5xx, no timeout (60 s); every stored image
   decrypts, no orphan files; /metrics (summed over the workers) counts every judged upload.

Prints a table and writes bench/results/load_test.json.

    uv run python bench/load_test.py [--phones 2000] [--rate 12] [--burst 200] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkin_bench import (  # noqa: E402
    FACES,
    PG_URL,
    REPO,
    free_port,
    pct,
    phone_sized,
    prepare,
)

from server.core.db import make_engine, make_session_factory  # noqa: E402
from server.models import CheckinAttempt, CheckinPrompt  # noqa: E402
from server.people.models import StoredImage  # noqa: E402

CLIENT_TIMEOUT_S = 60.0
MIX = {"genuine": 0.84, "impostor": 0.06, "bad": 0.04, "retry": 0.03, "double": 0.03}
BAD_KINDS = ("random_bytes", "truncated_jpeg", "no_face")


# --- the server ---------------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen
    base: str
    metrics_dir: Path
    log_path: Path

    def worker_pids(self) -> list[int]:
        """The arbiter's children (gunicorn workers), from /proc."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except FileNotFoundError:
            return []


def fresh_schema(tag: str) -> tuple[str, callable]:
    """A new PostgreSQL schema; returns its URL and a function that drops it."""
    schema = f"{tag}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        for _ in range(30):  # the database may be restarting (bench/faults.py)
            try:
                with admin.begin() as c:
                    c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
                return
            except Exception:  # noqa: BLE001
                time.sleep(1)

    return f"{PG_URL}?options=-csearch_path%3D{schema}", drop


@contextmanager
def gunicorn(url: str, data_dir: Path, *, workers: int = 2, threads: int = 2, env=None):
    """gunicorn with the production config on a free loopback port, until the block ends."""
    port = free_port()
    metrics_dir = data_dir / "prometheus"
    log_path = data_dir / "gunicorn.log"
    full_env = {
        **os.environ,
        "ISOCHECK_DATABASE_URL": url,
        "ISOCHECK_DATA_DIR": str(data_dir),
        "ISOCHECK_BIND": f"127.0.0.1:{port}",
        "ISOCHECK_WORKERS": str(workers),
        "ISOCHECK_THREADS": str(threads),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "ISOCHECK_LOG_FORMAT": "json",
        "ISOCHECK_LOG_LEVEL": "WARNING",
        "ISOCHECK_RATE_LIMIT_IP": "1000000/minute",
        **(env or {}),
    }
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:server.gunicorn_conf",
             "server.app:create_app()"],
            cwd=REPO, env=full_env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
    server = Server(proc, f"http://127.0.0.1:{port}", metrics_dir, log_path)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{server.base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start: " + log_path.read_text()[-3000:])
            time.sleep(0.3)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def warm(server: Server, phones: list[dict], images: dict) -> None:
    """Load every worker's face models (the first check-in of a worker pays ~1-2 s)."""
    import concurrent.futures as cf

    def one(phone):
        r = httpx.post(
            f"{server.base}/api/v1/me/checkins",
            headers={"Authorization": f"Bearer {phone['token']}"},
            data={"nonce": phone["nonce"], "latitude": "10.81", "longitude": "106.68",
                  "accuracy_m": "10"},
            files={"selfie": ("s.jpg", images[phone["selfie"]], "image/jpeg")},
            timeout=120,
        )  # fmt: skip
        return r.json().get("attempt_id")

    with cf.ThreadPoolExecutor(4) as pool:
        return {a for a in pool.map(one, phones) if a is not None}


# --- images -------------------------------------------------------------------------------


def bad_images(sample_jpeg: bytes) -> dict[str, bytes]:
    import cv2

    rng = np.random.default_rng(7)
    gray = np.full((1080, 810, 3), 128, np.uint8)
    gray[200:900, 100:700] = rng.integers(90, 170, (700, 600, 3), dtype=np.uint8)
    ok, no_face = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return {
        "random_bytes": rng.bytes(150_000),
        "truncated_jpeg": sample_jpeg[: len(sample_jpeg) // 3],
        "no_face": no_face.tobytes(),
    }


# --- the phones ---------------------------------------------------------------------------


@dataclass
class Result:
    phone: int
    kind: str
    key: str | None
    method: str
    status: int | str  # an HTTP status, "timeout" or an error class name
    code: str | None = None
    attempt_id: int | None = None
    decision: str | None = None
    retry_after: str | None = None
    replayed: bool = False
    ms: float = 0.0
    end: float = 0.0  # seconds since the first arrival was planned (t0)
    problem_json: bool = True
    request_id_ok: bool = True


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    first_arrival: float = 0.0
    last_answer: float = 0.0
    t0: float = 0.0


async def _call(client, run: Run, phone_no: int, kind: str, method: str, url: str, *, key=None,
                **kw) -> Result:  # fmt: skip
    rid = f"load-{phone_no}-{uuid.uuid4().hex[:12]}"
    headers = {**kw.pop("headers", {}), "X-Request-ID": rid}
    if key:
        headers["Idempotency-Key"] = key
    t0 = time.perf_counter()
    try:
        r = await client.request(method, url, headers=headers, **kw)
    except httpx.TimeoutException:
        res = Result(phone_no, kind, key, method, "timeout", ms=(time.perf_counter() - t0) * 1e3)
    except httpx.HTTPError as exc:
        res = Result(phone_no, kind, key, method, type(exc).__name__,
                     ms=(time.perf_counter() - t0) * 1e3)  # fmt: skip
    else:
        ms = (time.perf_counter() - t0) * 1e3
        body = {}
        with suppress(ValueError):
            body = r.json()
        res = Result(
            phone_no, kind, key, method, r.status_code,
            code=body.get("code") if isinstance(body, dict) else None,
            attempt_id=body.get("attempt_id") if isinstance(body, dict) else None,
            decision=body.get("result") if isinstance(body, dict) else None,
            retry_after=r.headers.get("Retry-After"),
            replayed=r.headers.get("Idempotent-Replayed") == "true",
            ms=ms,
            problem_json=r.status_code < 400
            or r.headers.get("content-type", "").startswith("application/problem+json"),
            request_id_ok=r.headers.get("X-Request-ID") == rid,
        )  # fmt: skip
    run.last_answer = time.perf_counter()
    res.end = run.last_answer - run.t0
    run.results.append(res)
    return res


async def _upload(client, run, base, no, kind, phone, nonce, image, key) -> Result:
    """POST until an answer that is not 'come back later' (at most 6 sends)."""
    for _ in range(6):
        res = await _call(
            client, run, no, kind, "POST", f"{base}/api/v1/me/checkins", key=key,
            headers={"Authorization": f"Bearer {phone['token']}"},
            data={"nonce": nonce, "latitude": "10.81", "longitude": "106.68", "accuracy_m": "10"},
            files={"selfie": ("selfie.jpg", image, "image/jpeg")},
        )  # fmt: skip
        if res.status in (409, 429, 503) and res.code != "already_checked_in" and res.retry_after:
            await asyncio.sleep(float(res.retry_after))
            continue
        if not isinstance(res.status, int):  # connection lost: the app resends, same key
            await asyncio.sleep(1.0)
            continue
        return res
    return res


async def _phone(client, run: Run, base: str, no: int, phone: dict, kind: str, image: bytes,
                 at: float, t0: float) -> None:  # fmt: skip
    await asyncio.sleep(max(0.0, at - (time.perf_counter() - t0)))
    auth = {"Authorization": f"Bearer {phone['token']}"}
    for _ in range(3):
        got = await _call(client, run, no, kind, "GET", f"{base}/api/v1/me/prompt", headers=auth)
        if isinstance(got.status, int):
            break
        await asyncio.sleep(1.0)
    nonce = phone["nonce"]
    key = uuid.uuid4().hex
    if got.status != 200:
        return
    if kind == "double":  # two taps, one key, at once
        await asyncio.gather(
            _upload(client, run, base, no, kind, phone, nonce, image, key),
            _upload(client, run, base, no, kind, phone, nonce, image, key),
        )
        return
    first = await _upload(client, run, base, no, kind, phone, nonce, image, key)
    if kind == "retry" and first.status in (200, 415, 422):  # the answer was "lost": resend
        await _upload(client, run, base, no, kind, phone, nonce, image, key)


def plan_arrivals(n: int, rate: float, burst: int, seed: int = 11) -> list[float]:
    """Poisson arrivals at ``rate``/s for the first n - burst phones, then ``burst`` at once."""
    rng = random.Random(seed)
    t, times = 0.0, []
    for _ in range(n - burst):
        t += rng.expovariate(rate)
        times.append(t)
    return times + [t + 1.0] * burst


async def drive(base: str, phones: list[dict], kinds: list[str], images: list[bytes],
                arrivals: list[float]) -> Run:  # fmt: skip
    run = Run()
    # idle pooled connections expire before gunicorn's keepalive (5 s) closes them: otherwise a
    # request can be sent on a connection the server is closing (RemoteProtocolError)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200,
                          keepalive_expiry=2.0)  # fmt: skip
    timeout = httpx.Timeout(CLIENT_TIMEOUT_S, connect=CLIENT_TIMEOUT_S)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        t0 = time.perf_counter()
        run.t0 = t0
        run.first_arrival = t0 + arrivals[0]
        await asyncio.gather(*(
            _phone(client, run, base, i, p, k, img, at, t0)
            for i, (p, k, img, at) in enumerate(zip(phones, kinds, images, arrivals, strict=True))
        ))  # fmt: skip
    return run


# --- accounting ---------------------------------------------------------------------------


def scrape(base: str) -> dict[str, float]:
    """/metrics as {sample line without value: value}."""
    out = {}
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def metric_sum(samples: dict[str, float], name: str) -> float:
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


def check_storage(url: str, data_dir: Path) -> dict:
    """Every stored_images row's file exists and decrypts (unless purged); files without a row."""
    from server.config import load_settings
    from server.storage import image_store

    settings = load_settings(data_dir=data_dir, database_url=url)
    store = image_store(settings)
    factory = make_session_factory(make_engine(url))
    missing, undecryptable, rows = 0, 0, 0
    with factory() as s:
        keys = {k for k, purged in s.execute(
            select(StoredImage.storage_key, StoredImage.purged_at)) if purged is None}  # fmt: skip
    for key in keys:
        rows += 1
        if not store.exists(key):
            missing += 1
            continue
        try:
            store.load(key)
        except Exception:  # noqa: BLE001
            undecryptable += 1
    files = [k for k, _m, _p in store.entries()]
    orphans = [k for k in files if k not in keys]
    return {
        "image_rows": rows,
        "rows_missing_file": missing,
        "rows_not_decrypting": undecryptable,
        "files": len(files),
        "orphan_files": len(orphans),
        "orphan_tmp_files": sum(1 for k in orphans if k.endswith(".tmp")),
    }


def account(run: Run, url: str, data_dir: Path, samples: dict[str, float],
            warm_ids: set[int] = frozenset()) -> dict:  # fmt: skip
    factory = make_session_factory(make_engine(url))
    with factory() as s:
        rows = {a.id: a for a in s.scalars(select(CheckinAttempt))}
        prompt_states = {st: n for st, n in s.execute(
            select(CheckinPrompt.state, func.count()).group_by(CheckinPrompt.state))}  # fmt: skip
    posts = [r for r in run.results if r.method == "POST"]
    named = [r for r in posts if r.attempt_id is not None]
    judged = [r for r in named if not r.replayed]
    known_ids = {r.attempt_id for r in named} | set(warm_ids)
    wrong = [r for r in named if r.attempt_id not in rows or (
        r.decision and rows[r.attempt_id].decision.value != r.decision)]  # fmt: skip
    by_key: dict[tuple[int, str], set[int]] = {}
    for r in named:
        by_key.setdefault((r.phone, r.key), set()).add(r.attempt_id)
    statuses = Counter(str(r.status) for r in run.results)
    refusals = [r for r in run.results if isinstance(r.status, int) and r.status >= 400]
    decisions = Counter(a.decision.value if a.decision else "undecided" for a in rows.values())
    return {
        "requests": len(run.results),
        "statuses": dict(sorted(statuses.items())),
        "posts": len(posts),
        "answers_naming_an_attempt": len(named),
        "judged_answers": len(judged),
        "replayed_answers": len(named) - len(judged),
        "db_attempt_rows": len(rows),
        "db_decisions": dict(decisions),
        "db_undecided": decisions.get("undecided", 0),
        "db_rows_never_answered": len(set(rows) - known_ids),
        "answers_without_matching_row": len(wrong),
        "keys_with_two_attempts": sum(1 for ids in by_key.values() if len(ids) > 1),
        "server_errors_5xx": sum(1 for r in refusals if r.status >= 500 and r.status != 503),
        "timeouts": statuses.get("timeout", 0),
        "transport_errors": sum(v for k, v in statuses.items() if not k.isdigit()
                                and k != "timeout"),  # fmt: skip
        "transport_error_requests": [
            {"method": r.method, "kind": r.kind, "status": r.status, "ms": round(r.ms)}
            for r in run.results if not isinstance(r.status, int)
        ][:20],
        "phones_without_a_final_answer": len(
            {r.phone for r in run.results} - {r.phone for r in posts if isinstance(r.status, int)
                                              and r.status not in (409, 429, 503)}
        ),  # fmt: skip
        "refusals_not_problem_json": sum(1 for r in refusals if not r.problem_json),
        "429_503_without_retry_after": sum(
            1 for r in refusals if r.status in (429, 503) and not r.retry_after
        ),
        "request_id_not_echoed": sum(1 for r in run.results if isinstance(r.status, int)
                                     and not r.request_id_ok),  # fmt: skip
        "codes": dict(Counter(r.code for r in posts if r.code).most_common()),
        "prompt_states": {getattr(k, "value", k): v for k, v in prompt_states.items()},
        "storage": check_storage(url, data_dir),
        "metrics": {
            "checkins_total": metric_sum(samples, "isocheck_checkins_total"),
            "verification_count": metric_sum(samples, "isocheck_verification_seconds_count"),
            "http_requests_count": metric_sum(samples, "isocheck_http_request_seconds_count"),
        },
    }


def verdict(acc: dict, warmups: int) -> list[str]:
    """What is wrong, if anything (empty: the run passed every check)."""
    bad = []
    if acc["db_attempt_rows"] != acc["judged_answers"] + warmups:
        bad.append("attempt rows != judged answers")
    for key in ("db_undecided", "db_rows_never_answered", "answers_without_matching_row",
                "keys_with_two_attempts", "server_errors_5xx", "timeouts",
                "phones_without_a_final_answer",
                "refusals_not_problem_json", "429_503_without_retry_after",
                "request_id_not_echoed"):  # fmt: skip
        if acc[key]:
            bad.append(f"{key} = {acc[key]}")
    st = acc["storage"]
    for key in ("rows_missing_file", "rows_not_decrypting", "orphan_files"):
        if st[key]:
            bad.append(f"storage {key} = {st[key]}")
    m = acc["metrics"]
    if m["checkins_total"] != acc["db_attempt_rows"]:
        bad.append(f"/metrics checkins_total {m['checkins_total']} != rows")
    if m["verification_count"] != acc["db_attempt_rows"]:
        bad.append(f"/metrics verification count {m['verification_count']} != rows")
    return bad


def wait_for_idle(max_load: float, patience_s: float) -> float:
    deadline = time.monotonic() + patience_s
    while True:
        load = os.getloadavg()[0]
        if load < max_load or time.monotonic() > deadline:
            return load
        print(f"waiting for the machine to be idle (1-min load {load:.2f})", flush=True)
        time.sleep(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--phones", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=12.0, help="Poisson arrivals per second")
    ap.add_argument("--burst", type=int, default=200, help="last phones arriving all at once")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="200 phones, burst 20")
    ap.add_argument("--max-load", type=float, default=1.5)
    ap.add_argument("--out", default=str(REPO / "bench/results/load_test.json"))
    args = ap.parse_args()
    if args.quick:
        args.phones, args.burst = 200, 20
    if not FACES.is_dir():
        sys.exit(f"photo set not found at {FACES} (ISOCHECK_FACES_ASIA_DIR)")
    from verification import Verifier

    rng = random.Random(3)
    data_dir = Path(tempfile.mkdtemp(prefix="isocheck-load-"))
    url, drop = fresh_schema("load")
    try:
        t = time.perf_counter()
        warm_n = args.workers * 2
        phones = prepare(url, data_dir, args.phones + warm_n, Verifier())
        enrol_s = time.perf_counter() - t
        selfies = sorted({p["selfie"] for p in phones})
        images = {path: phone_sized(path) for path in selfies}
        by_identity = {s.parent: images[s] for s in selfies}
        bad = bad_images(next(iter(images.values())))
        warmups, phones = phones[:warm_n], phones[warm_n:]
        kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=len(phones))
        uploads = []
        for phone, kind in zip(phones, kinds, strict=True):
            if kind == "impostor":
                other = rng.choice([k for k in by_identity if k != phone["selfie"].parent])
                uploads.append(by_identity[other])
            elif kind == "bad":
                uploads.append(bad[rng.choice(BAD_KINDS)])
            else:
                uploads.append(images[phone["selfie"]])
        arrivals = plan_arrivals(len(phones), args.rate, args.burst)
        print(f"{len(phones)} phones ready in {enrol_s:.1f} s ({len(by_identity)} identities); "
              f"kinds {dict(Counter(kinds))}", flush=True)  # fmt: skip

        with gunicorn(url, data_dir, workers=args.workers, threads=args.threads) as server:
            warm_ids = warm(server, warmups, images)
            load_before = wait_for_idle(args.max_load, 900)
            t0 = time.perf_counter()
            run = asyncio.run(drive(server.base, phones, kinds, uploads, arrivals))
            wall = time.perf_counter() - t0
            load_after = os.getloadavg()[0]
            samples = scrape(server.base)
            metric_files = sorted(p.name for p in server.metrics_dir.glob("*.db"))
            access_lines = sum(1 for line in server.log_path.read_text().splitlines()
                               if "rid=load-" in line)  # fmt: skip
        acc = account(run, url, data_dir, samples, warm_ids)
    finally:
        drop()

    posts = [r for r in run.results if r.method == "POST" and isinstance(r.status, int)]
    judged = [r for r in posts if r.attempt_id is not None and not r.replayed]
    lat = [r.ms for r in judged]
    all_lat = [r.ms for r in posts]
    span = run.last_answer - run.first_arrival
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_1min_before": round(load_before, 2),
                    "load_1min_after": round(load_after, 2)},  # fmt: skip
        "setup": {"phones": len(phones), "warmup_checkins": warm_n, "rate_per_s": args.rate,
                  "burst": args.burst, "workers": args.workers, "threads": args.threads,
                  "worker_class": "gthread", "database": "PostgreSQL 15 (127.0.0.1)",
                  "enrol_seconds": round(enrol_s, 1), "identities": len(by_identity),
                  "mix": dict(Counter(kinds)), "client_timeout_s": CLIENT_TIMEOUT_S},
        "wall_s": round(wall, 1),
        "span_first_arrival_to_last_answer_s": round(span, 1),
        "throughput_judged_per_s": round(len(judged) / span, 2),
        "judged_latency_ms": {"p50": round(pct(lat, 50)), "p95": round(pct(lat, 95)),
                              "p99": round(pct(lat, 99)), "max": round(max(lat))},
        "all_posts_latency_ms": {"p50": round(pct(all_lat, 50)), "p95": round(pct(all_lat, 95)),
                                 "p99": round(pct(all_lat, 99))},
        "accounting": acc,
        "prometheus_multiproc_files": metric_files,
        "access_log_lines_with_request_id": access_lines,
    }
    if args.burst:
        steady = [r.ms for r in judged if r.phone < len(phones) - args.burst]
        tail = [r.ms for r in judged if r.phone >= len(phones) - args.burst]
        report["steady_latency_ms"] = {"p50": round(pct(steady, 50)), "p95": round(pct(steady, 95)),
                                       "p99": round(pct(steady, 99)), "max": round(max(steady))}
        report["burst_latency_ms"] = {"p50": round(pct(tail, 50)), "p95": round(pct(tail, 95)),
                                      "max": round(max(tail))}
        burst_answers = [r for r in run.results if r.phone >= len(phones) - args.burst]
        report["burst_drain_s"] = round(max(r.end for r in burst_answers) - arrivals[-1], 1)
    problems = verdict(acc, warm_n)
    report["problems"] = problems
    report["passed"] = not problems
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False))

    print(f"\n{len(phones)} phones, Poisson {args.rate}/s then {args.burst} at once; gunicorn "
          f"{args.workers}x{args.threads} gthread; load before {load_before:.2f}")  # fmt: skip
    print(f"span {span:.1f} s, judged {len(judged)} ({report['throughput_judged_per_s']}/s); "
          f"latency p50 {report['judged_latency_ms']['p50']} ms p95 "
          f"{report['judged_latency_ms']['p95']} p99 {report['judged_latency_ms']['p99']} "
          f"max {report['judged_latency_ms']['max']}")  # fmt: skip
    print(json.dumps(acc, indent=1, ensure_ascii=False))
    print("PASSED" if not problems else f"PROBLEMS: {problems}")
    print(f"wrote {args.out}")
    sys.exit(0 if not problems else 1)


if __name__ == "__main__":
    main()
