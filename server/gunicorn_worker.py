"""gunicorn's ``gthread`` worker, hardened against slow clients (issue 13, finding 4).

Stock ``gthread`` hands a connection to a thread as soon as its first bytes arrive, and the
thread then blocks reading the rest of the request head: ten clients dribbling 10 bytes every
5 s hold every thread of two workers and /healthz times out. Here a thread only reads what is
already there (non-blocking) and gives the connection back to the worker's poller until the
whole head (``\\r\\n\\r\\n``) has arrived, so waiting connections cost no thread. The number of
them is bounded by ``worker_connections``; a head must be complete within
``HEAD_TIMEOUT`` seconds (or its connection is closed), and once a request is being served every
socket read (the body) times out after ``READ_TIMEOUT`` seconds of silence.
"""

from __future__ import annotations

import os
import time

from gunicorn.workers import gthread

#: Seconds a client has to send its whole request line and headers.
HEAD_TIMEOUT = float(os.environ.get("ISOCHECK_HEAD_TIMEOUT", 10))
#: Seconds of silence allowed while a thread reads a request body.
READ_TIMEOUT = float(os.environ.get("ISOCHECK_READ_TIMEOUT", 15))
#: A head larger than this is refused (gunicorn's own line/field limits are smaller).
MAX_HEAD_BYTES = 64 * 1024


class BoundedThreadWorker(gthread.ThreadWorker):
    def handle(self, conn):  # runs in a worker thread
        if not getattr(conn, "_isocheck_head_ready", False):
            ready = self._read_head(conn)
            if ready is None:
                return False  # closed, too slow or too large: drop the connection
            if not ready:
                conn.data_ready = False
                return gthread._DEFER  # back to the poller, no thread held
        conn._isocheck_head_ready = False  # the next request on this connection starts over
        if not hasattr(conn, "_isocheck_init"):
            plain_init = conn.init

            def init() -> None:
                plain_init()
                conn.sock.settimeout(READ_TIMEOUT)  # after gthread's setblocking(True)

            conn.init = init
            conn._isocheck_init = True
        return super().handle(conn)

    def _read_head(self, conn) -> bool | None:
        """Take what the socket has without blocking; True once the head is complete."""
        now = time.monotonic()
        started = getattr(conn, "_isocheck_started", None)
        if started is None:
            conn._isocheck_started = started = now
            conn._isocheck_buf = b""
        buf = conn._isocheck_buf
        if conn.parser is not None:  # keep-alive: bytes read ahead sit in the parser
            buf = conn.parser.unreader.take_buffered() + buf
        conn.sock.setblocking(False)
        try:
            while True:
                chunk = conn.sock.recv(65536)
                if not chunk:
                    return None
                buf += chunk
                if len(chunk) < 65536:
                    break
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return None
        if len(buf) > MAX_HEAD_BYTES or now - started > HEAD_TIMEOUT:
            return None
        if b"\r\n\r\n" not in buf:
            conn._isocheck_buf = buf
            return False
        conn._isocheck_buf = b""
        conn._isocheck_started = None
        conn._isocheck_head_ready = True
        conn.sock.setblocking(True)
        conn.init()
        conn.parser.unreader.unread(buf)
        return True
