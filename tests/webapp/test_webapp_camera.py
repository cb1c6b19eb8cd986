"""Check-in from the web app in headless Chromium whose fake camera plays a .y4m made at test
time from a real photograph (faces-asia), against the real ``isocheck serve``: enrol from one
photo, activate by link, an open prompt; the same person -> verified, another person -> mismatch
and attempts left, a dark frame -> the retake message (no attempt used). Skips without browser
or photos."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By

from tests.faces import faces_dir
from tests.webapp.conftest import (
    ENROL_PHOTO,
    SELFIE_PHOTO,
    camera_browser,
    open_checkin,
    other_person_photo,
    wait_shown,
    y4m,
)

pytestmark = pytest.mark.slow

CASES = {
    # selfie, brightness gain, message class, code, attempts left
    "same_person": (SELFIE_PHOTO, 1.0, "ok", "face_match", "3"),
    "other_person": (None, 1.0, "bad", "face_mismatch", "2"),
    "dark_frame": (SELFIE_PHOTO, 0.15, "bad", "image_too_dark", "3"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_camera_checkin(served, chromium, tmp_path, case):
    selfie, gain, cls, code, left = CASES[case]
    folder = faces_dir("asia")
    photo = other_person_photo(folder) if selfie is None else folder / selfie
    person = served.enrol(folder / ENROL_PHOTO)
    served.open_prompt(person["id"])
    driver = camera_browser(chromium, served, y4m(photo, tmp_path / "cam.y4m", gain))
    open_checkin(driver, served.url, person["activation"]["code"])
    started = time.monotonic()
    driver.find_element(By.CSS_SELECTOR, "#capture").click()
    wait_shown(driver, f"#msg.{cls}", timeout=30)
    print(f"{case}: capture -> verdict: {time.monotonic() - started:.2f} s")
    assert driver.find_element(By.CSS_SELECTOR, "#msg").get_attribute("data-code") == code
    assert driver.find_element(By.CSS_SELECTOR, "#attempts").text.endswith(left)
