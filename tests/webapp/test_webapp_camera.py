"""Check-in from the web app in headless Chromium whose fake camera plays a .y4m made at test
time from a real photograph (faces-asia): enrol from one photo, activate by link, an open
prompt; the same person -> verified, another person -> mismatch and attempts left, a dark frame
-> the retake message (no attempt used). Skips without browser or photos."""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.config import load_settings
from server.db import make_engine, make_session_factory
from tests.api.contract import HOME, add_prompt, add_staff, enrol, make_places, staff_token
from tests.dashboard.test_browser import CHROMEDRIVER, CHROMIUM, ENROL_PHOTO, SELFIE_PHOTO
from tests.faces import faces_dir
from tests.webapp.test_webapp_browser import _wait, fast_password_hashing  # noqa: F401

pytestmark = pytest.mark.slow


def _y4m(photo: Path, out: Path, gain: float = 1.0) -> Path:
    """A 640x480 I420 .y4m of ``photo`` (letterboxed), 10 identical frames."""
    import cv2
    import numpy as np

    img = (cv2.imread(str(photo)) * gain).astype("uint8")
    k = min(640 / img.shape[1], 480 / img.shape[0])
    small = cv2.resize(img, (int(img.shape[1] * k) // 2 * 2, int(img.shape[0] * k) // 2 * 2))
    canvas = np.full((480, 640, 3), int(128 * gain), np.uint8)
    y0, x0 = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
    canvas[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    yuv = cv2.cvtColor(canvas, cv2.COLOR_BGR2YUV_I420).tobytes()
    with out.open("wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(10):
            f.write(b"FRAME\n" + yuv)
    return out


OTHER = "kpop_Chaeyoung_TWICE"
CASES = {
    # selfie, brightness gain, message class, code, attempts left
    "same_person": (SELFIE_PHOTO, 1.0, "ok", "face_match", "3"),
    "other_person": (None, 1.0, "bad", "face_mismatch", "2"),
    "dark_frame": (SELFIE_PHOTO, 0.15, "bad", "image_too_dark", "3"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_camera_checkin(tmp_path, case):
    selfie, gain, cls, code, left = CASES[case]
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("no browser")
    folder = faces_dir("asia")
    if selfie is None:
        selfie = str(next(p for p in sorted((folder / OTHER).iterdir()) if p.suffix == ".jpg"))
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from werkzeug.serving import make_server

    from server.app import create_app
    from server.models import Base

    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'cam.db'}",
        secret_key="webapp-test-secret-" + "y" * 32,
        encryption_key="",
    )
    engine = make_engine(settings.effective_database_url)
    Base.metadata.create_all(engine)
    app = create_app(settings)
    factory = make_session_factory(engine)
    with factory() as session:
        make_places(session)
        add_staff(session, "admin.cam", "admin-pass-2026", role="admin")
    client = app.test_client()
    token = staff_token(client, "admin.cam", "admin-pass-2026")
    person = enrol(client, token, datetime.now(UTC))
    r = client.post(
        f"/api/v1/admin/persons/{person['id']}/photos",
        headers={"Authorization": f"Bearer {token}"},
        data={"photo": (io.BytesIO((folder / ENROL_PHOTO).read_bytes()), "a.jpg", "image/jpeg")},
    )
    assert r.status_code == 201, r.get_json()
    with factory() as session:
        add_prompt(session, person["id"], datetime.now(UTC))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=360,740",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={_y4m(folder / selfie, tmp_path / 'cam.y4m', gain)}",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.execute_cdp_cmd(
            "Browser.grantPermissions", {"origin": url, "permissions": ["geolocation"]}
        )
        driver.execute_cdp_cmd(
            "Emulation.setGeolocationOverride",
            {"latitude": HOME[0], "longitude": HOME[1], "accuracy": 10},
        )
        driver.get(f"{url}/app/activate?code={person['activation']['code']}")
        _wait(driver, "#go-checkin").click()
        end = time.monotonic() + 10
        while not driver.execute_script("return document.querySelector('#video').videoWidth"):
            assert time.monotonic() < end, "the fake camera never played"
            time.sleep(0.2)
        started = time.monotonic()
        driver.find_element(By.CSS_SELECTOR, "#capture").click()
        _wait(driver, f"#msg.{cls}", timeout=30)
        print(f"{case}: capture -> verdict: {time.monotonic() - started:.2f} s")
        assert driver.find_element(By.CSS_SELECTOR, "#msg").get_attribute("data-code") == code
        assert driver.find_element(By.CSS_SELECTOR, "#attempts").text.endswith(left)
    finally:
        driver.quit()
        server.shutdown()
        engine.dispose()
