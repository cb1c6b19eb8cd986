"""The mobile web app shell at /app/ (issue 14): served with a strict CSP, no inline script,
small enough for mobile data, and calling only operations of the public contract."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import yaml

from server.webapp.views import SHELL, STATIC

SPEC = Path(__file__).resolve().parents[2] / "mobile_api_spec" / "openapi.yaml"


def test_shell_files_are_served_with_a_strict_csp(client):
    for name in ("", "activate?server=http%3A%2F%2Fx&code=K7M2Q-9TXHP", *SHELL[1:], "sw.js"):
        r = client.get(f"/app/{name}")
        assert r.status_code == 200, name
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp
    assert client.get("/app/sw.js").headers["Service-Worker-Allowed"] == "/app/"
    assert client.get("/app/app.js").mimetype == "text/javascript"
    assert client.get("/app/manifest.webmanifest").json["start_url"] == "/app/"
    assert client.get("/app").status_code == 308
    assert client.get("/app/../server/app.py").status_code == 404


def test_no_inline_script_or_style():
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # every script has a src
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


def test_app_calls_only_operations_of_the_public_contract():
    spec = yaml.safe_load(SPEC.read_text())
    paths = set(spec["paths"])
    used = set(re.findall(r'"(/api/v1/[a-z/-]+)', (STATIC / "api.js").read_text()))
    assert used, "api.js names its paths"
    assert used <= paths, used - paths
    assert not any(p.startswith("/api/v1/admin") or p.startswith("/api/v1/auth") for p in used)


def test_service_worker_caches_exactly_the_shell():
    sw = (STATIC / "sw.js").read_text()
    cached = set(re.findall(r'"(/app/[^"]*)"', sw.split("];")[0]))
    assert cached == {"/app/"} | {f"/app/{n}" for n in SHELL[1:]}


def test_shell_weighs_at_most_150_kb_gzipped():
    total = sum(len(gzip.compress((STATIC / n).read_bytes(), 9)) for n in (*SHELL, "sw.js"))
    assert total <= 150 * 1024, total
