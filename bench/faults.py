"""Fault injection against gunicorn + PostgreSQL on this machine; results in
bench/results/faults.json (and docs/performance.md).

1. ``worker_kill``: phones upload while gunicorn workers are killed with SIGKILL (the arbiter
   starts new ones). Phones resend with the same Idempotency-Key when the connection drops, and
   wait ``Retry-After`` on 409/503. Afterwards: no attempt is left undecided, every answer names
   a row with that decision, no key has two attempts, every attempt has its image row and every
   image row its file, which decrypts; files without a row (written, never committed) are
   counted, then the ``purge_orphan_files`` sweep is run and must leave none.
2. ``postgres_restart``: ``pg_ctlcluster --skip-systemctl-redirect 15 main restart`` while
   phones upload and /readyz is polled every 0.2 s: /readyz goes red then green, requests
   recover (pool_pre_ping), refusals during the outage are 503 + Retry-After, never 500; the
   cluster is started again whatever happens.
3. ``scheduler_kill``: tests/scheduler/test_scheduler_robustness.py::
   test_killed_mid_sweep_then_restarted_loses_and_doubles_nothing, run here and recorded.

    uv run python bench/faults.py [--only worker_kill,postgres_restart,scheduler_kill]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkin_bench import FACES, REPO, phone_sized, prepare  # noqa: E402
from load_test import (  # noqa: E402
    Run,
    _call,
    check_storage,
    fresh_schema,
    gunicorn,
    warm,
)

from server.core.db import make_engine, make_session_factory  # noqa: E402
from server.models import CheckinAttempt  # noqa: E402
from server.people.models import StoredImage  # noqa: E402

CLUSTER = ["15", "main"]


async def upload_until_answered(client, run: Run, base, no, phone, image, *, max_sends=40):
    """A patient phone: resends (same key) on a dropped connection, 409 in progress, 503."""
    key = uuid.uuid4().hex
    res = None
    for _ in range(max_sends):
        res = await _call(
            client, run, no, "genuine", "POST", f"{base}/api/v1/me/checkins", key=key,
            headers={"Authorization": f"Bearer {phone['token']}"},
            data={"nonce": phone["nonce"], "latitude": "10.81", "longitude": "106.68",
                  "accuracy_m": "10"},
            files={"selfie": ("selfie.jpg", image, "image/jpeg")},
        )  # fmt: skip
        if not isinstance(res.status, int):
            await asyncio.sleep(1.0)
        elif res.status in (409, 429, 503) and res.retry_after:
            await asyncio.sleep(float(res.retry_after))
        else:
            return res
    return res


async def phones_upload(base, phones, images, rate, run: Run):
    limits = httpx.Limits(max_connections=500, keepalive_expiry=2.0)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0)) as client:
        t0 = time.perf_counter()
        rng = random.Random(5)
        at, tasks = 0.0, []

        async def one(i, phone, when):
            await asyncio.sleep(max(0.0, when - (time.perf_counter() - t0)))
            return await upload_until_answered(client, run, base, i, phone,
                                               images[phone["selfie"]])  # fmt: skip

        for i, phone in enumerate(phones):
            at += rng.expovariate(rate)
            tasks.append(one(i, phone, at))
        return await asyncio.gather(*tasks)


def db_checks(url: str, run: Run) -> dict:
    factory = make_session_factory(make_engine(url))
    with factory() as s:
        rows = {a.id: a for a in s.scalars(select(CheckinAttempt))}
        selfies_without_attempt = s.scalar(
            select(func.count()).select_from(StoredImage).where(
                StoredImage.kind == "selfie",
                ~StoredImage.id.in_(select(CheckinAttempt.image_id)),
            )
        )  # fmt: skip
    named = [r for r in run.results if r.attempt_id is not None]
    keys: dict[str, set] = {}
    for r in named:
        keys.setdefault(r.key, set()).add(r.attempt_id)
    db_keys = Counter((a.device_id, a.idempotency_key) for a in rows.values())
    return {
        "attempt_rows": len(rows),
        "undecided": sum(1 for a in rows.values() if a.decision is None),
        "attempts_without_image": sum(1 for a in rows.values() if a.image_id is None),
        "selfie_images_without_attempt": selfies_without_attempt,
        "answers_without_matching_row": sum(
            1 for r in named if r.attempt_id not in rows
            or (r.decision and rows[r.attempt_id].decision.value != r.decision)
        ),  # fmt: skip
        "keys_answered_with_two_attempts": sum(1 for v in keys.values() if len(v) > 1),
        "keys_with_two_rows": sum(1 for n in db_keys.values() if n > 1),
        "decisions": dict(Counter(a.decision.value if a.decision else "undecided"
                                  for a in rows.values())),  # fmt: skip
    }


def statuses(run: Run) -> dict:
    return dict(sorted(Counter(str(r.status) for r in run.results).items()))


def _prepared(n: int, tag: str):
    from verification import Verifier

    data_dir = Path(tempfile.mkdtemp(prefix=f"isocheck-{tag}-"))
    url, drop = fresh_schema(tag)
    phones = prepare(url, data_dir, n, Verifier())
    images = {p["selfie"]: phone_sized(p["selfie"]) for p in phones}
    return data_dir, url, drop, phones, images


def worker_kill(args) -> dict:
    data_dir, url, drop, phones, images = _prepared(args.phones + 4, "faultkill")
    try:
        with gunicorn(url, data_dir) as server:
            warm_ids = warm(server, phones[:4], images)
            phones = phones[4:]
            run = Run()
            kills: list[dict] = []

            async def killer():
                await asyncio.sleep(2.0)
                rng = random.Random(9)
                for _ in range(args.kills):
                    pids = server.worker_pids()
                    if pids:
                        pid = rng.choice(pids)
                        busy = len([r for r in run.results])  # requests answered so far
                        os.kill(pid, signal.SIGKILL)
                        kills.append({"pid": pid, "t_s": round(time.perf_counter() - t0, 1),
                                      "answered_before": busy})  # fmt: skip
                    await asyncio.sleep(rng.uniform(1.5, 3.5))

            async def both():
                k = asyncio.create_task(killer())
                out = await phones_upload(server.base, phones, images, args.rate, run)
                await k
                return out

            t0 = time.perf_counter()
            finals = asyncio.run(both())
            wall = time.perf_counter() - t0
        before = check_storage(url, data_dir)
        db = db_checks(url, run)
        # the orphan sweep (grace 0 here: every request is over)
        from server.core.clock import SystemClock
        from server.flows.person_lifecycle import purge_orphan_files

        factory = make_session_factory(make_engine(url))
        with factory() as s:
            swept = purge_orphan_files(session=s, data_dir=data_dir, now=SystemClock().now(),
                                       grace=timedelta(0))  # fmt: skip
        after = check_storage(url, data_dir)
    finally:
        drop()
    final_status = Counter(str(f.status) if f else "none" for f in finals)
    result = {
        "phones": len(phones),
        "warmup_attempts": len(warm_ids),
        "kills": kills,
        "wall_s": round(wall, 1),
        "request_statuses": statuses(run),
        "final_answer_per_phone": dict(final_status),
        "db": db,
        "storage_before_sweep": before,
        "orphan_files_swept": swept,
        "storage_after_sweep": after,
    }
    problems = []
    if db["undecided"]:
        problems.append("undecided attempts left")
    for key in ("attempts_without_image", "selfie_images_without_attempt",
                "answers_without_matching_row", "keys_answered_with_two_attempts",
                "keys_with_two_rows"):  # fmt: skip
        if db[key]:
            problems.append(f"{key} = {db[key]}")
    if any(k not in ("200",) for k in final_status):
        problems.append(f"phones without a 200: {dict(final_status)}")
    for key in ("rows_missing_file", "rows_not_decrypting"):
        if before[key] or after[key]:
            problems.append(f"storage {key}")
    if after["orphan_files"]:
        problems.append("orphan files after the sweep")
    if any(str(s).startswith("5") and s != "503" for s in final_status):
        problems.append("5xx answers")
    result["problems"] = problems
    return result


def _cluster_online() -> bool:
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    return any(line.split()[:2] == CLUSTER and "online" in line for line in out.splitlines())


def _ensure_cluster_running() -> None:
    if not _cluster_online():
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *CLUSTER, "start"],
                       check=False)  # fmt: skip


def postgres_restart(args) -> dict:
    data_dir, url, drop, phones, images = _prepared(args.pg_phones + 4, "faultpg")
    try:
        with gunicorn(url, data_dir) as server:
            warm(server, phones[:4], images)
            phones = phones[4:]
            run = Run()
            probes: list[tuple[float, int | str]] = []
            restart: dict = {}

            async def prober(stop: asyncio.Event):
                async with httpx.AsyncClient(timeout=5) as c:
                    while not stop.is_set():
                        t = time.perf_counter() - t0
                        try:
                            r = await c.get(f"{server.base}/readyz")
                            probes.append((round(t, 2), r.status_code))
                        except httpx.HTTPError as exc:
                            probes.append((round(t, 2), type(exc).__name__))
                        await asyncio.sleep(0.2)

            async def restarter():
                await asyncio.sleep(args.restart_after)
                restart["started_s"] = round(time.perf_counter() - t0, 2)
                proc = await asyncio.create_subprocess_exec(
                    "pg_ctlcluster", "--skip-systemctl-redirect", *CLUSTER, "restart",
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                )  # fmt: skip
                out, _ = await proc.communicate()
                restart["returncode"] = proc.returncode
                restart["output"] = out.decode()[-500:]
                restart["done_s"] = round(time.perf_counter() - t0, 2)

            async def scenario():
                stop = asyncio.Event()
                p = asyncio.create_task(prober(stop))
                rs = asyncio.create_task(restarter())
                finals = await phones_upload(server.base, phones, images, args.pg_rate, run)
                await rs
                await asyncio.sleep(2)
                stop.set()
                await p
                return finals

            t0 = time.perf_counter()
            finals = asyncio.run(scenario())
            # a request after the run, on pooled connections that predate the restart
            auth = {"Authorization": f"Bearer {phones[0]['token']}"}
            after = httpx.get(f"{server.base}/api/v1/me/prompt", timeout=10, headers=auth)
        _ensure_cluster_running()
        db = db_checks(url, run)
    finally:
        _ensure_cluster_running()
        drop()
    red = [t for t, s in probes if s != 200]
    first_red = red[0] if red else None
    green_again = next((t for t, s in probes if s == 200 and first_red and t > red[-1]), None)
    final_status = Counter(str(f.status) if f else "none" for f in finals)
    posts = [r for r in run.results if r.method == "POST"]
    result = {
        "phones": len(phones),
        "restart": restart,
        "readyz": {
            "probes": len(probes),
            "red_probes": len(red),
            "first_red_s": first_red,
            "last_red_s": red[-1] if red else None,
            "green_again_s": green_again,
            "sequence": _compress(probes),
        },
        "request_statuses": statuses(run),
        "codes_during_outage": dict(Counter(r.code for r in posts if r.status == 503)),
        "503_without_retry_after": sum(1 for r in posts if r.status == 503 and not r.retry_after),
        "final_answer_per_phone": dict(final_status),
        "request_after_restart": after.status_code,
        "db": db,
    }
    problems = []
    if not red or green_again is None:
        problems.append("/readyz did not go red then green")
    if any(str(r.status) == "500" for r in run.results):
        problems.append("500 answers")
    if result["503_without_retry_after"]:
        problems.append("503 without Retry-After")
    if any(k != "200" for k in final_status):
        problems.append(f"phones without a 200: {dict(final_status)}")
    if after.status_code != 200:
        problems.append("request after the restart failed")
    if db.get("undecided"):
        problems.append("undecided attempts left")
    result["problems"] = problems
    return result


def _compress(probes):
    """[(t, status)] -> runs of equal status: [[from_s, to_s, status, n], ...]."""
    out = []
    for t, s in probes:
        if out and out[-1][2] == s:
            out[-1][1], out[-1][3] = t, out[-1][3] + 1
        else:
            out.append([t, t, s, 1])
    return out


def scheduler_kill(_args) -> dict:
    test = ("tests/scheduler/test_scheduler_robustness.py::"
            "test_killed_mid_sweep_then_restarted_loses_and_doubles_nothing")  # fmt: skip
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
                          cwd=REPO, capture_output=True, text=True)  # fmt: skip
    summary = (proc.stdout.strip().splitlines() or ["?"])[-1]
    return {
        "test": test,
        "backends": "SQLite, and PostgreSQL when ISOCHECK_TEST_DATABASE_URL is set",
        "pg": bool(os.environ.get("ISOCHECK_TEST_DATABASE_URL")),
        "summary": summary,
        "seconds": round(time.perf_counter() - t, 1),
        "problems": [] if proc.returncode == 0 else [summary],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", default="worker_kill,postgres_restart,scheduler_kill")
    ap.add_argument("--phones", type=int, default=300, help="phones in the worker-kill run")
    ap.add_argument("--rate", type=float, default=15.0)
    ap.add_argument("--kills", type=int, default=8)
    ap.add_argument("--pg-phones", type=int, default=200)
    ap.add_argument("--pg-rate", type=float, default=8.0)
    ap.add_argument("--restart-after", type=float, default=8.0)
    ap.add_argument("--out", default=str(REPO / "bench/results/faults.json"))
    args = ap.parse_args()
    if not FACES.is_dir():
        sys.exit(f"photo set not found at {FACES} (ISOCHECK_FACES_ASIA_DIR)")
    out_path = Path(args.out)
    report = json.loads(out_path.read_text()) if out_path.exists() else {}
    scenarios = {"worker_kill": worker_kill, "postgres_restart": postgres_restart,
                 "scheduler_kill": scheduler_kill}  # fmt: skip
    try:
        for name in args.only.split(","):
            print(f"--- {name}", flush=True)
            t = time.perf_counter()
            report[name] = scenarios[name](args)
            report[name]["passed"] = not report[name]["problems"]
            report[name]["load_1min_after"] = round(os.getloadavg()[0], 2)
            print(json.dumps(report[name], indent=1, default=str)[:4000], flush=True)
            print(f"{name}: {'PASSED' if report[name]['passed'] else 'FAILED'} "
                  f"in {time.perf_counter() - t:.0f} s", flush=True)  # fmt: skip
    finally:
        _ensure_cluster_running()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    print(f"wrote {out_path}")
    sys.exit(0 if all(r.get("passed") for r in report.values()) else 1)


if __name__ == "__main__":
    main()
