"""Fit the PAD fusion (logistic regression over verification.pad.CUE_NAMES), subject-disjoint.

    uv run python bench/pad_fit.py            # per-cue separation, cross-validated rates, weights
    uv run python bench/pad_fit.py --write verification/pad_fusion.json   # keep the fit

Data: ../shared/spoof (live captures and attacks of the same people) plus ../shared/faces and
../shared/faces-asia as bona fide photos (the fusion must not flag ordinary photos of people:
those sets are what genuine check-ins are measured on). Every split is by subject / person:
no one is in the training and the test part of a fold. The logistic regression is plain IRLS
with a small ridge (numpy; 7 cues and 3 x 354 texture values, ~2,300 rows), classes weighted
equally and each attack kind weighted equally within the attack class. Writes
``bench/results/pad_fit.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pad_features  # noqa: E402

from verification.pad import CUE_NAMES  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FOLDS = 5
RIDGE = 3.0
#: The operating point: the lowest threshold at which, out of fold, every attack kind of every
#: source (Replay-Attack print / phone / tablet, NUAA print) passes PAD at most this often. The
#: issue's floor is 5 % auto-accepted; 3 % leaves room for subjects the fit never saw (a
#: held-out set is expected to do a little worse). Version 2 of the cues chose the threshold on
#: live captures flagged (8 %) instead and missed the live floor on NUAA.
ATTACK_PASS_CAP = 0.03


def matrix(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    rows = [r for r in rows if r["cues"] is not None]
    X = np.array([[r["cues"][c] for c in CUE_NAMES] + r["texture"] for r in rows], np.float64)
    y = np.array([1.0 if r["label"] == "live" else 0.0 for r in rows])
    # equal weight per class; within the attack class, per attack kind; bona fide: spoof-set live
    # captures and ordinary photos equally
    kinds = [r["attack"] if r["label"] == "spoof" else r["set"] for r in rows]
    w = np.ones(len(rows))
    for label in (0.0, 1.0):
        sel = [k for k, yy in zip(kinds, y, strict=True) if yy == label]
        uniq = sorted(set(sel))
        for k in uniq:
            idx = [i for i, kk in enumerate(kinds) if kk == k and y[i] == label]
            w[idx] = 1.0 / (len(uniq) * len(idx))
    w *= len(rows) / w.sum()
    return X, y, w, rows


def fit(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, scale, beta) with beta[0] the intercept; IRLS with a ridge on the slopes."""
    mean, scale = X.mean(0), X.std(0) + 1e-6
    Z = np.hstack([np.ones((len(X), 1)), (X - mean) / scale])
    beta = np.zeros(Z.shape[1])
    reg = RIDGE * np.eye(Z.shape[1])
    reg[0, 0] = 0
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(Z @ beta, -30, 30)))
        W = w * p * (1 - p) + 1e-9
        grad = Z.T @ (w * (y - p)) - reg @ beta
        H = (Z.T * W) @ Z + reg
        step = np.linalg.solve(H, grad)
        beta += step
        if np.abs(step).max() < 1e-8:
            break
    return mean, scale, beta


def predict(model: tuple[np.ndarray, np.ndarray, np.ndarray], X: np.ndarray) -> np.ndarray:
    mean, scale, beta = model
    z = beta[0] + ((X - mean) / scale) @ beta[1:]
    return 1 / (1 + np.exp(-np.clip(z, -30, 30)))


def fold_of(group: str) -> int:
    return zlib.crc32(group.encode()) % FOLDS


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a live sample scores above an attack) (Mann-Whitney)."""
    allv = np.concatenate([pos, neg])
    ranks = allv.argsort().argsort() + 1.0
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def cross_validate(X, y, w, rows, cols=None):
    cols = list(range(X.shape[1])) if cols is None else cols
    folds = np.array([fold_of(r["group"]) for r in rows])
    oof = np.zeros(len(rows))
    for k in range(FOLDS):
        tr, te = folds != k, folds == k
        oof[te] = predict(fit(X[tr][:, cols], y[tr], w[tr]), X[te][:, cols])
    return oof


def attack_groups(rows: list[dict]) -> list[np.ndarray]:
    """Row indices of each (source, attack kind) of the spoof set."""
    keys = sorted({(r["source"], r["attack"]) for r in rows if r["label"] == "spoof"})
    return [
        np.array(
            [
                i
                for i, r in enumerate(rows)
                if (r["source"], r["attack"]) == k and r["label"] == "spoof"
            ]
        )
        for k in keys
    ]


def threshold_for(scores: np.ndarray, rows: list[dict], cap: float) -> float:
    """Lowest t (P(live) at or above it passes) with every attack kind's pass share <= cap."""
    groups = attack_groups(rows)
    cands = np.unique(np.concatenate([scores, [1.0]]))
    for t in cands:  # ascending: the first that holds is the lowest
        if max(float((scores[g] >= t).mean()) for g in groups) <= cap:
            return float(t)
    return 1.0


def rates(oof, rows, t):
    out = {}
    kinds = sorted({(r["set"], r["attack"]) for r in rows})
    for set_name, kind in kinds:
        idx = [i for i, r in enumerate(rows) if r["set"] == set_name and r["attack"] == kind]
        s = oof[idx]
        key = f"{set_name}/{kind}"
        if kind in ("live", "photo"):
            out[key] = {"n": len(idx), "flagged": float((s < t).mean())}
        else:
            out[key] = {"n": len(idx), "passed": float((s >= t).mean())}
    for src in ("replay-attack", "nuaa"):
        for kind in ("print", "phone_replay", "tablet_replay", "live"):
            idx = [i for i, r in enumerate(rows) if r["source"] == src and r["attack"] == kind]
            if idx:
                s = oof[idx]
                v = (s < t).mean() if kind == "live" else (s >= t).mean()
                out[f"{src}/{kind}"] = {
                    "n": len(idx),
                    ("flagged" if kind == "live" else "passed"): float(v),
                }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--write", metavar="FILE", help="write the fitted fusion (verification/pad_fusion.json)"
    )
    ap.add_argument(
        "--attack-cap",
        type=float,
        default=ATTACK_PASS_CAP,
        help="largest out-of-fold share of any attack kind that may pass (default %(default)s)",
    )
    args = ap.parse_args()
    X, y, w, rows = matrix(pad_features.load())
    live = y == 1
    print(
        f"{len(rows)} photos with a face: {int(live.sum())} bona fide, {int((~live).sum())} attacks"
    )
    print("\nper cue (AUC, live vs attack; 0.5 = no separation), alone and out of fold:")
    single = {}
    n = len(CUE_NAMES)
    blocks = [(name, [j]) for j, name in enumerate(CUE_NAMES)]
    blocks.append(("colour_texture", list(range(n, X.shape[1]))))
    for name, cols in blocks:
        raw = auc(X[live, cols[0]], X[~live, cols[0]]) if len(cols) == 1 else float("nan")
        oof = cross_validate(X, y, w, rows, cols)
        single[name] = {"auc_raw": raw, "auc_oof": auc(oof[live], oof[~live])}
        print(f"  {name:20s} raw {raw:.3f}  fitted out-of-fold {single[name]['auc_oof']:.3f}")
    live_captures = np.array([r["set"] == "spoof" and r["label"] == "live" for r in rows])
    for name, cols in (("without texture", list(range(n))), ("model only", [0])):
        oof = cross_validate(X, y, w, rows, cols)
        tt = threshold_for(oof, rows, args.attack_cap)
        print(
            f"  {name:20s} fused AUC {auc(oof[live], oof[~live]):.3f}; live captures flagged "
            f"{(oof[live_captures] < tt).mean():.1%} at the attack cap"
        )
    oof = cross_validate(X, y, w, rows)
    t = threshold_for(oof, rows, args.attack_cap)
    print(f"\nfused, out of fold: AUC {auc(oof[live], oof[~live]):.3f}; threshold {t:.3f}")
    r = rates(oof, rows, t)
    for k, v in sorted(r.items()):
        print(
            f"  {k:28s} n={v['n']:4d}  "
            + "  ".join(f"{a} {b:.1%}" for a, b in v.items() if a != "n")
        )
    mean, scale, beta = fit(X, y, w)
    print("\nfitted on all (standardised coefficients):")
    for j, name in enumerate(CUE_NAMES):
        print(f"  {name:20s} {beta[j + 1]:+.3f}")
    print(f"  colour_texture       |coef| sum {np.abs(beta[n + 1 :]).sum():.3f}")
    fusion = {
        "cues": list(CUE_NAMES),
        "texture": f"uniform LBP(8,1) x {len(X[0]) - n} (verification.pad.colour_texture)",
        "intercept": round(float(beta[0]), 6),
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "coef": [round(float(v), 6) for v in beta[1:]],
        "threshold": round(t, 4),
        "measured": {
            "by": "bench/pad_fit.py",
            "folds": FOLDS,
            "split": "by subject/person",
            "attack_pass_cap": args.attack_cap,
            "auc_oof": round(auc(oof[live], oof[~live]), 4),
            "rates_oof": r,
        },
    }
    RESULTS.mkdir(exist_ok=True)
    out = {
        "rows": len(rows),
        "folds": FOLDS,
        "attack_pass_cap": args.attack_cap,
        "threshold": round(t, 4),
        "auc_oof": auc(oof[live], oof[~live]),
        "single_cues": single,
        "rates_oof": r,
    }
    (RESULTS / "pad_fit.json").write_text(json.dumps(out, indent=2))
    if args.write:
        Path(args.write).write_text(json.dumps(fusion, separators=(",", ":")) + "\n")
        print(f"\nwrote {args.write}")


if __name__ == "__main__":
    main()
