"""Web push in the web app (issue 14's reminders), in headless Chromium against the real
``isocheck serve`` configured with a Firebase web config, a VAPID key and a Firebase JS directory.

The browser cannot reach Google here, so the directory (``firebase_standin/``) holds a stand-in
of the two ``firebase`` npm modules the app imports (a third party's SDK, not our product): its
``getToken``
checks what the real one needs — the app's Firebase config, the VAPID key and the app's own
active service worker registration — and answers a token. Everything else is real: the config
and vendor routes, the CDN import rewrite (the stand-in imports ``firebase-app.js`` from Google's
CDN as the real build does), the CSP, the app's ``updatePushToken`` call, the device row, and the
service worker showing a push built by the server's FCM code. Without the settings nothing of
this loads (tests/webapp/test_shell.py). Skips without a browser."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.people.models import Device
from tests.webapp.conftest import serve, wait_shown

pytestmark = pytest.mark.slow

WEB_CONFIG = {
    "apiKey": "AIzaSy-test-web-key",
    "projectId": "isocheck-test",
    "messagingSenderId": "123456789012",
    "appId": "1:123456789012:web:abcdef",
}
STANDIN = Path(__file__).with_name("firebase_standin")


def _vapid_key() -> str:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def push_served(tmp_path_factory):
    root = tmp_path_factory.mktemp("push")
    config = root / "firebase-web.json"  # the file form of ISOCHECK_FCM_WEB_CONFIG
    config.write_text(json.dumps(WEB_CONFIG))
    vapid = _vapid_key()
    env = {
        "ISOCHECK_FCM_WEB_CONFIG": str(config),
        "ISOCHECK_FCM_VAPID_KEY": vapid,
        "ISOCHECK_FIREBASE_JS_DIR": str(STANDIN),
    }
    with serve(root / "serve", env) as server:
        yield server, vapid


def _device(served, person_id: int) -> Device:
    with served.factory() as session:
        [device] = session.query(Device).filter(Device.person_id == person_id).all()
        return device


def _wait_token(served, person_id: int, token: str, timeout: float = 15.0) -> Device:
    end = time.monotonic() + timeout
    while True:
        device = _device(served, person_id)
        if device.push_token == token:
            return device
        assert time.monotonic() < end, f"device push token {device.push_token!r}, not {token!r}"
        time.sleep(0.2)


def _push_puts(browser) -> int:
    return browser.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter((e) => e.name.endsWith('/api/v1/me/push-token')).length"
    )


def test_browser_token_is_registered_refreshed_and_a_push_is_shown(push_served, chromium):
    served, vapid = push_served
    url = served.url
    csp = served.http.get("/app/").headers["Content-Security-Policy"]
    assert "connect-src 'self' https://fcmregistrations.googleapis.com" in csp
    assert served.http.get("/app/push.json").get_json() == {
        "enabled": True, "config": WEB_CONFIG, "vapid_key": vapid,
    }  # fmt: skip
    assert served.http.get("/app/vendor/firebase-auth.js").status_code == 404

    browser = chromium(window=(360, 740))
    browser.execute_cdp_cmd(
        "Browser.grantPermissions", {"origin": url, "permissions": ["notifications"]}
    )
    person = served.enrol()
    browser.get(f"{url}/app/activate?code={person['activation']['code']}")
    wait_shown(browser, "#name", person["full_name"])

    # Notifications allowed: the app gets the FCM token and registers it through updatePushToken.
    device = _wait_token(served, person["id"], "standin-token-1")
    assert device.platform == "web"
    [call] = browser.execute_script("return JSON.parse(localStorage.standin_calls)")
    assert call == {
        "options": WEB_CONFIG, "vapidKey": vapid,
        "scope": f"{url}/app/", "script": f"{url}/app/sw.js",
    }  # fmt: skip
    assert browser.execute_script("return document.body.dataset.push") == "registered"
    assert not browser.find_element("css selector", "#push-on").is_displayed()

    # Opened again with the same token: asked again, not sent again.
    browser.refresh()
    wait_shown(browser, "#name", person["full_name"])
    end = time.monotonic() + 10
    while browser.execute_script("return document.body.dataset.push") != "unchanged":
        assert time.monotonic() < end, browser.get_log("browser")
        time.sleep(0.2)
    assert _push_puts(browser) == 0

    # FCM hands out another token: the app sends the new one.
    browser.execute_script("localStorage.standin_token = 'standin-token-2'")
    browser.refresh()
    _wait_token(served, person["id"], "standin-token-2")
    assert _push_puts(browser) == 1
