"""Alignment and crop variants of the SFace embedding (issue 16), in review_load's simulation.

    uv run python bench/crop_variants.py            # ~3 min on one core the first time
    uv run python bench/crop_variants.py --reuse    # the cached vectors of a first run

SFace's crop is OpenCV's ``FaceRecognizerSF.alignCrop``: the similarity transform (Umeyama) of
YuNet's 5 landmarks onto SFace's fixed 5-point template, warped to 112 x 112. Here the same
transform is computed onto a *moved* template — scaled about the crop centre (56, 56) by ``s``
(s < 1: the face smaller in the crop, more context; s > 1: tighter) or shifted by (dx, dy)
pixels — and each crop embedded. Variants (``VARIANTS``):

* one moved template alone (``scale 0.95`` …): a different crop, a second opinion on what
  SFace's template should be;
* test-time augmentation: the L2-normalised vectors of the plain crop and of several moved ones
  averaged and re-normalised (as ``verification.embedding.mirror_average`` does with the flip).

Same steps as the mirror (docs/verification.md): (1) every pair at equal FMR 0.1 % of faces-asia's
K-pop vs K-pop pairs, (2) for the best ones, review_load's isolation simulation held out by person
(2-fold, ``refit`` mode: the same search as the plain refit; once with review_load's accept
offsets, once with cohort_norm's wider ones), faces judged with the numbers fitted on all of
faces-asia. The plain vector is ``analyse``'s (alignCrop); ``own 1.00`` is this
script's own warp onto the unmoved template (it must match alignCrop: the check of the warp).

Vectors are cached outside the repository (``ISOCHECK_CALIB_CACHE``, default
``/tmp/isocheck-calib/crop_variants.pkl``). Writes ``bench/results/crop_variants.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import review_calib  # noqa: E402
import review_load  # noqa: E402
from mirror_cost import cpu_ms_p50, first_faces  # noqa: E402
from review_calib import roc  # noqa: E402
from review_load import SETS, TARGET_FAR, measure  # noqa: E402

from verification import Verifier  # noqa: E402

CACHE = Path(os.environ.get("ISOCHECK_CALIB_CACHE", "/tmp/isocheck-calib")) / "crop_variants.pkl"
RESULTS = REPO / "bench" / "results"
#: review_load's accept offsets (-0.03 .. +0.03) and cohort_norm's wider ones (-0.03 .. +0.06: the
#: plain refit stops at review_load's edge, 0.534)
SEARCHES = {
    "held_out_refit": review_load.DELTAS,
    "held_out_refit_wide": tuple(round(-0.03 + 0.0025 * i, 4) for i in range(37)),
}

#: SFace's template (OpenCV face_recognize.cpp, getSimilarityTransformMatrix's ``dst``)
TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
CENTRE = np.array([56.0, 56.0])

#: crop key -> (scale about the crop centre, dx, dy); every one is one extra SFace pass
CROPS = {
    "own 1.00": (1.0, 0.0, 0.0),
    "scale 0.95": (0.95, 0.0, 0.0),
    "scale 0.975": (0.975, 0.0, 0.0),
    "scale 1.025": (1.025, 0.0, 0.0),
    "scale 1.05": (1.05, 0.0, 0.0),
    "shift +x": (1.0, 2.0, 0.0),
    "shift -x": (1.0, -2.0, 0.0),
    "shift +y": (1.0, 0.0, 2.0),
    "shift -y": (1.0, 0.0, -2.0),
}
SHIFTS = ("shift +x", "shift -x", "shift +y", "shift -y")
#: variant -> the crops averaged ("plain" = analyse's alignCrop vector); one crop = that crop alone
VARIANTS = {
    "plain": ("plain",),
    "own 1.00": ("own 1.00",),
    "scale 0.95": ("scale 0.95",),
    "scale 0.975": ("scale 0.975",),
    "scale 1.025": ("scale 1.025",),
    "scale 1.05": ("scale 1.05",),
    "tta scale ±5 %": ("plain", "scale 0.95", "scale 1.05"),
    "tta scale ±2.5 %": ("plain", "scale 0.975", "scale 1.025"),
    "tta shift ±2 px": ("plain", *SHIFTS),
    "tta scale ±5 % + shift ±2 px": ("plain", "scale 0.95", "scale 1.05", *SHIFTS),
}
FIRST_VARIANT_COLUMN = 6  # review_load's rows: (file, plain, checkin_ok, enrol_ok, mirror, quality)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2 x 3 similarity transform (rotation, uniform scale, translation) taking ``src`` onto
    ``dst`` in the least-squares sense (Umeyama 1991, as OpenCV's alignCrop computes it)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(cov) < 0:
        e[1, 1] = -1
    r = u @ e @ vt
    scale = float((sig * np.diag(e)).sum() / s.var(0).sum())
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def moved_template(scale: float, dx: float, dy: float) -> np.ndarray:
    return CENTRE + scale * (TEMPLATE - CENTRE) + np.array([dx, dy])


def crop(bgr: np.ndarray, landmarks: np.ndarray, scale: float, dx: float, dy: float) -> np.ndarray:
    m = umeyama(np.asarray(landmarks, np.float64), moved_template(scale, dx, dy))
    return cv2.warpAffine(bgr, m, (112, 112), flags=cv2.INTER_LINEAR)


def collect(v: Verifier) -> tuple[dict, dict]:
    """Per set, per person: rows (file, plain vector or None, checkin_ok, enrol_ok, None, quality,
    {crop key: vector}); and the timing of the extra passes."""
    s = v.settings
    cpu, wall, n_pass, pix = 0.0, 0.0, 0, []

    def row(f: Path, a, ok: dict, img) -> tuple:
        nonlocal cpu, wall, n_pass
        plain = a.vectors[v.embedder].astype(np.float32)
        _, sface = v._opencv()
        aligned = sface.align(img.bgr, a.face)
        crops = {}
        for key, (sc, dx, dy) in CROPS.items():
            c = crop(img.bgr, a.face.landmarks, sc, dx, dy)
            if key == "own 1.00":
                pix.append(float(np.abs(c.astype(int) - aligned.astype(int)).mean()))
            t0, w0 = time.process_time(), time.perf_counter()
            crops[key] = np.asarray(sface.embed(c), np.float32)
            cpu += time.process_time() - t0
            wall += time.perf_counter() - w0
            n_pass += 1
        return (f.name, plain / np.linalg.norm(plain), ok["checkin"], ok["enrol"], None,
                a.quality.to_dict(), crops)  # fmt: skip

    out = review_load.collect_rows(v, row, lambda f: (f.name, None, False, False, None, None, {}))
    timing = {
        "engine": s.inference_engine,
        "extra_passes": n_pass,
        # process CPU (OpenVINO infers on its own threads), warp + embed of one moved crop
        "process_cpu_ms_per_extra_pass": 1000 * cpu / max(n_pass, 1),
        "wall_ms_per_extra_pass": 1000 * wall / max(n_pass, 1),
        "own_warp_vs_aligncrop_mean_abs_pixel": float(np.mean(pix)) if pix else None,
        "own_warp_vs_aligncrop_max_mean_abs_pixel": float(np.max(pix)) if pix else None,
        "load_average": os.getloadavg(),
    }
    return out, timing


def with_variants(raw: dict) -> dict:
    """review_load's rows with one column per variant (``review_calib.VARIANTS`` extended)."""
    for k, name in enumerate(VARIANTS):
        review_calib.VARIANTS[name] = FIRST_VARIANT_COLUMN + k
    data: dict = {}
    for set_name, people in raw.items():
        data[set_name] = {}
        for person, rows in people.items():
            new = []
            for r in rows:
                cols = []
                for parts in VARIANTS.values():
                    if r[1] is None:
                        cols.append(None)
                        continue
                    x = sum(r[1] if p == "plain" else r[6][p] for p in parts)
                    cols.append((x / np.linalg.norm(x)).astype(np.float32))
                new.append((*r[:6], *cols))
            data[set_name][person] = new
    return data


def load(reuse: bool, v: Verifier) -> tuple[dict, dict]:
    if reuse and CACHE.is_file():
        with open(CACHE, "rb") as fh:
            return pickle.load(fh)  # our own cache file
    got = collect(v)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with open(CACHE, "wb") as fh:
        pickle.dump(got, fh)
    os.chmod(CACHE, 0o600)
    return got


def cost(v: Verifier, n: int = 40) -> dict:
    """CPU of one plain SFace pass and of the 3-crop TTA (plain + two moved crops, warp included)
    on ``n`` faces-asia crops, the configured engine, as ``bench/mirror_cost.py`` times: process
    CPU (OpenVINO infers on its own thread), median over the crops of the best of 3 rounds."""
    s = v.settings
    _, sface = v._opencv()
    photos = first_faces(v, SETS["faces-asia"], n)

    def plain(bgr, face):
        return sface.embed(sface.align(bgr, face))

    def tta(bgr, face):
        xs = [plain(bgr, face)]
        xs += [sface.embed(crop(bgr, face.landmarks, sc, 0, 0)) for sc in (0.95, 1.05)]
        x = np.sum(xs, axis=0)
        return x / np.linalg.norm(x)

    plain(*photos[0])  # warm-up
    out: dict = {"crops": len(photos), "engine": s.inference_engine, "clock": "process_time"}
    for name, fn in (("plain", plain), ("tta_scale_5pct", tta)):
        out[f"{name}_ms_cpu_p50"] = cpu_ms_p50(fn, photos)
    out["extra_ms_cpu_per_pass"] = (out["tta_scale_5pct_ms_cpu_p50"] - out["plain_ms_cpu_p50"]) / 2
    out["load_average"] = os.getloadavg()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reuse", action="store_true", help="use the cached vectors of a first run")
    ap.add_argument(
        "--simulate",
        nargs="*",
        default=None,
        help="variants to run through the held-out simulation (default: plain and the best two "
        "of the pair ROC at 0.1 %%)",
    )
    ap.add_argument(
        "--cost",
        action="store_true",
        help="only time the extra passes (ISOCHECK_INFERENCE_ENGINE's engine) into "
        "bench/results/crop_variants_cost.json",
    )
    args = ap.parse_args()
    cv2.setNumThreads(1)
    v = Verifier(pad_model_path=None)
    if args.cost:
        path = RESULTS / "crop_variants_cost.json"
        res = json.loads(path.read_text()) if path.exists() else {}
        res[v.settings.inference_engine] = c = cost(v)
        path.write_text(json.dumps(res, indent=2) + "\n")
        print(json.dumps(c, indent=2))
        return
    raw, timing = load(args.reuse, v)
    data = with_variants(raw)
    results: dict = {"target_far": TARGET_FAR, "timing": timing, "crops": CROPS}
    results["variants"] = {k: list(p) for k, p in VARIANTS.items()}
    results["roc"] = {name: roc(people, list(VARIANTS)) for name, people in data.items()}
    print(f"timing: {timing}")
    for set_name, r in results["roc"].items():
        for variant in VARIANTS:
            cells = []
            for pt in r["points"]:
                c = pt[variant]
                k = f" (K-pop {c['gar_kpop']:.1%})" if "gar_kpop" in c else ""
                cells.append(f"{pt['fmr']:.2%}: {c['threshold']:.4f} / {c['gar']:.1%}{k}")
            gain = r["gain_at_0.1%_subsets"].get(variant)
            g = (
                f"; gain {gain['mean']:+.2%} [{gain['p2.5']:+.2%}, {gain['p97.5']:+.2%}], "
                f"{gain['share_positive']:.0%} > 0"
                if gain
                else ""
            )
            print(f"{set_name} {variant}: " + "; ".join(cells) + g)
    asia = results["roc"]["faces-asia"]["gain_at_0.1%_subsets"]
    simulate = args.simulate
    if simulate is None:
        ranked = sorted((k for k in asia if k != "own 1.00"), key=lambda k: -asia[k]["mean"])
        simulate = ["plain", *ranked[:2]]
    for search, deltas in SEARCHES.items():
        review_load.DELTAS = deltas  # joint_fit's search
        results[search] = {}
        for variant in simulate:
            t0 = time.time()
            run = measure(v, data, variant, False, "refit")
            results[search][variant] = run
            for set_name, res in run["sets"].items():
                for policy in ("single", "retake"):
                    r = res[policy]
                    hardest = (
                        f"{r['hardest_impostor_auto_accepted']} / {r['hardest_impostor_checkins']}"
                        if r["hardest_impostor_checkins"]
                        else "—"
                    )
                    print(
                        f"{search} {variant} {set_name} {policy}: auto {r['auto_matched']:.1%} "
                        f"reviewed {r['reviewed']:.1%} mismatched {r['mismatched']:.1%} refused "
                        f"{r['refused_for_quality']:.1%}; impostors "
                        f"{r['impostor_auto_accepted']} / {r['impostor_checkins']}, "
                        f"hardest {hardest}"
                    )
            print(
                f"   shipped {run['shipped']}, retake by fold {run['retake_threshold_by_fold']}, "
                f"({time.time() - t0:.0f} s)"
            )
            for f, c in run["thresholds_by_fold"].items():
                print(f"   fold {f}: accept {c['accept']}, review {c['review']}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "crop_variants.json"
    out.write_text(json.dumps(results, indent=2, default=float))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
