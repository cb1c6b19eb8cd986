"""Recovery from faults (regression tests of the fixes made for bench/faults.py):

* a check-in whose worker died while judging it is judged on the phone's retry (same
  Idempotency-Key) from the stored selfie, once, instead of "in progress" forever;
* a database that is restarting or unreachable is a 503 + Retry-After, never a 500;
* image files written by an upload that never committed (orphans) are deleted by the
  ``purge_orphan_files`` sweep, and only those;
* under gunicorn with PROMETHEUS_MULTIPROC_DIR, /metrics sums every worker's counters.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from server.checkins import service as checkins
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.core.enums import AreaKind, PersonStatus, PromptState
from server.flows.person_lifecycle import purge_orphan_files
from server.people.areas import create_area
from server.people.models import Device, Person, StoredImage
from server.storage import image_store
from tests.api.contract import HOME, add_prompt, bearer, make_world

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        "server.core.security._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def _checkin(client, token, nonce, key):
    return client.post(
        "/api/v1/me/checkins",
        headers={**bearer(token), "Idempotency-Key": key},
        data={"nonce": nonce, "latitude": str(HOME[0]), "longitude": str(HOME[1]),
              "accuracy_m": "10",
              "selfie": (io.BytesIO(b"\xff\xd8 not judged"), "s.jpg", "image/jpeg")},
        content_type="multipart/form-data",
    )  # fmt: skip


def test_an_attempt_whose_worker_died_is_judged_on_retry_once(
    app, client, session, clock, settings
):
    """The worker was killed after step 1 (upload kept, attempt committed) and before step 3.
    (The person has no face template, so the verdict is ``review``/``no_templates``: the real
    verifier is handed over but has nothing to compare.)"""
    world = make_world(client, session, clock.now())
    prompt = add_prompt(session, world.person_id, clock.now())
    session.commit()
    person = session.get(Person, world.person_id)
    device = session.scalar(select(Device).where(Device.person_id == person.id))
    checkins.record_upload(
        session=session, store=image_store(settings), person=person, device=device,
        prompt=prompt, idempotency_key="k-1", now=clock.now(),
        upload=checkins.Upload(image=b"selfie bytes", content_type="image/jpeg", nonce=prompt.nonce,
                               latitude=HOME[0], longitude=HOME[1], accuracy_m=10,
                               captured_at=None),
    )  # fmt: skip
    session.commit()  # ... and the worker is SIGKILLed here

    r = _checkin(client, world.device_token, prompt.nonce, "k-1")
    assert (r.status_code, r.get_json()["code"]) == (409, "checkin_in_progress")
    assert r.headers["Retry-After"] == "2"

    clock.advance(seconds=31)  # nobody is judging it any more
    r = _checkin(client, world.device_token, prompt.nonce, "k-1")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["result"], body["code"]) == ("review", "no_templates")
    again = _checkin(client, world.device_token, prompt.nonce, "k-1")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json()["attempt_id"] == body["attempt_id"]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(CheckinAttempt)) == 1
    assert session.get(CheckinPrompt, prompt.id).state is PromptState.completed


def test_database_unavailable_is_503_with_retry_after_not_500(settings, clock):
    from server.app import create_app

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{port}/x"}
    )
    app = create_app(down, clock=clock, test_config={"TESTING": True})
    r = app.test_client().get("/api/v1/me", headers=bearer("some-device-token"))
    assert r.status_code == 503
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["code"] == "service_unavailable"
    assert r.headers["Retry-After"] == "5"
    assert app.test_client().get("/readyz").status_code == 503


def test_orphan_files_are_swept_and_only_they(session, settings, clock):
    city = create_area(session=session, code="c", name="c", kind=AreaKind.city)
    district = create_area(session=session, code="d", name="d", kind=AreaKind.district,
                           parent=city)  # fmt: skip
    ward = create_area(session=session, code="w", name="w", kind=AreaKind.ward, parent=district)
    person = Person(full_name="A", phone="0900000000", ward_id=ward.id, home_address="x",
                    home_lat=10.8, home_lon=106.6, isolation_start=clock.now(),
                    isolation_end=clock.now() + timedelta(days=7),
                    status=PersonStatus.active)  # fmt: skip
    session.add(person)
    session.flush()
    store = image_store(settings)
    kept = store.save(b"a selfie with its row")
    session.add(StoredImage(person_id=person.id, kind="selfie", storage_key=kept, sha256="0" * 64,
                            size_bytes=1, created_at=clock.now()))  # fmt: skip
    session.commit()
    orphan = store.save(b"written, then the worker died before the commit")
    young = store.save(b"an upload being committed right now")
    tmp = store._path(store.save(b"x")).with_suffix(".tmp")
    store._path(tmp.stem).rename(tmp)  # a write interrupted before its rename
    old = time.time() - 2 * 3600
    for path in (store._path(kept), store._path(orphan), tmp):
        os.utime(path, (old, old))

    # file times are real times: the sweep runs on the system clock
    deleted = purge_orphan_files(session=session, data_dir=settings.data_dir,
                                 now=datetime.now(UTC), grace=timedelta(hours=1))  # fmt: skip
    assert deleted == 2
    assert store.exists(kept) and store.exists(young)
    assert not store.exists(orphan) and not tmp.exists()
    assert store.load(kept) == b"a selfie with its row"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(90)
def test_gunicorn_metrics_sum_every_worker(tmp_path):
    """Two gunicorn workers (production config), many requests: /metrics counts all of them,
    from files written by both workers, whichever worker answers the scrape."""
    from server.core.db import make_engine
    from server.models import Base

    url = f"sqlite:///{tmp_path / 'm.db'}"
    Base.metadata.create_all(make_engine(url))
    port = _free_port()
    prom = tmp_path / "prom"
    env = {**os.environ, "ISOCHECK_DATABASE_URL": url, "ISOCHECK_DATA_DIR": str(tmp_path),
           "ISOCHECK_BIND": f"127.0.0.1:{port}", "ISOCHECK_WORKERS": "2", "ISOCHECK_THREADS": "1",
           "PROMETHEUS_MULTIPROC_DIR": str(prom), "ISOCHECK_LOG_FORMAT": "json"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:server.gunicorn_conf",
         "server.app:create_app()"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
            assert time.monotonic() < deadline, "gunicorn did not start"
        n = 80

        def one(i):  # new connections, 8 at a time: both workers accept some
            r = httpx.get(f"{base}/healthz", headers={"X-Request-ID": f"metrics-test-{i:04d}"})
            return r.headers["X-Request-ID"] == f"metrics-test-{i:04d}"

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(one, range(n)))
        pids = {p.name.split("_")[-1] for p in prom.glob("histogram_*.db")}
        text = httpx.get(f"{base}/metrics").text
        healthz = [
            line for line in text.splitlines()
            if line.startswith("isocheck_http_request_seconds_count")
            and 'endpoint="health.healthz"' in line
        ]  # fmt: skip
        total = sum(float(line.rsplit(" ", 1)[1]) for line in healthz)
        assert total >= n + 1  # + the readiness poll
        assert len(pids) == 2, f"samples from workers {pids}"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    # the access log carries the request id
    assert re.search(rb"rid=metrics-test-0001", out)
