"""Web push settings (server/webapp/push.py): all three or none, each checked at start-up; off by
default, when /app/ loads nothing of it and keeps its CSP; on, the vendor route serves only the
two SDK modules with the CDN import pointed at /app/vendor/."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.app import create_app
from server.config import ConfigError, load_settings
from server.webapp.views import CSP

CONFIG = {"apiKey": "k", "projectId": "p", "messagingSenderId": "1", "appId": "1:1:web:a"}


def vapid() -> str:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


@pytest.fixture
def js_dir(tmp_path):
    d = tmp_path / "node_modules" / "firebase"
    d.mkdir(parents=True)
    (d / "firebase-app.js").write_text("export const initializeApp = () => ({});\n")
    (d / "firebase-messaging.js").write_text(
        'import{getApp as n}from"https://www.gstatic.com/firebasejs/10.14.1/firebase-app.js";\n'
        "export const getToken = async () => n;\n"
    )
    (d / "firebase-auth.js").write_text("export {};\n")
    return d


def test_off_by_default_nothing_loads_and_the_csp_is_unchanged(client):
    assert client.get("/app/push.json").json == {"enabled": False}
    assert client.get("/app/vendor/firebase-app.js").status_code == 404
    assert client.get("/app/").headers["Content-Security-Policy"] == CSP
    assert "googleapis" not in CSP


@pytest.mark.parametrize(
    "given",
    [
        {"fcm_vapid_key": "v"},
        {"fcm_web_config": json.dumps(CONFIG), "firebase_js_dir": "JS"},
    ],
)
def test_a_partial_configuration_refuses_to_start_and_names_what_is_missing(
    settings, js_dir, given
):
    given = {k: (str(js_dir) if v == "JS" else v) for k, v in given.items()}
    with pytest.raises(ConfigError, match="web push needs all three settings; also set ISOCHECK_"):
        load_settings(**{**_base(settings), **given})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fcm_vapid_key": "not-a-key"}, "FCM_VAPID_KEY is not base64url"),
        ({"fcm_vapid_key": "AAAA" * 8}, "FCM_VAPID_KEY must be the web push public key"),
        ({"fcm_web_config": '{"apiKey": "k"}'}, "needs non-empty strings"),
        ({"fcm_web_config": json.dumps({**CONFIG, "x": "1"})}, "unknown keys"),
        ({"fcm_web_config": "{not json"}, "not valid JSON"),
        ({"fcm_web_config": "/nonexistent/web.json"}, "neither a JSON object nor a readable"),
        ({"firebase_js_dir": "/nonexistent"}, "lacks"),
    ],
)
def test_malformed_values_refuse_to_start(settings, js_dir, change, message):
    good = {
        "fcm_web_config": json.dumps(CONFIG),
        "fcm_vapid_key": vapid(),
        "firebase_js_dir": js_dir,
    }
    with pytest.raises(ConfigError, match=message):
        load_settings(**{**_base(settings), **good, **change})


def test_configured_from_a_file_serves_the_sdk_and_widens_connect_src(settings, js_dir, tmp_path):
    config = tmp_path / "firebase-web.json"
    config.write_text(json.dumps(CONFIG))
    key = vapid()
    on = load_settings(
        **_base(settings), fcm_web_config=str(config), fcm_vapid_key=key, firebase_js_dir=js_dir
    )
    client = create_app(settings=on).test_client()
    assert client.get("/app/push.json").json == {
        "enabled": True,
        "config": CONFIG,
        "vapid_key": key,
    }
    messaging = client.get("/app/vendor/firebase-messaging.js")
    assert messaging.status_code == 200 and messaging.mimetype == "text/javascript"
    assert 'from"/app/vendor/firebase-app.js"' in messaging.text and "gstatic" not in messaging.text
    assert client.get("/app/vendor/firebase-app.js").status_code == 200
    # Only the two modules the app imports; nothing else of the directory, no path tricks.
    assert client.get("/app/vendor/firebase-auth.js").status_code == 404
    assert client.get("/app/vendor/..%2Fpackage.json").status_code == 404
    csp = client.get("/app/").headers["Content-Security-Policy"]
    assert "connect-src 'self' https://fcmregistrations.googleapis.com " in csp
    assert "script-src 'self';" in csp


def test_a_service_account_file_is_not_a_web_config(settings, js_dir):
    account = {**CONFIG, "private_key": "-----BEGIN PRIVATE KEY-----"}
    with pytest.raises(ConfigError, match="unknown keys|not a service account"):
        load_settings(
            **_base(settings),
            fcm_web_config=json.dumps(account),
            fcm_vapid_key=vapid(),
            firebase_js_dir=js_dir,
        )


def _base(settings) -> dict:
    return {
        "data_dir": settings.data_dir,
        "database_url": settings.database_url,
        "secret_key": settings.secret_key,
    }
