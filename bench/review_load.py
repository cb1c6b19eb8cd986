"""How many check-ins reach a human: a simulation of isolations on both photo sets.

    uv run python bench/review_load.py            # ~3 min on 2 idle cores the first time
    uv run python bench/review_load.py --reuse    # seconds: the cached vectors of a first run

Each person of ``ISOCHECK_FACES_ASIA_DIR`` and ``ISOCHECK_FACES_DIR`` with at least four usable
photos is enrolled from the first two photos that pass the enrolment gate (as isocheck is
deployed: 2 enrolment photos). Every other photo of the person, in file order, is a check-in,
judged as the server judges it (best distance over the templates, the accept threshold shifted
for the number of templates, confident matches learned as templates up to ``max_templates``).
Impostor check-ins: every photo of everyone else against the person's final templates; the
*hardest* are K-pop vs K-pop (same gender, same styling).

Two policies are printed side by side:

``single``  one capture (today): ``match`` is automatic, ``review`` goes to a person,
            ``mismatch`` is a mismatch, a quality refusal asks again (counted apart).
``retake``  a capture that lands in the review band or is refused for quality is followed at once
            by a second capture (the person's next photo: another occasion, so harder than a real
            retake seconds later). After a refusal the second capture is judged alone, as today;
            after a review-band capture both decide together: match when the second matches on
            its own or the *mean* of the two best distances is at or below the retake threshold,
            which is calibrated on the hardest impostors so that the whole policy (first capture
            + retake) auto-accepts at most 0.1 % of them. Only a check-in undecided after the
            retake reaches a person.

Reviews are confirmed as the server learns from them: a reviewer who says "same person" makes the
server re-verify the selfie and keep it as a template when it lies in the match or review band, is
of enrolment quality and is not a near-duplicate
(:func:`server.checkins.review.learn_confirmed_template`). The simulation confirms each genuine
reviewed check-in ``lag`` check-ins later (``CONFIRM_LAG`` = 0: before the person's next
check-in, a ward that keeps up with its queue; ``None``: never, as the first version of this
simulation had it) and learns the check-in's own first capture under those rules (the server
re-verifies the reviewed capture, after a retake the second, seconds later and nearly the same:
that one must then be in the band and of enrolment quality too; here the retake is the person's
next photo, and learning it would hand the next check-in a distance of zero). Impostors are never
confirmed (the reviewer is assumed right; a reviewer who waves an impostor through teaches the
server the wrong face, which no threshold here measures). The retake is the person's next photo
that is not already one of their templates (the last check-in's retake wraps to the earliest such
photo).

Variants (issue 16, ``RUNS``): the vector is the plain SFace vector or the *mirror-averaged* one
(:func:`verification.embedding.mirror_average`: the aligned crop and its horizontal flip), and the
accept threshold is one number or *quality-aware* (an offset per quality bin of the probe — passes
the enrolment gate or only the check-in gate — each bin at equal FMR 0.1 % on the hardest
impostor pairs, ``review_calib.quality_offsets``). Modes:

``settings``  the settings' thresholds (plain vectors), the retake threshold fitted as below;
``mapped``    the settings carried to the variant at equal pair FMR (accept and review moved by the
              difference of the variant's and plain's thresholds at FMR 0.1 % / 5 % on the
              calibration people), the retake threshold fitted as below;
``refit``     every variant gets the same search (``joint_fit``): an offset on every accept
              threshold and the retake threshold, the pair that auto-matches most calibration
              check-ins while the whole policy holds <= 0.1 % of their hardest impostors.
All are held out by person (fitted on one half, measured on the other). ``roc_plain_vs_mirror``
compares the two vectors on every pair at equal FMR (no simulation, no fitted policy).

The calibration is on faces-asia, 2-fold **by person** (a threshold chosen on half the people is
measured on the other half; the folds' figures are pooled); faces is measured with the stricter of
the two thresholds, as a deployment would ship one number. Vectors are cached outside the repository
(biometric data; ``ISOCHECK_CALIB_CACHE``, default ``/tmp/isocheck-calib``). Prints a table and
writes ``bench/results/review_load.json`` (numbers only).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from review_calib import (  # noqa: E402
    Cal,
    calibrate_variant,
    qbin,
    quality_offsets,
    quality_tertiles,
    roc_compare,
    vec,
)  # noqa: E402

from verification import VerificationError, Verifier  # noqa: E402
from verification.embedding import mirror_average  # noqa: E402
from verification.image import decode_image  # noqa: E402
from verification.quality import Thresholds, gate  # noqa: E402

SETS = {
    "faces-asia": Path(
        os.environ.get("ISOCHECK_FACES_ASIA_DIR", REPO.parent / "shared" / "faces-asia")
    ),
    "faces": Path(os.environ.get("ISOCHECK_FACES_DIR", REPO.parent / "shared" / "faces")),
}
CACHE = Path(os.environ.get("ISOCHECK_CALIB_CACHE", "/tmp/isocheck-calib")) / "review_load.pkl"
RESULTS = REPO / "bench" / "results"
TARGET_FAR = 0.001
ENROL_PHOTOS = 2
MIN_PHOTOS = ENROL_PHOTOS + 2
#: Check-ins between a genuine review and the reviewer's "same person" (None: never confirmed)
CONFIRM_LAG: int | None = 0


def _order(p: Path) -> tuple[int, str]:
    m = re.match(r"(\d+)", p.stem)
    return (int(m.group(1)) if m else 10**6, p.name)


def analysed_photos(v: Verifier, person: Path) -> Iterator[tuple]:
    """Each photo of ``person`` in file order as (file, analysis, gates passed, photo): the
    analysis as the server's (no gate, no PAD), ``{"checkin": bool, "enrol": bool}``, and the
    photo decoded again under the settings' limits, for more crops of the same face (analysis
    and photo None when there is no usable face)."""
    s = v.settings
    for f in sorted([*person.glob("*.jpg"), *person.glob("*.png")], key=_order):
        raw = f.read_bytes()
        try:
            a = v.analyse(raw, purpose="checkin", apply_gate=False, with_pad=False)
        except VerificationError:
            yield f, None, {}, None
            continue
        ok = {}
        for purpose in ("checkin", "enrol"):
            try:
                gate(a.quality, Thresholds.for_purpose(s, purpose))
                ok[purpose] = True
            except VerificationError:
                ok[purpose] = False
        img = decode_image(
            raw,
            max_bytes=s.max_image_bytes,
            max_pixels=s.max_image_pixels,
            max_side=s.verify_decode_max_side,
        )
        yield f, a, ok, img


def collect_rows(v: Verifier, row: Callable, failed: Callable[[Path], tuple]) -> dict:
    """Per set, per person (directories not starting with ``_``): ``row(file, analysis, gates,
    photo)`` of each photo with a usable face, ``failed(file)`` of the others, in file order."""
    out: dict = {}
    for set_name, root in SETS.items():
        if not root.is_dir():
            continue
        out[set_name] = {
            person.name: [
                row(f, a, ok, img) if a is not None else failed(f)
                for f, a, ok, img in analysed_photos(v, person)
            ]
            for person in sorted(p for p in root.iterdir() if p.is_dir() and p.name[0] != "_")
        }
    return out


def collect(v: Verifier) -> dict:
    """Per set, per person: [(file, vector or None, checkin_ok, enrol_ok, mirror-averaged vector,
    quality dict)] in file order."""

    def row(f: Path, a, ok: dict, img) -> tuple:
        vec = a.vectors[v.embedder].astype(np.float32)
        # the mirror: the same aligned crop as analyse's (same decode, same face)
        _, sface = v._opencv()
        mirror = mirror_average(sface.embed, sface.align(img.bgr, a.face))
        return (f.name, vec / np.linalg.norm(vec), ok["checkin"], ok["enrol"], mirror,
                a.quality.to_dict())  # fmt: skip

    return collect_rows(v, row, lambda f: (f.name, None, False, False, None, None))


@dataclass
class Tally:
    n: int = 0
    auto: int = 0
    review: int = 0
    mismatch: int = 0
    refused: int = 0
    retakes: int = 0
    learned_confirmed: int = 0
    extra: dict = field(default_factory=dict)

    def shares(self) -> dict:
        d = max(self.n, 1)
        return {
            "checkins": self.n,
            "auto_matched": self.auto / d,
            "reviewed": self.review / d,
            "mismatched": self.mismatch / d,
            "refused_for_quality": self.refused / d,
            "retakes_asked": self.retakes / d,
            "reviews_per_1000": 1000 * self.review / d,
            "templates_learned_from_reviews": self.learned_confirmed,
        }


class Sim:
    """Judges captures with the thresholds of one :class:`Cal` (vector variant, accept, review,
    shifts, quality offsets) as the server judges them."""

    def __init__(self, v: Verifier, cal: Cal, lag: int | None = CONFIRM_LAG) -> None:
        s = v.settings
        self.cal = cal
        self.lag = lag
        self.review = cal.review
        self.max_templates = s.max_templates
        # learning keeps its margin below the one-template accept threshold (0.504 - 0.45)
        self.learn_below = cal.accept - (s.sface_accept - s.augment_max_distance)
        self.learn = s.augment_templates

    def accept(self, n: int, row) -> float:
        return self.cal.threshold(n, qbin(row))

    def vector(self, row) -> np.ndarray | None:
        return vec(row, self.cal.variant)

    @staticmethod
    def best(templates: list[np.ndarray], v: np.ndarray) -> float:
        return float(min(1.0 - float(t @ v) for t in templates))

    def first(self, templates, row) -> tuple[str, float]:
        """(decision, distance) of one capture: refused / match / review / mismatch."""
        v, checkin_ok = self.vector(row), row[2]
        if v is None or not checkin_ok:
            return "refused", float("nan")
        d = self.best(templates, v)
        if d <= self.accept(len(templates), row):
            return "match", d
        if d <= self.review:
            return "review", d
        return "mismatch", d

    def combined(self, templates, d1: float, row2, retake_t: float) -> str:
        """Decision after the retake: match / review / mismatch."""
        dec2, d2 = self.first(templates, row2)
        if dec2 == "refused":
            return "review"
        if dec2 == "match":
            return "match"
        if not np.isnan(d1) and (d1 + d2) / 2 <= retake_t:
            return "match"
        return "mismatch" if dec2 == "mismatch" and (np.isnan(d1) or d1 > self.review) else "review"

    def enrol(self, rows) -> tuple[list[np.ndarray], list[int]] | None:
        idx = [i for i, r in enumerate(rows) if r[1] is not None and r[3]][:ENROL_PHOTOS]
        if len(idx) < ENROL_PHOTOS or len(rows) < MIN_PHOTOS:
            return None
        return [self.vector(rows[i]) for i in idx], idx

    def genuine(self, rows, retake_t: float | None) -> tuple[Tally, list[np.ndarray]]:
        t = Tally()
        got = self.enrol(rows)
        if got is None:
            return t, []
        templates, used = got
        held = list(used)  # the row of each template
        enrolled = len(templates)
        checkins = [i for i in range(len(rows)) if i not in used]
        # (check-in at which the verdict lands, the check-in's row, its retake's row or None)
        pending: list[tuple[int, int, int | None]] = []

        def learn(i: int, v: np.ndarray) -> bool:
            nonlocal templates, held
            if any(1.0 - float(x @ v) < 0.1 for x in templates):
                return False  # a near-duplicate adds nothing
            if len(templates) < self.max_templates:
                templates, held = [*templates, v], [*held, i]
            elif len(templates) > enrolled:  # the oldest learned one goes; enrolment stays
                templates = [*templates[:enrolled], *templates[enrolled + 1 :], v]
                held = [*held[:enrolled], *held[enrolled + 1 :], i]
            else:
                return False
            return True

        def in_band(row) -> bool:
            v = self.vector(row)
            return v is not None and row[3] and self.best(templates, v) <= self.review

        def confirm(i: int, j: int | None) -> None:
            # learn_confirmed_template re-verifies the reviewed capture when the verdict lands:
            # after a retake that is the second capture, which must be in the match or review
            # band and of enrolment quality too; the first stands in for it (seconds apart)
            if in_band(rows[i]) and (j is None or in_band(rows[j])):
                t.learned_confirmed += learn(i, self.vector(rows[i]))

        for k, i in enumerate(checkins):
            for _, r, j in [p for p in pending if p[0] <= k]:
                confirm(r, j)
            pending = [p for p in pending if p[0] > k]
            t.n += 1
            dec, d = self.first(templates, rows[i])
            retake = None
            if dec in ("review", "refused") and retake_t is not None:
                later = [j for j in checkins[k + 1 :] + checkins[:k] if j not in held]
                if later:
                    t.retakes += 1
                    retake = later[0]
                    dec = self.combined(templates, d, rows[retake], retake_t)
            v, enrol_ok = self.vector(rows[i]), rows[i][3]
            if dec == "match":
                t.auto += 1
                if (
                    self.learn
                    and v is not None
                    and enrol_ok
                    and not np.isnan(d)
                    and d <= min(self.learn_below, self.accept(len(templates), rows[i]))
                ):
                    learn(i, v)
            elif dec == "review":
                t.review += 1
                if self.learn and self.lag is not None and v is not None and enrol_ok:
                    pending.append((k + 1 + self.lag, i, retake))
            elif dec == "refused":
                t.refused += 1  # single capture: the phone is asked again, nobody reviews
            else:
                t.mismatch += 1
        for _, r, j in pending:  # verdicts after the last check-in teach the final templates too
            confirm(r, j)
        return t, templates

    def impostor_distances(self, templates, other_rows) -> list[tuple[str, float, float, str]]:
        """For each impostor photo (and the impostor's next photo as the retake):
        (first decision, d1, d2, second decision)."""
        out = []
        usable = [r for r in other_rows if r[1] is not None]
        for k, r in enumerate(other_rows):
            dec, d1 = self.first(templates, r)
            r2 = usable[(k + 1) % len(usable)] if usable else r
            dec2, d2 = self.first(templates, r2)
            out.append((dec, d1, d2 if dec2 != "refused" else float("nan"), dec2))
        return out


def impostor_accepts(imp: list, retake_t: float | None) -> int:
    """Impostor check-ins auto-accepted under a policy (entries of Sim.impostor_distances)."""
    acc = 0
    for entries in imp:
        for dec, d1, d2, dec2 in entries:
            if dec == "match":
                acc += 1
            elif dec in ("review", "refused") and retake_t is not None:
                if dec2 == "match":
                    acc += 1
                elif dec2 != "refused" and not np.isnan(d1) and not np.isnan(d2):
                    acc += int((d1 + d2) / 2 <= retake_t)
    return acc


def fold_of(name: str) -> int:
    return zlib.crc32(name.encode()) % 2


def hard(a: str, b: str) -> bool:
    return a.startswith("kpop_") and b.startswith("kpop_")


def run_set(sims: dict[int, Sim], people: dict, retake_t_by_fold: dict[int, float | None]) -> dict:
    """Both policies on every person of ``people``, judged with the :class:`Sim` of the person's
    fold (thresholds calibrated on the other fold)."""
    gen = {"single": Tally(), "retake": Tally()}
    imp = {"single": [0, 0, 0, 0], "retake": [0, 0, 0, 0]}  # all n, all acc, hard n, hard acc
    per_person: dict[str, list[int]] = {"single": [], "retake": []}  # reviews, no names
    for name, rows in people.items():
        sim = sims[fold_of(name)]
        t_fold = retake_t_by_fold[fold_of(name)]
        for policy, rt in (("single", None), ("retake", t_fold)):
            t, templates = sim.genuine(rows, rt)
            if not templates:
                continue
            g = gen[policy]
            g.n += t.n
            g.auto += t.auto
            g.review += t.review
            g.mismatch += t.mismatch
            g.refused += t.refused
            g.retakes += t.retakes
            g.learned_confirmed += t.learned_confirmed
            per_person[policy].append(t.review)
            for other, orows in people.items():
                if other == name:
                    continue
                entries = sim.impostor_distances(templates, orows)
                acc = impostor_accepts([entries], rt)
                imp[policy][0] += len(entries)
                imp[policy][1] += acc
                if hard(name, other):
                    imp[policy][2] += len(entries)
                    imp[policy][3] += acc
    out = {}
    for policy in ("single", "retake"):
        n, a, hn, ha = imp[policy]
        out[policy] = {
            **gen[policy].shares(),
            "impostor_checkins": n,
            "impostor_auto_accepted": a,
            "impostor_auto_accepted_share": a / max(n, 1),
            "hardest_impostor_checkins": hn,
            "hardest_impostor_auto_accepted": ha,
            "hardest_impostor_auto_accepted_share": ha / max(hn, 1) if hn else None,
            "people": len(per_person[policy]),
            "reviews_per_person": sorted((r for r in per_person[policy] if r), reverse=True),
        }
    return out


def calibrate_retake(sim: Sim, people: dict, names: list[str]) -> float:
    """The largest retake threshold (mean of two distances) at which the retake policy
    auto-accepts <= TARGET_FAR of the hardest impostor check-ins of the people ``names``
    (all impostors when they hold no K-pop group)."""
    imp = []
    any_hard = any(n.startswith("kpop_") for n in names)
    for name in names:
        t, templates = sim.genuine(people[name], None)
        if not templates:
            continue
        for other, orows in people.items():
            if other == name or (any_hard and not hard(name, other)):
                continue
            imp.append(sim.impostor_distances(templates, orows))
    n = sum(len(e) for e in imp)
    lo, hi = 0.0, sim.review
    for _ in range(30):
        mid = (lo + hi) / 2
        if impostor_accepts(imp, mid) <= TARGET_FAR * n:
            lo = mid
        else:
            hi = mid
    return round(lo, 4)


def settings_cal(v: Verifier) -> Cal:
    s = v.settings
    return Cal("plain", s.sface_accept, s.sface_review, tuple(s.sface_accept_shift))


#: Offsets tried on top of the settings' accept thresholds (accept + shift for the template count)
DELTAS = tuple(round(-0.03 + 0.0025 * i, 4) for i in range(25))


def joint_fit(
    v: Verifier, people: dict, names: list[str], base: Cal, lag: int | None = CONFIRM_LAG
) -> tuple[Cal, float, dict]:
    """(thresholds, retake threshold, trace) fitted on the people ``names`` at the issue's
    constraint: the whole retake policy auto-accepts <= TARGET_FAR of their hardest impostor
    check-ins. Every variant gets the same search: an offset added to every accept threshold
    (``DELTAS``, the count shifts and quality offsets kept), the largest retake threshold that
    still holds the constraint, and of those the pair that auto-matches most of these people's
    genuine check-ins (ties: the stricter offset)."""
    best: tuple | None = None
    trace = []
    for delta in DELTAS:
        cal = Cal(
            base.variant, round(base.accept + delta, 4), base.review, base.shifts, base.offsets
        )
        sim = Sim(v, cal, lag)
        imp = []
        for name in names:
            _, templates = sim.genuine(people[name], None)
            if not templates:
                continue
            for other, orows in people.items():
                if other != name and hard(name, other):
                    imp.append(sim.impostor_distances(templates, orows))
        n = sum(len(e) for e in imp)
        if impostor_accepts(imp, None) > TARGET_FAR * n:
            trace.append({"delta": delta, "feasible": False})
            continue
        lo, hi = 0.0, sim.review
        for _ in range(20):
            mid = (lo + hi) / 2
            if impostor_accepts(imp, mid) <= TARGET_FAR * n:
                lo = mid
            else:
                hi = mid
        rt = round(lo, 4)
        auto = sum(sim.genuine(people[name], rt)[0].auto for name in names)
        trace.append({"delta": delta, "feasible": True, "retake": rt, "auto": auto})
        if best is None or auto > best[0]:
            best = (auto, cal, rt)
    if best is None:
        raise RuntimeError("no offset holds the constraint")
    return best[1], best[2], {"trace": trace}


def variant_base(
    v: Verifier, people: dict, names: list[str], variant: str, quality: bool
) -> tuple[Cal, dict]:
    """The settings' thresholds carried to ``variant``: the review threshold moved by the
    difference of the two variants' FMR-5 % thresholds on these people, the quality offsets (equal
    FMR per bin) when ``quality``. The accept level is then fitted by :func:`joint_fit`."""
    s = settings_cal(v)
    plain, plain_diag = calibrate_variant(people, names, "plain")
    this, diag = (
        (plain, plain_diag) if variant == "plain" else calibrate_variant(people, names, variant)
    )
    review = round(s.review + this.review - plain.review, 4)
    accept = round(s.accept + this.accept - plain.accept, 4)  # equal pair FMR to 0.504's
    offsets: dict[str, float] = {}
    if quality:
        offsets, diag["quality"] = quality_offsets(people, names, this)
    diag["pair_level"] = {"plain": plain.to_dict(), variant: this.to_dict()}
    return Cal(variant, accept, review, s.shifts, offsets), diag


def measure(
    v: Verifier, data: dict, variant: str, quality: bool, mode: str, lag: int | None = CONFIRM_LAG
) -> dict:
    """Both sets under one variant. ``held_out``: thresholds (accept level, review, quality
    offsets, retake) fitted on one half of faces-asia's people and measured on the other half;
    faces is judged with the numbers fitted on all of faces-asia (what would ship). Otherwise the
    settings' thresholds, with the retake threshold fitted 2-fold as before (faces: the stricter
    fold's)."""
    asia = data["faces-asia"]
    names = list(asia)
    folds = {f: [n for n in names if fold_of(n) == f] for f in (0, 1)}
    out: dict = {"variant": variant, "quality_aware": quality, "mode": mode, "confirm_lag": lag}
    if mode == "mapped":
        cal_by_fold = {f: variant_base(v, asia, folds[1 - f], variant, quality)[0] for f in (0, 1)}
        sims0 = {f: Sim(v, cal_by_fold[f], lag) for f in (0, 1)}
        retake = {f: calibrate_retake(sims0[1 - f], asia, folds[1 - f]) for f in (0, 1)}
        shipped, diag = variant_base(v, asia, names, variant, quality)
        shipped_retake = round(min(retake.values()), 4)
    elif mode == "refit":
        cal_by_fold, retake, diag = {}, {}, {}
        for f in (0, 1):
            base, _ = variant_base(v, asia, folds[1 - f], variant, quality)
            cal_by_fold[f], retake[f], _trace = joint_fit(v, asia, folds[1 - f], base, lag)
        base, diag = variant_base(v, asia, names, variant, quality)
        shipped, shipped_retake, trace = joint_fit(v, asia, names, base, lag)
        diag.update(trace)
    else:
        cal_by_fold = {f: settings_cal(v) for f in (0, 1)}
        sims0 = {f: Sim(v, cal_by_fold[f], lag) for f in (0, 1)}
        retake = {f: calibrate_retake(sims0[1 - f], asia, folds[1 - f]) for f in (0, 1)}
        shipped, shipped_retake, diag = settings_cal(v), round(min(retake.values()), 4), {}
    sims = {f: Sim(v, cal_by_fold[f], lag) for f in (0, 1)}
    out.update(
        thresholds_by_fold={f: cal_by_fold[f].to_dict() for f in (0, 1)},
        retake_threshold_by_fold=retake,
        shipped={**shipped.to_dict(), "retake": shipped_retake},
        diagnostics=diag,
        sets={},
    )
    for set_name, people in data.items():
        if set_name == "faces-asia":
            out["sets"][set_name] = run_set(sims, people, retake)
        else:
            ship = Sim(v, shipped, lag)
            rt = {0: shipped_retake, 1: shipped_retake}
            out["sets"][set_name] = run_set({0: ship, 1: ship}, people, rt)
    return out


SCAN = (0.47, 0.475, 0.48, 0.4843, 0.4883, 0.4943, 0.5, 0.5095)


def retake_scan(v: Verifier, data: dict) -> dict:
    """In sample (every faces-asia person, one threshold set for everyone): plain vectors with the
    settings' thresholds and mirror-averaged vectors with the settings carried to them at equal
    pair FMR, each under several retake thresholds: auto-matched against hardest impostors
    auto-accepted, so the two can be compared at equal false accepts."""
    asia = data["faces-asia"]
    out: dict = {}
    for variant in ("plain", "mirror"):
        base = (
            settings_cal(v)
            if variant == "plain"
            else variant_base(v, asia, list(asia), variant, False)[0]
        )
        sim = Sim(v, base)
        rows = []
        for rt in SCAN:
            row: dict = {"retake": rt}
            for set_name, people in data.items():
                r = run_set({0: sim, 1: sim}, people, {0: rt, 1: rt})["retake"]
                row[set_name] = {
                    k: r[k]
                    for k in (
                        "auto_matched",
                        "reviewed",
                        "mismatched",
                        "impostor_auto_accepted",
                        "hardest_impostor_auto_accepted",
                        "hardest_impostor_checkins",
                    )
                }
            rows.append(row)
        out[variant] = {"thresholds": base.to_dict(), "rows": rows}
    return out


def load(reuse: bool, v: Verifier) -> dict:
    if reuse and CACHE.is_file():
        with open(CACHE, "rb") as fh:
            data = pickle.load(fh)  # our own cache file
        if all(len(r) == 6 for people in data.values() for rows in people.values() for r in rows):
            return data
        print("cache without mirror vectors: recomputing", file=sys.stderr)
    data = collect(v)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with open(CACHE, "wb") as fh:
        pickle.dump(data, fh)
    os.chmod(CACHE, 0o600)
    return data


RUNS = (  # (key, variant, quality-aware, mode[, confirm lag: CONFIRM_LAG when absent])
    ("settings", "plain", False, "settings"),
    ("settings, reviews never confirmed", "plain", False, "settings", None),
    ("settings, confirmed 1 check-in later", "plain", False, "settings", 1),
    ("settings, confirmed 4 check-ins (a day) later", "plain", False, "settings", 4),
    ("mirror", "mirror", False, "mapped"),
    ("plain+quality", "plain", True, "mapped"),
    ("mirror+quality", "mirror", True, "mapped"),
    ("plain refit", "plain", False, "refit"),
    ("mirror refit", "mirror", False, "refit"),
    ("plain+quality refit", "plain", True, "refit"),
    ("mirror+quality refit", "mirror", True, "refit"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reuse", action="store_true", help="use the cached vectors of a first run")
    args = ap.parse_args()
    import cv2

    cv2.setNumThreads(1)
    v = Verifier(pad_model_path=None)
    data = load(args.reuse, v)
    results: dict = {
        "target_far": TARGET_FAR,
        "enrol_photos": ENROL_PHOTOS,
        "confirm_lag": CONFIRM_LAG,
        "load_average": os.getloadavg(),
        "runs": {},
    }
    for key, variant, quality, mode, *lag in RUNS:
        results["runs"][key] = measure(v, data, variant, quality, mode, *lag)
    results["roc_plain_vs_mirror"] = {name: roc_compare(people) for name, people in data.items()}
    results["retake_scan_in_sample"] = retake_scan(v, data)
    results["quality_tertiles"] = {
        variant: quality_tertiles(data["faces-asia"], variant) for variant in ("plain", "mirror")
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "review_load.json").write_text(json.dumps(results, indent=2))
    print(
        "| run | set | policy | check-ins | auto-matched | reviewed | mismatched | refused | "
        "retakes asked | reviews / 1,000 | impostors auto-accepted (all) | "
        "hardest impostors auto-accepted |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, run in results["runs"].items():
        for set_name, res in run["sets"].items():
            for policy in ("single", "retake"):
                r = res[policy]
                hardest = (
                    f"{r['hardest_impostor_auto_accepted']} / {r['hardest_impostor_checkins']}"
                    if r["hardest_impostor_checkins"]
                    else "—"
                )
                print(
                    f"| {key} | {set_name} | {policy} | {r['checkins']} | "
                    f"{r['auto_matched']:.1%} | {r['reviewed']:.1%} | {r['mismatched']:.1%} | "
                    f"{r['refused_for_quality']:.1%} | {r['retakes_asked']:.1%} | "
                    f"{r['reviews_per_1000']:.0f} | {r['impostor_auto_accepted']} / "
                    f"{r['impostor_checkins']} | {hardest} |"
                )
    for set_name, roc in results["roc_plain_vs_mirror"].items():
        for pt in roc["points"]:
            print(f"{set_name} FMR {pt['fmr']:.2%}: plain {pt['plain']}, mirror {pt['mirror']}")
        print(f"{set_name} gain at 0.1 %, 80 % subsets: {roc['gain_at_0.1%_subsets']}")
    for variant, scan in results["retake_scan_in_sample"].items():
        for row in scan["rows"]:
            a, f = row["faces-asia"], row["faces"]
            print(
                f"in sample {variant} retake {row['retake']}: faces-asia auto "
                f"{a['auto_matched']:.1%} reviewed {a['reviewed']:.1%} hardest accepted "
                f"{a['hardest_impostor_auto_accepted']} / {a['hardest_impostor_checkins']}; "
                f"faces auto {f['auto_matched']:.1%} reviewed {f['reviewed']:.1%} "
                f"accepted {f['impostor_auto_accepted']}"
            )
    for variant, qt in results["quality_tertiles"].items():
        print(f"quality tertiles ({variant}, global threshold {qt['threshold_all']}):")
        for m, q in qt["measures"].items():
            cells = "; ".join(
                f"{t['impostor_pairs']} imp, thr {t['threshold']}, GAR {t['gar_at_global']:.3f}"
                f" -> {t['gar_at_bin'] if t['gar_at_bin'] is None else round(t['gar_at_bin'], 3)}"
                for t in q["tertiles"]
            )
            print(f"   {m} cuts {[round(c, 3) for c in q['cuts']]}: {cells}")
    for key, run in results["runs"].items():
        print(f"{key}: shipped {run['shipped']}, retake by fold {run['retake_threshold_by_fold']}")
        for f, c in run["thresholds_by_fold"].items():
            print(f"   fold {f}: {c}")
        d = {k: x for k, x in run["diagnostics"].items() if k != "trace"}
        if d:
            print(f"   diagnostics: {d}")


if __name__ == "__main__":
    main()
