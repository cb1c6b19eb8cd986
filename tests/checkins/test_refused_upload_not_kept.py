"""Issue #13 finding 3: an upload refused as unusable (413 image_too_large) is not kept for
display, and the dashboard's image route never decodes an image beyond the verifier's bounds."""

from __future__ import annotations

import functools
import io

from PIL import Image
from sqlalchemy import select

from server.checkins.models import CheckinAttempt
from server.core.enums import ImageKind
from server.people.enrolment import store_image
from server.people.models import Person, StaffUser, StoredImage
from server.storage import image_store
from tests.checkins.test_checkin_e2e import world  # noqa: F401 (fixture)
from tests.dashboard.world import log_in


@functools.cache
def huge_png() -> bytes:
    """6400 x 6400 = 41 MP (above the 40 MP bound), a few KB as a 1-bit PNG."""
    out = io.BytesIO()
    Image.new("1", (6400, 6400)).save(out, format="PNG")
    return out.getvalue()


def _admin_client(world):  # noqa: F811
    client = world.client.application.test_client()
    log_in(client, world.session.scalar(select(StaffUser).where(StaffUser.username == "admin")))
    return client


def test_a_refused_oversize_selfie_is_not_kept_nor_served(world, settings):  # noqa: F811
    prompt = world.new_prompt()
    r = world.check_in(prompt, huge_png(), filename="big.png", mimetype="image/png")
    assert r.status_code == 413 and r.get_json()["code"] == "image_too_large"
    world.session.expire_all()
    attempt = world.session.scalar(
        select(CheckinAttempt).where(CheckinAttempt.prompt_id == prompt.id)
    )
    image = world.session.get(StoredImage, attempt.image_id)
    assert image.purged_at is not None
    assert not image_store(settings).exists(image.storage_key)
    assert _admin_client(world).get(f"/dashboard/images/{image.id}").status_code == 404


def test_the_image_route_does_not_decode_beyond_the_bounds(world, settings):  # noqa: F811
    person = world.session.get(Person, world.person_id)
    image = store_image(
        session=world.session,
        store=image_store(settings),
        person=person,
        kind=ImageKind.enrolment,
        data=huge_png(),
        content_type="image/png",
        now=world.clock.now(),
    )
    world.session.commit()
    assert _admin_client(world).get(f"/dashboard/images/{image.id}").status_code == 404
