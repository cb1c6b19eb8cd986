"""The Flask application factory."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, g
from sqlalchemy.orm import Session
from werkzeug.routing import IntegerConverter

from server.config import Settings, load_settings
from server.core.clock import Clock, SystemClock
from server.http import limits, observability, problem, validation
from server.http.context import Isocheck


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    test_config: dict[str, Any] | None = None,
) -> Flask:
    """Build the app. ``settings`` default to the environment; ``clock`` to the system clock."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        JSON_SORT_KEYS=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
    )
    if test_config:
        app.config.update(test_config)
    if settings.proxy_hops:
        # Behind nginx/a load balancer the peer is the proxy: without this every phone would
        # share the proxy's address, and per-IP limits (activation: 5/minute) would be global.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    observability.configure_logging(settings.log_level, settings.log_format)

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    state = Isocheck(settings, clock or SystemClock())
    app.extensions["isocheck"] = state

    @app.teardown_appcontext
    def _close_session(exc: BaseException | None) -> None:
        # Normally already closed by _end_session; this is the safety net (errors, streaming).
        # Nothing may escape from here: the response is on its way, and an exception now would
        # become the WSGI server's HTML 500.
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            _close_quietly(session, rollback=exc is not None)

    # Every <int:...> id in a route is a database key (32-bit on PostgreSQL): a bigger number
    # cannot name a row, so it is a 404 at routing time rather than an overflow (500) in SQL.
    app.url_map.converters["int"] = _DatabaseId

    problem.init_app(app)
    validation.init_app(app)  # NUL bytes refused for every route (issue 13, finding 6)
    observability.init_app(app)
    if os.environ.get(observability.SQL_COUNT_ENV) == "1":
        observability.count_statements(app, state.engine)

    @app.after_request
    def _end_session(response):
        # Close the request's session while the answer can still change: a connection that
        # died after the handler's work (failover, backend killed) is the app's 503 problem with
        # Retry-After, not an exception after the response started (issue 13, finding 14).
        session: Session | None = g.pop("db_session", None)
        if session is not None and not _close_quietly(session, rollback=False):
            return problem.problem("service_unavailable", 503, headers={"Retry-After": "5"})
        return response

    _register_verification_messages()
    limits.init_app(app, settings)

    from server.api.admin import bp as admin_api_bp
    from server.api.mobile import bp as mobile_bp
    from server.dashboard.blueprint import bp as dashboard_bp
    from server.declarations.views import bp as declarations_bp
    from server.fhir.api import bp as fhir_bp
    from server.http.health import bp as health_bp
    from server.webapp.views import bp as webapp_bp

    app.register_blueprint(health_bp)
    limits.limit_per_ip(mobile_bp, admin_api_bp, declarations_bp, fhir_bp)
    app.register_blueprint(mobile_bp)
    app.register_blueprint(admin_api_bp)
    app.register_blueprint(declarations_bp)
    app.register_blueprint(fhir_bp)
    app.register_blueprint(webapp_bp)
    app.register_blueprint(dashboard_bp)  # its CSRF protection covers this blueprint only
    _log_pad_state(settings)
    return app


def _close_quietly(session: Session, *, rollback: bool) -> bool:
    """Roll back (when asked) and close ``session``; False when the database connection failed
    meanwhile (it is then invalidated, so the pool hands out a fresh one)."""
    import contextlib
    import logging

    from sqlalchemy.exc import DBAPIError

    try:
        if rollback:
            session.rollback()
        session.close()
        return True
    except DBAPIError as exc:
        logging.getLogger("isocheck.db").warning(
            "database connection lost while closing the request's session: %s",
            type(exc.orig or exc).__name__,
        )
        with contextlib.suppress(Exception):  # the connection is gone either way
            session.invalidate()
        return False


def _log_pad_state(settings: Settings) -> None:
    """Say at start-up whether presentation-attack detection is on (a warning in production when
    it is not: printed photos and screens then pass on face matching alone)."""
    import logging

    from server.face_verifier import get_verifier

    status = get_verifier().pad_status()
    log = logging.getLogger("isocheck.verification")
    engine = get_verifier().engine_status()
    log.info("face networks on %s (%s threads)", engine["engine"], engine["threads"])
    if status["state"] == "on":
        log.info("presentation-attack detection on (threshold %s)", status["threshold"])
    else:
        level = logging.WARNING if settings.is_production else logging.INFO
        log.log(
            level,
            "presentation-attack detection %s: %s; set ISOCHECK_PAD_MODEL_PATH to the "
            "minifasnetv2se_128.onnx file (docs/verification.md)",
            status["state"],
            status["reason"],
        )


class _DatabaseId(IntegerConverter):
    """``int`` in routes, bounded to the database's INTEGER range (1 … 2³¹−1)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def _register_verification_messages() -> None:
    """The face library's codes (face_not_found, image_too_dark, …) speak the same two
    languages as the server's own problems."""
    from verification.messages import MESSAGES

    problem.register_messages(
        {code: {lang: tuple(m) for lang, m in texts.items()} for code, texts in MESSAGES.items()}
    )
