"""Presentation-attack detection over HTTP: the server's verifier with the real PAD model on
real attacks (../shared/spoof); skips cleanly without them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.verification.test_pad import _subject_files, need_model
from verification import Verifier


@pytest.mark.faces
def test_over_http_a_printed_photo_selfie_goes_to_review_and_a_live_one_verifies(
    client, session, clock, monkeypatch
):
    """The server's verifier with PAD on: an attack ends in review with presentation_suspected
    (no attempt used), a live capture of the same person still verifies."""
    import server.face_verifier
    from server.core.enums import PromptState
    from tests.checkins.test_checkin_e2e import World

    monkeypatch.setattr(server.face_verifier, "_verifier", Verifier(pad_model_path=need_model()))
    live, attacks = _subject_files("nuaa", "s0001")
    world = World(client, session, clock, enrol_photo=live[0].read_bytes())

    prompt = world.new_prompt()
    r = world.check_in(prompt, attacks[0].read_bytes(), lang="en")
    body = r.get_json()
    assert r.status_code == 200, body
    assert (body["result"], body["code"]) == ("review", "presentation_suspected"), body
    assert body["attempts_left"] == 3
    assert "not of a photo or a screen" in body["message"]
    world.session.refresh(prompt)
    assert prompt.state is not PromptState.failed

    # the reviewer sees the score, the cues and why
    from server.people.models import StaffUser as Staff
    from tests.dashboard.world import log_in

    admin = world.session.scalars(select(Staff).where(Staff.username == "admin")).one()
    log_in(world.client, admin)
    page = world.client.get(f"/dashboard/reviews/{body['attempt_id']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="pad-result"' in html and "Khả năng là người thật" in html
    assert "model_logit" in html and "colour_texture" in html

    prompt2 = world.new_prompt()
    r = world.check_in(prompt2, live[-1].read_bytes())
    assert r.get_json()["result"] == "verified", r.get_json()


def test_readyz_shows_the_state_of_the_stage(client):
    body = client.get("/readyz").get_json()
    pad = body["checks"]["presentation_attack_detection"]
    assert pad["ok"] is True and pad["state"] in ("on", "off", "model_invalid")


def test_readyz_names_the_engine_that_runs_the_face_networks(client):
    from server.face_verifier import get_verifier

    body = client.get("/readyz").get_json()
    inference = body["checks"]["inference"]
    assert inference["ok"] is True
    assert inference["engine"] == get_verifier().settings.inference_engine
    assert inference["engine"] in ("openvino", "opencv") and inference["threads"] >= 1


@pytest.mark.faces
def test_over_http_an_enrolment_photo_of_a_print_is_refused(client, session, clock, monkeypatch):
    import io

    import server.face_verifier
    from tests.checkins.test_checkin_e2e import World

    monkeypatch.setattr(server.face_verifier, "_verifier", Verifier(pad_model_path=need_model()))
    live, attacks = _subject_files("nuaa", "s0001")
    world = World(client, session, clock, enrol_photo=live[0].read_bytes())
    r = world.client.post(
        f"/api/v1/admin/persons/{world.person_id}/photos",
        headers={**world.staff, "Accept-Language": "en"},
        data={"photo": (io.BytesIO(attacks[1].read_bytes()), "p.jpg", "image/jpeg")},
    )
    body = r.get_json()
    assert r.status_code == 422, body
    assert body["code"] == "presentation_suspected"
    assert "not of a photo or a screen" in body["detail"]


def test_warm_verifier_builds_the_networks_before_readyz_and_logs_it(client, monkeypatch, caplog):
    """A server process builds its face networks at start-up (server.face_verifier.warm_verifier,
    from gunicorn's post_worker_init and `isocheck serve`): /readyz says so, the log line names
    the engine and the time only, and a disabled warm-up builds nothing."""
    import logging

    import server.face_verifier as fv

    monkeypatch.setattr(fv, "_verifier", None)  # a fresh process's verifier, not yet built
    assert client.get("/readyz").get_json()["checks"]["inference"]["networks_built"] is False
    assert fv.warm_verifier(enabled=False) is None
    assert fv.get_verifier().loaded is False
    with caplog.at_level(logging.INFO, logger="isocheck.verification"):
        seconds = fv.warm_verifier()
    assert seconds is not None and seconds > 0
    assert fv.get_verifier().loaded is True
    assert fv.get_verifier()._local.cv is not None  # YuNet and SFace of this thread exist
    lines = [r.getMessage() for r in caplog.records if "face networks built" in r.getMessage()]
    assert lines == [
        f"face networks built at start-up in {seconds:.2f} s "
        f"({fv.get_verifier().engine_status()['engine']})"
    ]
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready" and body["checks"]["inference"]["networks_built"] is True


def test_warm_verifier_with_a_damaged_model_file_logs_and_leaves_the_server_up(
    client, monkeypatch, tmp_path, caplog
):
    """A model file that fails its checksum is logged at start-up (its code, no path of a
    person's data) and the process keeps serving; verification then answers model_invalid."""
    import logging

    import server.face_verifier as fv
    from verification import Verifier

    bad = tmp_path / "face_detection_yunet_2023mar_int8bq.onnx"
    bad.write_bytes(b"not a model")
    monkeypatch.setattr(fv, "_verifier", Verifier(yunet_model_path=bad))
    with caplog.at_level(logging.INFO, logger="isocheck.verification"):
        assert fv.warm_verifier() is None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "face networks not built at start-up: model_invalid"
    ]
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready" and body["checks"]["inference"]["networks_built"] is False
