"""`isocheck serve` as a real process: migrates, serves, runs the scheduler, answers the probes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _json(url):
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def test_serve_answers_healthz_and_readyz(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISOCHECK_")}
    env.update(
        ISOCHECK_DATA_DIR=str(tmp_path / "data"),
        ISOCHECK_PORT=str(port),
        ISOCHECK_SCHEDULER_INTERVAL_SECONDS="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "isocheck.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        health = ready = None
        while time.monotonic() < deadline and ready != 200:
            health = _get(f"http://127.0.0.1:{port}/healthz")
            ready = _get(f"http://127.0.0.1:{port}/readyz")
            time.sleep(0.3)
        assert health == 200
        assert ready == 200
        # the networks were built before the server answered anything (ISOCHECK_WARM_VERIFIER)
        inference = _json(f"http://127.0.0.1:{port}/readyz")["checks"]["inference"]
        assert inference["networks_built"] is True
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
