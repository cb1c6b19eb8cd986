"""Issue #13 finding 6 (part): a NUL byte in any string is a 422 problem, never a 500 (it failed
only on PostgreSQL, which cannot store NUL in text), and a CR/LF in the login ``next=`` never
reaches a header."""

from __future__ import annotations

import io

import pytest

from tests.api.contract import ADMIN, make_world, person_payload
from tests.fuzz.conftest import fast_password_hashing  # noqa: F401  (autouse fixture)

NUL = "a\x00b"


def _is_validation_problem(r) -> None:
    assert r.status_code == 422, (r.status_code, r.get_data(as_text=True)[:300])
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["code"] == "validation_error"


def test_nul_bytes_anywhere_are_422_problems(client, session, clock):
    world = make_world(client, session, clock.now())
    _is_validation_problem(
        client.post("/api/v1/auth/token", json={"username": NUL, "password": "x"})
    )
    _is_validation_problem(
        client.post("/api/v1/devices/activate", json={"code": "ABCDE\x00", "platform": "android"})
    )
    _is_validation_problem(
        client.put("/api/v1/me/push-token", headers=world.device, json={"push_token": NUL})
    )
    payload = person_payload(clock.now(), national_id="079190007777", phone="0907777700")
    payload["full_name"] = "Nguyễn\x00Văn"
    _is_validation_problem(client.post("/api/v1/admin/persons", headers=world.staff, json=payload))
    _is_validation_problem(client.get("/api/v1/admin/persons?q=" + "x%00y", headers=world.staff))
    _is_validation_problem(
        client.post(
            "/api/v1/me/checkins",
            headers=world.device,
            data={
                "selfie": (io.BytesIO(b"\xff\xd8\xff"), "s.jpg", "image/jpeg"),
                "nonce": "abcdefgh\x00",
                "latitude": "10.8",
                "longitude": "106.6",
                "accuracy_m": "10",
            },
            content_type="multipart/form-data",
        )
    )
    _is_validation_problem(
        client.post("/dashboard/login", data={"username": NUL, "password": ADMIN[1]})
    )
    _is_validation_problem(client.get("/dashboard/persons?q=%00"))
    # nested deeply: no RecursionError on the way
    deep = "[" * 100_000 + "]" * 100_000
    r = client.post("/api/v1/auth/token", data=deep, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500


def test_crlf_in_the_login_next_never_reaches_the_location_header(app, client, session, clock):
    make_world(client, session, clock.now())
    import re

    page = client.get("/dashboard/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post(
        "/dashboard/login",
        data={
            "username": ADMIN[0],
            "password": ADMIN[1],
            "csrf_token": token,
            "next": "/dashboard/persons\r\nSet-Cookie: evil=1",
        },
    )
    assert r.status_code == 302
    assert r.headers["Location"] == "/dashboard/alerts"
    assert "evil" not in str(r.headers)


@pytest.mark.parametrize("captured_at", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59Z"])
def test_captured_at_out_of_range_is_422_and_keeps_no_file(
    client, session, clock, settings, captured_at
):
    from tests.api.contract import add_prompt

    world = make_world(client, session, clock.now())
    prompt = add_prompt(session, world.person_id, clock.now())
    media = settings.data_dir
    before = sorted(p for p in media.rglob("*") if p.is_file())
    r = client.post(
        "/api/v1/me/checkins",
        headers=world.device,
        data={
            "selfie": (io.BytesIO(b"\xff\xd8\xff" + b"0" * 100), "s.jpg", "image/jpeg"),
            "nonce": prompt.nonce,
            "latitude": "10.8",
            "longitude": "106.6",
            "accuracy_m": "10",
            "captured_at": captured_at,
        },
        content_type="multipart/form-data",
    )
    _is_validation_problem(r)
    after = sorted(p for p in media.rglob("*") if p.is_file())
    assert after == before  # no orphan selfie file
