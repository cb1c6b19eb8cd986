"""Issue 13, finding 4: slow clients must not starve the shipped gunicorn configuration.

The attack as observed: 10 connections each sending 10 bytes of a request every 5 s; meanwhile
/healthz probes (2 s timeout) must all answer, against gunicorn alone and behind the shipped
nginx (skips without nginx).
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

from tests.live.server import NGINX, clean_env, get, gunicorn, nginx

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 10
PROBES = 5


def _slowloris(base: str, stop: threading.Event, connections: int) -> list[socket.socket]:
    """Open ``connections`` sockets that each dribble 10 bytes every 5 s (and reconnect when the
    server closes them, as an attacker would)."""
    url = urlsplit(base)
    payload = b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"

    def one() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection((url.hostname, url.port), timeout=5) as s:
                    for i in range(0, len(payload) * 1000, 10):
                        chunk = (payload + b"X-Pad: " + b"a" * 10_000)[i % len(payload):][:10]
                        s.sendall(chunk)
                        if stop.wait(5):
                            return
            except OSError:
                if stop.wait(0.2):
                    return

    threads = [threading.Thread(target=one, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    return threads


def _probe_under_attack(base: str) -> list[int | None]:
    stop = threading.Event()
    threads = _slowloris(base, stop, SLOW_CLIENTS)
    try:
        time.sleep(2)  # every slow connection is open and has sent its first bytes
        results = []
        for _ in range(PROBES):
            results.append(get(f"{base}/healthz", timeout=2))
            time.sleep(1.5)
        return results
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)


@pytest.fixture
def app_env(tmp_path):
    return clean_env(
        ISOCHECK_DATA_DIR=str(tmp_path / "data"),
        ISOCHECK_WORKERS="2",
        ISOCHECK_SECRET_KEY="slow-client-test-" + "k" * 40,
    )


def test_gunicorn_alone_answers_probes_while_slow_clients_dribble(app_env, tmp_path):
    with gunicorn(app_env, log=tmp_path / "gunicorn.log") as base:
        assert _probe_under_attack(base) == [200] * PROBES
        # ordinary requests with a body and on a kept-alive connection still work
        import http.client

        conn = http.client.HTTPConnection(urlsplit(base).hostname, urlsplit(base).port, timeout=5)
        for _ in range(3):
            conn.request("POST", "/api/v1/auth/token", body=b'{"username": "x"}',
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            assert response.status in (400, 401, 422, 503)
        conn.close()


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")
def test_behind_the_shipped_nginx_probes_answer_while_slow_clients_dribble(app_env, tmp_path):
    with gunicorn(app_env, log=tmp_path / "gunicorn.log") as upstream, nginx(
        urlsplit(upstream).netloc, tmp_path / "nginx"
    ) as base:
        assert _probe_under_attack(base) == [200] * PROBES
