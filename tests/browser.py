"""Headless Chromium for the browser tests (the dashboard's and the web app's): Debian's
``chromium`` and ``chromium-driver`` driven by Selenium. One place for the flags, so every
browser test starts the same browser; the ``chromium`` fixture in ``tests/conftest.py`` calls
:func:`start_chromium` and quits what it started.

Skips when no browser is installed: ``apt-get install -y chromium chromium-driver``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def start_chromium(
    profile: Path,
    *,
    window: tuple[int, int] = (1400, 1000),
    languages: str = "vi-VN,vi",
    fake_camera: Path | None = None,
    extra_flags: tuple[str, ...] = (),
) -> Any:
    """A new headless Chromium with its own profile folder. ``languages``: the browser's
    preference list (``Accept-Language`` and ``navigator.languages``); ``fake_camera``: a
    ``.y4m`` / ``.mjpeg`` file played as the camera, with camera permission granted."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("no browser: apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    flags = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--window-size={window[0]},{window[1]}",
        f"--lang={languages.split(',')[0]}",
        f"--user-data-dir={profile}",
    ]
    if fake_camera is not None:
        flags += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={fake_camera}",
        ]
    for flag in (*flags, *extra_flags):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": languages})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    driver.set_window_size(*window)  # the flag alone is clamped to 500 px wide by headless mode
    return driver
