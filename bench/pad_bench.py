"""What the PAD stage changes for check-ins: attacks auto-accepted and genuine auto-matches lost.

    cd /work/main && uv run python bench/pad_bench.py

1. ../shared/spoof, per source and attack kind: each subject enrolled from one live capture,
   every other live capture and every attack of the subject verified. ``match`` without PAD is the
   face decision of a Verifier with PAD off; ``match`` with PAD additionally needs the fused PAD
   score >= the threshold of verification/pad_fusion.json, where the score is taken OUT OF FOLD
   (bench/pad_fit.py's subject-disjoint cross-validation), so no photo is scored by a fusion that
   saw its subject.
2. ../shared/faces and ../shared/faces-asia: per person, enrolled from the first photo, each other
   photo verified; genuine auto-match without / with PAD (out-of-fold score) and photos flagged.
3. Milliseconds (one core, cv2.setNumThreads(1)): the PAD stage and the whole verify, p50 / p95
   over ~100 webcam selfies, with PAD on (the deployed fusion).

Writes ``bench/results/pad_bench.json``.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pad_features  # noqa: E402
import pad_fit  # noqa: E402

from verification import Verifier  # noqa: E402
from verification.errors import VerificationError  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TIMING_N = 100


def oof_scores() -> tuple[dict[str, float], float]:
    X, y, w, rows = pad_fit.matrix(pad_features.load())
    oof = pad_fit.cross_validate(X, y, w, rows)
    fusion = json.loads((ROOT / "verification" / "pad_fusion.json").read_text())
    return {r["file"]: float(s) for r, s in zip(rows, oof, strict=True)}, float(fusion["threshold"])


def template(v: Verifier, data: bytes):
    """(template, how): the enrolment template, or one from an ungated analysis when the
    enrolment gate refuses the photo; (None, code) when no face is usable at all."""
    try:
        return v.enrol(data), "enrol"
    except VerificationError:
        pass
    try:
        a = v.analyse(data, purpose="checkin", apply_gate=False, with_pad=False)
    except VerificationError as e:
        return None, e.code
    return v._template(a, source="enrolment"), "analyse"


def run_groups(v: Verifier, groups: dict, oof: dict[str, float], t: float, key_of) -> dict:
    """groups: group -> [(file, kind)], the first ``live``/``photo`` file enrols. Tallies per
    key_of(group, kind)."""
    tally: dict[str, dict] = defaultdict(
        lambda: {
            "n": 0,
            "refused": 0,
            "match_no_pad": 0,
            "match_with_pad": 0,
            "pad_flagged": 0,
            "no_pad_score": 0,
        }
    )
    enrol_how: dict[str, int] = defaultdict(int)
    for g, items in groups.items():
        tpl, rest = None, list(items)
        while rest and tpl is None:
            idx = next((i for i, (_, k) in enumerate(rest) if k in ("live", "photo")), None)
            if idx is None:
                break
            f, _ = rest.pop(idx)
            tpl, how = template(v, Path(f).read_bytes())
            enrol_how[how] += 1
        if tpl is None:
            continue
        for f, kind in rest:
            c = tally[key_of(g, kind)]
            c["n"] += 1
            s = oof.get(f)
            if s is None:
                c["no_pad_score"] += 1
            elif s < t:
                c["pad_flagged"] += 1
            try:
                r = v.verify([tpl], Path(f).read_bytes())
            except VerificationError:
                c["refused"] += 1
                continue
            if r.decision == "match":
                c["match_no_pad"] += 1
                if s is None or s >= t:
                    c["match_with_pad"] += 1
    for c in tally.values():
        n = max(c["n"], 1)
        c["match_no_pad_share"] = c["match_no_pad"] / n
        c["match_with_pad_share"] = c["match_with_pad"] / n
        c["pad_flagged_share"] = c["pad_flagged"] / n
    return {"by_kind": dict(sorted(tally.items())), "enrolled": dict(enrol_how)}


def spoof_groups() -> dict:
    groups: dict[str, list] = defaultdict(list)
    for r in pad_features._spoof_rows():
        groups[r["group"]].append((r["file"], r["attack"]))
    return groups


def photo_groups() -> dict:
    groups: dict[str, list] = defaultdict(list)
    for r in pad_features._photo_rows():
        groups[r["group"]].append((r["file"], "photo"))
    return groups


def timings(spoof: dict) -> dict:
    cv2.setNumThreads(1)
    v = Verifier()
    v0 = Verifier(pad_model_path=None)
    pairs = []
    for items in spoof.values():
        live = [f for f, k in items if k == "live"]
        if len(live) >= 2:
            pairs.append((live[0], live[1:]))
    selfies = []
    i = 0
    while len(selfies) < TIMING_N and any(pairs):
        for enrol_f, rest in pairs:
            if i < len(rest) and len(selfies) < TIMING_N:
                selfies.append((enrol_f, rest[i]))
        i += 1
        if i > 50:
            break
    tpls: dict[str, object] = {}
    pad_ms, total_ms = [], []
    warm = True
    for enrol_f, f in selfies:
        if enrol_f not in tpls:
            tpls[enrol_f], _ = template(v0, Path(enrol_f).read_bytes())
        tpl = tpls[enrol_f]
        if tpl is None:
            continue
        data = Path(f).read_bytes()
        try:
            if warm:
                v.verify([tpl], data)
                warm = False
            r = v.verify([tpl], data)
        except VerificationError:
            continue
        pad_ms.append(r.timings_ms["pad"])
        total_ms.append(r.timings_ms["total"])

    def pct(xs):
        return {"p50": float(np.percentile(xs, 50)), "p95": float(np.percentile(xs, 95))}

    return {
        "n": len(pad_ms),
        "threads": 1,
        "pad_state": v.pad_status()["state"],
        "pad_ms": pct(pad_ms),
        "verify_total_ms": pct(total_ms),
    }


def main() -> None:
    if not os.environ.get("ISOCHECK_PAD_MODEL_PATH"):
        os.environ["ISOCHECK_PAD_MODEL_PATH"] = str(pad_features.MODEL)
    oof, t = oof_scores()
    v0 = Verifier(pad_model_path=None)
    spoof = spoof_groups()
    src_of = {g: g.split(":", 1)[0] for g in spoof}
    res_spoof = run_groups(v0, spoof, oof, t, lambda g, k: f"{src_of[g]}/{k}")
    res_photos = run_groups(v0, photo_groups(), oof, t, lambda g, k: g.split(":", 1)[0])
    res_ms = timings(spoof)
    out = {
        "threshold": t,
        "pad_score": "out of fold (bench/pad_fit.py cross_validate, subject-disjoint, 5 folds)",
        "spoof": res_spoof,
        "photos": res_photos,
        "timing": res_ms,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pad_bench.json").write_text(json.dumps(out, indent=2))

    print(f"PAD threshold {t:.4f} (out-of-fold scores); 'match' = auto-accepted\n")
    print("| set / kind | n | refused | match without PAD | match with PAD | PAD flagged |")
    print("|---|---:|---:|---:|---:|---:|")
    for res in (res_spoof, res_photos):
        for k, c in res["by_kind"].items():
            print(
                f"| {k} | {c['n']} | {c['refused']} | {c['match_no_pad_share']:.1%} | "
                f"{c['match_with_pad_share']:.1%} | {c['pad_flagged_share']:.1%} |"
            )
    print(
        f"\nenrolled: spoof {res_spoof['enrolled']}, photos {res_photos['enrolled']}"
        f"\nms, one core, n={res_ms['n']} selfies (PAD {res_ms['pad_state']}): "
        f"PAD p50 {res_ms['pad_ms']['p50']:.1f} p95 {res_ms['pad_ms']['p95']:.1f}; "
        f"verify total p50 {res_ms['verify_total_ms']['p50']:.1f} "
        f"p95 {res_ms['verify_total_ms']['p95']:.1f}"
    )


if __name__ == "__main__":
    main()
