"""The HTTP server of ``isocheck serve`` (waitress), answering its own errors as problem+json.

waitress refuses some requests before the app sees them: a body over the limit (413, from the
``Content-Length`` header, without reading the body), malformed requests (400), oversized
headers (431), unsupported transfer codings (501) and a failure after the app (500). Its own
answers are ``text/plain``; a phone that branches on ``code`` would break, so the channel here
answers them in the same problem+json shape, language and codes as the app (server.http.problem).

The body cut-off is exactly ``ISOCHECK_MAX_UPLOAD_BYTES``, the same as the app's
``MAX_CONTENT_LENGTH``: waitress refuses ``Content-Length >= max_request_body_size``, so it is set
one byte above the limit (a body of exactly the limit passes, one byte more is refused).
"""

from __future__ import annotations

import gc
import json
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask

from server.http import problem


class ProblemErrorTask(ErrorTask):
    """waitress's error answer, as ``application/problem+json``."""

    #: Set per server (the upload limit, reported as ``max_bytes`` on a 413).
    max_bytes: int | None = None

    def execute(self) -> None:
        error = self.request.error
        status = int(getattr(error, "code", 500) or 500)
        code = problem.code_for_status(status)
        lang = problem.language_of(self.request.headers.get("ACCEPT_LANGUAGE"))
        body = problem.problem_body(
            code, status, lang, instance=getattr(self.request, "path", None) or None
        )
        if status == 413 and self.max_bytes:
            body["max_bytes"] = self.max_bytes
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.status = f"{status} {getattr(error, 'reason', 'Error')}"
        self.response_headers.extend(
            [
                ("Content-Type", problem.PROBLEM_JSON),
                ("Content-Language", lang),
                ("X-Content-Type-Options", "nosniff"),
            ]
        )
        self.set_close_on_finish()
        self.content_length = len(payload)
        self.write(payload)


def body_limit(max_upload_bytes: int) -> int:
    """waitress's ``max_request_body_size`` for an upload limit (it refuses ``>=`` its value)."""
    return max_upload_bytes + 1


def make_server(app: Any, *, host: str, port: int, threads: int, max_upload_bytes: int) -> Any:
    """A waitress server for ``app`` whose own refusals are problem+json (call ``.run()``)."""
    task_class = type("ProblemErrorTask", (ProblemErrorTask,), {"max_bytes": max_upload_bytes})
    channel_class = type("ProblemChannel", (HTTPChannel,), {"error_task_class": task_class})
    server = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="isocheck",
        max_request_body_size=body_limit(max_upload_bytes),
    )
    # One listening socket gives a TcpWSGIServer; several (a host name with an IPv4 and an IPv6
    # address) a MultiSocketServer whose map holds them.
    listeners = [server] if isinstance(server, BaseWSGIServer) else list(server.map.values())
    for listener in listeners:
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = channel_class
    return server


def ready_worker(*, warm_verifier: bool) -> None:
    """What a serving process does once, before its first request: build the face networks
    (:func:`server.face_verifier.warm_verifier`), then move every object made so far — the app,
    its modules, the networks, ~150,000 objects — out of the garbage collector's reach
    (``gc.freeze``). A full collection walked them all, 75-80 ms with the verifier loaded
    (36-41 ms without), stalling whichever request set it off: the city's 31-day CSV (9,300 rows
    of tuples) set it off on most views, 60 ms p50 → 180 ms p95 (issue 18). What is frozen is
    never collected, so what is garbage already is collected first."""
    from server.face_verifier import warm_verifier as warm

    warm(enabled=warm_verifier)
    gc.collect()
    gc.freeze()
