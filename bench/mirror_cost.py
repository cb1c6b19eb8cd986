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

from pad_features import first_face  # noqa: E402

from verification import Verifier  # noqa: E402
from verification.embedding import mirror_average  # noqa: E402

ROOT = Path(os.environ.get("ISOCHECK_FACES_ASIA_DIR", REPO.parent / "shared" / "faces-asia"))
N = 40


def first_faces(v: Verifier, root: Path = ROOT, n: int = N) -> list[tuple]:
    """(BGR photo, first face) of the first ``n`` photos of ``root`` with a face, decoded as the
    server decodes a selfie (:func:`pad_features.first_face`)."""
    detector, _ = v._opencv()
    found = []
    for photo in sorted(root.glob("*/*.jpg")):
        bgr, face = first_face(v.settings, detector, photo.read_bytes())
        if face is not None:
            found.append((bgr, face))
        if len(found) == n:
            break
    return found


def cpu_ms_p50(fn, items: list[tuple]) -> float:
    """Median over ``items`` of the best of 3 calls ``fn(*item)``, in process CPU ms (OpenVINO
    infers on its own thread: a thread clock would miss it)."""
    per = []
    for item in items:
        best = float("inf")
        for _ in range(3):
            t = time.process_time()
            fn(*item)
            best = min(best, time.process_time() - t)
        per.append(best * 1000)
    return float(np.median(per))


def main() -> None:
    cv2.setNumThreads(1)
    v = Verifier(pad_model_path=None)
    s = v.settings
    _, sface = v._opencv()
    crops = [(sface.align(bgr, face),) for bgr, face in first_faces(v)]
    sface.embed(crops[0][0])  # warm-up
    engine = s.inference_engine
    out: dict = {"crops": len(crops), "engine": engine, "threads": 1, "clock": "process_time"}
    for name, fn in (("plain", sface.embed), ("mirror", lambda c: mirror_average(sface.embed, c))):
        out[f"{name}_ms_cpu_p50"] = cpu_ms_p50(fn, crops)
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
