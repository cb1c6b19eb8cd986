"""The HTTP server of `isocheck serve` (real waitress on a socket): the body cut-off is the
documented limit, and the refusals waitress gives itself are problem+json like the app's."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from server.serving import make_server


@pytest.fixture
def served(app, settings):
    @app.post("/echo-len")
    def echo_len():
        from flask import request

        return {"n": len(request.get_data())}

    server = make_server(
        app, host="127.0.0.1", port=0, threads=2, max_upload_bytes=settings.max_upload_bytes
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield server.effective_port
    server.task_dispatcher.shutdown()
    server.close()


def _exchange(port: int, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send a raw request (possibly with less body than announced) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                top, _, rest = data.partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":", 1)[1])
                    for line in top.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(rest) >= length[0]:
                    break
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, rest


def _post_head(length: int, lang: str | None = None) -> bytes:
    head = f"POST /echo-len HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
    if lang:
        head += f"Accept-Language: {lang}\r\n"
    return (head + "\r\n").encode()


def test_a_body_one_byte_over_the_limit_is_a_problem_from_the_server(served, settings):
    status, headers, body = _exchange(served, _post_head(settings.max_upload_bytes + 1), b"x" * 10)
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert headers["content-language"] == "vi"
    problem = json.loads(body)
    assert problem["code"] == "request_too_large"
    assert problem["status"] == 413
    assert problem["title"] == "Dữ liệu gửi lên quá lớn"
    assert problem["max_bytes"] == settings.max_upload_bytes
    assert "max_body" not in body.decode()


def test_the_servers_problem_speaks_english_on_request(served, settings):
    head = _post_head(settings.max_upload_bytes + 1024 * 1024, "en-US,en;q=0.8")
    status, headers, body = _exchange(served, head, b"x")
    assert status == 413
    assert headers["content-language"] == "en"
    assert json.loads(body)["title"] == "Request too large"


def test_a_body_of_exactly_the_limit_reaches_the_app(served, settings):
    n = settings.max_upload_bytes
    status, _headers, body = _exchange(served, _post_head(n), b"x" * n)
    assert status == 200
    assert json.loads(body) == {"n": n}


def test_a_chunked_body_over_the_limit_is_a_problem_too(served, settings):
    head = b"POST /echo-len HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    size = settings.max_upload_bytes + 1
    chunk = f"{size:x}\r\n".encode() + b"x" * size + b"\r\n0\r\n\r\n"
    status, headers, body = _exchange(served, head, chunk)
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "request_too_large"


def test_a_malformed_request_is_a_problem(served):
    status, headers, body = _exchange(
        served, b"POST /echo-len HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
    )
    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "bad_request"


def test_oversized_headers_are_a_problem(served):
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n"
    status, headers, body = _exchange(served, head)
    assert status == 431
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "request_headers_too_large"


def test_a_ready_worker_keeps_what_it_loaded_out_of_the_collectors_full_passes():
    """``ready_worker`` (gunicorn's post_worker_init, ``isocheck serve``) freezes the objects the
    process made before its first request, so a full collection does not walk the app again on
    a request (issue 18: 36-80 ms stalls). Run in a child process: freezing is process-wide."""
    import subprocess
    import sys

    code = (
        "import gc\n"
        "from server.app import create_app\n"
        "create_app()\n"
        "before = gc.get_freeze_count()\n"
        "from server.serving import ready_worker\n"
        "ready_worker(warm_verifier=False)\n"
        "print(before, gc.get_freeze_count(), len(gc.get_objects()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    before, frozen, tracked = map(int, out.stdout.split())
    assert before == 0
    assert frozen > 50_000  # the app's modules, functions and settings
    assert tracked < frozen / 10  # what a full collection still walks
