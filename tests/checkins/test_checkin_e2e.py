"""End to end over HTTP with real photographs: enrol, activate, receive a prompt, check in.

Person A is enrolled from one photo and checks in with another photo of A; person B's photo is
the impostor. Both come from the East/South-East-Asian set (our users are Vietnamese).
"""

from __future__ import annotations

import io
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from server.alerts.models import Alert
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.core.enums import AreaKind, PromptKind, PromptState, StaffRole
from server.people.areas import create_area
from server.people.models import StoredImage
from server.people.staff import create_staff
from tests.photo_sets import faces_dir, photo

pytestmark = pytest.mark.faces

A_ENROL = "lfw_Gloria_Macapagal_Arroyo/1.jpg"
A_SELFIES = [
    "lfw_Gloria_Macapagal_Arroyo/10.jpg",
    "lfw_Gloria_Macapagal_Arroyo/11.jpg",
    "lfw_Gloria_Macapagal_Arroyo/12.jpg",
    "lfw_Gloria_Macapagal_Arroyo/13.jpg",
]
B_PHOTO = "lfw_Wen_Jiabao/1.jpg"
HOME = (10.8129, 106.6866)


class World:
    """One ward with an administrator, person A enrolled and A's phone activated."""

    def __init__(self, client, session, clock, enrol_photo: bytes | None = None):
        self.client, self.session, self.clock = client, session, clock
        city = create_area(session=session, code="79", name="TP HCM", kind=AreaKind.city)
        district = create_area(
            session=session, code="79-764", name="Gò Vấp", kind=AreaKind.district, parent=city
        )
        self.ward = create_area(
            session=session,
            code="79-764-26896",
            name="Phường 1",
            kind=AreaKind.ward,
            parent=district,
        )
        create_staff(
            session=session,
            username="admin",
            password="admin-pass-123",
            full_name="Admin",
            role=StaffRole.admin,
            area=None,
        )
        session.commit()
        r = client.post(
            "/api/v1/auth/token", json={"username": "admin", "password": "admin-pass-123"}
        )
        assert r.status_code == 200, r.get_json()
        self.staff = {"Authorization": f"Bearer {r.get_json()['token']}"}
        now = clock.now()
        r = client.post(
            "/api/v1/admin/persons",
            headers=self.staff,
            json={
                "full_name": "Nguyễn Thị Hoa",
                "phone": "0901234567",
                "national_id": "079190001234",
                "ward_code": "79-764-26896",
                "home_address": "12 Nguyễn Văn Nghi",
                "home_lat": HOME[0],
                "home_lon": HOME[1],
                "isolation_start": (now - timedelta(days=1)).isoformat(),
                "isolation_end": (now + timedelta(days=6)).isoformat(),
            },
        )
        assert r.status_code == 201, r.get_json()
        self.person_id = r.get_json()["id"]
        code = r.get_json()["activation"]["code"]
        r = client.post(
            f"/api/v1/admin/persons/{self.person_id}/photos",
            headers=self.staff,
            data={"photo": (io.BytesIO(enrol_photo or photo(A_ENROL)), "a.jpg", "image/jpeg")},
        )
        assert r.status_code == 201, r.get_json()
        r = client.post("/api/v1/devices/activate", json={"code": code, "platform": "android"})
        assert r.status_code == 201, r.get_json()
        self.device = {"Authorization": f"Bearer {r.get_json()['token']}"}

    def new_prompt(self, *, opens_in_min: float = -1, window_min: float = 20) -> CheckinPrompt:
        now = self.clock.now()
        prompt = CheckinPrompt(
            person_id=self.person_id,
            slot_key=f"test/{secrets.token_hex(4)}",
            kind=PromptKind.scheduled,
            state=PromptState.open,
            opens_at=now + timedelta(minutes=opens_in_min),
            due_at=now + timedelta(minutes=opens_in_min + window_min),
            nonce=secrets.token_urlsafe(16),
            max_attempts=3,
        )
        self.session.add(prompt)
        self.session.commit()
        return prompt

    def check_in(
        self,
        prompt,
        image: bytes,
        *,
        lat=HOME[0],
        lon=HOME[1],
        accuracy=15.0,
        key=None,
        filename="selfie.jpg",
        mimetype="image/jpeg",
        lang=None,
        **extra,
    ):
        headers = dict(self.device)
        if key:
            headers["Idempotency-Key"] = key
        if lang:
            headers["Accept-Language"] = lang
        data = {
            "selfie": (io.BytesIO(image), filename, mimetype),
            "nonce": prompt.nonce,
            "latitude": str(lat),
            "longitude": str(lon),
            "accuracy_m": str(accuracy),
            **extra,
        }
        return self.client.post(
            "/api/v1/me/checkins", headers=headers, data=data, content_type="multipart/form-data"
        )

    def attempts(self, prompt) -> int:
        return self.session.scalar(
            select(func.count())
            .select_from(CheckinAttempt)
            .where(CheckinAttempt.prompt_id == prompt.id)
        )

    def alerts(self, kind) -> list[Alert]:
        return self.session.scalars(select(Alert).where(Alert.kind == kind)).all()


@pytest.fixture
def world(client, session, clock):
    faces_dir("asia")
    return World(client, session, clock)


def test_current_prompt_then_verified_checkin(world):
    prompt = world.new_prompt()
    r = world.client.get("/api/v1/me/prompt", headers=world.device)
    assert r.status_code == 200
    body = r.get_json()["prompt"]
    assert body["nonce"] == prompt.nonce and body["attempts_left"] == 3

    r = world.check_in(prompt, photo(A_SELFIES[0]))
    assert r.status_code == 200, r.get_json()
    result = r.get_json()
    assert result["result"] == "verified"
    assert result["code"] == "face_match"
    assert result["prompt_state"] == "completed"
    assert result["title"]  # Vietnamese by default
    world.session.refresh(prompt)
    assert prompt.state is PromptState.completed
    assert prompt.attempts_used == 1  # the verified answer is an attempt used
    history = world.client.get("/api/v1/me/history", headers=world.device).get_json()
    [item] = [i for i in history["items"] if i["prompt_id"] == prompt.id]
    assert item["attempts_used"] == 1 and item["last_result"] == "verified"
    # the prompt is answered: the phone has nothing to do now
    assert world.client.get("/api/v1/me/prompt", headers=world.device).get_json()["prompt"] is None


def test_impostor_is_rejected_and_three_failures_raise_an_alert(world):
    prompt = world.new_prompt()
    impostor = photo(B_PHOTO)
    r = world.check_in(prompt, impostor, lang="en")
    body = r.get_json()
    assert (body["result"], body["code"], body["attempts_left"]) == ("rejected", "face_mismatch", 2)
    assert r.headers["Content-Language"] == "en"
    assert world.alerts("failed_verification") == []

    for left in (1, 0):
        # each retry is a new upload (a different copy of B's photo, so it is not a replay)
        r = world.check_in(prompt, impostor + secrets.token_bytes(left + 1))
        assert r.get_json()["attempts_left"] == left
    assert r.get_json()["prompt_state"] == "failed"
    alerts = world.alerts("failed_verification")
    assert len(alerts) == 1 and alerts[0].prompt_id == prompt.id
    assert alerts[0].area_id == world.ward.id

    r = world.check_in(prompt, photo(A_SELFIES[0]))
    assert r.status_code == 409 and r.get_json()["code"] == "attempts_exhausted"


def test_a_resent_selfie_is_a_replay(world):
    first = world.new_prompt()
    selfie = photo(A_SELFIES[1])
    assert world.check_in(first, selfie).get_json()["result"] == "verified"

    second = world.new_prompt()
    r = world.check_in(second, selfie)
    assert r.get_json()["code"] == "replayed_image"
    assert r.get_json()["result"] == "rejected"
    # the enrolment photo itself is a replay too
    r = world.check_in(second, photo(A_ENROL))
    assert r.get_json()["code"] == "replayed_image"


def test_idempotent_retry_returns_the_first_answer_and_costs_one_attempt(world):
    prompt = world.new_prompt()
    impostor = photo(B_PHOTO)
    first = world.check_in(prompt, impostor, key="upload-123")
    again = world.check_in(prompt, impostor, key="upload-123")
    assert again.status_code == first.status_code == 200
    assert again.get_json() == first.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert world.attempts(prompt) == 1
    world.session.refresh(prompt)
    assert prompt.attempts_used == 1


def test_late_upload_is_window_closed_and_early_is_not_open(world):
    early = world.new_prompt(opens_in_min=10)
    r = world.check_in(early, photo(A_SELFIES[2]))
    assert (r.status_code, r.get_json()["code"]) == (409, "window_not_open")

    late = world.new_prompt()
    world.clock.advance(minutes=25)
    r = world.check_in(late, photo(A_SELFIES[2]))
    assert (r.status_code, r.get_json()["code"]) == (409, "window_closed")
    assert r.mimetype == "application/problem+json"
    assert world.attempts(late) == 0


def test_outside_home_raises_an_alert_even_when_the_face_matches(world):
    prompt = world.new_prompt()
    # ~1.1 km north of home, accurate to 20 m
    r = world.check_in(prompt, photo(A_SELFIES[3]), lat=HOME[0] + 0.01, accuracy=20)
    body = r.get_json()
    assert (body["result"], body["code"]) == ("rejected", "outside_home")
    assert body["distance_from_home_m"] > 1000
    assert len(world.alerts("outside_home")) == 1
    # a poor fix whose circle still reaches home is not held against the person
    other = world.new_prompt()
    r = world.check_in(other, photo(A_SELFIES[3]), lat=HOME[0] + 0.0015, accuracy=120)
    assert r.get_json()["result"] == "verified"


def test_bad_inputs_get_their_codes_and_never_a_500(world):
    prompt = world.new_prompt()
    jpeg = photo(A_SELFIES[0])
    noface = sorted((faces_dir("faces") / "_noface").iterdir())[0].read_bytes()
    cases = [
        (b"", 422, "image_empty"),
        (jpeg[: len(jpeg) // 3], 422, "image_unreadable"),
        (b"GIF89a" + secrets.token_bytes(200), 415, "unsupported_format"),
        (b"%PDF-1.4 not an image", 415, "unsupported_format"),
    ]
    for data, status, code in cases:
        r = world.check_in(prompt, data)
        assert (r.status_code, r.get_json()["code"]) == (status, code), code
    r = world.check_in(prompt, noface)
    assert (r.status_code, r.get_json()["code"], r.get_json()["attempts_left"]) == (
        200,
        "face_not_found",
        3,
    )  # a retake, not a failure

    r = world.client.post(
        "/api/v1/me/checkins",
        headers=world.device,
        data={"nonce": prompt.nonce},
        content_type="multipart/form-data",
    )
    assert (r.status_code, r.get_json()["code"]) == (422, "validation_error")
    r = world.check_in(prompt, jpeg, lat="north")
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["field"] == "latitude"
    bad = world.new_prompt()
    bad.nonce = "x" * 20
    r = world.check_in(bad, jpeg)
    assert (r.status_code, r.get_json()["code"]) == (400, "invalid_nonce")

    # every upload was kept, with its hash, even the unusable ones
    stored = world.session.scalar(
        select(func.count()).select_from(StoredImage).where(StoredImage.kind == "selfie")
    )
    assert stored == len(cases) + 1


def test_a_device_sees_only_its_own_person(world):
    r = world.client.get(f"/api/v1/admin/persons/{world.person_id}", headers=world.device)
    assert r.status_code == 401  # a device token is not a staff token
    r = world.client.get("/api/v1/me", headers=world.device)
    assert r.get_json()["id"] == world.person_id


def test_uploads_are_rate_limited_per_device(world, app):
    from server.http.limits import limiter

    prompt = world.new_prompt()
    limiter.reset()
    app.extensions["isocheck"].settings = app.extensions["isocheck"].settings.model_copy(
        update={"rate_limit_checkin": "2/minute"}
    )
    codes = [world.check_in(prompt, b"").status_code for _ in range(2)]
    assert codes == [422, 422]
    r = world.check_in(prompt, b"")
    assert r.status_code == 429
    assert r.get_json()["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) >= 1


def test_quality_retakes_do_not_use_up_the_upload_limit(world, app):
    """A person retaking photos the quality gate sent back (no face found, too dark) is not
    locked out: only judged uploads and unusable files count against the per-device limit."""
    from server.http.limits import limiter

    prompt = world.new_prompt()
    noface = sorted((faces_dir("faces") / "_noface").iterdir())[0].read_bytes()
    limiter.reset()
    app.extensions["isocheck"].settings = app.extensions["isocheck"].settings.model_copy(
        update={"rate_limit_checkin": "2/minute"}
    )
    for _ in range(4):
        r = world.check_in(prompt, noface)
        assert (r.status_code, r.get_json()["code"]) == (200, "face_not_found")
    assert [world.check_in(prompt, b"").status_code for _ in range(2)] == [422, 422]
    assert world.check_in(prompt, noface).status_code == 429  # the limit itself still holds


def test_one_client_address_has_a_ceiling_across_the_api(world, app):
    from server.http.limits import limiter

    limiter.reset()
    state = app.extensions["isocheck"]
    state.settings = state.settings.model_copy(update={"rate_limit_ip": "3/minute"})
    codes = [world.client.get("/api/v1/me", headers=world.device).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    r = world.client.get("/api/v1/me/prompt", headers=world.device)  # another route, same IP
    assert r.status_code == 429 and "Retry-After" in r.headers
