"""Check-in from the web app in headless Chromium whose fake camera plays a .y4m made at test
time from a real photograph (faces-asia), against the real ``isocheck serve``: enrol from one
photo, activate by link, an open prompt; the same person -> verified, another person -> mismatch
and attempts left, a dark frame -> the retake message (no attempt used). Skips without browser
or photos."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from selenium.webdriver.common.by import By

from tests.photo_sets import faces_dir
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
    # selfie, brightness gain, message class, code, attempts left (a verified answer uses one)
    "same_person": (SELFIE_PHOTO, 1.0, "ok", "face_match", "2"),
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


class DropFirstCheckinAnswer:
    """A reverse proxy in front of the served app that passes every request on and, for the
    first ``POST /api/v1/me/checkins``, lets the server answer but closes the phone's connection
    instead of passing the answer back: a response lost on a flaky mobile network. Every answer
    says ``Connection: close``, so the browser never resends on a reused socket by itself: a
    second request is the app's own retry."""

    def __init__(self, upstream: str) -> None:
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        up = urlsplit(upstream)
        self.checkins: list[dict[str, str]] = []  # Idempotency-Key and replay flag per upload
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("connection", "keep-alive")
                }
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                conn.close()
                self.close_connection = True
                if self.command == "POST" and self.path.startswith("/api/v1/me/checkins"):
                    proxy.checkins.append(
                        {
                            "key": self.headers.get("Idempotency-Key", ""),
                            "status": str(answer.status),
                            "replayed": answer.getheader("Idempotent-Replayed", ""),
                        }
                    )
                    if len(proxy.checkins) == 1:  # the server answered; the phone never hears
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in (
                        "connection",
                        "keep-alive",
                        "transfer-encoding",
                        "content-length",
                    ):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_dropped_checkin_answer_is_retried_with_the_same_key_and_counted_once(
    served, chromium, tmp_path
):
    """Another person's face uses an attempt: were the retry a new attempt, two would be gone."""
    from sqlalchemy import select

    from server.checkins.models import CheckinAttempt, CheckinPrompt

    folder = faces_dir("asia")
    person = served.enrol(folder / ENROL_PHOTO)
    prompt_id = served.open_prompt(person["id"])
    with DropFirstCheckinAnswer(served.url) as proxy:
        camera = y4m(other_person_photo(folder), tmp_path / "cam.y4m")
        driver = camera_browser(chromium, served, camera, url=proxy.url)
        open_checkin(driver, proxy.url, person["activation"]["code"])
        driver.find_element(By.CSS_SELECTOR, "#capture").click()
        wait_shown(driver, "#msg.bad", timeout=40)
        assert driver.find_element(By.CSS_SELECTOR, "#msg").get_attribute("data-code") == (
            "face_mismatch"
        )
        assert driver.find_element(By.CSS_SELECTOR, "#attempts").text.endswith("2")
    first, *retries = proxy.checkins
    assert first["status"] == "200" and not first["replayed"]  # judged once, answer lost
    assert retries, "the app never retried the lost upload"
    assert {r["key"] for r in retries} == {first["key"]}, proxy.checkins
    assert retries[-1]["replayed"] == "true"  # the server's first answer, replayed
    with served.factory() as session:
        attempts = session.scalars(
            select(CheckinAttempt).where(CheckinAttempt.prompt_id == prompt_id)
        ).all()
        assert len(attempts) == 1
        assert session.get(CheckinPrompt, prompt_id).attempts_used == 1


def test_liveness_challenge_is_answered_with_a_burst_of_frames(served, chromium, tmp_path):
    """A prompt with a ``turn_left`` challenge: the app says what to do, takes a burst of frames
    and sends them with the selfie; the server judges the motion on them. The fake camera plays
    one still photograph, so the face matches but no turn is seen: review with
    ``liveness_failed`` (no attempt used). Without frames the server would refuse the upload
    as ``invalid_challenge`` instead."""
    from sqlalchemy import select

    from server.checkins.models import CheckinAttempt

    folder = faces_dir("asia")
    person = served.enrol(folder / ENROL_PHOTO)
    challenge = {"kind": "turn_left", "nonce": "9f2c4e1a7b3d5c60"}
    prompt_id = served.open_prompt(person["id"], challenge=challenge)
    driver = camera_browser(chromium, served, y4m(folder / SELFIE_PHOTO, tmp_path / "cam.y4m"))
    open_checkin(driver, served.url, person["activation"]["code"])
    wait_shown(driver, "#challenge", "quay đầu sang trái")
    driver.find_element(By.CSS_SELECTOR, "#capture").click()
    wait_shown(driver, "#challenge", "Bây giờ hãy")  # during the burst
    wait_shown(driver, "#msg.warn", timeout=40)
    assert driver.find_element(By.CSS_SELECTOR, "#msg").get_attribute("data-code") == (
        "liveness_failed"
    )
    assert driver.find_element(By.CSS_SELECTOR, "#attempts").text.endswith("3")
    with served.factory() as session:
        attempt = session.scalars(
            select(CheckinAttempt).where(CheckinAttempt.prompt_id == prompt_id)
        ).one()
    details = attempt.details.get("details", attempt.details)
    assert details["challenge"]["kind"] == "turn_left"
    assert details["reason"] == "no_turn"
    assert len(details["yaws"]) == 6  # frame 0 looking straight + a burst of 5
