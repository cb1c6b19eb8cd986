"""Issue 13, "keep it closed": the real service (gunicorn, 2 workers, the shipped configuration,
on PostgreSQL when ISOCHECK_TEST_DATABASE_URL is set), a demo world made by `isocheck demo`, and
schemathesis run from the contract with every check (`--checks all`): 0 server errors, 0
responses that violate the contract, 0 valid requests rejected.

Two bounded runs (``LIVE_FUZZ_SECONDS`` each, default 60): the phone's token on everything but
the admin API, then a staff (admin) token on the admin API (after the phone run, so
``revokeDevices`` cannot log the phone out mid-run). Rate limits are raised out of reach
(tests/api/test_contract.py checks the 429s). Reports land in the test's tmp directory.

"0 valid requests rejected" is checked against the contract: a schema-valid request may be
refused only by a rule the contract's ``x-rules`` state (the measured_at window, isolation
dates, an unknown activation code or nonce, a selfie sent without a filename, …), with that
rule's status — a schemathesis configuration made from the contract says so per operation, and
tests/api/test_contract_rules.py proves the server refuses exactly so. Part of every CI run
(slow, about 3 minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.engine import make_url

from server.core.db import make_engine
from tests.conftest import PG_URL
from tests.live.demo import make_demo
from tests.live.server import REPO, clean_env, gunicorn

pytestmark = pytest.mark.slow

SECONDS = int(os.environ.get("LIVE_FUZZ_SECONDS", "60"))
SPEC = REPO / "mobile_api_spec" / "openapi.yaml"
HIGH = "100000/minute"


@pytest.fixture
def database_url(tmp_path):
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'live.db'}"
        return
    name = f"live_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.engine.dispose()


#: Request-example fields that must be near "now" to be valid (a declaration is at most 7 days
#: old, an isolation period starts around today): the contract's examples carry fixed dates, so
#: the run refreshes them relative to the real clock (offsets from now).
FRESH = {
    "measured_at": timedelta(minutes=-10),
    "captured_at": timedelta(seconds=-5),
    "isolation_start": timedelta(hours=-1),
    "isolation_end": timedelta(days=7),
}


def _fresh_spec(tmp_path: Path) -> Path:
    spec = yaml.safe_load(SPEC.read_text())
    now = datetime.now(UTC)

    def refresh(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in FRESH and isinstance(value, str):
                    node[key] = (now + FRESH[key]).isoformat(timespec="seconds")
                else:
                    refresh(value)
        elif isinstance(node, list):
            for item in node:
                refresh(item)

    for item in spec["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "requestBody" in op:
                refresh(op["requestBody"])
    out = tmp_path / "openapi.yaml"
    out.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    return out


#: What schemathesis expects of a request that fits the schema, before the contract's x-rules.
POSITIVE = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


def _config(tmp_path: Path) -> Path:
    """A schemathesis configuration from the contract: each operation with ``x-rules`` may
    also refuse schema-valid data with the statuses of its rules (and nothing else)."""
    spec = yaml.safe_load(SPEC.read_text())
    lines = []
    for item in spec["paths"].values():
        for op in item.values():
            if not isinstance(op, dict) or not op.get("x-rules"):
                continue
            statuses = POSITIVE + sorted({str(rule["status"]) for rule in op["x-rules"]})
            lines += [
                "[[operations]]",
                f"include-operation-id = {json.dumps(op['operationId'])}",
                f"checks.positive_data_acceptance.expected-statuses = {json.dumps(statuses)}",
                "",
            ]
    # The contract's global rule no_nul (422 for a NUL anywhere) would make every operation's
    # positive data refusable; NUL handling is proven by tests/api/test_contract_rules.py and
    # tests/test_nul_bytes.py, so the run generates no NUL instead of accepting 422 everywhere.
    assert {rule["id"] for rule in spec.get("x-rules", [])} == {"no_nul"}
    lines = ["[generation]", "allow-x00 = false", "", *lines]
    out = tmp_path / "schemathesis.toml"
    out.write_text("\n".join(lines))
    return out


def _call(method: str, url: str, body: dict | None = None, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(  # noqa: S310
        url, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
    )
    with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def _schemathesis(spec: Path, base: str, token: str, scope: list[str], report: str):
    cli = Path(sys.executable).parent / "schemathesis"
    config = _config(spec.parent)
    return subprocess.run(
        [str(cli), "--config-file", str(config), "run", str(spec), "--url", base,
         "--checks", "all", "--max-time", str(SECONDS), "--seed", "13",
         # one worker: with two threads, hypothesis's lambda-source parsing hits CPython 3.11's
         # non-thread-safe AST constructor ("AST constructor recursion depth mismatch", a
         # schemathesis runtime error, not a finding)
         "--workers", "1",
         "-H", f"Authorization: Bearer {token}", *scope,
         "--report", "junit", "--report-junit-path", report],
        cwd=spec.parent,  # its .schemathesis cache stays in the tmp directory
        capture_output=True, text=True, timeout=SECONDS * 3 + 120,
    )


def test_live_service_holds_its_contract_under_schemathesis(tmp_path, database_url):
    env = clean_env(
        ISOCHECK_DATA_DIR=str(tmp_path / "data"),
        ISOCHECK_DATABASE_URL=database_url,
        ISOCHECK_WORKERS="2",
        ISOCHECK_RATE_LIMIT_ACTIVATION=HIGH,
        ISOCHECK_RATE_LIMIT_CHECKIN=HIGH,
        ISOCHECK_RATE_LIMIT_DEVICE=HIGH,
        ISOCHECK_RATE_LIMIT_IP=HIGH,
        ISOCHECK_RATE_LIMIT_STAFF_LOGIN=HIGH,
    )
    accounts = make_demo(env)
    with gunicorn(env, log=tmp_path / "gunicorn.log") as base:
        api = f"{base}/api/v1"
        staff = _call("POST", f"{api}/auth/token",
                      {"username": "admin", "password": accounts["admin"]})["token"]
        code = _call("POST", f"{api}/admin/persons/1/activation-code", {}, staff)["code"]
        phone = _call("POST", f"{api}/devices/activate", {"code": code})["token"]
        spec = _fresh_spec(tmp_path)
        runs = {
            "phone": _schemathesis(spec, base, phone, ["--exclude-path-regex", "^/api/v1/admin"],
                                   str(tmp_path / "phone.xml")),
            "staff": _schemathesis(spec, base, staff, ["--include-path-regex", "^/api/v1/admin",
                                                 "--exclude-operation-id", "addEnrolmentPhoto"],
                                   str(tmp_path / "staff.xml")),
        }
    for who, r in runs.items():
        (tmp_path / f"{who}.out").write_text(r.stdout + r.stderr)
    failed = {who: r.stdout[-6000:] for who, r in runs.items() if r.returncode != 0}
    assert not failed, "\n\n".join(f"--- {who} ---\n{out}" for who, out in failed.items())
    # and the server's own log agrees: no unhandled error, no traceback in any worker
    log = (tmp_path / "gunicorn.log").read_text(errors="replace")
    assert "unhandled" not in log and "Traceback (most recent call last)" not in log
