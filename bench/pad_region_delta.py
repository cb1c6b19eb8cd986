"""PAD on a working copy of the face's region vs of the whole photo: how far P(live) moves.

    uv run python bench/pad_region_delta.py          # ~1-2 min

``verification.pad.working_copy`` downscales only the region the cues' crops draw from (the
2.5 x square around a face > PAD_FACE_MAX px, plus what the reflection mirrors) instead of the
whole photo. INTER_AREA's grid then starts at the region's origin, a sub-pixel shift, so the cues
are not bit-identical. This measures, with the shipped fusion (verification/pad_fusion.json):

- the phone-sized selfies of ``bench/pad_bench.py``'s timing (faces-asia photos resized to a
  1080 px JPEG) and their enrolment photos, and
- every photo of ../shared/spoof, ../shared/faces and ../shared/faces-asia whose face is
  > PAD_FACE_MAX px (the only ones that take the working copy; the others score bit for bit as
  before, which is checked too),

P(live) old vs new: max and p99 of |delta|, the largest logit change, and every decision at the
shipped threshold that flips. Writes ``bench/results/pad_region_delta.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pad_bench  # noqa: E402
import pad_features  # noqa: E402

from verification import Verifier  # noqa: E402
from verification import pad as P  # noqa: E402
from verification.face_models import Face  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def whole_photo_copy(bgr: np.ndarray, face: Face) -> tuple[np.ndarray, Face]:
    """The working copy before: the WHOLE photo downscaled (INTER_AREA) so the face is at most
    PAD_FACE_MAX px (verification/pad.py up to 121ed0d)."""
    k = P.PAD_FACE_MAX / max(face.box[2], face.box[3])
    if k >= 1.0:
        return bgr, face
    h, w = bgr.shape[:2]
    small = cv2.resize(
        bgr, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA
    )
    box = tuple(float(v) * k for v in face.box)
    return small, Face(box=box, landmarks=face.landmarks * k, score=face.score)  # type: ignore[arg-type]


def score_both(det: P.PresentationAttackDetector, bgr: np.ndarray, face: Face) -> dict:
    fusion = det.fusion
    t0 = time.process_time()
    new_cues, new_tex = det.features(bgr, face)
    t1 = time.process_time()
    old_img, old_face = whole_photo_copy(bgr, face)
    old_cues, old_tex = det.cues(old_img, old_face), P.colour_texture(old_img, old_face)
    t2 = time.process_time()
    s_new, s_old = fusion.score(new_cues, new_tex), fusion.score(old_cues, old_tex)

    def logit(s: float) -> float:
        s = min(max(s, 1e-12), 1 - 1e-12)
        return float(np.log(s / (1 - s)))

    return {
        "old": s_old,
        "new": s_new,
        "delta": s_new - s_old,
        "logit_delta": logit(s_new) - logit(s_old),
        "model_logit_delta": new_cues["model_logit"] - old_cues["model_logit"],
        "flip": (s_old < fusion.threshold) != (s_new < fusion.threshold),
        "face_px": float(max(face.box[2], face.box[3])),
        "bit_identical": bool(s_new == s_old),
        "cpu_ms_new": (t1 - t0) * 1000,
        "cpu_ms_old": (t2 - t1) * 1000,
    }


def summary(rows: list[dict]) -> dict:
    if not rows:
        return {"n": 0}
    d = np.abs([r["delta"] for r in rows])
    lg = np.abs([r["logit_delta"] for r in rows])
    return {
        "n": len(rows),
        "abs_delta_max": float(d.max()),
        "abs_delta_p99": float(np.percentile(d, 99)),
        "abs_delta_p50": float(np.percentile(d, 50)),
        "abs_logit_delta_max": float(lg.max()),
        "abs_model_logit_delta_max": float(np.abs([r["model_logit_delta"] for r in rows]).max()),
        "flips": [r for r in rows if r["flip"]],
        "bit_identical": sum(r["bit_identical"] for r in rows),
        "face_px_range": [min(r["face_px"] for r in rows), max(r["face_px"] for r in rows)],
        "nearest_to_threshold": min(abs(r["old"] - THRESHOLD) for r in rows),
        "cpu_ms_p50_new": float(np.median([r["cpu_ms_new"] for r in rows])),
        "cpu_ms_p50_old": float(np.median([r["cpu_ms_old"] for r in rows])),
    }


THRESHOLD = 0.0


def main() -> None:
    global THRESHOLD
    if not os.environ.get("ISOCHECK_PAD_MODEL_PATH"):
        os.environ["ISOCHECK_PAD_MODEL_PATH"] = str(pad_features.MODEL)
    cv2.setNumThreads(1)
    v = Verifier().load()
    detector, _ = v._opencv()
    det = v._pad()
    THRESHOLD = det.fusion.threshold
    s = v.settings
    load0 = os.getloadavg()[0]

    def faces_of(data: bytes):
        return pad_features.first_face(s, detector, data)

    # 1. the phone-sized timing set (enrolment photo and selfie of each pair)
    pairs = pad_bench._selfie_pairs(pad_bench.spoof_groups(), pad_bench.photo_groups())
    phone: list[dict] = []
    seen: set[bytes] = set()
    for enrol_b, selfie in pairs["phone 1080 px"]:
        for data in (enrol_b, selfie):
            key = data[:4096] + len(data).to_bytes(8, "big")
            if key in seen:
                continue
            seen.add(key)
            bgr, face = faces_of(data)
            if face is not None and max(face.box[2], face.box[3]) > P.PAD_FACE_MAX:
                phone.append(score_both(det, bgr, face))

    # 2. every stored photo whose face takes the working copy; the others must not move at all
    big: dict[str, list[dict]] = {}
    small_moved = 0
    small_n = 0
    for r in pad_features._spoof_rows() + pad_features._photo_rows():
        bgr, face = faces_of(Path(r["file"]).read_bytes())
        if face is None:
            continue
        key = f"{r['source']}/{r['attack']}"
        if max(face.box[2], face.box[3]) > P.PAD_FACE_MAX:
            row = score_both(det, bgr, face)
            row["file"] = str(Path(r["file"]).relative_to(pad_features.SHARED))
            big.setdefault(key, []).append(row)
        else:
            small_n += 1
            if small_n % 10 == 0:  # a sample: the code path is the same for all of them
                res = score_both(det, bgr, face)
                small_moved += res["delta"] != 0.0

    out = {
        "threshold": THRESHOLD,
        "fusion": "shipped (verification/pad_fusion.json), not out of fold",
        "phone_1080px": summary(phone),
        "stored_faces_over_256px": {k: summary(x) for k, x in sorted(big.items())},
        "stored_faces_at_most_256px": {
            "n": small_n,
            "sampled": small_n // 10,
            "moved": small_moved,
        },
        "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pad_region_delta.json").write_text(json.dumps(out, indent=2))
    print(f"threshold {THRESHOLD:.4f}; load {out['load_average']}")
    print(
        "| set | n | bit-identical | max abs dP | p99 abs dP | max abs dlogit | flips "
        "| PAD features CPU ms p50 new / old |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in [("phone 1080 px", out["phone_1080px"])] + list(
        out["stored_faces_over_256px"].items()
    ):
        if not r["n"]:
            continue
        print(
            f"| {name} | {r['n']} | {r['bit_identical']} | {r['abs_delta_max']:.2e} | "
            f"{r['abs_delta_p99']:.2e} | "
            f"{r['abs_logit_delta_max']:.3f} | {len(r['flips'])} | "
            f"{r['cpu_ms_p50_new']:.1f} / {r['cpu_ms_p50_old']:.1f} |"
        )
    print(f"faces <= {P.PAD_FACE_MAX} px: {out['stored_faces_at_most_256px']}")


if __name__ == "__main__":
    main()
