"""The web app's browser tests run against the real ``isocheck serve`` (waitress, migrations,
in-process scheduler) started as a subprocess on a free port over a fresh SQLite data directory,
one per test module; each test enrols its own person through the HTTP API. The test process
adds only what no API makes (places, the administrator, a prompt opened now) straight into the
same SQLite file, as the scheduler would.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from server.core.db import make_engine, make_session_factory
from tests.api.contract import add_staff, bearer, enrol, make_places, staff_token

REPO = Path(__file__).resolve().parents[2]
ADMIN = ("admin.web", "admin-pass-2026")
ENROL_PHOTO = "lfw_Gloria_Macapagal_Arroyo/1.jpg"
SELFIE_PHOTO = "lfw_Gloria_Macapagal_Arroyo/12.jpg"
OTHER_PERSON = "kpop_Chaeyoung_TWICE"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Answer:
    """A ``requests`` answer with the Flask test client's ``get_json`` (for tests/api/contract)."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.status_code = response.status_code
        self.headers = response.headers

    def get_json(self) -> Any:
        return self.response.json() if self.response.content else None


class Http:
    """Just enough of a Flask test client, over real HTTP to the served app."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()

    def get(self, path: str, **kw: Any) -> _Answer:
        return _Answer(self.session.get(self.base + path, timeout=60, **kw))

    def post(self, path: str, **kw: Any) -> _Answer:
        return _Answer(self.session.post(self.base + path, timeout=60, **kw))


@dataclass
class Served:
    url: str
    http: Http
    factory: Any  # sessionmaker on the server's SQLite file
    admin_token: str
    log: Path

    def enrol(self, photo: Path | None = None) -> dict[str, Any]:
        """A new person (createPerson) with ``photo`` as the enrolment photo (addEnrolmentPhoto)."""
        person = enrol(self.http, self.admin_token, datetime.now(UTC))
        if photo is not None:
            r = self.http.post(
                f"/api/v1/admin/persons/{person['id']}/photos",
                headers=bearer(self.admin_token),
                files={"photo": ("a.jpg", io.BytesIO(photo.read_bytes()), "image/jpeg")},
            )
            assert r.status_code == 201, r.get_json()
        return person

    def open_prompt(self, person_id: int, **kw: Any):
        """A prompt open now (the scheduler's job, done by hand)."""
        from tests.api.contract import add_prompt

        with self.factory() as session:
            return add_prompt(session, person_id, datetime.now(UTC), **kw).id


def _ready(url: str) -> bool:
    try:
        return requests.get(url + "/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _serve_command() -> list[str]:
    script = Path(sys.executable).with_name("isocheck")  # the console script of the venv
    return [str(script)] if script.exists() else [sys.executable, "-m", "isocheck.cli"]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("serve")) as server:
        yield server


@contextmanager
def serve(root: Path, extra_env: dict[str, str] | None = None) -> Iterator[Served]:
    """``isocheck serve`` on a free port over a fresh SQLite data dir under ``root``, seeded with
    the places and an administrator; stopped (SIGINT) on exit. bench/webapp_bench.py uses it too.
    ``extra_env``: more ``ISOCHECK_*`` settings (e.g. web push)."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    database_url = f"sqlite:///{root / 'isocheck.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISOCHECK_")}
    env.update(
        ISOCHECK_DATA_DIR=str(root / "data"),
        ISOCHECK_DATABASE_URL=database_url,
        ISOCHECK_PORT=str(port),
        ISOCHECK_SECRET_KEY="webapp-test-secret-" + "y" * 32,
        ISOCHECK_ENCRYPTION_KEY="",
        ISOCHECK_PUBLIC_URL=f"http://127.0.0.1:{port}",
        # every test activates a phone from 127.0.0.1; the real limits are tested elsewhere
        ISOCHECK_RATE_LIMIT_ACTIVATION="1000/minute",
        ISOCHECK_RATE_LIMIT_CHECKIN="1000/minute",
        ISOCHECK_RATE_LIMIT_DEVICE="10000/minute",
        ISOCHECK_RATE_LIMIT_IP="100000/minute",
        ISOCHECK_RATE_LIMIT_STAFF_LOGIN="1000/minute",
    )
    env.update(extra_env or {})
    log = root / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_serve_command(), "serve", "--threads", "8"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    engine = None
    try:
        deadline = time.monotonic() + 90
        while not _ready(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"isocheck serve did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        engine = make_engine(database_url)
        factory = make_session_factory(engine)
        with factory() as session:
            make_places(session)
            add_staff(session, *ADMIN, role="admin")
        http = Http(url)
        yield Served(url, http, factory, staff_token(http, *ADMIN), log)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if engine is not None:
            engine.dispose()


def wait_shown(driver, css: str, text: str | None = None, timeout: float = 10.0):
    """The first displayed element matching ``css`` (containing ``text``), polled."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            els = [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
            if els and (text is None or text in els[0].text):
                return els[0]
        except StaleElementReferenceException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{css} {text!r} not shown; page: {driver.page_source[:2000]}")


def y4m(photo: Path, out: Path, gain: float = 1.0) -> Path:
    """A 640x480 I420 ``.y4m`` of ``photo`` (letterboxed), 10 identical frames: the fake camera."""
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


def other_person_photo(folder: Path) -> Path:
    return next(p for p in sorted((folder / OTHER_PERSON).iterdir()) if p.suffix == ".jpg")


def camera_browser(chromium, served: Served, camera: Path, languages: str = "vi-VN,vi", url=None):
    """A 360x740 phone-sized browser whose camera plays ``camera``, located at home."""
    from tests.api.contract import HOME

    driver = chromium(window=(360, 740), fake_camera=camera, languages=languages)
    origin = url or served.url
    driver.execute_cdp_cmd(
        "Browser.grantPermissions", {"origin": origin, "permissions": ["geolocation"]}
    )
    driver.execute_cdp_cmd(
        "Emulation.setGeolocationOverride",
        {"latitude": HOME[0], "longitude": HOME[1], "accuracy": 10},
    )
    return driver


def open_checkin(driver, base: str, code: str) -> None:
    """Activate by link, open the check-in screen and wait for the fake camera to play."""
    driver.get(f"{base}/app/activate?code={code}")
    wait_shown(driver, "#go-checkin").click()
    end = time.monotonic() + 20
    while not driver.execute_script("return document.querySelector('#video').videoWidth"):
        assert time.monotonic() < end, (
            "the fake camera never played: "
            f"{driver.find_element('css selector', '#msg').text!r} {driver.get_log('browser')}"
        )
        time.sleep(0.2)
