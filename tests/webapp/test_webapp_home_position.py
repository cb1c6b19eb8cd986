"""Issue 19, item 7, in the web app (headless Chromium against the real ``isocheck serve``): a
person enrolled without coordinates opens the activation link at home, the app asks for the home
position, one tap sends the phone's position (proposeHomePosition), and the person's home waits
for staff with exactly that position. Skips without a browser."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.people.models import Person
from tests.api.contract import bearer, person_payload
from tests.webapp.conftest import wait_shown

pytestmark = pytest.mark.slow

AT_HOME = (10.81301, 106.68655)


def test_the_phone_sends_the_home_position_from_home(served, chromium):
    body = person_payload(datetime.now(UTC), national_id=None)
    del body["home_lat"], body["home_lon"]
    r = served.http.post("/api/v1/admin/persons", headers=bearer(served.admin_token), json=body)
    assert r.status_code == 201, r.get_json()
    person = r.get_json()
    browser = chromium(window=(360, 740))
    browser.execute_cdp_cmd(
        "Browser.grantPermissions", {"origin": served.url, "permissions": ["geolocation"]}
    )
    browser.execute_cdp_cmd(
        "Emulation.setGeolocationOverride",
        {"latitude": AT_HOME[0], "longitude": AT_HOME[1], "accuracy": 15},
    )
    browser.get(f"{served.url}/app/activate?code={person['activation']['code']}")
    wait_shown(browser, "#name", person["full_name"])
    assert "cần vị trí nhà" in wait_shown(browser, "#home-box").text
    wait_shown(browser, "#send-home", "Tôi đang ở nhà").click()
    wait_shown(browser, "#msg", "Đã gửi vị trí nhà")
    assert not browser.find_element("css selector", "#home-box").is_displayed()
    with served.factory() as s:
        row = s.get(Person, person["id"])
        assert row.home_source == "pending"  # staff confirm it on the dashboard
        assert (row.home_proposed_lat, row.home_proposed_lon) == AT_HOME
        assert row.home_proposed_accuracy_m == 15
    browser.refresh()  # the next visit says it waits for staff
    wait_shown(browser, "#msg", "chờ cán bộ xác nhận")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
