"""Each network on each inference engine: milliseconds of one call, and how far the answers differ.

    uv run python bench/engine_bench.py            # ~1 min

On faces-asia photos (~250 px) and webcam frames (640 x 480: the live captures of
../shared/spoof), decoded as a check-in decodes them, with the PAD model of ../shared/models:
YuNet (one detection pass on the <= 640 px copy, pre- and post-processing included), SFace
(``embed`` of the aligned crop) and MiniFASNet (``logit`` of the PAD crop), with
``ISOCHECK_INFERENCE_ENGINE`` = opencv and openvino, one thread, interleaved call by call. Time is
process CPU (``time.process_time``: OpenVINO infers on its own thread), p50 over the photos; the
differences are the largest over all photos (SFace: 1 - cosine; YuNet: px of boxes and
landmarks; PAD: the logit). Also the load average. Writes ``bench/results/engine_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from verification import VerificationError, Verifier  # noqa: E402
from verification.image import decode_image  # noqa: E402
from verification.pad import working_copy  # noqa: E402

ASIA = ROOT.parent / "shared" / "faces-asia"
WEBCAM = ROOT.parent / "shared" / "spoof" / "live"
PAD_MODEL = ROOT.parent / "shared" / "models" / "minifasnetv2se_128.onnx"
ENGINES = ("opencv", "openvino")


def cpu_ms(fn, *args):
    c0 = time.process_time()
    out = fn(*args)
    return (time.process_time() - c0) * 1000, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=60, help="photos")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    pad = PAD_MODEL if PAD_MODEL.is_file() else None
    vs = {e: Verifier(inference_engine=e, pad_model_path=pad).load() for e in ENGINES}
    sets = {
        "faces-asia": sorted(p for p in ASIA.glob("*/*") if p.suffix.lower() in (".jpg", ".png")),
        "webcam 640x480": sorted(WEBCAM.glob("*.jpg")),
    }
    sets = {k: v[:: max(1, len(v) // args.n)][: args.n] for k, v in sets.items()}
    ms: dict = {s: {e: {"yunet": [], "sface": [], "pad": []} for e in ENGINES} for s in sets}
    diff = {"sface_1_minus_cosine": 0.0, "yunet_px": 0.0, "pad_logit": 0.0, "faces_differ": 0}
    load0 = os.getloadavg()[0]
    for set_name, files in sets.items():
        measure_set(vs, files, ms[set_name], diff)
    out = {
        "photos": {k: len(v) for k, v in sets.items()},
        "clock": "time.process_time, p50 ms per call",
        "engines": {e: vs[e].engine_status() for e in ENGINES},
        "ms_p50": {
            s: {
                e: {k: (float(np.median(x)) if x else None) for k, x in d.items()}
                for e, d in m.items()
            }
            for s, m in ms.items()
        },
        "max_difference": diff,
        "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "engine_bench.json").write_text(json.dumps(out, indent=2))
    print(
        f"photos {out['photos']}; load average {out['load_average'][0]} -> {out['load_average'][1]}"
    )
    print("| photos | network | opencv ms | openvino ms |")
    print("|---|---|---:|---:|")
    for s, m in out["ms_p50"].items():
        for k in ("yunet", "sface", "pad"):
            a, b = m["opencv"][k], m["openvino"][k]
            if a is not None:
                print(f"| {s} | {k} | {a:.1f} | {b:.1f} |")
    print("largest differences:", json.dumps(diff))


def measure_set(vs: dict, files: list[Path], ms: dict, diff: dict) -> None:
    for warm in (True, False):
        for f in files[:3] if warm else files:
            img = decode_image(f.read_bytes(), max_bytes=10**8, max_pixels=10**8, max_side=720).bgr
            got: dict[str, dict] = {}
            for e, v in vs.items():
                det, sface = v._opencv()
                t_det, faces = cpu_ms(det._detect_at, img, v.settings.verify_detect_max_side)
                if not faces:
                    got[e] = {"faces": faces}
                    continue
                aligned = sface.align(img, faces[0])
                t_emb, vec = cpu_ms(sface.embed, aligned)
                t_pad, logit = 0.0, None
                p = v._pad()
                if p._model is not None:
                    small, face = working_copy(img, faces[0])
                    t_pad, logit = cpu_ms(p._model.logit, small, face)
                got[e] = {"faces": faces, "vec": vec, "logit": logit}
                if not warm:
                    ms[e]["yunet"].append(t_det)
                    ms[e]["sface"].append(t_emb)
                    if logit is not None:
                        ms[e]["pad"].append(t_pad)
            a, b = got["opencv"], got["openvino"]
            if len(a["faces"]) != len(b["faces"]):
                diff["faces_differ"] += 1
                continue
            if not a["faces"]:
                continue
            for fa, fb in zip(a["faces"], b["faces"], strict=True):
                px = max(
                    float(np.abs(np.subtract(fa.box, fb.box)).max()),
                    float(np.abs(fa.landmarks - fb.landmarks).max()),
                )
                diff["yunet_px"] = max(diff["yunet_px"], px)
            cos = float(np.dot(a["vec"], b["vec"]))
            diff["sface_1_minus_cosine"] = max(diff["sface_1_minus_cosine"], 1.0 - cos)
            if a["logit"] is not None:
                diff["pad_logit"] = max(diff["pad_logit"], abs(a["logit"] - b["logit"]))


if __name__ == "__main__":
    try:
        main()
    except VerificationError as exc:
        sys.exit(f"{exc.code}: {exc.message}")
