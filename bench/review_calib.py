"""Pair-level calibration for bench/review_load.py: the thresholds of one embedding variant
(plain or mirror-averaged SFace vectors) and of the quality bins, on the cached vectors.

Every threshold here is chosen on faces-asia's hardest impostors (K-pop vs K-pop, every
cross-identity pair of the people handed in) at FMR 0.1 %, the way ``sface_accept`` was chosen
(docs/verification.md, "Matching, thresholds and the review band"):

* ``accept``: unordered pairs of every photo with a face, FMR 0.1 %;
* ``review``: all cross-identity pairs (not only the hardest), FMR 5 %;
* ``shifts``: enrol on each person's first k photos (k = 1..5), probe with every photo of the other
  K-pop people, the best of the k distances; shift_k = threshold_k - threshold_1, both at FMR
  0.1 %. A diagnostic only: on 15 K-pop people it gives -0.001 .. -0.012 for plain vectors, far
  from the settings' -0.038 .. -0.069 (measured on all of faces-asia), so the simulation keeps the
  settings' shifts for every variant;
* ``offsets`` (quality-aware thresholds): ordered pairs (template photo passing the enrolment gate,
  probe passing the check-in gate), split by the *probe's* quality bin; offset = threshold of the
  bin - threshold of all, each at FMR 0.1 %, so every bin keeps the same false-match rate.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from verification.calibrate import threshold_at_fmr  # noqa: E402

VARIANTS = {"plain": 1, "mirror": 4}  # row index of the vector in the cache
PAIR_FMR = 0.001
REVIEW_FMR = 0.05


def vec(row, variant: str) -> np.ndarray | None:
    return row[VARIANTS[variant]]


def qbin(row) -> str:
    """The probe's quality bin: ``good`` when the capture also passes the *enrolment* gate
    (sharper, larger, better lit, more frontal than the check-in gate asks), else ``fair``."""
    return "good" if row[3] else "fair"


@dataclass(frozen=True)
class Cal:
    """The thresholds of one policy variant."""

    variant: str
    accept: float
    review: float
    shifts: tuple[float, ...]
    offsets: dict[str, float] = field(default_factory=dict)  # empty: one threshold for all

    def threshold(self, n: int, b: str) -> float:
        shift = self.shifts[min(max(n, 1), len(self.shifts)) - 1]
        return round(self.accept + shift + self.offsets.get(b, 0.0), 4)

    def with_offsets(self, offsets: dict[str, float]) -> Cal:
        return Cal(self.variant, self.accept, self.review, self.shifts, dict(offsets))

    def to_dict(self) -> dict:
        return {
            "variant": self.variant,
            "accept": self.accept,
            "review": self.review,
            "shifts": list(self.shifts),
            "offsets": self.offsets,
        }


def kpop(name: str) -> bool:
    return name.startswith("kpop_")


def _photos(people: dict, names: list[str], variant: str):
    xs, owner, hard, enrol_ok, checkin_ok, good = [], [], [], [], [], []
    for k, name in enumerate(names):
        for row in people[name]:
            v = vec(row, variant)
            if v is None:
                continue
            xs.append(v)
            owner.append(k)
            hard.append(kpop(name))
            enrol_ok.append(bool(row[3]))
            checkin_ok.append(bool(row[2]))
            good.append(qbin(row) == "good")
    arr = np.asarray
    return (np.stack(xs), arr(owner), arr(hard), arr(enrol_ok), arr(checkin_ok), arr(good))


def calibrate_variant(people: dict, names: list[str], variant: str) -> tuple[Cal, dict]:
    """(global thresholds, diagnostics) of ``variant`` on the people ``names`` of faces-asia."""
    x, owner, hard, enrol_ok, checkin_ok, good = _photos(people, names, variant)
    d = 1.0 - x @ x.T
    cross = owner[:, None] != owner[None, :]
    same = ~cross & ~np.eye(len(owner), dtype=bool)
    upper = np.triu(np.ones_like(cross), 1)
    both_hard = hard[:, None] & hard[None, :]
    accept = threshold_at_fmr(d[cross & both_hard & upper], PAIR_FMR)
    review = threshold_at_fmr(d[cross & upper], REVIEW_FMR)
    gen = d[same & upper]
    # enrol on the first k photos, best of k against every photo of the others (hardest)
    thr_k = []
    for k in range(1, 6):
        best = []
        for p in np.unique(owner):
            if not hard[owner == p][0]:
                continue
            idx = np.flatnonzero(owner == p)
            if len(idx) < k + 1:
                continue
            probes = np.flatnonzero((owner != p) & hard)
            best.append(d[np.ix_(idx[:k], probes)].min(axis=0))
        thr_k.append(threshold_at_fmr(np.concatenate(best), PAIR_FMR))
    shifts = tuple(round(t - thr_k[0], 4) for t in thr_k)
    cal = Cal(variant, accept, review, shifts)
    diag = {
        "hardest_impostor_pairs": int((cross & both_hard & upper).sum()),
        "genuine_pairs": int(gen.size),
        "gar_at_accept": float((gen <= accept).mean()),
        "enrol_on_k_thresholds": thr_k,
    }
    return cal, diag


def quality_offsets(people: dict, names: list[str], cal: Cal) -> tuple[dict[str, float], dict]:
    """Per quality bin of the probe, the offset to ``cal.accept`` that keeps FMR 0.1 % on the
    hardest impostor pairs within the bin (template passes the enrolment gate, probe the
    check-in gate)."""
    x, owner, hard, enrol_ok, checkin_ok, good = _photos(people, names, cal.variant)
    d = 1.0 - x @ x.T
    cross = owner[:, None] != owner[None, :]
    same = ~cross & ~np.eye(len(owner), dtype=bool)
    usable = enrol_ok[:, None] & checkin_ok[None, :]
    imp = cross & hard[:, None] & hard[None, :] & usable
    gen_all = same & usable
    t_all = threshold_at_fmr(d[imp], PAIR_FMR)
    offsets, diag = {}, {"threshold_all": t_all, "bins": {}}
    for b, mask in (("good", good[None, :]), ("fair", ~good[None, :])):
        imp_b, gen_b = d[imp & mask], d[gen_all & mask]
        if imp_b.size * PAIR_FMR < 1:  # too few impostor pairs to hold 0.1 %: no offset
            continue
        t_b = threshold_at_fmr(imp_b, PAIR_FMR)
        offsets[b] = round(t_b - t_all, 4)
        diag["bins"][b] = {
            "impostor_pairs": int(imp_b.size),
            "genuine_pairs": int(gen_b.size),
            "threshold": t_b,
            "gar_at_global": float((gen_b <= t_all).mean()) if gen_b.size else math.nan,
            "gar_at_bin": float((gen_b <= t_b).mean()) if gen_b.size else math.nan,
        }
    return offsets, diag


def _pairs(people: dict, names: list[str], variant: str):
    """(genuine, hardest impostor, K-pop genuine) unordered pair distances; the impostors are the
    K-pop vs K-pop pairs when the people hold a K-pop group, else every cross-identity pair."""
    x, owner, hard, *_ = _photos(people, names, variant)
    d = 1.0 - x @ x.T
    cross = owner[:, None] != owner[None, :]
    upper = np.triu(np.ones_like(cross), 1)
    imp = cross & upper
    if hard.any():
        imp &= hard[:, None] & hard[None, :]
    return d[~cross & upper], d[imp], d[~cross & upper & hard[:, None]]


def roc(people: dict, variants, fmrs=(0.0005, 0.001, 0.002, 0.005), seed: int = 16) -> dict:
    """Every variant against plain at equal FMR (every pair of every photo with a face, thresholds
    on the hardest impostors: K-pop vs K-pop on faces-asia, all on faces), and the spread of each
    variant's GAR gain over plain at 0.1 % over 200 random 80 % subsets of the people."""
    names = list(people)
    out: dict = {"points": []}
    for fmr in fmrs:
        row: dict = {"fmr": fmr}
        for variant in variants:
            g, i, gk = _pairs(people, names, variant)
            t = threshold_at_fmr(i, fmr)
            row[variant] = {"threshold": t, "gar": float(np.mean(g <= t))}
            if gk.size:
                row[variant]["gar_kpop"] = float(np.mean(gk <= t))
        out["points"].append(row)
    rng = np.random.default_rng(seed)
    subsets = [[n for n in names if rng.random() < 0.8] for _ in range(200)]
    gains: dict = {v: [] for v in variants if v != "plain"}
    for sub in subsets:
        gar = {}
        for variant in variants:
            g, i, _ = _pairs(people, sub, variant)
            gar[variant] = float(np.mean(g <= threshold_at_fmr(i, PAIR_FMR)))
        for variant in gains:
            gains[variant].append(gar[variant] - gar["plain"])
    out["gain_at_0.1%_subsets"] = {
        variant: {
            "mean": float(np.mean(x)),
            "p2.5": float(np.quantile(x, 0.025)),
            "p97.5": float(np.quantile(x, 0.975)),
            "share_positive": float((np.asarray(x) > 0).mean()),
        }
        for variant, x in gains.items()
    }
    return out


def roc_compare(people: dict, fmrs=(0.0005, 0.001, 0.002, 0.005), seed: int = 16) -> dict:
    """Plain vs mirror-averaged vectors (:func:`roc`): the points, and the mirror's gain."""
    out = roc(people, list(VARIANTS), fmrs, seed)
    out["gain_at_0.1%_subsets"] = out["gain_at_0.1%_subsets"]["mirror"]
    return out


MEASURES = ("sharpness", "face_px", "brightness", "yaw", "detector_score", "ear")


def quality_tertiles(people: dict, variant: str = "plain") -> dict:
    """Per quality measure of the probe (|yaw|), split at the tertiles of the check-in photos:
    each bin's hardest impostor pairs (template passes the enrolment gate, probe the check-in
    gate), its own threshold at FMR 0.1 % and the GAR at the global one and at its own."""
    names = list(people)
    x, owner, hard, enrol_ok, checkin_ok, _ = _photos(people, names, variant)
    quality = [r[5] for n in names for r in people[n] if vec(r, variant) is not None]
    d = 1.0 - x @ x.T
    cross = owner[:, None] != owner[None, :]
    same = ~cross & ~np.eye(len(owner), dtype=bool)
    usable = enrol_ok[:, None] & checkin_ok[None, :]
    imp = cross & hard[:, None] & hard[None, :] & usable
    gen = same & usable
    t_all = threshold_at_fmr(d[imp], PAIR_FMR)
    out: dict = {"variant": variant, "threshold_all": t_all, "measures": {}}
    for m in MEASURES:
        vals = np.array([abs(q[m]) if q and q[m] is not None else np.nan for q in quality])
        cuts = np.nanquantile(vals[checkin_ok], [1 / 3, 2 / 3])
        bins = np.digitize(vals, cuts)
        rows = []
        for b in range(3):
            mask = (bins == b)[None, :]
            imp_b, gen_b = d[imp & mask], d[gen & mask]
            t_b = threshold_at_fmr(imp_b, PAIR_FMR) if imp_b.size * PAIR_FMR >= 1 else None
            rows.append(
                {
                    "impostor_pairs": int(imp_b.size),
                    "genuine_pairs": int(gen_b.size),
                    "threshold": t_b,
                    "gar_at_global": float(np.mean(gen_b <= t_all)) if gen_b.size else None,
                    "gar_at_bin": (
                        float(np.mean(gen_b <= t_b)) if gen_b.size and t_b is not None else None
                    ),
                }
            )
        out["measures"][m] = {"cuts": [float(c) for c in cuts], "tertiles": rows}
    return out
