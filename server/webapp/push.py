"""Web push for the web app: the deployment's Firebase web config, VAPID key and Firebase JS SDK.

Three settings turn it on together (README's configuration table, docs/notifications.md):

- ``ISOCHECK_FCM_WEB_CONFIG``: the Firebase *web* app's config object (``apiKey``, ``projectId``,
  ``messagingSenderId``, ``appId``; optional ``authDomain``, ``storageBucket``, ``measurementId``)
  as JSON, or the path of a JSON file holding it. These values are public by design (every web
  client of a Firebase project ships them); they are not the service-account key.
- ``ISOCHECK_FCM_VAPID_KEY``: the project's web push public key (Firebase console → Cloud
  Messaging → Web Push certificates), base64url of an uncompressed P-256 point.
- ``ISOCHECK_FIREBASE_JS_DIR``: the ``firebase`` npm package installed at deploy time (``npm
  install firebase@10`` → ``node_modules/firebase``). Its browser ES modules ``firebase-app.js``
  and ``firebase-messaging.js`` are served at ``/app/vendor/`` from this origin; the messaging
  module's import of ``firebase-app.js`` from Google's CDN is pointed at ``/app/vendor/`` as it is
  served, so nothing is loaded from a CDN at run time and nothing is vendored into the repository.

None of them set: web push is off, ``/app/push.json`` says so, ``/app/vendor/`` answers 404, the
CSP is unchanged and the web app keeps its in-page reminder. Some but not all set, or a malformed
value: the service refuses to start and says which.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol


class PushSettings(Protocol):
    """The three settings this module reads (``server.config.Settings`` has them)."""

    fcm_web_config: str
    fcm_vapid_key: str
    firebase_js_dir: Path | None

REQUIRED_KEYS = ("apiKey", "projectId", "messagingSenderId", "appId")
OPTIONAL_KEYS = ("authDomain", "storageBucket", "measurementId")
#: The two SDK modules the web app imports (nothing else is served from the directory).
VENDOR_FILES = ("firebase-app.js", "firebase-messaging.js")
#: Where the messaging build imports firebase-app.js from (the package's CDN-style ES build).
_CDN_IMPORT = re.compile(r"https://www\.gstatic\.com/firebasejs/[0-9A-Za-z.\-]+/(firebase-app\.js)")
#: Hosts the messaging SDK calls from the page to register the browser (CSP ``connect-src``).
FIREBASE_CONNECT = (
    "https://fcmregistrations.googleapis.com",
    "https://firebaseinstallations.googleapis.com",
)


@dataclass(frozen=True)
class WebPush:
    config: dict[str, str]
    vapid_key: str
    js_dir: Path

    def public(self) -> dict[str, Any]:
        """What ``/app/push.json`` gives the web app."""
        return {"enabled": True, "config": self.config, "vapid_key": self.vapid_key}

    def vendor_source(self, name: str) -> str | None:
        """The text of SDK module ``name`` as served (CDN import pointed here); None if unknown."""
        if name not in VENDOR_FILES:
            return None
        return _vendor_source(self.js_dir / name)


def web_push(settings: PushSettings) -> WebPush | None:
    """The web push configuration of ``settings``, or None when off. ValueError when partial or
    malformed (checked at start-up by the settings)."""
    return _parse(settings.fcm_web_config, settings.fcm_vapid_key, settings.firebase_js_dir)


@lru_cache(maxsize=8)
def _parse(raw: str, vapid: str, js_dir: Path | None) -> WebPush | None:
    given = {
        "ISOCHECK_FCM_WEB_CONFIG": bool(raw.strip()),
        "ISOCHECK_FCM_VAPID_KEY": bool(vapid.strip()),
        "ISOCHECK_FIREBASE_JS_DIR": js_dir is not None,
    }
    if not any(given.values()):
        return None
    missing = [name for name, ok in given.items() if not ok]
    if missing:
        raise ValueError(f"web push needs all three settings; also set {', '.join(missing)}")
    return WebPush(_config(raw.strip()), _vapid(vapid.strip()), _js_dir(Path(js_dir)))  # type: ignore[arg-type]


def _config(raw: str) -> dict[str, str]:
    text = raw
    if not raw.startswith("{"):
        path = Path(raw)
        if not path.is_file():
            raise ValueError(
                f"ISOCHECK_FCM_WEB_CONFIG is neither a JSON object nor a readable file: {raw!r}"
            )
        text = path.read_text(encoding="utf-8")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"ISOCHECK_FCM_WEB_CONFIG is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ValueError("ISOCHECK_FCM_WEB_CONFIG must be a JSON object")
    unknown = sorted(set(config) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise ValueError(f"ISOCHECK_FCM_WEB_CONFIG has unknown keys {unknown}")
    bad = [k for k in REQUIRED_KEYS if not isinstance(config.get(k), str) or not config[k]]
    bad += [k for k in OPTIONAL_KEYS if k in config and not isinstance(config[k], str)]
    if bad:
        raise ValueError(f"ISOCHECK_FCM_WEB_CONFIG needs non-empty strings for {bad}")
    if "private_key" in text:  # a service-account file given by mistake
        raise ValueError("ISOCHECK_FCM_WEB_CONFIG is the web app config, not a service account")
    return {k: config[k] for k in (*REQUIRED_KEYS, *OPTIONAL_KEYS) if k in config}


def _vapid(key: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("ISOCHECK_FCM_VAPID_KEY is not base64url") from exc
    if len(raw) != 65 or raw[0] != 4:
        raise ValueError(
            "ISOCHECK_FCM_VAPID_KEY must be the web push public key (an uncompressed P-256 "
            "point: 65 bytes, 87 base64url characters)"
        )
    return key


def _js_dir(path: Path) -> Path:
    missing = [n for n in VENDOR_FILES if not (path / n).is_file()]
    if missing:
        raise ValueError(
            f"ISOCHECK_FIREBASE_JS_DIR={path} lacks {missing}: point it at the firebase npm "
            "package (node_modules/firebase)"
        )
    return path.resolve()


@lru_cache(maxsize=4)
def _vendor_source(path: Path) -> str:
    return _CDN_IMPORT.sub(r"/app/vendor/\1", path.read_text(encoding="utf-8"))
