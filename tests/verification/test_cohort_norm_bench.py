"""bench/cohort_norm.py's measurement is only honest if a person is never in their own cohort and,
in the conservative reading, the impostor is not in it either; and if the cohort is the person's
own area (fold). These pin that on synthetic vectors: the normalised score of a (template, probe)
pair must not move when a photo that is not allowed in its cohort changes, and must move when one
that is allowed changes."""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cn():
    sys.path.insert(0, str(REPO / "bench"))
    import cohort_norm

    return cohort_norm


def _names(n_same: int) -> tuple[list[str], str]:
    """``n_same`` names in fold 0 and one in fold 1 (review_load.fold_of: crc32 % 2)."""
    fold0 = [f"p{i}" for i in range(200) if zlib.crc32(f"p{i}".encode()) % 2 == 0]
    fold1 = [f"p{i}" for i in range(200) if zlib.crc32(f"p{i}".encode()) % 2 == 1]
    return fold0[:n_same], fold1[0]


def _people(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    same, other = _names(4)
    people = {}
    for name in [*same, other]:
        centre = rng.normal(size=16)
        rows = []
        for k in range(4):
            v = centre + 0.5 * rng.normal(size=16)
            rows.append((f"{k}.jpg", v / np.linalg.norm(v), True, True, None, None))
        people[name] = rows
    return people


def _replace(people: dict, name: str, k: int, vector: np.ndarray) -> dict:
    out = {n: list(rows) for n, rows in people.items()}
    r = out[name][k]
    out[name][k] = (r[0], vector / np.linalg.norm(vector), *r[2:])
    return out


def _score(cn, people: dict, norm, t: tuple[str, int], x: tuple[str, int]) -> float:
    data = cn.SetData(people)
    stat, _ = data.stat(norm)
    return float(stat[data.pid[t], data.pid[x]])


@pytest.mark.parametrize("kind", ["z", "t", "s"])
def test_the_owner_and_the_impostor_are_outside_the_cohort(cn, kind):
    people = _people()
    a, b, c, _ = _names(4)[0]
    norm = cn.Norm(kind, None, 5)
    pair = ((a, 0), (b, 0))  # a's template 0, b's photo 0 as the probe
    before = _score(cn, people, norm, *pair)
    # a's and b's other photos are their own or the impostor's: the score must not move
    near_a = people[a][0][1] + 0.01
    for name in (a, b):
        after = _score(cn, _replace(people, name, 3, near_a), norm, *pair)
        assert after == pytest.approx(before, abs=1e-12)
    # a third person of the same area is in the cohort: the score moves
    moved = _score(cn, _replace(people, c, 1, near_a), norm, *pair)
    assert abs(moved - before) > 1e-3


def test_the_cohort_is_the_area_and_the_impostor_counts_when_enrolled(cn):
    people = _people(1)
    (a, b, _, _), outside = _names(4)
    pair = ((a, 0), (b, 0))
    near_a = people[a][0][1] + 0.01
    fold = cn.Norm("s", None, 5)
    before = _score(cn, people, fold, *pair)
    # a person of the other fold (area) is not in a same-fold cohort, but is in a whole-set one
    assert _score(cn, _replace(people, outside, 1, near_a), fold, *pair) == pytest.approx(before)
    whole = cn.Norm("s", None, 5, area="set")
    assert _score(cn, _replace(people, outside, 1, near_a), whole, *pair) != pytest.approx(
        _score(cn, people, whole, *pair)
    )
    # leaving the impostor in the cohort: his other photos now move the score
    enrolled = cn.Norm("s", None, 5, exclude_probe_owner=False)
    assert _score(cn, _replace(people, b, 3, near_a), enrolled, *pair) != pytest.approx(
        _score(cn, people, enrolled, *pair)
    )


def test_raw_is_the_cosine_distance(cn):
    people = _people(2)
    (a, b, _, _), _ = _names(4)
    va, vb = people[a][1][1], people[b][2][1]
    got = _score(cn, people, cn.Norm("raw"), (a, 1), (b, 2))
    assert got == pytest.approx(1.0 - float(va @ vb))
