"""Signed JSON webhooks, for SMS gateways or a city operations centre.

The recipient is the URL. The body is the row's payload as compact JSON (UTF-8). Each request
carries::

    Content-Type: application/json
    X-Isocheck-Timestamp: 1764048600                  (Unix seconds when signed)
    X-Isocheck-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
    X-Isocheck-Idempotency-Key: alert:12:L0:webhook:…  (also in the body as "idempotency_key")

Receivers recompute the signature over the raw body, reject timestamps older than a few minutes
(replay) and drop a key they have already processed (delivery is at-least-once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from server.notify.channel import OutboxMessage, Outcome, Result

#: Seconds to connect / to wait for the answer. A slow receiver is retried, not waited for.
TIMEOUT = (5.0, 10.0)
#: Statuses worth retrying: timeouts, too early, rate limited, server errors.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: The receiver says this URL is gone for good.
GONE_STATUSES = frozenset({404, 410})
#: A receiver should refuse signatures older than this (seconds); see :func:`verify_signature`.
DEFAULT_TOLERANCE_S = 300


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent: compact, key-sorted JSON in UTF-8."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` over ``"<timestamp>." + body`` with ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """For receivers (and our tests): True when ``signature`` is ours and ``timestamp`` is within
    ``tolerance_s`` seconds of ``now`` (default: the current time). Constant-time comparison."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


class WebhookChannel:
    """POSTs each message to its URL, signed. One pooled HTTP session per channel."""

    name = "webhook"
    max_batch = 10

    def __init__(self, *, secret: str, session: requests.Session | None = None) -> None:
        if not secret:
            raise ValueError("a webhook secret is required")
        self._secret = secret
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = "isocheck-webhook/1"

    def send_batch(self, messages: Sequence[OutboxMessage]) -> list[Result]:
        return [self._send(m) for m in messages]

    def _send(self, message: OutboxMessage) -> Result:
        url = message.recipient
        if not url.startswith(("https://", "http://")):
            return Result(Outcome.invalid_recipient, f"not an http(s) URL: {url[:200]}")
        body = encode_body(message.payload)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Isocheck-Timestamp": str(timestamp),
            "X-Isocheck-Signature": sign(self._secret, timestamp, body),
            "X-Isocheck-Idempotency-Key": message.idempotency_key,
        }
        try:
            resp = self._session.post(
                url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False
            )
        except requests.RequestException as exc:
            return Result(Outcome.retry, f"{exc.__class__.__name__}: {exc}"[:500])
        status = resp.status_code
        if 200 <= status < 300:
            return Result.ok()
        detail = f"HTTP {status}: {resp.text[:300]}"
        if status in RETRY_STATUSES:
            return Result(Outcome.retry, detail, retry_after=_retry_after(resp))
        if status in GONE_STATUSES:
            return Result(Outcome.invalid_recipient, detail)
        return Result(Outcome.permanent, detail)


def _retry_after(resp: requests.Response) -> float | None:
    """``Retry-After`` as seconds (it may be a number or an HTTP date); None when absent."""
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
