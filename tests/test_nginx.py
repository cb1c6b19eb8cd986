"""docs/deploy/nginx.conf run by the real nginx in front of the real app (waitress): what nginx
answers itself — a body over the limit, the app down, the app too slow — is the app's
problem+json, code and texts. Skips without an nginx binary."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from server.http import problem as errors
from server.serving import make_server

REPO = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _site(upstream_port: int, port: int, read_timeout: str | None = None) -> str:
    site = (REPO / "docs/deploy/nginx.conf").read_text(encoding="utf-8")
    site, n = re.subn(r"server\s+app:8000;", f"server 127.0.0.1:{upstream_port};", site)
    assert n == 1
    site, n = re.subn(r"listen\s+80;", f"listen 127.0.0.1:{port};", site)
    assert n == 1
    if read_timeout:
        site = re.sub(r"proxy_read_timeout\s+\S+;", f"proxy_read_timeout {read_timeout};", site)
    return site


class Nginx:
    def __init__(self, root: Path, site: str) -> None:
        self.root = root
        (root / "site.conf").write_text(site, encoding="utf-8")
        temp = "\n".join(
            f"    {kind}_temp_path {root / kind};" for kind in ("client_body", "proxy")
        )
        (root / "nginx.conf").write_text(
            # as root, the workers would run as `nobody` and could not write the temp dirs here
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"daemon off;\nworker_processes 1;\npid {root / 'nginx.pid'};\n"
            f"error_log {root / 'error.log'} warn;\nevents {{ worker_connections 64; }}\n"
            f"http {{\n    access_log off;\n{temp}\n"
            f"    fastcgi_temp_path {root / 'f'};\n    uwsgi_temp_path {root / 'u'};\n"
            f"    scgi_temp_path {root / 's'};\n    include {root / 'site.conf'};\n}}\n",
            encoding="utf-8",
        )
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(root), "-e", str(root / "error.log"), "-c", str(root / "nginx.conf")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def nginx(tmp_path):
    started: list[Nginx] = []

    def start(upstream_port: int, **kwargs) -> int:
        port = _free_port()
        proxy = Nginx(tmp_path, _site(upstream_port, port, **kwargs))
        started.append(proxy)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proxy.proc.poll() is not None:
                out = proxy.proc.stdout.read().decode() if proxy.proc.stdout else ""
                log = (
                    (tmp_path / "error.log").read_text()
                    if (tmp_path / "error.log").exists()
                    else ""
                )
                pytest.fail(f"nginx exited: {out}\n{log}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return port
            time.sleep(0.05)
        pytest.fail("nginx did not start")

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def upstream(app, settings):
    """The real app behind the real `isocheck serve` HTTP server."""

    @app.post("/echo-len")
    def echo_len():
        from flask import request

        return {"n": len(request.get_data())}

    server = make_server(
        app, host="127.0.0.1", port=0, threads=2, max_upload_bytes=settings.max_upload_bytes
    )
    threading.Thread(target=server.run, daemon=True).start()
    yield server.effective_port
    server.task_dispatcher.shutdown()
    server.close()


def _request(url: str, *, data: bytes | None = None, lang: str | None = None, timeout=20):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        # an upload's bytes, as a photo is sent (urllib would say form-urlencoded, which the app
        # parses for its NUL check and bounds at Werkzeug's form-memory limit)
        req.add_header("Content-Type", "application/octet-stream")
    if lang:
        req.add_header("Accept-Language", lang)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def _assert_same_problem(status, headers, body, *, expect_status, code, lang):
    assert status == expect_status
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Content-Language"] == lang
    problem = json.loads(body)
    expected = errors.problem_body(code, expect_status, lang)
    for key in ("type", "title", "status", "code", "detail"):
        assert problem[key] == expected[key], key
    return problem


def test_a_body_over_the_limit_is_the_apps_problem(nginx, upstream, settings):
    port = nginx(upstream)
    base = f"http://127.0.0.1:{port}"
    assert _request(f"{base}/healthz")[0] == 200
    n = settings.max_upload_bytes
    ok = _request(f"{base}/echo-len", data=b"x" * n)
    assert ok[0] == 200 and json.loads(ok[2]) == {"n": n}  # the limit itself passes

    status, headers, body = _request(f"{base}/echo-len", data=b"x" * (n + 1))
    problem = _assert_same_problem(
        status, headers, body, expect_status=413, code="request_too_large", lang="vi"
    )
    assert problem["max_bytes"] == n
    status, headers, body = _request(f"{base}/echo-len", data=b"x" * (n + 1), lang="en-GB,en")
    _assert_same_problem(
        status, headers, body, expect_status=413, code="request_too_large", lang="en"
    )


def test_the_apps_own_problems_pass_through(nginx, upstream):
    port = nginx(upstream)
    status, headers, body = _request(f"http://127.0.0.1:{port}/no/such/page")
    assert status == 404
    assert json.loads(body)["code"] == "not_found"


def test_the_app_down_is_a_problem_with_retry_after(nginx):
    port = nginx(_free_port())  # nothing listens there
    for lang in ("vi", "en"):
        status, headers, body = _request(f"http://127.0.0.1:{port}/api/v1/me", lang=lang)
        _assert_same_problem(
            status, headers, body, expect_status=502, code="service_unavailable", lang=lang
        )
        assert headers["Retry-After"] == "5"


def test_the_app_too_slow_is_a_problem(nginx):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel does) and never answers
    try:
        port = nginx(silent.getsockname()[1], read_timeout="1s")
        status, headers, body = _request(f"http://127.0.0.1:{port}/api/v1/me")
        _assert_same_problem(
            status, headers, body, expect_status=504, code="service_unavailable", lang="vi"
        )
    finally:
        silent.close()


def test_an_oversized_header_is_a_problem(nginx):
    port = nginx(_free_port())
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"X-Big": "a" * 40_000})
    try:
        urllib.request.urlopen(req, timeout=10)
        status, headers, body = 200, {}, b""
    except urllib.error.HTTPError as exc:
        status, headers, body = exc.code, exc.headers, exc.read()
    _assert_same_problem(
        status, headers, body, expect_status=431, code="request_headers_too_large", lang="vi"
    )
