"""The dashboard in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) drives the real app served on a free localhost port, with a SQLite file
database and seeded data. Logs in, watches the alert queue refresh itself, acknowledges an
alert, reviews a failed check-in (real photographs when the photo set is present), and looks at
the person's and the statistics' charts. Screenshots go to the test's folder and to
``tests/dashboard/_screenshots/`` (git-ignored).

The browser is the shared ``browser`` fixture (``tests/conftest.py``, ``tests/browser.py``);
it skips when no browser is installed: ``apt-get install -y chromium chromium-driver``.
"""

from __future__ import annotations

import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from server.alerts.models import Alert
from server.alerts.service import raise_alert
from server.checkins.models import CheckinAttempt
from server.config import load_settings
from server.core.clock import SystemClock
from server.core.db import make_engine, make_session_factory
from server.core.enums import AlertKind, AlertState, AttemptDecision
from tests.dashboard.world import PASSWORD, World
from tests.photo_sets import faces_dir

pytestmark = pytest.mark.slow

SHOTS = Path(__file__).resolve().parent / "_screenshots"
ENROL_PHOTO = "lfw_Gloria_Macapagal_Arroyo/1.jpg"
SELFIE_PHOTO = "lfw_Gloria_Macapagal_Arroyo/12.jpg"


def _real_photos() -> tuple[bytes, bytes] | None:
    try:
        folder = faces_dir("asia")
    except pytest.skip.Exception:
        return None
    return (folder / ENROL_PHOTO).read_bytes(), (folder / SELFIE_PHOTO).read_bytes()


@pytest.fixture
def served(tmp_path):
    """The real app (system clock) on a free port, in a thread, over a SQLite file."""
    from werkzeug.serving import make_server

    from server.app import create_app
    from server.models import Base

    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'browser.db'}",
        secret_key="browser-test-secret-" + "y" * 32,
        encryption_key="",
    )
    engine = make_engine(settings.effective_database_url)
    Base.metadata.create_all(engine)
    photos = _real_photos()
    with make_session_factory(engine)() as session:
        world = World(
            session,
            settings,
            SystemClock(),
            enrolment=photos[0] if photos else None,
            selfie=photos[1] if photos else None,
        )
    app = create_app(settings, test_config={"DASHBOARD_REFRESH_SECONDS": 2})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {
            "url": f"http://127.0.0.1:{server.server_port}",
            "world": world,
            "factory": make_session_factory(engine),
            "photos": photos is not None,
        }
    finally:
        server.shutdown()
        thread.join(timeout=5)
        app.extensions["isocheck"].engine.dispose()
        engine.dispose()


class Shots:
    def __init__(self, driver, folder: Path) -> None:
        self.driver, self.folder, self.n = driver, folder, 0
        folder.mkdir(parents=True, exist_ok=True)
        SHOTS.mkdir(exist_ok=True)

    def take(self, name: str, height: int | None = None) -> Path:
        """A PNG of the page; ``height`` resizes the window first to fit a long page."""
        if height is None:
            self.driver.set_window_size(1400, 1000)
            height = (
                self.driver.execute_script("return document.documentElement.scrollHeight") + 140
            )  # window chrome
        self.driver.set_window_size(1400, min(max(height, 700), 3200))
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path))
        shutil.copy(path, SHOTS / path.name)
        return path


def wait_for(condition, timeout: float = 10.0, step: float = 0.1):
    """Poll ``condition`` until it is truthy. An element that goes stale or missing while a page
    loads or the queue swaps its rows counts as "not yet"."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception as exc:  # noqa: BLE001 - only the "element went away" kinds are retried
            if not _gone(exc):
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(step)


def retry_stale(action, attempts: int = 10):
    """Run ``action``; the queue swaps its rows every few seconds, so an element found just before
    a swap goes stale: find it again. (Once a row's actions are open the page stops swapping.)"""
    for _ in range(attempts - 1):
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - only the "element went away" kinds are retried
            if not _gone(exc):
                raise
            time.sleep(0.1)
    return action()


def _gone(exc: Exception) -> bool:
    """The element was replaced or the page moved on while we looked at it: Selenium says so as
    a stale reference, a missing element, or (Chromium's DevTools) a node no longer in the
    document."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )

    if isinstance(exc, StaleElementReferenceException | NoSuchElementException):
        return True
    return isinstance(exc, WebDriverException) and "does not belong to the document" in str(exc)


def test_dashboard_in_a_real_browser(served, browser, tmp_path):
    from selenium.webdriver.common.by import By

    base, world = served["url"], served["world"]
    shots = Shots(browser, tmp_path / "screenshots")
    find = browser.find_element

    # 1. the dashboard sends an anonymous visitor to the login page (Vietnamese by default)
    browser.get(base + "/dashboard/alerts")
    assert "/dashboard/login" in browser.current_url
    assert "Đăng nhập cán bộ" in find(By.TAG_NAME, "h1").text
    find(By.ID, "username").send_keys("p1")
    find(By.ID, "password").send_keys("wrong password")
    find(By.ID, "login-button").click()
    wait_for(lambda: "Sai thông tin đăng nhập" in find(By.TAG_NAME, "main").text)
    shots.take("login-failed", 700)
    find(By.ID, "username").clear()
    find(By.ID, "username").send_keys("p1")
    find(By.ID, "password").send_keys(PASSWORD)
    find(By.ID, "login-button").click()
    wait_for(lambda: "/dashboard/alerts" in browser.current_url)

    # 2. the queue shows ward A's alert, not ward C's; it refreshes without a reload
    row_id = f"alert-{world.own.alert.id}"
    assert find(By.ID, row_id)
    assert world.other.person.full_name not in find(By.TAG_NAME, "main").text
    marker = browser.execute_script("return window.__noReload = 1")  # survives only in-page
    assert marker == 1
    with served["factory"]() as s:
        from server.people.models import Person

        person = s.get(Person, world.own.person.id)
        new_alert, _ = raise_alert(
            session=s,
            person=person,
            kind=AlertKind.severe_symptoms,
            now=SystemClock().now() - timedelta(minutes=1),
            dedupe_key="browser:severe",
        )
        s.commit()
    new_row = f"alert-{new_alert.id}"
    wait_for(lambda: browser.find_elements(By.ID, new_row), timeout=15)
    assert browser.execute_script("return window.__noReload") == 1  # rows swapped in place
    first = retry_stale(lambda: browser.find_elements(By.CSS_SELECTOR, "#alert-rows tr")[0]
                        .get_attribute("id"))
    assert first == new_row  # severity 4 sorts first
    shots.take("alert-queue")

    # 3. acknowledge the failed-verification alert with a note
    retry_stale(lambda: find(By.ID, row_id).find_element(By.TAG_NAME, "summary").click())
    row = find(By.ID, row_id)  # details open: the queue no longer swaps rows
    row.find_element(By.CSS_SELECTOR, "form input[name=note]").send_keys(
        "Đã gọi điện, chờ xác minh"
    )
    row.find_element(By.CSS_SELECTOR, "button.ack").click()
    wait_for(lambda: "Đã tiếp nhận cảnh báo" in find(By.TAG_NAME, "main").text)
    assert "Đã tiếp nhận" in find(By.ID, row_id).text
    shots.take("alert-acknowledged")
    with served["factory"]() as s:
        alert = s.get(Alert, world.own.alert.id)
        assert alert.state is AlertState.acknowledged and alert.next_escalation_at is None

    # 4. review the failed check-in: both photos, the geofence map, "same person"
    browser.get(base + "/dashboard/reviews")
    find(By.LINK_TEXT, "Duyệt").click()
    wait_for(lambda: "/dashboard/reviews/" in browser.current_url)
    if served["photos"]:
        for image_id in ("enrolment-photo-1", "selfie-photo"):
            img = find(By.ID, image_id)
            wait_for(
                lambda img=img: browser.execute_script(
                    "return arguments[0].complete && arguments[0].naturalWidth > 0", img
                )
            )
        assert find(By.CSS_SELECTOR, "svg.geofence circle.home-zone")
        shots.take("review")
        find(By.ID, "review-note").send_keys("Cùng một người, ảnh thiếu sáng")
        find(By.ID, "same-person").click()
        wait_for(lambda: "Đã xác nhận cùng một người" in find(By.TAG_NAME, "main").text)
        with served["factory"]() as s:
            attempt = s.get(CheckinAttempt, world.own.attempt.id)
            assert attempt.decision is AttemptDecision.verified
            assert attempt.review_outcome == "same_person" and attempt.score == 0.62
            views = s.scalars(select(Alert).where(Alert.prompt_id == world.own.prompt.id)).all()
            assert all(a.state is AlertState.resolved for a in views)

    # 5. the person's page: status, compliance and the SpO2 / temperature charts
    browser.get(f"{base}/dashboard/persons/{world.own.person.id}")
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart polyline.series")
    assert len(charts) == 2
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart circle.dot.danger")  # SpO2 94 %
    shots.take("person")

    # 6. statistics with their charts, in English this time (?lang=en is remembered)
    browser.get(base + "/dashboard/stats?lang=en")
    assert "Statistics by area and day" in find(By.TAG_NAME, "h1").text
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect")
    shots.take("stats-en")
    browser.get(base + "/dashboard/persons")
    assert "People in isolation" in find(By.TAG_NAME, "h1").text

    # no CSP violation or script error on any page
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    if not served["photos"]:
        pytest.skip("photo set absent: the face review step was not run in the browser")
