"""With real photographs: enrolment through the dashboard form (the face library's quality
gate shown inline) and a reviewed selfie kept as a staff-confirmed template."""

from __future__ import annotations

import io
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.core.enums import AttemptDecision, ImageKind, PromptKind, PromptState
from server.people.enrolment import store_image
from server.people.models import FaceTemplate, Person, StoredImage
from server.storage import image_store
from tests.dashboard.world import csrf_token, jpeg, log_in
from tests.photo_sets import faces_dir, photo

pytestmark = [pytest.mark.faces, pytest.mark.slow]

ENROL = ["lfw_Gloria_Macapagal_Arroyo/1.jpg", "lfw_Gloria_Macapagal_Arroyo/11.jpg"]
SELFIE = "lfw_Gloria_Macapagal_Arroyo/10.jpg"


def _form(client, ward, files):
    return client.post(
        "/dashboard/enrol",
        data={
            "csrf_token": csrf_token(client),
            "full_name": "Nguyễn Thị Mai",
            "phone": "0903111222",
            "national_id": "079190009999",
            "category": "F0",
            "ward_id": str(ward.id),
            "home_address": "5 Quang Trung, Phường 1",
            "home_lat": "10.8129",
            "home_lon": "106.6866",
            "geofence_radius_m": "100",
            "isolation_start": "2026-11-24",
            "isolation_days": "7",
            "comorbidities": "diabetes",
            "photos": files,
        },
        content_type="multipart/form-data",
    )


def test_enrol_with_photos_then_learn_from_a_reviewed_selfie(app, client, world, session, settings):
    faces_dir("asia")
    log_in(client, world.staff["ward_a"])
    count = session.scalar(select(func.count()).select_from(Person))

    # a photo without a face is refused inline with the library's code and message
    r = _form(
        client,
        world.ward_a,
        [
            (io.BytesIO(photo(ENROL[0])), "mai.jpg", "image/jpeg"),
            (io.BytesIO(jpeg()), "trang.jpg", "image/jpeg"),
        ],
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 422, html
    assert "face_not_found" in html and "trang.jpg" in html and "Không tìm thấy" in html
    assert session.scalar(select(func.count()).select_from(Person)) == count  # nothing made

    r = _form(
        client,
        world.ward_a,
        [(io.BytesIO(photo(p)), p.split("/")[-1], "image/jpeg") for p in ENROL],
    )
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    assert 'id="activation-code"' in r.get_data(as_text=True)
    person = session.scalar(select(Person).where(Person.national_id == "079190009999"))
    assert person.ward_id == world.ward_a.id and person.is_high_risk is False
    templates = session.scalars(select(FaceTemplate).where(FaceTemplate.person_id == person.id))
    assert [t.source for t in templates] == ["enrolment", "enrolment"]

    # a selfie the machine doubted; staff confirm it is her: it joins her templates
    now = world.clock.now()
    selfie = store_image(
        session=session,
        store=image_store(settings),
        person=person,
        kind=ImageKind.selfie,
        data=photo(SELFIE),
        content_type="image/jpeg",
        now=now,
    )
    prompt = CheckinPrompt(
        person_id=person.id,
        slot_key="t/review",
        kind=PromptKind.scheduled,
        state=PromptState.completed,
        opens_at=now - timedelta(minutes=10),
        due_at=now + timedelta(minutes=10),
        nonce=secrets.token_hex(8),
    )
    session.add(prompt)
    session.flush()
    attempt = CheckinAttempt(
        prompt_id=prompt.id,
        person_id=person.id,
        image_id=selfie.id,
        received_at=now,
        decision=AttemptDecision.review,
        code="face_review",
        score=0.6,
        latitude=10.8129,
        longitude=106.6866,
        accuracy_m=10,
        distance_from_home_m=0,
    )
    session.add(attempt)
    session.commit()
    r = client.post(
        f"/dashboard/reviews/{attempt.id}",
        data={
            "csrf_token": csrf_token(client),
            "outcome": "same_person",
            "note": "Đã gọi video xác minh",
        },
    )
    assert r.status_code == 302
    sources = session.scalars(
        select(FaceTemplate.source).where(FaceTemplate.person_id == person.id)
    ).all()
    assert sorted(sources) == ["enrolment", "enrolment", "staff"]
    staff_template = session.scalar(select(FaceTemplate).where(FaceTemplate.source == "staff"))
    assert session.get(StoredImage, staff_template.image_id).id == selfie.id
