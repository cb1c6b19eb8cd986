"""Push through Firebase Cloud Messaging with firebase-admin (HTTP v1 API, ``send_each``).

The recipient is an FCM registration token (a device's or a staff member's ``push_token``). Each
message carries:

- ``notification``: the payload's ``title`` and ``body`` (shown by the OS when the app sleeps);
- ``data``: string values — ``kind``, ``idempotency_key`` and the ids (``prompt_id``,
  ``alert_id``…) from the payload's ``data``, so the app opens the right screen and drops
  duplicates;
- Android: ``priority=high`` (wakes the phone from Doze) and a TTL when the payload has one;
- APNs (iOS): ``apns-priority: 10``, ``apns-push-type: alert``, ``apns-expiration`` from the TTL
  and ``apns-collapse-id`` from the idempotency key.

A web app's row (payload ``"platform": "web"``, see ``persons.for_device``) is sent with a
``WebpushConfig`` instead: headers ``Urgency: high``, ``TTL`` and ``Topic`` (collapses repeats),
the notification (Vietnamese title/body, the app's icon, a tag per prompt) and ``data`` that adds
the English ``title_en``/``body_en`` (the web app's service worker shows those to a person who
chose English) and ``link`` ``/app/``; with an ``https://`` public URL also
``fcm_options.link`` (FCM accepts only HTTPS links there).

Credentials: a service-account JSON file (``ISOCHECK_FCM_CREDENTIALS_FILE``); its ``project_id``
names the Firebase project.
"""

from __future__ import annotations

import hashlib
import itertools
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import firebase_admin
from firebase_admin import credentials, exceptions, messaging

from server.notify.channel import OutboxMessage, Outcome, Result

#: Seconds firebase-admin waits for FCM (its own default is 120).
HTTP_TIMEOUT_S = 15
#: Phones send FCM *registration tokens*, which the HTTP v1 API takes as ``message.token``.
#: firebase-admin 7.7 deprecates the ``token`` argument in favour of Firebase installation ids
#: (``fid``), a different identifier the app does not send us; that one warning is silenced.
_TOKEN_DEPRECATION = "Message.token is deprecated"  # noqa: S105 - a warning text
#: A prefix some clients put before the token (the API spec's examples show ``fcm:…``); real
#: registration tokens never start with it, so it is stripped before sending.
TOKEN_PREFIX = "fcm:"  # noqa: S105 - a prefix, not a secret
_app_names = itertools.count(1)


class FcmChannel:
    """Sends a batch with one ``messaging.send_each`` call (parallel HTTP v1 requests)."""

    name = "fcm"
    #: ``send_each`` accepts at most 500 messages.
    max_batch = 500

    def __init__(self, *, credentials_file: Path, public_url: str | None = None) -> None:
        self.credentials_file = Path(credentials_file)
        #: The service's public base URL; web push links point at its ``/app/``.
        self.public_url = public_url
        self._app: firebase_admin.App | None = None

    @property
    def app(self) -> firebase_admin.App:
        """This channel's own firebase app, created on first use (it reads the credentials)."""
        if self._app is None:
            cred = credentials.Certificate(str(self.credentials_file))
            self._app = firebase_admin.initialize_app(
                cred,
                options={"httpTimeout": HTTP_TIMEOUT_S},
                name=f"isocheck-notify-{next(_app_names)}",
            )
        return self._app

    def close(self) -> None:
        if self._app is not None:
            firebase_admin.delete_app(self._app)
            self._app = None

    def send_batch(self, messages: Sequence[OutboxMessage]) -> list[Result]:
        """1. Build one ``messaging.Message`` per row; a row that cannot be built is permanent.
        2. ``send_each`` the rest; map each response (or FCM error) to an outcome."""
        results: list[Result | None] = [None] * len(messages)
        built: list[tuple[int, messaging.Message]] = []
        for i, m in enumerate(messages):
            try:
                built.append((i, build_message(m, public_url=self.public_url)))
            except (ValueError, TypeError) as exc:
                results[i] = Result(Outcome.permanent, f"cannot build FCM message: {exc}")
        if built:
            batch = messaging.send_each([msg for _, msg in built], app=self.app)
            for (i, _), response in zip(built, batch.responses, strict=True):
                results[i] = Result.ok() if response.success else classify(response.exception)
        return [r if r is not None else Result(Outcome.retry, "no result") for r in results]


def build_message(m: OutboxMessage, *, public_url: str | None = None) -> messaging.Message:
    """The FCM message for one outbox row (see the module docstring for the fields)."""
    payload: dict[str, Any] = m.payload
    data = {str(k): str(v) for k, v in (payload.get("data") or {}).items() if v is not None}
    data["kind"] = str(payload.get("kind", ""))
    data["idempotency_key"] = m.idempotency_key
    ttl = payload.get("ttl_seconds")
    apns_headers = {
        "apns-priority": "10",
        "apns-push-type": "alert",
        # APNs collapse ids are at most 64 bytes; the key may be longer.
        "apns-collapse-id": hashlib.sha256(m.idempotency_key.encode()).hexdigest()[:64],
    }
    if ttl is not None:
        apns_headers["apns-expiration"] = str(int(time.time() + int(ttl)))
    title, body = payload.get("title"), payload.get("body")
    token = m.recipient.removeprefix(TOKEN_PREFIX)
    if payload.get("platform") == "web":
        return _webpush_message(m, token, data, title, body, ttl, public_url)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_TOKEN_DEPRECATION, category=DeprecationWarning)
        return messaging.Message(
            token=token,
            data=data,
            notification=messaging.Notification(title=title, body=body) if title or body else None,
            android=messaging.AndroidConfig(
                priority="high", ttl=int(ttl) if ttl is not None else None
            ),
            apns=messaging.APNSConfig(
                headers=apns_headers,
                payload=messaging.APNSPayload(aps=messaging.Aps(sound="default")),
            ),
        )


#: Where a web push notification leads (the web app, which opens the current prompt).
WEB_LINK = "/app/"


def _webpush_message(
    m: OutboxMessage,
    token: str,
    data: dict[str, str],
    title: str | None,
    body: str | None,
    ttl: Any,
    public_url: str | None,
) -> messaging.Message:
    """A web app's message: everything in ``webpush`` (its service worker shows it)."""
    en = m.payload.get("en") or {}
    web_data = {**data, "link": WEB_LINK}
    for key in ("title", "body"):
        if en.get(key):
            web_data[f"{key}_en"] = str(en[key])
    headers = {
        "Urgency": "high",
        # RFC 8030 Topic: a repeat with the same key replaces an undelivered one (≤ 32 chars).
        "Topic": hashlib.sha256(m.idempotency_key.encode()).hexdigest()[:32],
    }
    if ttl is not None:
        headers["TTL"] = str(int(ttl))
    prompt = data.get("prompt_id")
    base = public_url.rstrip("/") if public_url else ""
    link = f"{base}{WEB_LINK}" if base.startswith("https://") else None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_TOKEN_DEPRECATION, category=DeprecationWarning)
        return messaging.Message(
            token=token,
            webpush=messaging.WebpushConfig(
                headers=headers,
                data=web_data,
                notification=messaging.WebpushNotification(
                    title=title,
                    body=body,
                    icon=f"{WEB_LINK}icon.svg",
                    language="vi",
                    tag=f"prompt-{prompt}" if prompt else data["kind"] or None,
                ),
                fcm_options=messaging.WebpushFCMOptions(link=link) if link else None,
            ),
        )


def classify(error: Exception | None) -> Result:
    """Map a firebase-admin error to an outcome.

    - ``UnregisteredError`` (app uninstalled, token expired), ``SenderIdMismatchError`` (token of
      another project) and an ``InvalidArgumentError`` about the registration token: the token is
      dead — forget it.
    - Other ``InvalidArgumentError``: our message is wrong — permanent.
    - Quota, unavailable, internal, auth and anything else: retry with backoff (a credentials
      problem is fixed by an operator; the row waits, and dead-letters if it takes too long).
    """
    detail = f"{error.__class__.__name__}: {error}"[:500] if error else "unknown FCM error"
    if isinstance(error, messaging.UnregisteredError | messaging.SenderIdMismatchError):
        return Result(Outcome.invalid_recipient, detail)
    if isinstance(error, exceptions.InvalidArgumentError):
        if "registration token" in str(error).lower():
            return Result(Outcome.invalid_recipient, detail)
        return Result(Outcome.permanent, detail)
    return Result(Outcome.retry, detail, retry_after=_retry_after(error))


def _retry_after(error: Exception | None) -> float | None:
    """FCM's ``Retry-After`` on 429/503 answers, in seconds; None when absent."""
    response = getattr(error, "http_response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
