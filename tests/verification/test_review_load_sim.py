"""bench/review_load.py's isolation simulation must judge as the server does, or its review load
is not the server's. These pin, on synthetic vectors at chosen distances, the two rules that are
easy to get wrong: a review that staff confirm teaches the person's templates (as
``server.checkins.review.learn_confirmed_template`` does), ``lag`` check-ins later; and the retake
is never a photo that is already one of the person's templates (it would match at distance 0).

Thresholds are the settings' (accept 0.504, 0.466 with 2 templates, 0.451 with 3; review 0.725;
learning at <= 0.45)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DIM = 16


@pytest.fixture(scope="module")
def rl():
    sys.path.insert(0, str(REPO / "bench"))
    import review_load

    return review_load


@pytest.fixture(scope="module")
def verifier():
    from verification import Verifier

    return Verifier(pad_model_path=None)


def _unit(*parts: tuple[int, float]) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    for axis, w in parts:
        v[axis] = w
    return v / np.linalg.norm(v)


def _row(name: str, v: np.ndarray) -> tuple:
    # review_load's row: (file, vector, checkin gate passed, enrolment gate passed, mirror, quality)
    return (name, v, True, True, None, None)


ENROL = [_unit((0, 1.0)), _unit((0, 1.0), (9, 0.05))]
S = float(np.sqrt(1 - 0.16))
C1 = _unit((0, 0.4), (1, S))  # 0.6 from the enrolment photos: the review band
C2 = _unit((0, 0.4), (1, S * 0.8), (2, S * 0.6))  # 0.6 from them, 0.168 from C1
C3 = _unit((0, 0.4), (1, S * 0.8), (2, -S * 0.6))  # 0.6 from them, 0.168 from C1, 0.605 from C2


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return 1.0 - float(a @ b)


def test_the_constructed_distances(rl, verifier):
    sim = rl.Sim(verifier, rl.settings_cal(verifier))
    assert sim.accept(2, _row("x", C1)) == pytest.approx(0.466)
    for c in (C1, C2, C3):
        assert 0.59 < _dist(ENROL[0], c) < 0.61
    assert _dist(C1, C2) == pytest.approx(0.168, abs=1e-3)
    assert _dist(C2, C3) == pytest.approx(0.605, abs=1e-3)


@pytest.mark.parametrize(
    ("lag", "auto", "review", "learned", "templates"),
    [
        (None, 0, 3, 0, 2),  # never confirmed: every check-in is the enrolment photos' 0.6 away
        # C1 confirmed before C2: C2 and C3 match C1 (and are learned as confident matches)
        (0, 2, 1, 1, 5),
        # C1's verdict lands after C2 was judged: only C3 matches; C2's verdict lands at the end
        (1, 1, 2, 2, 5),
    ],
)
def test_a_confirmed_review_teaches_the_templates_lag_checkins_later(
    rl, verifier, lag, auto, review, learned, templates
):
    rows = [_row("e1", ENROL[0]), _row("e2", ENROL[1]), _row("c1", C1), _row("c2", C2)]
    rows.append(_row("c3", C3))
    sim = rl.Sim(verifier, rl.settings_cal(verifier), lag)
    tally, final = sim.genuine(rows, None)
    assert (tally.n, tally.auto, tally.review) == (3, auto, review)
    assert tally.learned_confirmed == learned
    # verdicts landing after the last check-in still teach the templates impostors are tried on
    assert len(final) == templates


def test_a_mismatch_is_never_confirmed_and_a_poor_capture_is_not_kept(rl, verifier):
    far = _unit((0, 0.2), (3, 1.0))  # 0.80 from the enrolment photos: a mismatch, never reviewed
    rows = [_row("e1", ENROL[0]), _row("e2", ENROL[1]), _row("c1", C1), _row("c2", far)]
    tally, final = rl.Sim(verifier, rl.settings_cal(verifier), 0).genuine(rows, None)
    assert (tally.review, tally.mismatch, tally.learned_confirmed) == (1, 1, 1)
    assert len(final) == 3
    # a review that fails the enrolment gate is confirmed but not kept as a template
    rows = [_row("e1", ENROL[0]), _row("e2", ENROL[1]), ("c1", C1, True, False, None, None)]
    rows.append(_row("c2", C2))
    tally, final = rl.Sim(verifier, rl.settings_cal(verifier), 0).genuine(rows, None)
    assert (tally.review, tally.learned_confirmed, len(final)) == (2, 1, 3)  # c2 is kept
    assert not any(np.allclose(t, C1) for t in final)


def test_the_retake_is_never_a_photo_already_among_the_templates(rl, verifier):
    near = _unit((0, 0.7), (4, float(np.sqrt(1 - 0.49))))  # 0.3 away: matches and is learned
    rows = [_row("e1", ENROL[0]), _row("e2", ENROL[1]), _row("c1", near), _row("c2", C1)]
    sim = rl.Sim(verifier, rl.settings_cal(verifier), None)
    tally, final = sim.genuine(rows, 0.4943)
    # c2 is the last check-in; the only other one (c1) is a template, so there is no retake
    # (taking c1 as the retake would match at distance 0)
    assert (tally.auto, tally.review, tally.retakes) == (1, 1, 0)
    assert len(final) == 3


def test_the_retake_is_the_next_photo_and_decides_with_the_first(rl, verifier):
    # c1 (0.6 from enrolment) is reviewed; its retake c2 is 0.6 from enrolment too: the mean
    # 0.6 is above the retake threshold, so the check-in is still reviewed; c2's own retake
    # wraps to c1, which is not a template (never confirmed), and is reviewed again
    rows = [_row("e1", ENROL[0]), _row("e2", ENROL[1]), _row("c1", C1), _row("c2", C2)]
    tally, _ = rl.Sim(verifier, rl.settings_cal(verifier), None).genuine(rows, 0.4943)
    assert (tally.review, tally.retakes) == (2, 2)
    # a retake photo that matches on its own decides the check-in
    rows = [_row("e1", ENROL[0]), _row("e2", ENROL[1]), _row("c1", C1), _row("c2", ENROL[0])]
    tally, _ = rl.Sim(verifier, rl.settings_cal(verifier), None).genuine(rows, 0.4943)
    assert (tally.auto, tally.retakes) == (2, 1)


def test_a_mismatch_is_never_confirmed_even_when_a_later_template_brings_it_close(rl, verifier):
    # far: 0.8 from the enrolment photos (a mismatch); between: a confident match 0.3 from them
    # and 0.16 from far. Were the mismatch confirmed, its verdict (one check-in later) would find
    # it in the band of the then-learned "between" and keep it as a template.
    far = _unit((0, 0.2), (5, float(np.sqrt(1 - 0.04))))
    between = far + 1.6 * ENROL[0]
    between = between / np.linalg.norm(between)
    assert 0.79 < _dist(ENROL[0], far) < 0.81 and _dist(ENROL[0], between) <= 0.45
    assert _dist(between, far) < 0.725
    rows = [_row("e1", ENROL[0]), _row("e2", ENROL[1]), _row("far", far)]
    rows.append(_row("between", between))
    tally, final = rl.Sim(verifier, rl.settings_cal(verifier), 1).genuine(rows, None)
    assert (tally.mismatch, tally.auto, tally.learned_confirmed) == (1, 1, 0)
    assert not any(np.allclose(t, far) for t in final)


def test_after_a_retake_the_retake_capture_must_be_in_the_band_to_be_learned(rl, verifier):
    # C1 is reviewed; its retake ("far", 0.8 from everything) is a mismatch: the reviewed
    # attempt is the retake's, which the server would not keep. So C1 is not learned, and C2
    # (0.168 from C1) is reviewed rather than matched.
    far = _unit((0, 0.2), (5, float(np.sqrt(1 - 0.04))))
    rows = [_row("e1", ENROL[0]), _row("e2", ENROL[1]), _row("c1", C1), _row("far", far)]
    rows.append(_row("c2", C2))
    tally, final = rl.Sim(verifier, rl.settings_cal(verifier), 0).genuine(rows, 0.4943)
    assert (tally.auto, tally.review, tally.mismatch) == (0, 2, 1)
    # only C2's verdict (its retake C1, in the band) teaches a template, after the last check-in
    assert tally.learned_confirmed == 1 and len(final) == 3
    assert not any(np.allclose(t, C1) for t in final)


def test_the_confirmed_capture_is_the_checkins_own_not_its_retake_photo(rl, verifier):
    # C2 reviewed, its retake C3 reviewed too (0.605 apart, both 0.6 from enrolment); confirmed
    # before the next check-in, C2 is learned. C3 is the next check-in: had the retake photo
    # been learned, C3 would match itself at distance 0. (C3 is reviewed, with no retake left,
    # and learned after the last check-in.)
    rows = [_row("e1", ENROL[0]), _row("e2", ENROL[1]), _row("c2", C2), _row("c3", C3)]
    tally, final = rl.Sim(verifier, rl.settings_cal(verifier), 0).genuine(rows, 0.4943)
    assert (tally.auto, tally.review, tally.retakes, tally.learned_confirmed) == (0, 2, 1, 2)


def test_a_confirmation_dropped_as_a_near_duplicate_is_not_counted(rl, verifier):
    twin = C1 + 0.2 * _unit((6, 1.0))  # ~0.02 from C1: a near-duplicate once C1 is a template
    twin = twin / np.linalg.norm(twin)
    rows = [_row("e1", ENROL[0]), _row("e2", ENROL[1]), _row("c1", C1), _row("twin", twin)]
    rows.append(_row("c3", C3))
    tally, final = rl.Sim(verifier, rl.settings_cal(verifier), 1).genuine(rows, None)
    # c1 and twin reviewed; c1's verdict lands before c3 (which then matches C1 and is learned);
    # twin's lands at the end and adds nothing
    assert (tally.review, tally.auto, tally.learned_confirmed) == (2, 1, 1)
    assert len(final) == 4


def test_an_evicted_template_photo_may_serve_as_a_retake_again(rl, verifier):
    # c1..c4 are confident matches (0.38 from enrolment, 0.62 from each other): all learned, so
    # c4 evicts c1 (5 templates at most; enrolment stays). c5 is reviewed and is the last
    # check-in: its retake wraps to the earliest photo that is no longer a template, c1, which
    # matches the remaining templates on its own.
    s = float(np.sqrt(1 - 0.62**2))
    cs = [_unit((0, 0.62), (k, s)) for k in (1, 2, 3, 4)]
    c5 = _unit((0, 0.4), (5, S))
    rows = [_row("e1", ENROL[0]), _row("e2", ENROL[1])]
    rows += [_row(f"c{k}", c) for k, c in enumerate(cs, 1)] + [_row("c5", c5)]
    tally, final = rl.Sim(verifier, rl.settings_cal(verifier), None).genuine(rows, 0.4943)
    assert len(final) == 5 and not any(np.allclose(t, cs[0]) for t in final)
    assert (tally.auto, tally.review, tally.retakes) == (5, 0, 1)
