"""The face bands pinned to the calibrated numbers: a wrong shift fails, not only a comparison.

The limits are written out here (the calibrated defaults), not recomputed from
``Verifier.thresholds``, so a wrong comparison in ``decide`` *and* a wrong shift in
``thresholds`` both fail. No model is loaded: ``decide`` is pure arithmetic on a distance.
"""

from __future__ import annotations

import pytest

from verification import Verifier

EPS = 1e-4

#: (embedder, templates) -> (accept, review) with the default settings.
LIMITS = {
    ("sface", 1): (0.504, 0.725),
    ("sface", 2): (0.466, 0.725),
    ("sface", 3): (0.451, 0.725),
    ("sface", 4): (0.441, 0.725),
    ("sface", 5): (0.435, 0.725),
    ("dlib", 1): (0.328, 0.459),
    ("dlib", 2): (0.316, 0.459),
    ("dlib", 3): (0.308, 0.459),
    ("dlib", 4): (0.304, 0.459),
    ("dlib", 5): (0.304, 0.459),
}


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier()


@pytest.mark.parametrize(("embedder", "templates"), sorted(LIMITS))
def test_bands_on_both_sides_of_each_threshold(verifier, embedder, templates):
    accept, review = LIMITS[(embedder, templates)]
    assert verifier.thresholds(embedder, templates) == pytest.approx((accept, review))
    cases = [
        (0.0, "match"),
        (accept - EPS, "match"),
        (accept, "match"),  # the limit itself is accepted (<=)
        (accept + EPS, "review"),  # just past accept: a person looks, never auto-accepted
        (review - EPS, "review"),
        (review, "review"),
        (review + EPS, "mismatch"),
        (1.9, "mismatch"),
    ]
    got = [verifier.decide(d, embedder, templates) for d, _ in cases]
    want = [(w, f"face_{w}") for _, w in cases]
    assert got == want


@pytest.mark.parametrize("templates", [1, 2, 3, 4, 5])
def test_review_band_is_never_auto_accepted(verifier, templates):
    """The whole band (accept, review] is review: sampled across it, not just at its edges."""
    accept, review = LIMITS[("sface", templates)]
    steps = 50
    for i in range(1, steps + 1):
        d = accept + (review - accept) * i / steps
        assert verifier.decide(d, "sface", templates)[0] == "review", d


def test_more_templates_than_shifts_use_the_last_shift(verifier):
    assert verifier.decide(0.435, "sface", 9) == ("match", "face_match")
    assert verifier.decide(0.4351, "sface", 9) == ("review", "face_review")
    # 0 templates is treated as 1 (no tightening)
    assert verifier.decide(0.504, "sface", 0) == ("match", "face_match")


def test_default_embedder_decides(verifier):
    accept, review = LIMITS[(verifier.embedder, 1)]
    assert verifier.decide(accept + EPS)[0] == "review"
    assert verifier.decide(review + EPS)[0] == "mismatch"


def test_settings_move_the_bands():
    v = Verifier(sface_accept=0.3, sface_review=0.4, sface_accept_shift=[0.0, -0.1])
    assert v.decide(0.3, "sface", 1)[0] == "match"
    assert v.decide(0.3001, "sface", 1)[0] == "review"
    assert v.decide(0.2, "sface", 2)[0] == "match"
    assert v.decide(0.2001, "sface", 2)[0] == "review"
    assert v.decide(0.4001, "sface", 2)[0] == "mismatch"
