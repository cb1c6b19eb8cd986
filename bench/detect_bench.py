"""Face verification accuracy with the coarse detection pass off and on (issue 12).

    uv run python bench/detect_bench.py      # ~3 min per setting on 2 idle cores

Per setting of ``verify_detect_coarse_side`` (0 = off, and the shipped default), SFace vectors of
every photo ungated (PAD off: it does not change the vector) on

* ``faces``: the native photos of ../shared/faces (pairs.csv);
* ``faces-asia phone``: every ../shared/faces-asia photo resized to a 1080 px JPEG q90
  (``checkin_bench.phone_sized``, what the phone app sends; pairs.csv);
* ``webcam live``: the live captures of ../shared/spoof (NUAA 640 x 480, Replay-Attack
  320 x 240); genuine = each subject's first capture against its others, impostor = first
  captures of two subjects.

Prints, per set and setting: photos refused at detection, genuine auto-match (distance <= the
accept threshold) and FMR on the pairs both settings found and on all pairs, the median genuine
distance, and how many photos the coarse pass answered. Writes ``bench/results/detect_bench.json``.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from checkin_bench import phone_sized  # noqa: E402

from verification import VerificationError, Verifier  # noqa: E402
from verification import calibrate as C  # noqa: E402
from verification.face_models import COARSE_MIN_FACE  # noqa: E402

SHARED = ROOT.parent / "shared"
FACES = Path(os.environ.get("ISOCHECK_FACES_DIR", SHARED / "faces"))
ASIA = Path(os.environ.get("ISOCHECK_FACES_ASIA_DIR", SHARED / "faces-asia"))
SPOOF = Path(os.environ.get("ISOCHECK_SPOOF_DIR", SHARED / "spoof"))
RESULTS = ROOT / "bench" / "results"


def photo_sets() -> dict[str, tuple[dict[str, bytes], list[tuple[str, str, bool]]]]:
    """set -> ({photo: bytes}, [(photo, photo, same person)])."""
    out = {}
    for name, root, read in (
        ("faces", FACES, lambda p: p.read_bytes()),
        ("faces-asia phone", ASIA, phone_sized),
    ):
        if not (root / "pairs.csv").is_file():
            continue
        pairs = C.load_pairs(root / "pairs.csv")
        photos = sorted({p.img1 for p in pairs} | {p.img2 for p in pairs})
        out[name] = (
            {im: read(root / im) for im in photos},
            [(p.img1, p.img2, bool(p.same)) for p in pairs],
        )
    if (SPOOF / "manifest.csv").is_file():
        with open(SPOOF / "manifest.csv", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["label"] == "live"]
        by_subject: dict[str, list[str]] = {}
        for r in rows:
            by_subject.setdefault(f"{r['source']}:{r['subject']}", []).append(r["file"])
        groups = [sorted(v) for _, v in sorted(by_subject.items())]
        pairs_l = [(g[0], f, True) for g in groups for f in g[1:]]
        pairs_l += [(a[0], b[0], False) for i, a in enumerate(groups) for b in groups[i + 1 :]]
        out["webcam live"] = ({f: (SPOOF / f).read_bytes() for g in groups for f in g}, pairs_l)
    return out


def vectors(v: Verifier, photos: dict[str, bytes]) -> tuple[dict[str, np.ndarray], int]:
    """(photo -> SFace vector, photos the coarse pass answered)."""
    detector, _ = v._opencv()
    out, coarse = {}, 0
    for name, data in photos.items():
        try:
            a = v.analyse(data, apply_gate=False, with_pad=False)
        except VerificationError:
            continue
        out[name] = a.vectors["sface"]
        long = max(a.image_size) * max(1e-9, a.face.size) / max(1e-9, a.quality.face_px)
        if (
            detector.coarse_side
            and long > detector.max_side
            and a.face.size * detector.coarse_side / long >= COARSE_MIN_FACE
        ):
            coarse += 1
    return out, coarse


def rates(vecs, pairs, accept: float) -> dict:
    gen = [1 - float(np.dot(vecs[a], vecs[b])) for a, b, same in pairs if same]
    imp = [1 - float(np.dot(vecs[a], vecs[b])) for a, b, same in pairs if not same]
    g, i = np.array(gen), np.array(imp)
    return {
        "genuine_pairs": len(g),
        "impostor_pairs": len(i),
        "genuine_auto_match": float((g <= accept).mean()) if len(g) else None,
        "fmr": float((i <= accept).mean()) if len(i) else None,
        "genuine_median_distance": float(np.median(g)) if len(g) else None,
    }


def main() -> None:
    cv2.setNumThreads(1)
    default = Verifier(pad_model_path=None).settings.verify_detect_coarse_side
    settings = {"off": 0, f"on ({default} px)": default}
    sets = photo_sets()
    load0 = os.getloadavg()[0]
    res: dict = {"coarse_min_face": COARSE_MIN_FACE, "sets": {}}
    for set_name, (photos, pairs) in sets.items():
        per: dict = {}
        vecs_of = {}
        for label, side in settings.items():
            v = Verifier(pad_model_path=None, verify_detect_coarse_side=side)
            vecs, coarse = vectors(v, photos)
            vecs_of[label] = vecs
            per[label] = {"photos": len(photos), "refused": len(photos) - len(vecs)}
            per[label]["coarse_answered"] = coarse
            per[label]["all_pairs"] = rates(
                vecs, [p for p in pairs if p[0] in vecs and p[1] in vecs], v.thresholds()[0]
            )
        common = [p for p in pairs if all(p[0] in x and p[1] in x for x in vecs_of.values())]
        for label in settings:
            per[label]["common_pairs"] = rates(vecs_of[label], common, v.thresholds()[0])
        res["sets"][set_name] = per
    res["load_average"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "detect_bench.json").write_text(json.dumps(res, indent=2))
    print(
        f"load average {res['load_average']}; coarse pass answers for a face >= "
        f"{COARSE_MIN_FACE} px in the coarse copy"
    )
    print(
        "| set | coarse pass | photos answered by it | refused at detection | genuine auto-match "
        "(common pairs) | FMR (common) | median genuine distance (common) | genuine auto-match "
        "(all found) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for set_name, per in res["sets"].items():
        for label, r in per.items():
            c, a = r["common_pairs"], r["all_pairs"]
            print(
                f"| {set_name} | {label} | {r['coarse_answered']} | {r['refused']} / {r['photos']} "
                f"| {c['genuine_auto_match']:.1%} ({c['genuine_pairs']}) | {c['fmr']:.2%} | "
                f"{c['genuine_median_distance']:.4f} | {a['genuine_auto_match']:.1%} "
                f"({a['genuine_pairs']}) |"
            )


if __name__ == "__main__":
    main()
