"""Issue 19, item 9, in a real browser (headless Chromium, ``vi``): at 1366 × 768 the header is
one line on every page, for the longest names we have (an administrator, a ward's staff), and
the statistics chart's "Không có dữ liệu" labels of empty days do not overlap. Skips without a
browser, like test_browser."""

from __future__ import annotations

import pytest

from tests.dashboard.test_browser import SHOTS, served, wait_for  # noqa: F401 - the same fixture
from tests.dashboard.world import PASSWORD

pytestmark = pytest.mark.slow

#: How far apart the centres of the header's parts are, and its height beside one link's: one
#: line means all parts centred on one row and a header less tall than two links.
HEADER = """
const top = document.querySelector('header.top');
const parts = top.querySelectorAll(':scope > *, nav a, .who > *');
const centres = [...parts].map(el => { const r = el.getBoundingClientRect();
                                       return (r.top + r.bottom) / 2; });
const link = top.querySelector('nav a').getBoundingClientRect().height;
const spread = Math.max(...centres) - Math.min(...centres);
top.scrollIntoView();
return {rows: spread < link / 2 ? 1 : 2, spread: spread,
        height: top.getBoundingClientRect().height, link: link};
"""

#: Every text of the charts that says "no data", as screen boxes.
EMPTY_LABELS = """
return [...document.querySelectorAll('svg.chart text')]
  .filter(t => t.textContent.trim() === arguments[0])
  .map(t => { const r = t.getBoundingClientRect();
              return [r.left, r.top, r.right, r.bottom]; });
"""


def _log_in(browser, base, username):
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(base + "/dashboard/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-button").click()
    wait_for(lambda: "/dashboard/login" not in browser.current_url)


def _long_names(served) -> None:  # noqa: F811 - the fixture's value
    """The names the demo gives its accounts ("Trạm Y tế Phường …", "Quản trị viên hệ thống"),
    on a ward with one of the city's longer names: the header must hold them."""
    from server.people.models import Area, StaffUser

    world = served["world"]
    with served["factory"]() as s:
        s.get(StaffUser, world.staff["ward_a"].id).full_name = "Trạm Y tế Phường Bình Trưng Tây"
        s.get(StaffUser, world.staff["admin"].id).full_name = "Quản trị viên hệ thống"
        s.get(Area, world.ward_a.id).name = "Phường Bình Trưng Tây"
        s.commit()


@pytest.mark.parametrize("username", ["admin", "p1"])
def test_the_header_is_one_line_at_1366(served, chromium, username):  # noqa: F811 - served
    browser = chromium(window=(1366, 768))
    base = served["url"]
    _long_names(served)
    _log_in(browser, base, username)
    for url in ("/dashboard/alerts", "/dashboard/persons", "/dashboard/stats",
                f"/dashboard/persons/{served['world'].own.person.id}"):
        browser.get(base + url)
        assert browser.execute_script("return window.innerWidth") <= 1366
        got = browser.execute_script(HEADER)
        assert got["rows"] == 1, (url, got)
        assert got["height"] < 2 * got["link"], (url, got)
        if username == "p1" and url.endswith("stats"):
            browser.save_screenshot(str(SHOTS / "header-1366.png"))


def test_no_data_labels_do_not_overlap(served, chromium):  # noqa: F811 - served
    browser = chromium(window=(1366, 768))
    base = served["url"]
    _log_in(browser, base, "admin")
    for days in (7, 14, 30):
        browser.get(f"{base}/dashboard/stats?days={days}")
        boxes = browser.execute_script(EMPTY_LABELS, "Không có dữ liệu")
        assert len(boxes) >= days - 2, days  # the world's prompts fall on one or two days
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
                assert apart, (days, a, b)


#: The error shown for a field, whether it sits in the field's own label, whether it is on the
#: screen, and which element has the focus.
FIELD_ERROR = """
const field = document.getElementById(arguments[0]);
const error = document.getElementById(arguments[0] + '-error');
if (!error || document.readyState !== 'complete') return null;
const r = error.getBoundingClientRect();
return {text: error.innerText, sameLabel: field.closest('label') === error.closest('label'),
        visible: r.top >= 0 && r.bottom <= window.innerHeight,
        invalid: field.getAttribute('aria-invalid'), focus: document.activeElement.id};
"""


def test_the_schedule_form_refuses_a_bad_window_at_the_field(served, chromium):  # noqa: F811
    from selenium.webdriver.common.by import By

    from server.people.models import Person

    browser = chromium(window=(1366, 768))
    base, world = served["url"], served["world"]
    _log_in(browser, base, "p1")
    browser.get(f"{base}/dashboard/persons/{world.own.person.id}")
    end = browser.find_element(By.ID, "w0_end")
    assert end.get_attribute("value") == "09:30"
    browser.execute_script("arguments[0].value = '07:00'", end)  # before the start, 07:30
    browser.find_element(By.ID, "schedule-save").click()
    got = wait_for(lambda: browser.execute_script(FIELD_ERROR, "w0_end"))
    assert got["text"] == "Giờ kết thúc phải sau giờ bắt đầu (trong cùng ngày).", got
    assert got["sameLabel"] and got["invalid"] == "true", got
    assert got["visible"] and got["focus"] == "w0_end", got  # not far below the fold
    assert browser.find_element(By.ID, "w0_end").get_attribute("value") == "07:00"  # as typed
    with served["factory"]() as s:
        assert s.get(Person, world.own.person.id).schedule_policy is None
    # corrected, it saves: one field differs from the ward's schedule
    browser.execute_script("arguments[0].value = '10:00'", browser.find_element(By.ID, "w0_end"))
    browser.find_element(By.ID, "schedule-save").click()
    wait_for(lambda: "Đã lưu lịch điểm danh" in browser.find_element(By.TAG_NAME, "main").text)
    with served["factory"]() as s:
        windows = s.get(Person, world.own.person.id).schedule_policy["windows"]
    assert windows[0] == {"name": "morning", "start": "07:30", "end": "10:00"}
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"
              and "status of 422" not in e["message"]]  # the refusal itself
    assert not severe, severe
