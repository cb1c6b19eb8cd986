"""Measure every PAD cue on ../shared/spoof and the ordinary photo sets (shared by pad_fit.py and
pad_bench.py). The cue values are cached under ``var/pad_features.json`` (not committed: they are
derived from the photographs) and recomputed when the cue code changes.

Rows: ``file``, ``set`` (``spoof`` / ``faces`` / ``faces-asia``), ``label`` (``live`` / ``spoof``;
the ordinary photos are bona fide ``live``), ``attack`` (``live``, ``print``, ``phone_replay``,
``tablet_replay``, ``photo``), ``group`` (subject or person: the unit of the cross-validation
split), ``source`` and the cues.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from verification import Verifier  # noqa: E402
from verification import pad as P  # noqa: E402
from verification.errors import VerificationError  # noqa: E402
from verification.image import decode_image  # noqa: E402

SHARED = ROOT.parent / "shared"
SPOOF = Path(os.environ.get("ISOCHECK_SPOOF_DIR", SHARED / "spoof"))
FACES = Path(os.environ.get("ISOCHECK_FACES_DIR", SHARED / "faces"))
ASIA = Path(os.environ.get("ISOCHECK_FACES_ASIA_DIR", SHARED / "faces-asia"))
MODEL = Path(os.environ.get("ISOCHECK_PAD_MODEL_PATH", SHARED / "models" / P.PAD_MODEL_FILE))
CACHE = ROOT / "var" / "pad_features.json"


def _photo_rows() -> list[dict]:
    rows = []
    for set_name, folder in (("faces", FACES), ("faces-asia", ASIA)):
        if not folder.is_dir():
            continue
        for person in sorted(p for p in folder.iterdir() if p.is_dir() and p.name[0] != "_"):
            for f in sorted(person.glob("*.jpg")) + sorted(person.glob("*.png")):
                rows.append(
                    {
                        "file": str(f),
                        "set": set_name,
                        "label": "live",
                        "attack": "photo",
                        "group": f"{set_name}:{person.name}",
                        "source": set_name,
                    }
                )
    return rows


def _spoof_rows() -> list[dict]:
    if not (SPOOF / "manifest.csv").is_file():
        return []
    with open(SPOOF / "manifest.csv", newline="") as fh:
        return [
            {
                "file": str(SPOOF / r["file"]),
                "set": "spoof",
                "label": r["label"],
                "attack": r["attack"],
                "group": f"{r['source']}:{r['subject']}",
                "source": r["source"],
            }
            for r in csv.DictReader(fh)
        ]


#: Bump when a cue's code changes (the cache is then recomputed).
FEATURES_VERSION = "5"


def _code_version() -> str:
    return FEATURES_VERSION


def first_face(settings, detector, data: bytes):
    """(BGR photo, its first detected face) decoded under ``settings``' limits as the server
    decodes a selfie, or (None, None) when it is unusable or holds no face."""
    try:
        img = decode_image(
            data,
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            max_side=settings.verify_decode_max_side,
        )
        found = detector.detect(img.bgr)
    except VerificationError:
        return None, None
    return (img.bgr, found[0]) if found else (None, None)


def load(verbose: bool = True) -> list[dict]:
    """Every row with its cues (rows whose face is not found have ``cues`` = None)."""
    if not MODEL.is_file():
        raise SystemExit(f"PAD model not found at {MODEL} (set ISOCHECK_PAD_MODEL_PATH)")
    version = _code_version()
    if CACHE.is_file():
        cached = json.loads(CACHE.read_text())
        if cached.get("version") == version:
            return cached["rows"]
    v = Verifier()
    detector, _ = v._opencv()
    model = P.read_model(P.PAD_MODEL_FILE, P.PAD_MODEL_SHA256, MODEL)
    pad = P.PresentationAttackDetector(model, fusion=None, review_below=0.5)  # type: ignore[arg-type]
    s = v.settings
    rows = _spoof_rows() + _photo_rows()
    for i, r in enumerate(rows):
        bgr, face = first_face(s, detector, Path(r["file"]).read_bytes())
        if face is not None:
            cues, texture = pad.features(bgr, face)
            r["cues"], r["texture"] = cues, [round(float(x), 5) for x in texture]
        else:
            r["cues"] = r["texture"] = None
        if verbose and i % 200 == 0:
            print(f"  cues {i}/{len(rows)}", file=sys.stderr)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps({"version": version, "rows": rows}))
    return rows


if __name__ == "__main__":
    rows = load()
    print(f"{len(rows)} rows, {sum(r['cues'] is None for r in rows)} without a face")
