"""Metrics (Prometheus ``/metrics``), request ids and structured logs.

* Counters and histograms live in the process that observes them; under gunicorn set
  ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory and every worker's samples are summed
  (prometheus_client's multiprocess mode).
* Gauges that describe the system's state (sweep lag, outbox backlog, open alerts) are read from
  the database at scrape time, so every worker reports the same truth.
* Every request gets an id (the caller's ``X-Request-ID`` if it is sane, else a new one); it is
  returned in the response and attached to every log line of the request.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger("isocheck")

CHECKINS = Counter(
    "isocheck_checkins_total", "Check-in uploads judged, by result and code", ["result", "code"]
)
VERIFY_SECONDS = Histogram(
    "isocheck_verification_seconds",
    "Time to verify one selfie (decode → decision)",
    buckets=(0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0),
)
REQUEST_SECONDS = Histogram(
    "isocheck_http_request_seconds",
    "HTTP request latency by route and status class",
    ["endpoint", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4),
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class DatabaseCollector:
    """Gauges read from the database at scrape time: state, not events."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self):
        from sqlalchemy import func, select

        from server.alerts.models import Alert
        from server.core.enums import AlertState
        from server.heartbeat import SchedulerHeartbeat
        from server.notify.models import Notification

        state = self.app.extensions["isocheck"]
        lag = GaugeMetricFamily(
            "isocheck_sweep_lag_seconds",
            "Seconds since each scheduler sweep last ran",
            labels=["sweep"],
        )
        backlog = GaugeMetricFamily(
            "isocheck_outbox_notifications",
            "Outbox notifications by state and channel",
            labels=["state", "channel"],
        )
        alerts = GaugeMetricFamily(
            "isocheck_alerts_open",
            "Alerts not yet resolved, by kind and escalation level",
            labels=["kind", "level"],
        )
        try:
            with state.session_factory() as s:
                now = state.clock.now()
                for name, last in s.execute(
                    select(SchedulerHeartbeat.name, SchedulerHeartbeat.last_run_at)
                ):
                    lag.add_metric([name], (now - last).total_seconds())
                for st, channel, n in s.execute(
                    select(Notification.state, Notification.channel, func.count()).group_by(
                        Notification.state, Notification.channel
                    )
                ):
                    backlog.add_metric([getattr(st, "value", st), channel], n)
                for kind, level, n in s.execute(
                    select(Alert.kind, Alert.escalation_level, func.count())
                    .where(Alert.state != AlertState.resolved)
                    .group_by(Alert.kind, Alert.escalation_level)
                ):
                    alerts.add_metric([getattr(kind, "value", kind), str(level)], n)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database did
            log.warning("metrics: database gauges unavailable", exc_info=True)
            return
        yield lag
        yield backlog
        yield alerts


def _registry(app: Flask) -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        for metric in (CHECKINS, VERIFY_SECONDS, REQUEST_SECONDS):
            registry.register(metric)
    registry.register(DatabaseCollector(app))
    return registry


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.request_id = g.get("request_id", "-")
        except RuntimeError:
            record.request_id = "-"
        return True


def configure_logging(level: str, fmt: str) -> None:
    """``fmt`` ``json`` (one JSON object a line, for log shippers) or ``text``."""
    root = logging.getLogger()
    handler = logging.StreamHandler()
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
    handler.addFilter(RequestIdFilter())
    for old in list(root.handlers):
        if getattr(old, "_isocheck", False):
            root.removeHandler(old)
    handler._isocheck = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def init_app(app: Flask) -> None:
    registry = _registry(app)

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if "started" in g:
            REQUEST_SECONDS.labels(
                request.endpoint or "unmatched", f"{response.status_code // 100}xx"
            ).observe(time.perf_counter() - g.started)
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus exposition, behind ``ISOCHECK_METRICS_TOKEN`` (a bearer token for the
        scraper). Without a token it is open in demo mode only; production answers 404 (issue 13,
        finding 15). nginx hides it from the public side as well (docs/deploy/nginx.conf)."""
        import hmac

        from flask import abort

        settings = app.extensions["isocheck"].settings
        token = settings.metrics_token
        if token:
            header = request.headers.get("Authorization", "")
            given = header[7:].strip() if header.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(given.encode(), token.encode()):
                abort(404)
        elif settings.is_production:
            abort(404)
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


#: Set to ``1`` to count SQL statements per request (bench/dashboard_bench.py): each response
#: carries ``X-SQL-Statements``. Off by default: the listener costs a little on every statement.
SQL_COUNT_ENV = "ISOCHECK_SQL_STATEMENTS_HEADER"


def count_statements(app: Flask, engine) -> None:
    """Count the statements each request sends (one per round trip, ``before_cursor_execute``)
    and answer the number in ``X-SQL-Statements``. Statements outside a request (the in-process
    scheduler) are not counted. A streamed body's statements after the headers are not in it."""
    from flask import has_app_context
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args) -> None:
        if has_app_context() and "sql_statements" in g:
            g.sql_statements += 1

    @app.before_request
    def _reset() -> None:
        g.sql_statements = 0

    @app.after_request
    def _header(response: Response) -> Response:
        response.headers["X-SQL-Statements"] = str(g.get("sql_statements", 0))
        return response
