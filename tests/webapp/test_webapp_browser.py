"""The web app in headless Chromium against the real app on a free port (SQLite file): open the
activation link, see the home screen at 360x740, and reload the shell with the network off.
Skips without a browser. (Camera check-in with a fake .y4m camera is not covered yet.)"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from server.config import load_settings
from server.db import make_engine, make_session_factory
from tests.api.contract import add_staff, enrol, make_places, staff_token
from tests.dashboard.test_browser import browser  # noqa: F401  (the shared Chromium fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        "server.security._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def live(tmp_path):
    from werkzeug.serving import make_server

    from server.app import create_app
    from server.models import Base

    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'webapp.db'}",
        secret_key="webapp-test-secret-" + "y" * 32,
        encryption_key="",
    )
    engine = make_engine(settings.effective_database_url)
    Base.metadata.create_all(engine)
    app = create_app(settings)
    with make_session_factory(engine)() as session:
        make_places(session)
        add_staff(session, "admin.web", "admin-pass-2026", role="admin")
    client = app.test_client()
    token = staff_token(client, "admin.web", "admin-pass-2026")
    person = enrol(client, token, datetime.now(UTC))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield (
            f"http://127.0.0.1:{server.server_port}",
            person,
            make_session_factory(engine),
            (client, token),
        )
    finally:
        server.shutdown()
        thread.join(timeout=5)
        engine.dispose()


def _wait(driver, css, text=None, timeout=10.0):
    from selenium.webdriver.common.by import By

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        els = [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
        if els and (text is None or text in els[0].text):
            return els[0]
        time.sleep(0.1)
    raise AssertionError(f"{css} {text!r} not shown; page: {driver.page_source[:2000]}")


def test_activation_link_home_and_offline_shell(live, browser):  # noqa: F811
    url, person, factory, (client, token) = live
    browser.set_window_size(360, 740)
    code = person["activation"]["code"]
    browser.get(f"{url}/app/activate?server={url}&code={code}")
    _wait(browser, "#name", person["full_name"])
    assert browser.execute_script("return location.pathname") == "/app/"
    assert browser.execute_script("return !!localStorage.getItem('device_token')")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    # The service worker has the shell: with the network off the app still opens.
    end = time.monotonic() + 10
    while not browser.execute_script("return !!navigator.serviceWorker.controller"):
        assert time.monotonic() < end, "service worker never took control"
        browser.refresh()
        time.sleep(0.5)
    browser.set_network_conditions(offline=True, latency=0, throughput=0)
    browser.refresh()
    _wait(browser, "#go-declare")
    # A declaration made offline is queued, then sent exactly once when the network returns.
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, "#go-declare").click()
    browser.find_element(By.NAME, "temperature_c").send_keys("38.2")
    browser.find_element(By.CSS_SELECTOR, "#f-declare button[type=submit]").click()
    _wait(browser, "#msg.warn")
    assert browser.execute_script("return JSON.parse(localStorage.declaration_queue).length") == 1
    browser.delete_network_conditions()
    browser.execute_script("window.dispatchEvent(new Event('online'))")
    _wait(browser, "#msg.ok")
    browser.execute_script("window.dispatchEvent(new Event('online'))")  # a second flush: no-op
    time.sleep(1)
    assert browser.execute_script("return JSON.parse(localStorage.declaration_queue).length") == 0
    from sqlalchemy import func, select

    from server.declarations.models import Declaration

    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Declaration)) == 1
    # Revoked by the health station: the next call answers 401, the token is gone, activation shows.
    r = client.post(
        f"/api/v1/admin/persons/{person['id']}/devices/revoke",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code in (200, 204), r.get_json()
    browser.refresh()
    _wait(browser, "#v-activate")
    assert browser.execute_script("return localStorage.getItem('device_token')") is None
