"""The quality gate (verification/quality.py ``gate``) from both sides of each limit, its order,
and what its refusal carries; plus the defaults of ``thresholds``/``decide`` (one template).

Found by mutation testing (bench/mutation.py): no test called ``gate`` itself, so every mutant
of it survived; the threshold defaults and the no-shift case were not pinned either."""

from __future__ import annotations

from dataclasses import replace

import pytest

from verification import Verifier
from verification.errors import VerificationError
from verification.quality import Quality, Thresholds, gate
from verification.settings import VerificationSettings

LIMITS = Thresholds(min_face_px=80.0, min_sharpness=50.0, min_brightness=60.0,
                    max_brightness=190.0, max_yaw=0.25, min_ear=0.12)  # fmt: skip
GOOD = Quality(face_px=200.0, sharpness=300.0, brightness=120.0, yaw=0.0, ear=0.3,
               detector_score=0.99)  # fmt: skip
EPS = 1e-3

#: (field, value just inside the limit, value just outside, code)
SIDES = [
    ("face_px", 80.0, 80.0 - EPS, "face_too_small"),
    ("brightness", 60.0, 60.0 - EPS, "image_too_dark"),
    ("brightness", 190.0, 190.0 + EPS, "image_too_bright"),
    ("sharpness", 50.0, 50.0 - EPS, "image_blurred"),
    ("yaw", 0.25, 0.25 + EPS, "head_turned"),
    ("yaw", -0.25, -0.25 - EPS, "head_turned"),  # either way
    ("ear", 0.12, 0.12 - EPS, "eyes_closed"),
]


def _code(q: Quality, t: Thresholds = LIMITS) -> str | None:
    try:
        gate(q, t)
    except VerificationError as exc:
        return exc.code
    return None


def test_a_good_face_passes():
    assert gate(GOOD, LIMITS) is None


@pytest.mark.parametrize(("field", "inside", "outside", "code"), SIDES)
def test_each_limit_from_both_sides(field, inside, outside, code):
    assert _code(replace(GOOD, **{field: inside})) is None
    assert _code(replace(GOOD, **{field: outside})) == code


@pytest.mark.parametrize(("field", "inside", "outside", "code"), SIDES)
def test_the_refusal_names_the_measure_its_value_and_the_limit(field, inside, outside, code):
    with pytest.raises(VerificationError) as err:
        gate(replace(GOOD, **{field: outside}), LIMITS)
    d = err.value.details
    limit = {"face_px": 80.0, "sharpness": 50.0, "yaw": 0.25, "ear": 0.12}.get(field)
    if field == "brightness":
        limit = 60.0 if code == "image_too_dark" else 190.0
    assert (d["measured"], d["value"], d["limit"]) == (field, round(outside, 4), limit)
    assert d["quality"] == replace(GOOD, **{field: outside}).to_dict()
    assert field in str(err.value) and str(limit) in str(err.value)


def test_eyes_are_not_judged_when_not_measured_or_when_the_limit_is_off():
    assert _code(replace(GOOD, ear=None)) is None
    assert _code(replace(GOOD, ear=0.01), replace(LIMITS, min_ear=0.0)) is None


def test_the_first_failure_in_order_is_the_one_reported():
    """Size, dark, bright, blur, pose, eyes: a small dark blurred turned face with closed eyes
    is ``face_too_small``; fixing each in turn reveals the next."""
    q = Quality(face_px=10.0, sharpness=1.0, brightness=10.0, yaw=0.9, ear=0.01,
                detector_score=0.9)  # fmt: skip
    seen = []
    for fix in ({"face_px": 200.0}, {"brightness": 120.0}, {"sharpness": 300.0}, {"yaw": 0.0},
                {"ear": 0.3}):  # fmt: skip
        seen.append(_code(q))
        q = replace(q, **fix)
    seen.append(_code(q))
    assert seen == ["face_too_small", "image_too_dark", "image_blurred", "head_turned",
                    "eyes_closed", None]  # fmt: skip
    assert _code(replace(GOOD, brightness=250.0, sharpness=1.0)) == "image_too_bright"


@pytest.mark.parametrize("purpose", ["enrol", "checkin"])
def test_thresholds_for_a_purpose_come_from_its_settings(purpose):
    s = VerificationSettings()
    t = Thresholds.for_purpose(s, purpose)
    p = purpose
    assert t == Thresholds(
        min_face_px=getattr(s, f"{p}_min_face_px"), min_sharpness=getattr(s, f"{p}_min_sharpness"),
        min_brightness=getattr(s, f"{p}_min_brightness"),
        max_brightness=getattr(s, f"{p}_max_brightness"), max_yaw=getattr(s, f"{p}_max_yaw"),
        min_ear=getattr(s, f"{p}_min_ear"),
    )  # fmt: skip


# --------------------------------------------------------------------------- decide defaults


def test_thresholds_and_decide_default_to_one_template():
    v = Verifier()
    one, two = v.thresholds(templates=1), v.thresholds(templates=2)
    assert one != two and v.thresholds() == one
    between = (one[0] + two[0]) / 2  # accepted with one template, not with two
    assert v.decide(between) == ("match", "face_match") == v.decide(between, templates=1)
    assert v.decide(between, templates=2) == ("review", "face_review")


def test_without_shifts_the_accept_threshold_is_the_setting_itself():
    v = Verifier(VerificationSettings(sface_accept_shift=[], dlib_accept_shift=[]))
    for embedder, accept, review in (("sface", v.settings.sface_accept, v.settings.sface_review),
                                     ("dlib", v.settings.dlib_accept, v.settings.dlib_review)):
        for k in (1, 3):
            assert v.thresholds(embedder, templates=k) == (accept, review)


def test_the_shifted_threshold_is_kept_to_four_decimals():
    """Stored and shown thresholds carry 4 decimals (float noise of the sum is rounded away)."""
    v = Verifier(VerificationSettings(sface_accept=0.5, sface_accept_shift=[0.0, -0.03804]))
    assert v.thresholds("sface", templates=2)[0] == 0.462


def test_the_reported_value_is_rounded_to_four_decimals():
    with pytest.raises(VerificationError) as err:
        gate(replace(GOOD, sharpness=49.123456), LIMITS)
    assert err.value.details["value"] == 49.1235
