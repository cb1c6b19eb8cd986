"""Where a check-in selfie's milliseconds go: per-stage timers and a cProfile of ``verify``.

    uv run python bench/selfie_profile.py            # ~1 min: 40 webcam + 40 phone-sized selfies
    uv run python bench/selfie_profile.py --n 100

The selfies are those of ``bench/pad_bench.py``'s timing (webcam 640 x 480 live captures of
../shared/spoof; faces-asia photos resized to a 1080 px JPEG as ``bench/checkin_bench.py`` sends
them), verified with PAD on, one OpenCV thread. For each set it prints the p50 of every stage of
``timings_ms`` (wall clock) and of the whole call in CPU time of the process
(``time.process_time``: OpenVINO, the default engine, runs its inference on a thread of its own,
which the calling thread's clock — quoted before issue 12 — would miss; it hardly moves when other
processes share the cores, unlike the wall clock), then the functions that cost most (cProfile,
own time per selfie). ``--engine opencv`` profiles the OpenCV DNN path instead. Writes
``bench/results/selfie_profile.json`` (``selfie_profile_opencv.json`` for ``--engine opencv``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
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
from verification.errors import VerificationError  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def profile_set(v: Verifier, pairs: list[tuple[bytes, bytes]], top: int) -> dict:
    enrolled = []
    for enrol_b, selfie in pairs:
        try:
            enrolled.append((v.enrol(enrol_b), selfie))
        except VerificationError:
            continue
    v.verify([enrolled[0][0]], enrolled[0][1])  # warm-up
    stages: dict[str, list[float]] = {}
    cpu: list[float] = []
    prof = cProfile.Profile()
    n = 0
    for tpl, selfie in enrolled:
        c0 = time.process_time()
        prof.enable()
        try:
            r = v.verify([tpl], selfie)
        except VerificationError:
            continue
        finally:
            prof.disable()
        cpu.append((time.process_time() - c0) * 1000)
        n += 1
        for k, ms in r.timings_ms.items():
            stages.setdefault(k, []).append(ms)
    st = pstats.Stats(prof)
    rows = []
    for (file, line, func), (_cc, _nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        name = func if file == "~" else f"{Path(file).name}:{line}({func})"
        rows.append({"function": name, "own_ms": tt * 1000 / n, "cum_ms": ct * 1000 / n})
    rows.sort(key=lambda r: r["own_ms"], reverse=True)
    return {
        "n": n,
        "stage_p50_ms": {k: float(np.median(x)) for k, x in stages.items()},
        "cpu_total_p50_ms": float(np.median(cpu)),
        "top_own_time": rows[:top],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=40, help="selfies per set")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--engine", choices=["openvino", "opencv"], default="openvino")
    args = ap.parse_args()
    if not os.environ.get("ISOCHECK_PAD_MODEL_PATH"):
        os.environ["ISOCHECK_PAD_MODEL_PATH"] = str(pad_features.MODEL)
    cv2.setNumThreads(1)
    v = Verifier(inference_engine=args.engine).load()
    load0 = os.getloadavg()[0]
    pairs = pad_bench._selfie_pairs(pad_bench.spoof_groups(), pad_bench.photo_groups())
    out = {
        "threads": 1,
        "pad_state": v.pad_status()["state"],
        "engine": v.engine_status(),
        "clock": "time.process_time (whole process: OpenVINO infers on its own thread)",
        "settings": {
            "verify_detect_max_side": v.settings.verify_detect_max_side,
            "verify_detect_coarse_side": v.settings.verify_detect_coarse_side,
        },
        "sets": {name: profile_set(v, ps[: args.n], args.top) for name, ps in pairs.items()},
    }
    out["load_average"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    # peak resident memory of this process (one thread's models, PAD on): what a worker holds
    out["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    RESULTS.mkdir(exist_ok=True)
    name = "selfie_profile.json" if args.engine == "openvino" else "selfie_profile_opencv.json"
    (RESULTS / name).write_text(json.dumps(out, indent=2))
    print(
        f"engine {args.engine}; load average {out['load_average'][0]} -> "
        f"{out['load_average'][1]} (2 cores); peak RSS {out['max_rss_mib']} MiB"
    )
    for name, r in out["sets"].items():
        stages = " | ".join(f"{k} {ms:.1f}" for k, ms in r["stage_p50_ms"].items())
        print(f"\n{name}, n={r['n']}: wall p50 ms: {stages}; CPU p50 {r['cpu_total_p50_ms']:.1f}")
        print("| function | own ms / selfie | cumulative |")
        print("|---|---:|---:|")
        for row in r["top_own_time"]:
            print(f"| {row['function']} | {row['own_ms']:.2f} | {row['cum_ms']:.2f} |")


if __name__ == "__main__":
    main()
