"""Rate limits (Flask-Limiter). Counters live in memory for one process, or in Redis
(``ISOCHECK_RATELIMIT_STORAGE_URL=redis://…``) when several workers and hosts must share them."""

from __future__ import annotations

import time

from flask import Flask
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from server.core.security import token_digest
from server.http.problem import problem
from server.people import login_throttle


def _on_breach(limit: RequestLimit):
    retry = max(1, int(limit.reset_at - time.time()))
    return problem(
        "rate_limited", 429, headers={"Retry-After": str(retry)}, extra={"retry_after_s": retry}
    )


limiter = Limiter(key_func=get_remote_address, on_breach=_on_breach, default_limits=[])


def device_key() -> str:
    """Rate-limit key of a phone: its token's digest (falls back to the client address)."""
    from flask import request

    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return "dev:" + token_digest(header[7:].strip())[:32]
    return "ip:" + (get_remote_address() or "unknown")


def init_app(app: Flask, settings) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.ratelimit_storage_url)
    app.config.setdefault("RATELIMIT_ENABLED", settings.ratelimit_enabled)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "isocheck")
    # A shared store (Redis) that stops answering must not turn requests into 500s: the limits
    # are then counted per process until it answers again (Flask-Limiter's in-memory fallback).
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)
    # Staff login backoff (server.people.login_throttle) counts in the same shared storage.
    login_throttle.storage_provider = _limiter_storage


def _limiter_storage():
    if limiter.enabled and getattr(limiter, "_storage", None) is not None:
        return limiter.storage
    return None


def limit_per_ip(*blueprints) -> None:
    """One shared per-IP ceiling over every route of ``blueprints`` (idempotent: the app
    factory runs once per app, but blueprints are module-level and decorated once)."""
    from server.http.context import ctx

    for bp in blueprints:
        if getattr(bp, "_isocheck_ip_limited", False):
            continue
        limiter.shared_limit(
            lambda: ctx().settings.rate_limit_ip, scope="api-ip", key_func=get_remote_address
        )(bp)
        bp._isocheck_ip_limited = True


def per_device(setting: str):
    """Limit a route per phone by the named setting (e.g. ``"rate_limit_checkin"``), on top of
    the per-IP ceiling of its blueprint."""
    from server.http.context import ctx

    return limiter.limit(
        lambda: getattr(ctx().settings, setting), key_func=device_key, override_defaults=False
    )


def per_device_judged(setting: str):
    """:func:`per_device` for selfie uploads, counting only what was judged: an upload the
    quality gate sent back for a retake ("too dark", no face found: no attempt used) costs
    nothing, so a person retaking bad photos is not locked out. The view says so by setting
    ``g.upload_free = True``; everything else counts, unusable files and refused requests
    included."""
    from flask import g

    from server.http.context import ctx

    return limiter.limit(
        lambda: getattr(ctx().settings, setting),
        key_func=device_key,
        override_defaults=False,
        deduct_when=lambda _response: not g.get("upload_free", False),
    )


def per_ip(setting: str):
    """Limit a route per client address by the named setting, on top of the ceiling."""
    from server.http.context import ctx

    return limiter.limit(
        lambda: getattr(ctx().settings, setting),
        key_func=get_remote_address,
        override_defaults=False,
    )
