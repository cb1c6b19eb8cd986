"""The face bands pinned from both sides of each threshold, for 1 to 5 templates.

A one-line bug in ``Verifier.decide`` (accepting at ``distance <= review``) passed the whole suite
before these tests: every other test accepted either ``match`` or ``review``.
"""

from __future__ import annotations

import pytest

from verification import Verifier

EPS = 1e-4


@pytest.mark.parametrize("embedder", ["sface", "dlib"])
@pytest.mark.parametrize("templates", [1, 2, 3, 4, 5])
def test_each_band_from_both_sides_of_its_threshold(embedder, templates):
    v = Verifier()
    accept, review = v.thresholds(embedder, templates)
    assert accept < review

    def decide(d):
        return v.decide(d, embedder, templates)

    assert decide(0.0) == ("match", "face_match")
    assert decide(accept - EPS) == ("match", "face_match")
    assert decide(accept) == ("match", "face_match")
    assert decide(accept + EPS) == ("review", "face_review")
    assert decide((accept + review) / 2) == ("review", "face_review")
    assert decide(review - EPS) == ("review", "face_review")
    assert decide(review) == ("review", "face_review")
    assert decide(review + EPS) == ("mismatch", "face_mismatch")
    assert decide(2.0) == ("mismatch", "face_mismatch")


def test_the_accept_threshold_tightens_with_more_templates_and_the_review_one_does_not():
    v = Verifier()
    accepts = [v.thresholds("sface", n)[0] for n in range(1, 6)]
    reviews = {v.thresholds("sface", n)[1] for n in range(1, 6)}
    assert accepts == sorted(accepts, reverse=True) and accepts[0] > accepts[-1]
    assert len(reviews) == 1
    # a distance accepted against one template is only reviewed against five
    d = (accepts[0] + accepts[-1]) / 2
    assert v.decide(d, "sface", 1)[0] == "match"
    assert v.decide(d, "sface", 5)[0] == "review"


def test_the_bands_follow_the_settings():
    v = Verifier(sface_accept=0.3, sface_review=0.6, sface_accept_shift=[0.0])
    assert v.thresholds("sface", 1) == (0.3, 0.6)
    assert v.decide(0.3 + EPS, "sface", 1)[0] == "review"
    assert v.decide(0.6 + EPS, "sface", 1)[0] == "mismatch"
