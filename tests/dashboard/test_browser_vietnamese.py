"""The dashboard walked in a real browser (headless Chromium, ``vi``) as an administrator: the
text a person reads on every page (innerText, placeholders, titles) has no code and no English
word (tests/dashboard/untranslated.py). Skips without a browser, like test_browser."""

from __future__ import annotations

import pytest

from tests.dashboard.test_browser import served  # noqa: F401 - the same fixture (browser: conftest)
from tests.dashboard.untranslated import english_only_words, untranslated
from tests.dashboard.world import PASSWORD

pytestmark = pytest.mark.slow

READABLE = """
const parts = [document.body.innerText];
for (const el of document.querySelectorAll('[placeholder],[title],[alt],[aria-label]')) {
  for (const a of ['placeholder', 'title', 'alt', 'aria-label']) {
    if (el.getAttribute(a)) parts.push(el.getAttribute(a));
  }
}
return parts.join('\\n');
"""


def test_every_page_reads_vietnamese_in_a_browser(served, browser):  # noqa: F811 - served
    from selenium.webdriver.common.by import By

    base, world = served["url"], served["world"]
    browser.get(base + "/dashboard/login")
    english = english_only_words()
    problems = {"login": untranslated(browser.execute_script(READABLE), english)}
    browser.find_element(By.ID, "username").send_keys("admin")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-button").click()
    own = world.own
    for url in (
        "/dashboard/alerts",
        "/dashboard/reviews",
        f"/dashboard/reviews/{own.attempt.id}",
        "/dashboard/persons",
        f"/dashboard/persons/{own.person.id}",
        "/dashboard/enrol",
        "/dashboard/stats",
        "/dashboard/password",
        "/dashboard/no-such-page",
    ):
        browser.get(base + url)
        assert "/dashboard/login" not in browser.current_url, url
        text = browser.execute_script(READABLE)
        for textarea in browser.find_elements(By.TAG_NAME, "textarea"):
            text = text.replace(textarea.get_attribute("value") or "\0", " ")
        assert text.strip(), url
        problems[url] = untranslated(text, english)
    assert {k: v for k, v in problems.items() if v} == {}
