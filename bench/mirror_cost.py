"""CPU cost of the mirror-averaged SFace vector against the plain one (issue 16).

    uv run python bench/mirror_cost.py          # ~1 min on one core

Aligns 40 faces of ``ISOCHECK_FACES_ASIA_DIR`` once, then times ``SFaceEmbedder.embed`` and
:func:`verification.embedding.mirror_average` on them (the configured engine,
``ISOCHECK_INFERENCE_ENGINE``: openvino by default, opencv; one thread), as CPU time of the whole
process (``time.process_time``: OpenVINO infers on a thread of its own), median over the crops of
the best of 3 rounds. Writes the engine's entry of ``bench/results/mirror_cost.json`` with the
load average.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verification import VerificationError, Verifier  # noqa: E402
from verification.embedding import mirror_average  # noqa: E402
from verification.image import decode_image  # noqa: E402

ROOT = Path(os.environ.get("ISOCHECK_FACES_ASIA_DIR", REPO.parent / "shared" / "faces-asia"))
N = 40


def main() -> None:
    cv2.setNumThreads(1)
    v = Verifier(pad_model_path=None)
    s = v.settings
    detector, sface = v._opencv()
    crops = []
    for photo in sorted(ROOT.glob("*/*.jpg")):
        try:
            img = decode_image(
                photo.read_bytes(),
                max_bytes=s.max_image_bytes,
                max_pixels=s.max_image_pixels,
                max_side=s.verify_decode_max_side,
            )
        except VerificationError:
            continue
        faces = detector.detect(img.bgr)
        if faces:
            crops.append(sface.align(img.bgr, faces[0]))
        if len(crops) == N:
            break
    sface.embed(crops[0])  # warm-up
    engine = s.inference_engine
    out: dict = {"crops": len(crops), "engine": engine, "threads": 1, "clock": "process_time"}
    for name, fn in (("plain", sface.embed), ("mirror", lambda c: mirror_average(sface.embed, c))):
        per = []
        for c in crops:
            best = float("inf")
            for _ in range(3):
                t = time.process_time()
                fn(c)
                best = min(best, time.process_time() - t)
            per.append(best * 1000)
        out[f"{name}_ms_cpu_p50"] = float(np.median(per))
    out["extra_ms_cpu_p50"] = out["mirror_ms_cpu_p50"] - out["plain_ms_cpu_p50"]
    out["load_average"] = os.getloadavg()
    path = REPO / "bench" / "results" / "mirror_cost.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if "engine" in results:  # the first run's flat layout (OpenCV, thread clock)
        results = {"opencv": results}
    results[engine] = out
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
