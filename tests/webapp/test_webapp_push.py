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

from server.notify.channel import OutboxMessage
from server.notify.fcm import build_message
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

    # A push built by the server's FCM code for this device, handed to the service worker as the
    # push service would hand it: shown in the language chosen in the app, Vietnamese by default.
    row = OutboxMessage(
        id=1, channel="fcm", recipient="standin-token-2", idempotency_key="prompt:7:open:d1",
        attempts=1, payload={
            "kind": "checkin_prompt", "title": "Đến giờ điểm danh", "body": "Trước 09:00.",
            "en": {"title": "Time to check in", "body": "By 09:00."},
            "data": {"prompt_id": "7"}, "platform": "web",
        },
    )  # fmt: skip
    webpush = build_message(row).webpush
    n = webpush.notification
    delivered = {
        "from": WEB_CONFIG["messagingSenderId"],
        "notification": {"title": n.title, "body": n.body, "icon": n.icon, "tag": n.tag},
        "data": webpush.data,
    }
    browser.execute_cdp_cmd("ServiceWorker.enable", {})
    vi = [["Đến giờ điểm danh", "Trước 09:00.", "prompt-7"]]
    assert _push(browser, url, delivered, vi) == vi
    browser.find_element("css selector", "#lang").click()
    # The same prompt's push again (same tag): it replaces the first, now in English.
    en = [["Time to check in", "By 09:00.", "prompt-7"]]
    assert _push(browser, url, delivered, en) == en

    # A click on it opens /app/?open=prompt when no window is open: the prompt's check-in screen.
    served.open_prompt(person["id"])
    browser.get(f"{url}/app/?open=prompt")
    wait_shown(browser, "#v-checkin")
    assert browser.execute_script("return location.pathname + location.search") == "/app/"


def _push(browser, url: str, delivered: dict, want: list[list[str]]) -> list[list[str]]:
    """Deliver ``delivered`` as a push message to the app's service worker (DevTools) until the
    notifications it shows are ``want`` (or 15 s pass); returns what is shown. DevTools learns
    of the registration a moment after ``ServiceWorker.enable``, and WebDriver does not expose
    its id: a fresh profile has this one registration and ids count from 0, so the first few are
    tried (the others name none)."""
    end = time.monotonic() + 15
    while True:
        for registration_id in ("0", "1", "2"):
            browser.execute_cdp_cmd(
                "ServiceWorker.deliverPushMessage",
                {"origin": url, "registrationId": registration_id, "data": json.dumps(delivered)},
            )
        time.sleep(0.5)
        shown = browser.execute_async_script(
            "const done = arguments[0]; navigator.serviceWorker.ready"
            ".then((r) => r.getNotifications())"
            ".then((ns) => done(ns.map((x) => [x.title, x.body, x.tag])), (e) => done(String(e)))"
        )
        if shown == want or time.monotonic() > end:
            return shown


def test_the_button_asks_and_then_registers(push_served, chromium):
    """Notifications not yet allowed: nothing is registered and the home screen offers the
    button; once the person allows them (granted here through DevTools, as a tap on the
    browser's prompt would), the tap registers the token."""
    served, _ = push_served
    browser = chromium(window=(360, 740))
    person = served.enrol()
    browser.get(f"{served.url}/app/activate?code={person['activation']['code']}")
    button = wait_shown(browser, "#push-on", "Bật thông báo nhắc điểm danh")
    assert browser.execute_script("return Notification.permission") == "default"
    assert _device(served, person["id"]).push_token is None
    browser.execute_cdp_cmd(
        "Browser.grantPermissions", {"origin": served.url, "permissions": ["notifications"]}
    )
    button.click()
    _wait_token(served, person["id"], "standin-token-1")
    wait_shown(browser, "#msg.ok", "Đã bật thông báo")
    assert not browser.find_element("css selector", "#push-on").is_displayed()
