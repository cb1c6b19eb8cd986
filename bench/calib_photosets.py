"""Measure everything the verification defaults rest on, on the two photo sets.

    uv run python bench/calib_photosets.py collect   # ~5 min on 2 cores: runs the models
    uv run python bench/calib_photosets.py analyse   # seconds: prints tables, writes JSON

``collect`` runs YuNet + SFace + dlib (encoder and 68 landmarks) on every photo of
``ISOCHECK_FACES_DIR`` and ``ISOCHECK_FACES_ASIA_DIR`` without the quality gate, plus synthetic
degradations (darker, brighter, blurred, smaller) and near-copies (re-encoded, resized, cropped)
of a fixed subset. The vectors stay in a cache outside the repository (biometric data; default
``/tmp/isocheck-calib``). ``analyse`` turns them into the numbers of docs/verification.md and
``bench/results/calibration.json`` (numbers only, no vectors, no photos).
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
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verification import VerificationError, Verifier  # noqa: E402
from verification.quality import mean_ear  # noqa: E402

SETS = {
    "faces": Path(os.environ.get("ISOCHECK_FACES_DIR", REPO.parent / "shared" / "faces")),
    "faces-asia": Path(
        os.environ.get("ISOCHECK_FACES_ASIA_DIR", REPO.parent / "shared" / "faces-asia")
    ),
}
CACHE = Path(os.environ.get("ISOCHECK_CALIB_CACHE", "/tmp/isocheck-calib"))
RESULTS = REPO / "bench" / "results" / "calibration.json"
FMRS = (0.01, 0.005, 0.001, 0.0001)


def jpeg(bgr: np.ndarray, quality: int = 92) -> bytes:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def measure(v: Verifier, data: bytes, embed_dlib: bool = True) -> dict:
    """Raw detections + ungated measurements + vectors of one photo (or its error code)."""
    rec: dict = {}
    try:
        img = __import__("verification.image", fromlist=["x"]).decode_image(
            data, max_bytes=10**9, max_pixels=10**9, max_side=v.settings.verify_decode_max_side
        )
        det, _ = v._opencv()
        faces = det.detect(img.bgr)
        rec["faces"] = [(f.size / img.scale, f.score) for f in faces]
        if not faces:
            rec["error"] = "face_not_found"
            return rec
        a = v.analyse(
            data,
            apply_gate=False,
            embedders=("sface", "dlib") if embed_dlib else ("sface",),
            need_landmarks68=embed_dlib,
        )
        rec.update(
            quality=a.quality.to_dict(),
            sface=a.vectors["sface"],
            dlib=a.vectors.get("dlib"),
            hashes=a.hashes,
            size=a.image_size,
            timings=a.timings_ms,
        )
        if a.landmarks68 is not None:
            rec["ear"] = mean_ear(a.landmarks68)
    except VerificationError as exc:
        rec["error"] = exc.code
    return rec


def variants(bgr: np.ndarray) -> dict[str, bytes]:
    """Synthetic degradations and near-copies of one photo, as JPEG bytes."""
    out: dict[str, bytes] = {}
    f = bgr.astype(np.float32)
    for k in (0.12, 0.2, 0.3, 0.45, 0.65):
        out[f"dark_{k}"] = jpeg(np.clip(f * k, 0, 255).astype(np.uint8))
    for k in (1.5, 2.0, 2.6, 3.4):
        out[f"bright_{k}"] = jpeg(np.clip(f * k, 0, 255).astype(np.uint8))
    for s in (1.0, 2.0, 3.0, 4.5):
        out[f"blur_{s}"] = jpeg(cv2.GaussianBlur(bgr, (0, 0), s))
    h, w = bgr.shape[:2]
    for side in (24, 32, 40, 48, 64, 80, 100):  # whole image scaled so the face is ~side px
        k = side / (0.45 * max(h, w))
        if k < 1:
            small = cv2.resize(
                bgr, (max(8, int(w * k)), max(8, int(h * k))), interpolation=cv2.INTER_AREA
            )
            out[f"small_{side}"] = jpeg(small)
    # near-copies for the replay defence
    out["copy_q60"] = jpeg(bgr, 60)
    out["copy_half"] = jpeg(cv2.resize(bgr, (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    cy, cx = int(h * 0.08), int(w * 0.08)
    out["copy_crop8"] = jpeg(bgr[cy : h - cy, cx : w - cx])
    out["copy_bright10"] = jpeg(np.clip(f * 1.1 + 8, 0, 255).astype(np.uint8))
    border = cv2.copyMakeBorder(
        bgr, h // 10, h // 6, w // 20, w // 20, cv2.BORDER_CONSTANT, value=(20, 20, 20)
    )
    out["copy_screenshot"] = jpeg(border, 80)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 3, 1.0)
    out["copy_rot3"] = jpeg(cv2.warpAffine(bgr, m, (w, h), borderMode=cv2.BORDER_REFLECT))
    return out


def collect(_args) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    # ratio 1.0: never refuse a second face here (the largest is measured; all sizes recorded)
    v = Verifier(checkin_min_ear=0.1, verify_second_face_ratio=1.0)
    data: dict = {"images": {}, "variants": {}}
    t0 = time.time()
    for name, root in SETS.items():
        if not root.is_dir():
            print(f"skip {name}: {root} missing")
            continue
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg"))
        for i, rel in enumerate(files):
            data["images"][(name, rel)] = measure(v, (root / rel).read_bytes())
            if i % 100 == 0:
                print(f"{name} {i}/{len(files)} {time.time() - t0:.0f}s", flush=True)
        # fixed subset for synthetic variants: the first photo of every identity folder
        firsts = sorted({str(Path(r).parent) for r in files if not r.startswith("_") and "/" in r})
        for folder in firsts:
            rel = f"{folder}/1.jpg"
            if not (root / rel).exists():
                continue
            img = Image.open(root / rel).convert("RGB")
            bgr = np.asarray(img)[:, :, ::-1].copy()
            for vname, blob in variants(bgr).items():
                data["variants"][(name, rel, vname)] = measure(v, blob, embed_dlib=False)
        print(f"{name} variants done {time.time() - t0:.0f}s", flush=True)
    with open(CACHE / "features.pkl", "wb") as fh:
        pickle.dump(data, fh)
    print(f"wrote {CACHE / 'features.pkl'} in {time.time() - t0:.0f}s")


def analyse(_args) -> None:
    from calib_report import report

    with open(CACHE / "features.pkl", "rb") as fh:
        data = pickle.load(fh)  # our own cache file
    out = report(data, SETS)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1, sort_keys=True, default=str) + "\n")
    print(f"wrote {RESULTS}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=("collect", "analyse"))
    args = ap.parse_args()
    {"collect": collect, "analyse": analyse}[args.step](args)


if __name__ == "__main__":
    main()
