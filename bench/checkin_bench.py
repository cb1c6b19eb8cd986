"""Check-in throughput and latency over HTTP against gunicorn, on SQLite and PostgreSQL.

What it does, per database:
1. migrate a fresh database; enrol P persons (a real photo each, East/South-East-Asian set),
   activate a device and open one prompt per person;
2. start gunicorn (N sync workers) on a free loopback port and warm every worker's verifier;
3. send the check-ins (another photo of the same person, resized to phone size) at each
   concurrency level and time them; every answer must be a 200 `verified`/`review`/`rejected`;
4. time `Verifier.verify` in-process on the same images (one thread): the verification cost;
5. overhead = HTTP p50 at concurrency 1 − in-process verify p50; target ≤ 25 % of verification.

Prints a table and writes bench/results/checkin_bench.json.

    uv run python bench/checkin_bench.py [--quick] [--db sqlite,postgresql] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np
from sqlalchemy import text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from server.config import load_settings  # noqa: E402
from server.core import crypto  # noqa: E402
from server.core.db import make_engine, make_session_factory, session_scope  # noqa: E402
from server.core.enums import AreaKind, PersonStatus, PromptKind, PromptState  # noqa: E402
from server.core.security import new_token, token_digest  # noqa: E402
from server.migrate import upgrade  # noqa: E402
from server.models import CheckinPrompt, Device, FaceTemplate, Person  # noqa: E402
from server.people.areas import create_area  # noqa: E402

PG_URL = os.environ.get(
    "ISOCHECK_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
FACES = Path(os.environ.get("ISOCHECK_FACES_ASIA_DIR", REPO.parent / "shared/faces-asia"))
PHONE_PX = 1080  # long side of a typical phone selfie upload


def phone_sized(path: Path) -> bytes:
    """The photo resized (Lanczos) so its long side is PHONE_PX, as JPEG quality 90."""
    img = cv2.imread(str(path))
    scale = PHONE_PX / max(img.shape[:2])
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_LANCZOS4)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def identities() -> list[tuple[Path, Path]]:
    """(enrolment photo, selfie) of every LFW identity in the Asian set (two distinct photos)."""
    pairs = []
    for folder in sorted(FACES.glob("lfw_*")):
        files = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem))
        if len(files) >= 2:
            pairs.append((files[0], files[1]))
    return pairs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def prepare(url: str, data_dir: Path, n_people: int, verifier) -> list[dict]:
    from verification import VerificationError

    """Persons with a template, a device token and an open prompt; returns what the phones need."""
    upgrade(url)
    settings = load_settings(data_dir=data_dir, database_url=url)
    factory = make_session_factory(make_engine(url))
    pairs = identities()
    now = datetime.now(UTC)
    phones = []
    templates_cache: dict[Path, bytes] = {}
    with session_scope(factory) as s:
        city = create_area(
            session=s, code=f"c{uuid.uuid4().hex[:6]}", name="HCM", kind=AreaKind.city
        )
        district = create_area(
            session=s,
            code=f"d{uuid.uuid4().hex[:6]}",
            name="GV",
            kind=AreaKind.district,
            parent=city,
        )
        ward = create_area(
            session=s,
            code=f"w{uuid.uuid4().hex[:6]}",
            name="P1",
            kind=AreaKind.ward,
            parent=district,
        )
        for i in range(n_people * 3):
            if len(phones) == n_people:
                break
            enrol_path, selfie_path = pairs[i % len(pairs)]
            if enrol_path not in templates_cache:
                try:
                    templates_cache[enrol_path] = verifier.enrol(enrol_path.read_bytes()).to_bytes()
                except VerificationError:  # the strict enrolment gate: the admin would retake
                    templates_cache[enrol_path] = None
            if templates_cache[enrol_path] is None:
                continue
            person = Person(
                full_name=f"Người {i}",
                phone="0900000000",
                ward_id=ward.id,
                home_address="x",
                home_lat=10.81,
                home_lon=106.68,
                isolation_start=now - timedelta(days=1),
                isolation_end=now + timedelta(days=6),
                status=PersonStatus.active,
            )
            s.add(person)
            s.flush()
            s.add(
                FaceTemplate(
                    person_id=person.id,
                    embedder=verifier.embedder,
                    model_id=verifier.model_sha256(),
                    data=crypto.encrypt(templates_cache[enrol_path], keys=settings.encryption_key),
                )
            )
            token = new_token()
            s.add(Device(person_id=person.id, token_hash=token_digest(token)))
            nonce = secrets.token_urlsafe(16)
            s.add(
                CheckinPrompt(
                    person_id=person.id,
                    slot_key="bench",
                    kind=PromptKind.scheduled,
                    state=PromptState.open,
                    opens_at=now - timedelta(minutes=1),
                    due_at=now + timedelta(hours=2),
                    nonce=nonce,
                    max_attempts=3,
                )
            )
            phones.append({"token": token, "nonce": nonce, "selfie": selfie_path})
    return phones


def start_gunicorn(url: str, data_dir: Path, workers: int, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "ISOCHECK_DATABASE_URL": url,
        "ISOCHECK_DATA_DIR": str(data_dir),
        "ISOCHECK_RATELIMIT_ENABLED": "false",
        "ISOCHECK_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--timeout",
            "120",
            "server.app:create_app()",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("gunicorn did not become ready: " + proc.stderr.read().decode()[-2000:])


def check_in(client: httpx.Client, base: str, phone: dict, image: bytes) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    r = client.post(
        f"{base}/api/v1/me/checkins",
        headers={"Authorization": f"Bearer {phone['token']}", "Idempotency-Key": uuid.uuid4().hex},
        data={
            "nonce": phone["nonce"],
            "latitude": "10.81",
            "longitude": "106.68",
            "accuracy_m": "10",
        },
        files={"selfie": ("selfie.jpg", image, "image/jpeg")},
        timeout=120,
    )
    elapsed = (time.perf_counter() - t0) * 1000
    body = r.json()
    return elapsed, r.status_code, body.get("result") or body.get("code", "?")


def run_db(db: str, args, verifier) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"isocheck-bench-{db}-"))
    schema = None
    if db == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(PG_URL)
        with admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    levels = [int(c) for c in args.concurrency.split(",")]
    n_warm = args.workers * 2
    per_level = args.requests
    phones = prepare(url, tmp, n_warm + per_level * len(levels), verifier)
    images = {p["selfie"]: phone_sized(p["selfie"]) for p in phones}
    port = free_port()
    proc = start_gunicorn(url, tmp, args.workers, port)
    base = f"http://127.0.0.1:{port}"
    out: dict = {"db": db, "workers": args.workers, "levels": []}
    try:
        with httpx.Client() as client:
            warm = phones[:n_warm]
            with ThreadPoolExecutor(args.workers) as pool:  # load every worker's models
                list(pool.map(lambda p: check_in(client, base, p, images[p["selfie"]]), warm))
            rest = phones[n_warm:]
            for i, conc in enumerate(levels):
                batch = rest[i * per_level : (i + 1) * per_level]
                t0 = time.perf_counter()
                with ThreadPoolExecutor(conc) as pool:
                    results = list(
                        pool.map(lambda p: check_in(client, base, p, images[p["selfie"]]), batch)
                    )
                wall = time.perf_counter() - t0
                lat = [r[0] for r in results]
                statuses = sorted({r[1] for r in results})
                outcomes = {
                    k: sum(1 for r in results if r[2] == k) for k in {r[2] for r in results}
                }
                out["levels"].append(
                    {
                        "concurrency": conc,
                        "requests": len(batch),
                        "wall_s": round(wall, 2),
                        "throughput_rps": round(len(batch) / wall, 2),
                        "p50_ms": round(pct(lat, 50), 1),
                        "p95_ms": round(pct(lat, 95), 1),
                        "statuses": statuses,
                        "outcomes": outcomes,
                    }
                )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if schema:
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    return out, images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", default="1,2,4")
    ap.add_argument("--requests", type=int, default=30, help="check-ins per concurrency level")
    ap.add_argument("--quick", action="store_true", help="10 requests per level, sqlite only")
    ap.add_argument("--out", default=str(REPO / "bench/results/checkin_bench.json"))
    args = ap.parse_args()
    if args.quick:
        args.requests, args.db = 10, "sqlite"
    if not FACES.is_dir():
        sys.exit(f"photo set not found at {FACES} (ISOCHECK_FACES_ASIA_DIR)")
    from verification import Verifier

    verifier = Verifier()
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "phone_px": PHONE_PX,
        "runs": [],
    }
    images: dict = {}
    for db in args.db.split(","):
        run, images = run_db(db, args, verifier)
        report["runs"].append(run)

    # the verification cost itself, in-process, same images, one thread
    verify_ms = []
    pairs = dict(identities())
    from verification import VerificationError

    for path, image in list(images.items())[:30]:
        enrol_path = next(e for e, s in pairs.items() if s == path)
        try:
            tpl = verifier.enrol(enrol_path.read_bytes())
        except VerificationError:
            continue
        t0 = time.perf_counter()
        # a refusal costs the same pipeline up to the gate; the server does it too
        with contextlib.suppress(VerificationError):
            verifier.verify([tpl], image)
        verify_ms.append((time.perf_counter() - t0) * 1000)
    v50 = statistics.median(verify_ms)
    report["verify_in_process_p50_ms"] = round(v50, 1)

    print(
        f"\nCheck-in over HTTP: gunicorn {args.workers} workers, {PHONE_PX}-px selfies, "
        f"{os.cpu_count()} CPUs; verification alone (in-process p50): {v50:.1f} ms\n"
    )
    print(
        f"{'db':<11}{'conc':>5}{'req':>5}{'rps':>8}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'overhead':>10}  outcomes"
    )
    for run in report["runs"]:
        c1 = next((lv for lv in run["levels"] if lv["concurrency"] == 1), None)
        if c1:
            over = c1["p50_ms"] - v50
            run["overhead_ms_c1"] = round(over, 1)
            run["overhead_ratio_c1"] = round(over / v50, 3)
        for lv in run["levels"]:
            ov = f"{run['overhead_ratio_c1']:.0%}" if lv["concurrency"] == 1 and c1 else ""
            print(
                f"{run['db']:<11}{lv['concurrency']:>5}{lv['requests']:>5}"
                f"{lv['throughput_rps']:>8.2f}{lv['p50_ms']:>9.1f}{lv['p95_ms']:>9.1f}"
                f"{ov:>10}  {lv['outcomes']} {lv['statuses']}"
            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
