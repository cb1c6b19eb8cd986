"""The mobile web app (issue 14): the shell's weight, and time from opening the prompt to a verdict.

    uv run python bench/webapp_bench.py               # weight + 12 check-ins
    uv run python bench/webapp_bench.py --runs 20     # more runs
    uv run python bench/webapp_bench.py --runs 0      # weight only (no browser, no photos)

1. Weight: each shell file raw and gzip -9, and the total (target <= 150 KB gzipped).
2. Latency: the real ``isocheck serve`` on loopback (fresh SQLite data dir), headless Chromium at
   360x740 whose fake camera plays a faces-asia photo of the enrolled person. Each run enrols a
   new person (so no selfie is a replay of the last), opens a prompt, activates by link, then
   times from the tap on "Điểm danh ngay" (camera start, capture, geolocation, 1280-px JPEG
   encode, upload, verification, answer) to the verdict on screen. p50/p95/min/max over the
   runs; the first run (models loading in the server) is reported apart and left out.

Prints a table and writes bench/results/webapp_bench.json, with the load average at start and end.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from server.webapp.views import SHELL, STATIC  # noqa: E402


def weight() -> dict:
    rows = []
    for name in (*SHELL, "sw.js"):
        raw = (STATIC / name).read_bytes()
        rows.append({"file": name, "bytes": len(raw), "gzip_bytes": len(gzip.compress(raw, 9))})
    total = {k: sum(r[k] for r in rows) for k in ("bytes", "gzip_bytes")}
    print(f"{'file':<24}{'bytes':>8}{'gzip':>8}")
    for r in rows:
        print(f"{r['file']:<24}{r['bytes']:>8}{r['gzip_bytes']:>8}")
    print(f"{'total':<24}{total['bytes']:>8}{total['gzip_bytes']:>8}   (target <= 153600)")
    return {"files": rows, "total": total, "target_gzip_bytes": 153600}


def latency(runs: int) -> dict:
    from selenium.webdriver.common.by import By

    from tests.browser import start_chromium
    from tests.photo_sets import faces_dir
    from tests.webapp.conftest import (
        ENROL_PHOTO,
        SELFIE_PHOTO,
        serve,
        wait_shown,
        y4m,
    )

    folder = faces_dir("asia")
    times, codes = [], []
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp) / "serve") as served:
        camera = y4m(folder / SELFIE_PHOTO, Path(tmp) / "cam.y4m")
        driver = start_chromium(
            Path(tmp) / "profile", window=(360, 740), fake_camera=camera, languages="vi-VN,vi"
        )
        try:
            from tests.api.contract import HOME

            driver.execute_cdp_cmd(
                "Browser.grantPermissions", {"origin": served.url, "permissions": ["geolocation"]}
            )
            driver.execute_cdp_cmd(
                "Emulation.setGeolocationOverride",
                {"latitude": HOME[0], "longitude": HOME[1], "accuracy": 10},
            )
            for i in range(runs + 1):
                person = served.enrol(folder / ENROL_PHOTO)
                served.open_prompt(person["id"])
                driver.get(f"{served.url}/app/activate?code={person['activation']['code']}")
                button = wait_shown(driver, "#go-checkin")
                started = time.perf_counter()
                button.click()
                end = time.monotonic() + 20
                while not driver.execute_script(
                    "return document.querySelector('#video').videoWidth"
                ):
                    assert time.monotonic() < end, "the fake camera never played"
                    time.sleep(0.01)
                driver.find_element(By.CSS_SELECTOR, "#capture").click()
                wait_shown(driver, "#msg.ok, #msg.bad, #msg.warn", timeout=60)
                elapsed = time.perf_counter() - started
                code = driver.find_element(By.CSS_SELECTOR, "#msg").get_attribute("data-code")
                print(
                    f"run {i:>2}: {elapsed * 1000:7.0f} ms  {code}"
                    + ("  (warm-up)" if i == 0 else "")
                )
                if i:
                    times.append(elapsed)
                    codes.append(code)
        finally:
            driver.quit()
    ms = sorted(t * 1000 for t in times)
    q = statistics.quantiles(ms, n=20, method="inclusive")
    out = {
        "runs": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(q[18], 1),
        "min_ms": round(ms[0], 1),
        "max_ms": round(ms[-1], 1),
        "codes": {c: codes.count(c) for c in sorted(set(codes))},
    }
    print(f"{'prompt -> verdict':<20}{'runs':>6}{'p50 ms':>9}{'p95 ms':>9}{'min':>8}{'max':>8}")
    print(
        f"{'':<20}{out['runs']:>6}{out['p50_ms']:>9.0f}{out['p95_ms']:>9.0f}"
        f"{out['min_ms']:>8.0f}{out['max_ms']:>8.0f}   codes {out['codes']}"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=12, help="timed check-ins (>= 10 for p95)")
    args = parser.parse_args()
    result = {"load_start": os.getloadavg(), **weight()}
    if args.runs:
        result["prompt_to_verdict"] = latency(args.runs)
    result["load_end"] = os.getloadavg()
    out = REPO / "bench" / "results" / "webapp_bench.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
