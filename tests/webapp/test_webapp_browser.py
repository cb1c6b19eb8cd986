"""The web app in headless Chromium against the real ``isocheck serve`` (tests/webapp/conftest.py):
open the activation link, see the home screen at 360x740, reload the shell with the network off,
queue a declaration offline and see it arrive once, and land back on activation when revoked.
Skips without a browser."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import func, select

from server.declarations.models import Declaration
from tests.api.contract import bearer
from tests.webapp.conftest import wait_shown

pytestmark = pytest.mark.slow


def test_activation_link_home_and_offline_shell(served, chromium):
    browser = chromium(window=(360, 740))
    url = served.url
    person = served.enrol()
    code = person["activation"]["code"]
    browser.get(f"{url}/app/activate?server={url}&code={code}")
    wait_shown(browser, "#name", person["full_name"])
    assert browser.execute_script("return location.pathname") == "/app/"
    assert browser.execute_script("return document.documentElement.lang") == "vi"  # the default
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
    wait_shown(browser, "#go-declare")
    # A declaration made offline is queued, then sent exactly once when the network returns.
    browser.find_element(By.CSS_SELECTOR, "#go-declare").click()
    browser.find_element(By.NAME, "temperature_c").send_keys("38.2")
    browser.find_element(By.CSS_SELECTOR, "#f-declare button[type=submit]").click()
    wait_shown(browser, "#msg.warn")
    assert browser.execute_script("return JSON.parse(localStorage.declaration_queue).length") == 1
    browser.delete_network_conditions()
    browser.execute_script("window.dispatchEvent(new Event('online'))")
    wait_shown(browser, "#msg.ok")
    browser.execute_script("window.dispatchEvent(new Event('online'))")  # a second flush: no-op
    time.sleep(1)
    assert browser.execute_script("return JSON.parse(localStorage.declaration_queue).length") == 0
    with served.factory() as session:
        count = select(func.count()).select_from(Declaration)
        assert session.scalar(count.where(Declaration.person_id == person["id"])) == 1
    # Revoked by the health station: the next call answers 401, the token is gone, activation shows.
    r = served.http.post(
        f"/api/v1/admin/persons/{person['id']}/devices/revoke",
        headers=bearer(served.admin_token),
    )
    assert r.status_code in (200, 204), r.get_json()
    browser.refresh()
    wait_shown(browser, "#v-activate")
    assert browser.execute_script("return localStorage.getItem('device_token')") is None


def _try_code(browser, code: str, expected: str) -> None:
    field = wait_shown(browser, "#code")
    field.clear()
    field.send_keys(code)
    browser.find_element(By.CSS_SELECTOR, "#f-activate button[type=submit]").click()
    wait_shown(browser, "#msg.bad", expected)


def test_english_when_the_browser_prefers_it_and_a_manual_choice_sticks(served, chromium):
    """French first, then English: the app speaks English (the first language it has, as the
    server's Accept-Language match does) and asks the server for English answers. The VI button
    switches back, and the choice survives a reload."""
    browser = chromium(window=(360, 740), languages="fr-FR,fr,en-GB,en")
    browser.get(f"{served.url}/app/")
    wait_shown(browser, "#v-activate h2", "Activate")
    assert browser.execute_script("return document.documentElement.lang") == "en"
    _try_code(browser, "AAAAA-AAAAA", "Ask your ward health station")  # the server's English
    browser.find_element(By.CSS_SELECTOR, "#lang").click()
    wait_shown(browser, "#v-activate h2", "Kích hoạt")
    browser.refresh()
    wait_shown(browser, "#v-activate h2", "Kích hoạt")  # the choice sticks
    assert browser.execute_script("return document.documentElement.lang") == "vi"
    assert browser.find_element(By.CSS_SELECTOR, "#lang").text == "EN"
    _try_code(browser, "AAAAA-AAAAA", "Liên hệ trạm y tế")  # and the server answers in it
    person = served.enrol()
    field = wait_shown(browser, "#code")
    field.clear()
    field.send_keys(person["activation"]["code"])
    browser.find_element(By.CSS_SELECTOR, "#f-activate button[type=submit]").click()
    wait_shown(browser, "#v-home", "Kết thúc cách ly")


def test_in_page_reminder_when_the_next_prompt_opens(served, chromium):
    """No web push here: the open page wakes itself at next_opens_at and shows a reminder, and
    nothing of web push loads (no push.js, no Firebase SDK, no button)."""
    from tests.api.contract import clear_prompts

    browser = chromium(window=(360, 740))
    person = served.enrol()
    with served.factory() as session:
        clear_prompts(session, person["id"])  # only the prompt below
    served.open_prompt(person["id"], state="planned", opens_in_min=4 / 60)
    browser.get(f"{served.url}/app/activate?code={person['activation']['code']}")
    wait_shown(browser, "#status", "chưa có yêu cầu")
    assert not browser.find_element(By.CSS_SELECTOR, "#go-checkin").is_displayed()
    wait_shown(browser, "#reminder", "Đến giờ điểm danh", timeout=15)  # no reload, no tap
    assert browser.find_element(By.CSS_SELECTOR, "#go-checkin").is_displayed()
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname)"
    )
    assert "/app/push.json" in loaded
    assert not [p for p in loaded if p == "/app/push.js" or p.startswith("/app/vendor/")], loaded
    assert not browser.find_element(By.CSS_SELECTOR, "#push-on").is_displayed()
