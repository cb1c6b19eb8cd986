"""The shipped gunicorn configuration as a real process: the settings every worker must agree
on (issue 13, findings 8 and 9)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from cryptography.fernet import Fernet

from tests.live.demo import make_demo
from tests.live.server import REPO, clean_env, gunicorn

pytestmark = pytest.mark.slow


def _post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(  # noqa: S310
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def test_demo_without_a_secret_every_worker_accepts_the_same_staff_token(tmp_path):
    """Finding 9: each worker invented its own secret, so a staff token failed on ~half the
    calls. The demo secret is now made once per data directory."""
    env = clean_env(ISOCHECK_DATA_DIR=str(tmp_path / "data"), ISOCHECK_WORKERS="2")
    accounts = make_demo(env)
    with gunicorn(env, log=tmp_path / "gunicorn.log") as base:
        token = _post_json(
            f"{base}/api/v1/auth/token", {"username": "admin", "password": accounts["admin"]}
        )["token"]
        statuses = []
        for _ in range(20):
            req = urllib.request.Request(  # noqa: S310
                f"{base}/api/v1/admin/persons/1", headers={"Authorization": f"Bearer {token}"}
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310
                    statuses.append(response.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        assert statuses == [200] * 20


def test_production_with_two_workers_and_memory_limits_refuses_and_says_why(tmp_path):
    """Finding 8: per-process counters with 2 workers double every limit; refuse to start."""
    env = clean_env(
        ISOCHECK_MODE="production",
        ISOCHECK_DATA_DIR=str(tmp_path / "data"),
        ISOCHECK_WORKERS="2",
        ISOCHECK_SECRET_KEY="Zq3v-9kLx_T2mWp8rB4nYc7HdJ6sFg1aUe0oVi5tKhQwRzXyNbM",
        ISOCHECK_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ISOCHECK_DATABASE_URL=f"sqlite:///{tmp_path / 'prod.db'}",
        ISOCHECK_BIND="127.0.0.1:0",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:server.gunicorn_conf",
            "server.app:create_app()",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "ISOCHECK_RATELIMIT_STORAGE_URL" in proc.stdout + proc.stderr


def test_a_worker_builds_its_face_networks_before_its_first_request(tmp_path):
    """post_worker_init warms the verifier: the worker's very first /readyz already reports the
    networks built, and the log says so once per worker (no personal data: engine and time)."""
    env = clean_env(ISOCHECK_DATA_DIR=str(tmp_path / "data"), ISOCHECK_WORKERS="1")
    log = tmp_path / "gunicorn.log"
    with gunicorn(env, log=log) as base:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=10) as response:  # noqa: S310
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # 503: no database migrated in this data dir
            body = json.loads(exc.read())
        inference = body["checks"]["inference"]
    assert inference["networks_built"] is True
    built = [ln for ln in log.read_text().splitlines() if "face networks built at start-up" in ln]
    assert len(built) == 1, built
