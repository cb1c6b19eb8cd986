"""Cohort score normalisation (Z-norm, T-norm, adaptive S-norm) in the isolation simulation.

    uv run python bench/review_load.py --reuse   # once: the cached vectors (/tmp/isocheck-calib)
    uv run python bench/cohort_norm.py           # ~6 min at load 4-5 (one process)

A distance is normalised by the scores of the template and/or the probe against a **cohort** of
*other* people's templates (speaker and face verification's Z-norm / T-norm / S-norm; AS-norm
uses only the top-k closest cohort scores). In a deployment the cohort is the templates of the
other persons enrolled in the same area, which the server has. Here:

* the cohort of an area = the first 2 or 5 enrol-gate photos (``Norm.per_person``: the
  enrolment templates, or as many as ``max_templates``) of every person of the same set **in the
  same fold** (``review_load.fold_of``: the two folds are two areas); ``area="set"``: of the
  whole set (one larger area);
* a person is never in their own cohort, and the *probe's* owner is taken out too
  (``exclude_probe_owner``, the conservative reading: an impostor who is not enrolled in the
  area); the variant that leaves the impostor in a whole-set cohort (a household member enrolled
  in the same ward) is printed apart;
* the pair ROC of every variant (``SCREEN``) picks what is simulated: the best two same-fold
  cohorts, the best whole-set one and that one with the impostor enrolled;
* score s = cosine similarity; Z-norm (s - mu_t) / sd_t over the template's top-k cohort scores,
  T-norm the same for the probe, S-norm their mean; "centred": s - mu only (no division). The
  decision statistic is ``-z`` so that, as for distances, lower is more alike, and the settings'
  count shifts are carried over divided by the median cohort sd (the best of k normalised scores
  is still k chances).

Every policy is judged as ``review_load.Sim`` judges (2 enrolment photos, the other photos as
check-ins in order, learning as the server learns with the *raw* distance, review band and
retake trigger on the raw distance, the retake's mean rule on the decision statistic). Each
policy family — plain distances and each normalisation — gets the same search: an offset on
the accept thresholds and the retake threshold, the pair that auto-matches most while the whole
policy accepts <= 0.1 % of the hardest (K-pop vs K-pop) impostor check-ins.

* ``in_sample``: every faces-asia person, the frontier auto-matched vs hardest impostors
  accepted (0..6 of 3,052), single capture and retake: the comparison at equal false accepts;
* ``held_out``: fitted on one fold's people (their cohort and impostors within that fold),
  measured on the other fold with *its* cohort (leave-person-out within the area), pooled;
  faces judged with the numbers fitted on all of faces-asia.

Writes ``bench/results/cohort_norm.json`` (numbers only).
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from review_load import CACHE, ENROL_PHOTOS, MIN_PHOTOS, TARGET_FAR, fold_of, hard  # noqa: E402

from verification.calibrate import threshold_at_fmr  # noqa: E402
from verification.settings import load_settings  # noqa: E402

RESULTS = REPO / "bench" / "results"
#: Offsets on the accept thresholds (review_load's -0.03 .. +0.03 made the fits stop at its edge)
DELTAS = tuple(round(-0.03 + 0.0025 * i, 4) for i in range(37))


@dataclass(frozen=True)
class Norm:
    kind: str  # "raw", "z", "t", "s"
    k: int | None = None  # top-k cohort scores; None = the whole cohort
    per_person: int = 5
    exclude_probe_owner: bool = True
    scale: bool = True  # divide by the cohort sd; False: subtract the cohort mean only
    area: str = "fold"  # "fold": the other people of the same fold; "set": of the whole set

    @property
    def key(self) -> str:
        if self.kind == "raw":
            return "raw"
        k = "all" if self.k is None else f"top{self.k}"
        own = "" if self.exclude_probe_owner else ", impostor in cohort"
        centre = "" if self.scale else " centred"
        area = "" if self.area == "fold" else ", whole set"
        return f"{self.kind}-norm{centre} {k}, {self.per_person}/person{area}{own}"


class SetData:
    """One photo set: every photo with a face, its owner, the raw distances, the cohort."""

    def __init__(self, people: dict) -> None:
        self.people = people
        self.names = list(people)
        self.pid: dict[tuple[str, int], int] = {}
        xs, owner = [], []
        for p, name in enumerate(self.names):
            for i, row in enumerate(people[name]):
                if row[1] is not None:
                    self.pid[(name, i)] = len(xs)
                    xs.append(row[1])
                    owner.append(p)
        self.x = np.stack(xs).astype(np.float64)
        self.owner = np.asarray(owner)
        self.fold = np.asarray([fold_of(n) for n in self.names])
        self.sim = self.x @ self.x.T
        self.dist = 1.0 - self.sim

    def cohort(self, per_person: int) -> np.ndarray:
        idx = []
        for name in self.names:
            ok = [
                self.pid[(name, i)]
                for i, r in enumerate(self.people[name])
                if r[1] is not None and r[3]
            ]
            idx += ok[:per_person]
        return np.asarray(idx)

    def stat(self, norm: Norm) -> tuple[np.ndarray, float]:
        """(decision statistic for [template, probe], lower = more alike; median cohort sd)."""
        if norm.kind == "raw":
            return self.dist, 1.0
        coh = self.cohort(norm.per_person)
        co = self.owner[coh]
        cf = self.fold[co] if norm.area == "fold" else np.zeros_like(co)
        pf = self.fold if norm.area == "fold" else np.zeros_like(self.fold)
        sc = self.x @ self.x[coh].T  # photo x cohort template
        n, npeople = len(self.owner), len(self.names)
        # ts[a, q]: a as a template of its owner o, probe owner q: cohort of fold(o) minus {o, q}
        # ps[a, p]: a as the probe against claimed person p: cohort of fold(p) minus {p, owner(a)}
        ts_mu, ts_sd = np.zeros((n, npeople)), np.ones((n, npeople))
        ps_mu, ps_sd = np.zeros((n, npeople)), np.ones((n, npeople))
        for o in range(npeople):
            rows = np.flatnonzero(self.owner == o)
            if rows.size == 0:
                continue
            for q in range(npeople):
                excl = norm.exclude_probe_owner
                # template side: the claimed person o's area, without o (and the probe's owner q)
                mask_t = (cf == pf[o]) & (co != o) & ~((co == q) & excl)
                # probe side, claimed person q: q's area, without q (and the probe's owner o)
                mask_p = (cf == pf[q]) & (co != q) & ~((co == o) & excl)
                for mask, mu, sd in ((mask_t, ts_mu, ts_sd), (mask_p, ps_mu, ps_sd)):
                    if not mask.any():  # nobody else in the area: the raw score, unscaled
                        continue
                    vals = np.sort(sc[np.ix_(rows, np.flatnonzero(mask))], axis=1)[:, ::-1]
                    if norm.k is not None:
                        vals = vals[:, : norm.k]
                    mu[rows, q] = vals.mean(axis=1)
                    if norm.scale:
                        sd[rows, q] = np.maximum(vals.std(axis=1), 1e-3)
        s = self.sim
        zt = (s - ts_mu[:, self.owner]) / ts_sd[:, self.owner]  # [t, x]: ts[t, owner(x)]
        zp = (s - ps_mu[:, self.owner].T) / ps_sd[:, self.owner].T  # [t, x]: ps[x, owner(t)]
        z = {"z": zt, "t": zp, "s": 0.5 * (zt + zp)}[norm.kind]
        sd_med = float(np.median(ts_sd if norm.kind != "t" else ps_sd))
        if norm.kind == "s":
            sd_med = float(np.median(np.concatenate([ts_sd.ravel(), ps_sd.ravel()])))
        return -z, sd_med


class Policy:
    """One family's thresholds: accept (offset ``delta``, count shifts divided by the cohort sd),
    review band and learning on the raw distance, as ``review_load.Sim``."""

    def __init__(self, data: SetData, stat: np.ndarray, sd: float, a0: float, delta: float) -> None:
        st = load_settings()
        self.d, self.stat, self.data = data.dist, stat, data
        self.shifts = tuple(st.sface_accept_shift)
        self.raw_accept, self.review = st.sface_accept, st.sface_review
        self.learn_below, self.max_templates = st.augment_max_distance, st.max_templates
        self.sd, self.a0, self.delta = sd, a0, delta

    def thr(self, n: int) -> float:
        return self.a0 + self.delta + self.shifts[min(max(n, 1), 5) - 1] / self.sd

    def first(self, templates: list[int], name: str, i: int) -> tuple[str, float, float]:
        row = self.data.people[name][i]
        if row[1] is None or not row[2]:
            return "refused", float("nan"), float("nan")
        x = self.data.pid[(name, i)]
        d = float(self.d[templates, x].min())
        z = float(self.stat[templates, x].min())
        if z <= self.thr(len(templates)) and d <= self.review:
            return "match", d, z
        return ("review" if d <= self.review else "mismatch"), d, z

    def combined(self, templates, d1: float, z1: float, name: str, j: int, rt: float) -> str:
        dec2, _d2, z2 = self.first(templates, name, j)
        if dec2 == "refused":
            return "review"
        if dec2 == "match":
            return "match"
        if not np.isnan(z1) and (z1 + z2) / 2 <= rt:
            return "match"
        return "mismatch" if dec2 == "mismatch" and (np.isnan(d1) or d1 > self.review) else "review"

    def genuine(self, name: str, rt: float | None) -> tuple[list[int], list[int]]:
        """([auto, review, mismatch, refused, n], final templates)."""
        rows = self.data.people[name]
        idx = [i for i, r in enumerate(rows) if r[1] is not None and r[3]][:ENROL_PHOTOS]
        if len(idx) < ENROL_PHOTOS or len(rows) < MIN_PHOTOS:
            return [0, 0, 0, 0, 0], []
        templates = [self.data.pid[(name, i)] for i in idx]
        enrolled, tally = len(templates), [0, 0, 0, 0, 0]
        checkins = [i for i in range(len(rows)) if i not in idx]
        for k, i in enumerate(checkins):
            tally[4] += 1
            dec, d, z = self.first(templates, name, i)
            if dec in ("review", "refused") and rt is not None:
                dec = self.combined(templates, d, z, name, checkins[(k + 1) % len(checkins)], rt)
            if dec == "match":
                tally[0] += 1
                n = len(templates)
                raw_thr = self.raw_accept + self.shifts[min(n, 5) - 1]
                if rows[i][3] and not np.isnan(d) and d <= min(self.learn_below, raw_thr):
                    x = self.data.pid[(name, i)]
                    if float(self.d[templates, x].min()) >= 0.1:
                        if n < self.max_templates:
                            templates = [*templates, x]
                        elif n > enrolled:
                            templates = [*templates[:enrolled], *templates[enrolled + 1 :], x]
            else:
                tally[{"review": 1, "mismatch": 2, "refused": 3}[dec]] += 1
        return tally, templates

    def impostors(self, templates: list[int], other: str) -> list[tuple]:
        """(first decision, z1, z2, second decision) per photo of ``other``, the retake being the
        other's next photo with a face (as review_load)."""
        rows = self.data.people[other]
        usable = [i for i, r in enumerate(rows) if r[1] is not None]
        out = []
        for k in range(len(rows)):
            dec, _d1, z1 = self.first(templates, other, k)
            j = usable[(k + 1) % len(usable)] if usable else k
            dec2, _d2, z2 = self.first(templates, other, j)
            out.append((dec, z1, z2 if dec2 != "refused" else float("nan"), dec2))
        return out


def accepts(entries: list[tuple], rt: float | None) -> int:
    acc = 0
    for dec, z1, z2, dec2 in entries:
        if dec == "match":
            acc += 1
        elif dec in ("review", "refused") and rt is not None:
            if dec2 == "match":
                acc += 1
            elif dec2 != "refused" and not np.isnan(z1) and not np.isnan(z2):
                acc += int((z1 + z2) / 2 <= rt)
    return acc


def evaluate(pol_of, data: SetData, names: list[str], rt_of, only_hard: bool = False) -> dict:
    """Both policies on the people ``names`` (``pol_of(name)`` / ``rt_of(name)``: the person's
    fold's policy and retake threshold); impostors = every other person of the set."""
    out = {}
    for policy in ("single", "retake"):
        g = np.zeros(5, int)
        imp = [0, 0, 0, 0]
        for name in names:
            pol = pol_of(name)
            rt = rt_of(name) if policy == "retake" else None
            tally, templates = pol.genuine(name, rt)
            if not templates:
                continue
            g += tally
            for other in data.names:
                if other == name or (only_hard and not hard(name, other)):
                    continue
                e = pol.impostors(templates, other)
                a = accepts(e, rt)
                imp[0] += len(e)
                imp[1] += a
                if hard(name, other):
                    imp[2] += len(e)
                    imp[3] += a
        n = max(int(g[4]), 1)
        out[policy] = {
            "checkins": int(g[4]),
            "auto_matched": g[0] / n,
            "reviewed": g[1] / n,
            "mismatched": g[2] / n,
            "refused_for_quality": g[3] / n,
            "impostor_checkins": imp[0],
            "impostor_auto_accepted": imp[1],
            "hardest_impostor_checkins": imp[2],
            "hardest_impostor_auto_accepted": imp[3],
        }
    return out


def pair_threshold(data: SetData, stat: np.ndarray, names: list[str]) -> float:
    """FMR 0.1 % on the K-pop vs K-pop pairs of ``names`` (the protocol that gives 0.504)."""
    sel = np.isin(data.owner, [data.names.index(n) for n in names if n.startswith("kpop_")])
    idx = np.flatnonzero(sel)
    sub = stat[np.ix_(idx, idx)]
    o = data.owner[idx]
    cross = (o[:, None] != o[None, :]) & np.triu(np.ones_like(sub, bool), 1)
    return threshold_at_fmr(sub[cross], 0.001)


def hardest_entries(pol: Policy, names: list[str]) -> list[tuple]:
    e = []
    for name in names:
        _, templates = pol.genuine(name, None)
        if templates:
            for other in names:
                if other != name and hard(name, other):
                    e += pol.impostors(templates, other)
    return e


def largest_rt(pol: Policy, entries: list[tuple], allowed: float) -> float | None:
    """The most lenient retake threshold within ``allowed`` accepts; None when even the
    strictest is over (the second capture matching alone already is)."""
    lo, hi = pol.a0 - 0.3 / pol.sd, pol.a0 + 0.3 / pol.sd
    if accepts(entries, lo) > allowed:
        return None
    for _ in range(22):
        mid = (lo + hi) / 2
        if accepts(entries, mid) <= allowed:
            lo = mid
        else:
            hi = mid
    return lo


def fit(data: SetData, stat, sd, names: list[str]) -> dict:
    """Per policy, the (delta, retake) that auto-matches most of ``names``' check-ins while
    accepting <= 0.1 % of their hardest impostor check-ins (impostors within ``names``)."""
    a0 = pair_threshold(data, stat, names)
    best = {"single": None, "retake": None}
    for delta in DELTAS:
        pol = Policy(data, stat, sd, a0, delta / sd)
        e = hardest_entries(pol, names)
        allowed = TARGET_FAR * len(e)
        if accepts(e, None) > allowed:
            continue
        rt = largest_rt(pol, e, allowed)
        for policy, r in (("single", None), ("retake", rt)):
            if policy == "retake" and r is None:
                continue
            auto = sum(pol.genuine(n, r)[0][0] for n in names)
            if best[policy] is None or auto > best[policy]["auto"]:
                best[policy] = {"auto": auto, "delta": delta / sd, "retake": r}
    return {"a0": a0, **best}


def frontier(data: SetData, stat, sd) -> dict:
    """In sample: max auto-matched at each count (0..6) of hardest impostors accepted."""
    a0 = pair_threshold(data, stat, data.names)
    cands = {"single": [], "retake": []}
    for delta in DELTAS:
        pol = Policy(data, stat, sd, a0, delta / sd)
        e = hardest_entries(pol, data.names)
        r = evaluate(lambda n, p=pol: p, data, data.names, lambda n: None, True)["single"]
        cands["single"].append((r["hardest_impostor_auto_accepted"], r["auto_matched"], delta))
        for m in range(7):
            rt = largest_rt(pol, e, m)
            if rt is None:
                continue
            r = evaluate(lambda n, p=pol: p, data, data.names, lambda n, x=rt: x, True)["retake"]
            cands["retake"].append(
                (r["hardest_impostor_auto_accepted"], r["auto_matched"], delta, rt)
            )
    out = {}
    for policy, cs in cands.items():
        out[policy] = [
            max((c for c in cs if c[0] <= m), key=lambda c: c[1], default=None) for m in range(7)
        ]
    return {"a0": a0, "sd": sd, "frontier": out}


def held_out(sets: dict[str, SetData], norm: Norm) -> dict:
    """faces-asia 2-fold by person (fit on one fold, measure the other, pooled); faces with the
    numbers fitted on all of faces-asia."""
    asia = sets["faces-asia"]
    stat, sd = asia.stat(norm)
    folds = {f: [n for n in asia.names if fold_of(n) == f] for f in (0, 1)}
    fits = {f: fit(asia, stat, sd, folds[1 - f]) for f in (0, 1)}
    out: dict = {"fits_by_fold": fits}
    res = {}
    for policy in ("single", "retake"):
        pols = {f: Policy(asia, stat, sd, fits[f]["a0"], fits[f][policy]["delta"]) for f in (0, 1)}
        r = evaluate(
            lambda n, p=pols: p[fold_of(n)],
            asia,
            asia.names,
            lambda n: fits[fold_of(n)]["retake"]["retake"],
        )
        res[policy] = r[policy]
    out["faces-asia"] = res
    ship = fit(asia, stat, sd, asia.names)
    out["shipped"] = ship
    faces = sets["faces"]
    fstat, fsd = faces.stat(norm)
    res = {}
    for policy in ("single", "retake"):
        # the normalised threshold carries over as a number; the raw one too
        pol = Policy(faces, fstat, fsd, ship["a0"], ship[policy]["delta"])
        res[policy] = evaluate(
            lambda n, p=pol: p, faces, faces.names, lambda n: ship["retake"]["retake"]
        )[policy]
    out["faces"] = res
    return out


def pair_roc(sets: dict[str, SetData], norm: Norm) -> dict:
    """GAR of every genuine pair at FMR 0.1 % of the K-pop pairs (faces: all pairs), in sample,
    and held out by fold on faces-asia (threshold of one fold applied to the other)."""
    out = {}
    for name, data in sets.items():
        stat, _ = data.stat(norm)
        o = data.owner
        upper = np.triu(np.ones_like(stat, bool), 1)
        gen = stat[(o[:, None] == o[None, :]) & upper]
        if name == "faces-asia":
            t = pair_threshold(data, stat, data.names)
            kp = np.asarray([n.startswith("kpop_") for n in data.names])[o]
            gk = stat[(o[:, None] == o[None, :]) & upper & kp[:, None]]
            out[name] = {
                "threshold": t,
                "gar": float(np.mean(gen <= t)),
                "gar_kpop": float(np.mean(gk <= t)),
            }
        else:
            t = threshold_at_fmr(stat[(o[:, None] != o[None, :]) & upper], 0.001)
            out[name] = {"threshold": t, "gar": float(np.mean(gen <= t))}
    return out


SCREEN = (
    [Norm("raw")]
    + [
        Norm(kind, k, pp)
        for kind in ("z", "t", "s")
        for k in (5, 10, 25, 50, None)
        for pp in (2, 5)
    ]
    + [Norm(kind, k, 5, scale=False) for kind in ("z", "t", "s") for k in (10, 50, None)]
    + [Norm("s", k, 5, area="set") for k in (50, 100, 200, None)]
    + [Norm("s", k, 5, scale=False, area="set") for k in (50, 200, None)]
)


def main() -> None:
    t0, c0 = time.time(), time.thread_time()
    with open(CACHE, "rb") as fh:
        data = pickle.load(fh)  # our own cache (bench/review_load.py)
    sets = {name: SetData(people) for name, people in data.items()}
    results: dict = {
        "target_far": TARGET_FAR,
        "load_average_start": os.getloadavg(),
        "pair_roc": {},
    }
    for norm in SCREEN:
        results["pair_roc"][norm.key] = r = pair_roc(sets, norm)
        a, f = r["faces-asia"], r["faces"]
        print(
            f"pairs {norm.key}: faces-asia GAR {a['gar']:.3f} (K-pop {a['gar_kpop']:.3f}), "
            f"faces {f['gar']:.3f}"
        )

    def gar(n: Norm) -> float:
        return results["pair_roc"][n.key]["faces-asia"]["gar"]

    # the brief's cohort (same fold) first, the best two; then the best whole-set cohort (a larger
    # area); then that one with the impostor left in the cohort (a household member enrolled in
    # the same area, every impostor of the set enrolled)
    fold = sorted((n for n in SCREEN[1:] if n.area == "fold"), key=lambda n: -gar(n))
    whole = max((n for n in SCREEN[1:] if n.area == "set"), key=gar)
    enrolled = Norm(whole.kind, whole.k, whole.per_person, False, whole.scale, area="set")
    chosen = [Norm("raw"), *fold[:2], whole, enrolled]
    results["simulated"] = [n.key for n in chosen]
    results["in_sample"], results["held_out"] = {}, {}
    for norm in chosen:
        stat, sd = sets["faces-asia"].stat(norm)
        results["in_sample"][norm.key] = fr = frontier(sets["faces-asia"], stat, sd)
        for policy, cells in fr["frontier"].items():
            txt = " | ".join("—" if c is None else f"{c[0]}: {c[1]:.1%}" for c in cells)
            print(f"in sample {norm.key} {policy}: {txt}")
        results["held_out"][norm.key] = ho = held_out(sets, norm)
        for s in ("faces-asia", "faces"):
            for policy in ("single", "retake"):
                r = ho[s][policy]
                print(
                    f"held out {norm.key} {s} {policy}: auto {r['auto_matched']:.1%} reviewed "
                    f"{r['reviewed']:.1%} mismatched {r['mismatched']:.1%} refused "
                    f"{r['refused_for_quality']:.1%}; impostors {r['impostor_auto_accepted']} / "
                    f"{r['impostor_checkins']}, hardest {r['hardest_impostor_auto_accepted']} / "
                    f"{r['hardest_impostor_checkins']}"
                )
    results["load_average_end"] = os.getloadavg()
    results["wall_s"], results["cpu_s"] = time.time() - t0, time.thread_time() - c0
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cohort_norm.json").write_text(json.dumps(results, indent=2, default=float))
    print(
        f"wall {results['wall_s']:.0f} s, CPU {results['cpu_s']:.0f} s, "
        f"load {results['load_average_end']}"
    )


if __name__ == "__main__":
    main()
