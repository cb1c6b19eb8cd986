"""gunicorn settings for production.

    gunicorn -c python:server.gunicorn_conf 'server.app:create_app()'


Verification is CPU-bound and runs in the request, so one worker per core is the right size;
a second thread per worker overlaps uploads and database waits with another request's
verification. Put a buffering reverse proxy (nginx) in front so slow mobile uploads never hold a
worker, and set ``ISOCHECK_PROXY_HOPS=1`` so the app sees the phones' addresses. Every value can
be overridden with the usual GUNICORN_CMD_ARGS. docs/deploy.md has the whole picture.
"""

from __future__ import annotations

import os
import tempfile


def _cpus() -> int:
    """Cores this process may use (a container's CPU set, not the host's core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


bind = os.environ.get("ISOCHECK_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("ISOCHECK_WORKERS", _cpus()))
#: The app's settings know the worker count (production refuses memory:// rate limits with >1).
os.environ["ISOCHECK_WORKERS"] = str(workers)
#: gthread that gives a thread only to a connection whose request head has fully arrived (slow
#: clients wait in the poller, bounded by worker_connections; heads within 10 s, body reads
#: time out after 15 s of silence): server/gunicorn_worker.py, issue 13 finding 4.
worker_class = "server.gunicorn_worker.BoundedThreadWorker"
worker_connections = int(os.environ.get("ISOCHECK_WORKER_CONNECTIONS", 200))
threads = int(os.environ.get("ISOCHECK_THREADS", 2))
#: A check-in is answered in well under a second; anything near this is stuck.
timeout = 60
graceful_timeout = 30
keepalive = 5
#: Recycle workers now and then (memory hygiene of long-lived native libraries).
max_requests = 5000
max_requests_jitter = 500
#: Request line and header bounds (the body bound is ISOCHECK_MAX_UPLOAD_BYTES in the app).
limit_request_line = 4094
limit_request_fields = 60
forwarded_allow_ips = os.environ.get("ISOCHECK_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'

#: Prometheus multiprocess mode: every worker writes its samples to files in this directory and
#: /metrics sums them. Set here (before any worker imports prometheus_client), not in the image,
#: so one-process commands (`isocheck scheduler`, `db upgrade`) are not affected.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), "isocheck-metrics")
)


def on_starting(server) -> None:
    """Check the settings once in the master (a refusal says why, instead of every worker
    failing to boot), then empty Prometheus' multiprocess directory shared by the workers."""
    from server.config import ConfigError, load_settings

    try:
        load_settings()
    except ConfigError as exc:
        server.log.error("%s", exc)
        raise SystemExit(3) from None
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            os.remove(os.path.join(path, name))


def post_worker_init(worker) -> None:
    """Build the face networks in the worker before it takes its first request (OpenVINO
    compiles them once per process: ~2-3 s that would otherwise fall on the first check-in
    after a deploy; ``ISOCHECK_WARM_VERIFIER=false`` skips it), then freeze what the worker
    holds out of the garbage collector's full passes (:func:`server.serving.ready_worker`)."""
    from server.config import load_settings
    from server.serving import ready_worker

    ready_worker(warm_verifier=load_settings().warm_verifier)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
