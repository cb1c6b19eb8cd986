"""What the PAD stage changes for check-ins: attacks auto-accepted and genuine auto-matches lost.

    cd /work/main && uv run python bench/pad_bench.py

1. ../shared/spoof, per source and attack kind: each subject enrolled from one live capture,
   every other live capture and every attack of the subject verified. ``match`` without PAD is the
   face decision of a Verifier with PAD off; ``match`` with PAD additionally needs the fused PAD
   score >= the threshold of verification/pad_fusion.json, where the score is taken OUT OF FOLD
   (bench/pad_fit.py's subject-disjoint cross-validation), so no photo is scored by a fusion that
   saw its subject.
2. ../shared/faces and ../shared/faces-asia: per person, enrolled from the first photo, each other
   photo verified; genuine auto-match without / with PAD (out-of-fold score) and photos flagged.
3. Milliseconds (one core, cv2.setNumThreads(1)): the PAD stage and the whole verify, p50 / p95,
   with PAD on (the deployed fusion) and off, on ~100 webcam selfies (640 x 480, Replay-Attack
   and NUAA live captures) and on ~100 phone-sized selfies (faces-asia photos resized to a
   1080 px JPEG, as bench/checkin_bench.py sends them). ``--timing-only`` runs just this part
   (the timing needs an idle machine; the rest does not). Also the CPU time of the process
   (``time.process_time``: OpenVINO runs its inference on a thread of its own, so the calling
   thread's clock, which earlier runs quoted, would miss it; with the OpenCV engine both clocks
   agree), which a busy machine moves far less than the wall clock, and the load average before
   and after. Each engine of ``--engines`` (default ``opencv,openvino``: before / after issue 12's
   OpenVINO switch) is timed on the same selfies, interleaved selfie by selfie, so both see the
   same load.

Writes ``bench/results/pad_bench.json`` (``--timing-only`` updates only its ``timing``: the
default engine's, and ``timing_by_engine``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pad_features  # noqa: E402
import pad_fit  # noqa: E402
from checkin_bench import phone_sized  # noqa: E402

from verification import Verifier  # noqa: E402
from verification.errors import VerificationError  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TIMING_N = 100


def oof_scores() -> tuple[dict[str, float], float]:
    X, y, w, rows = pad_fit.matrix(pad_features.load())
    oof = pad_fit.cross_validate(X, y, w, rows)
    fusion = json.loads((ROOT / "verification" / "pad_fusion.json").read_text())
    return {r["file"]: float(s) for r, s in zip(rows, oof, strict=True)}, float(fusion["threshold"])


def template(v: Verifier, data: bytes):
    """(template, how): the enrolment template, or one from an ungated analysis when the
    enrolment gate refuses the photo; (None, code) when no face is usable at all."""
    try:
        return v.enrol(data), "enrol"
    except VerificationError:
        pass
    try:
        a = v.analyse(data, purpose="checkin", apply_gate=False, with_pad=False)
    except VerificationError as e:
        return None, e.code
    return v._template(a, source="enrolment"), "analyse"


def run_groups(v: Verifier, groups: dict, oof: dict[str, float], t: float, key_of) -> dict:
    """groups: group -> [(file, kind)], the first ``live``/``photo`` file enrols. Tallies per
    key_of(group, kind)."""
    tally: dict[str, dict] = defaultdict(
        lambda: {
            "n": 0,
            "refused": 0,
            "match_no_pad": 0,
            "match_with_pad": 0,
            "pad_flagged": 0,
            "no_pad_score": 0,
        }
    )
    enrol_how: dict[str, int] = defaultdict(int)
    for g, items in groups.items():
        tpl, rest = None, list(items)
        while rest and tpl is None:
            idx = next((i for i, (_, k) in enumerate(rest) if k in ("live", "photo")), None)
            if idx is None:
                break
            f, _ = rest.pop(idx)
            tpl, how = template(v, Path(f).read_bytes())
            enrol_how[how] += 1
        if tpl is None:
            continue
        for f, kind in rest:
            c = tally[key_of(g, kind)]
            c["n"] += 1
            s = oof.get(f)
            if s is None:
                c["no_pad_score"] += 1
            elif s < t:
                c["pad_flagged"] += 1
            try:
                r = v.verify([tpl], Path(f).read_bytes())
            except VerificationError:
                c["refused"] += 1
                continue
            if r.decision == "match":
                c["match_no_pad"] += 1
                if s is None or s >= t:
                    c["match_with_pad"] += 1
    for c in tally.values():
        n = max(c["n"], 1)
        c["match_no_pad_share"] = c["match_no_pad"] / n
        c["match_with_pad_share"] = c["match_with_pad"] / n
        c["pad_flagged_share"] = c["pad_flagged"] / n
    return {"by_kind": dict(sorted(tally.items())), "enrolled": dict(enrol_how)}


def spoof_groups() -> dict:
    groups: dict[str, list] = defaultdict(list)
    for r in pad_features._spoof_rows():
        groups[r["group"]].append((r["file"], r["attack"]))
    return groups


def photo_groups() -> dict:
    groups: dict[str, list] = defaultdict(list)
    for r in pad_features._photo_rows():
        groups[r["group"]].append((r["file"], "photo"))
    return groups


def _selfie_pairs(spoof: dict, photos: dict) -> dict[str, list[tuple[bytes, bytes]]]:
    """(enrolment bytes, selfie bytes) pairs of the same person: webcam and phone-sized."""
    out: dict[str, list[tuple[bytes, bytes]]] = {"webcam 640x480": [], "phone 1080 px": []}
    lists = [
        ("webcam 640x480", spoof, lambda f: Path(f).read_bytes()),
        ("phone 1080 px", photos, lambda f: phone_sized(Path(f))),
    ]
    for name, groups, read in lists:
        items = [
            [f for f, k in g if k in ("live", "photo")]
            for key, g in sorted(groups.items())
            if not key.startswith("faces:")
        ]
        items = [x for x in items if len(x) >= 2]
        i = 1
        while len(out[name]) < TIMING_N and i < 50:
            for files in items:
                if i < len(files) and len(out[name]) < TIMING_N:
                    out[name].append((Path(files[0]).read_bytes(), read(files[i])))
            i += 1
    return out


def timings(spoof: dict, photos: dict, engines: tuple[str, ...] = ("openvino",)) -> dict:
    """engine -> the timing of part 3 (see the module's docstring), all engines interleaved."""
    cv2.setNumThreads(1)
    from pad_region_delta import whole_photo_copy

    from verification import pad as pad_module

    region_copy, shared_crops = pad_module.working_copy, pad_module.Crops

    class EachCropCut(pad_module.Crops):
        """Every square cut anew on each call, as square_crop did before Crops."""

        def __call__(self, scale: float, side: int) -> np.ndarray:
            return pad_module.square_crop(self.bgr, self.box, scale, side)

    # "<engine>:before" times the PAD stage of before issue 12b (121ed0d: the whole photo
    # resized once, pad_region_delta.whole_photo_copy, and every crop cut anew) on the same
    # selfies, interleaved with the others: the same numbers as that tree's
    before = {e: e.endswith(":before") for e in engines}
    copy_of = {e: whole_photo_copy if before[e] else region_copy for e in engines}
    crops_of = {e: EachCropCut if before[e] else shared_crops for e in engines}
    engine_of = {e: e.split(":", 1)[0] for e in engines}
    on = {e: Verifier(inference_engine=engine_of[e]).load() for e in engines}
    off = {e: Verifier(pad_model_path=None, inference_engine=engine_of[e]).load() for e in engines}
    first = engines[0]
    res: dict = {
        e: {
            "threads": 1,
            "engine": on[e].engine_status(),
            "pad_state": on[e].pad_status()["state"],
            "clock": "time.process_time (whole process: OpenVINO infers on its own thread)",
            "sets": {},
        }
        for e in engines
    }
    load0 = os.getloadavg()[0]
    for name, pairs in _selfie_pairs(spoof, photos).items():
        keys = ("pad", "total_on", "total_off", "cpu_on", "cpu_off", "cpu_pad")
        xs: dict = {e: {k: [] for k in keys} for e in engines}
        warm = True
        for enrol_b, selfie in pairs:
            try:
                tpl = off[first].enrol(enrol_b)
            except VerificationError:
                continue
            for e in engines:
                pad_module.working_copy = copy_of[e]  # type: ignore[assignment]
                pad_module.Crops = crops_of[e]  # type: ignore[misc]
                try:
                    if warm:
                        on[e].verify([tpl], selfie)
                        off[e].verify([tpl], selfie)
                    c0 = time.process_time()
                    r_off = off[e].verify([tpl], selfie)
                    c1 = time.process_time()
                    r_on = on[e].verify([tpl], selfie)
                    c2 = time.process_time()
                except VerificationError:
                    break
                x = xs[e]
                x["pad"].append(r_on.timings_ms["pad"])
                x["total_on"].append(r_on.timings_ms["total"])
                x["total_off"].append(r_off.timings_ms["total"])
                x["cpu_off"].append((c1 - c0) * 1000)
                x["cpu_on"].append((c2 - c1) * 1000)
                x["cpu_pad"].append((c2 - c1 - (c1 - c0)) * 1000)
            warm = False

        def pct(xs):
            return {"p50": float(np.percentile(xs, 50)), "p95": float(np.percentile(xs, 95))}

        for e in engines:
            x = xs[e]
            res[e]["sets"][name] = {
                "n": len(x["pad"]),
                "pad_ms": pct(x["pad"]),
                "verify_with_pad_ms": pct(x["total_on"]),
                "verify_without_pad_ms": pct(x["total_off"]),
                "verify_with_pad_cpu_ms": pct(x["cpu_on"]),
                "verify_without_pad_cpu_ms": pct(x["cpu_off"]),
                # p50 of each selfie's own (with - without): steadier than the p50s' difference
                "pad_adds_cpu_ms_paired": pct(x["cpu_pad"]),
            }
    pad_module.working_copy, pad_module.Crops = region_copy, shared_crops  # type: ignore[misc]
    load = [round(load0, 2), round(os.getloadavg()[0], 2)]
    for e in engines:
        res[e]["load_average"] = load
        res[e]["pad_stage"] = "before (121ed0d)" if before[e] else "this tree"
    return res


def print_timing(res: dict) -> None:
    load = res.get("load_average", ["?", "?"])
    engine = res.get("engine", {}).get("engine", "opencv")
    print(
        f"\nms, one core, engine {engine}, PAD stage of {res.get('pad_stage', 'this tree')} "
        f"(PAD {res['pad_state']}; "
        f"load average {load[0]} -> {load[1]}):"
    )
    print(
        "| selfies | n | PAD p50 / p95 | verify without PAD p50 / p95 | with PAD p50 / p95 "
        "| CPU time without / with PAD p50 | PAD adds, paired p50 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in res["sets"].items():
        print(
            f"| {name} | {r['n']} | {r['pad_ms']['p50']:.1f} / {r['pad_ms']['p95']:.1f} | "
            f"{r['verify_without_pad_ms']['p50']:.1f} / {r['verify_without_pad_ms']['p95']:.1f} | "
            f"{r['verify_with_pad_ms']['p50']:.1f} / {r['verify_with_pad_ms']['p95']:.1f} | "
            f"{r['verify_without_pad_cpu_ms']['p50']:.1f} / "
            f"{r['verify_with_pad_cpu_ms']['p50']:.1f} | "
            f"{r.get('pad_adds_cpu_ms_paired', {}).get('p50', float('nan')):.1f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timing-only", action="store_true", help="only the milliseconds (part 3)")
    ap.add_argument(
        "--engines",
        default="opencv,openvino",
        help="inference engines to time, comma-separated (the last one is `timing`); "
        "`openvino:before` = with the PAD stage of 121ed0d (whole-photo copy, crops cut anew)",
    )
    args = ap.parse_args()
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    if not os.environ.get("ISOCHECK_PAD_MODEL_PATH"):
        os.environ["ISOCHECK_PAD_MODEL_PATH"] = str(pad_features.MODEL)
    out_file = RESULTS / "pad_bench.json"
    if args.timing_only:
        by_engine = timings(spoof_groups(), photo_groups(), engines)
        out = json.loads(out_file.read_text()) if out_file.is_file() else {}
        out["timing"] = by_engine[engines[-1]]
        out["timing_by_engine"] = by_engine
        RESULTS.mkdir(exist_ok=True)
        out_file.write_text(json.dumps(out, indent=2))
        for res_ms in by_engine.values():
            print_timing(res_ms)
        return
    oof, t = oof_scores()
    v0 = Verifier(pad_model_path=None)
    spoof = spoof_groups()
    src_of = {g: g.split(":", 1)[0] for g in spoof}
    res_spoof = run_groups(v0, spoof, oof, t, lambda g, k: f"{src_of[g]}/{k}")
    res_photos = run_groups(v0, photo_groups(), oof, t, lambda g, k: g.split(":", 1)[0])
    by_engine = timings(spoof, photo_groups(), engines)
    res_ms = by_engine[engines[-1]]
    out = {
        "threshold": t,
        "pad_score": "out of fold (bench/pad_fit.py cross_validate, subject-disjoint, 5 folds)",
        "spoof": res_spoof,
        "photos": res_photos,
        "timing": res_ms,
        "timing_by_engine": by_engine,
    }
    RESULTS.mkdir(exist_ok=True)
    out_file.write_text(json.dumps(out, indent=2))

    print(f"PAD threshold {t:.4f} (out-of-fold scores); 'match' = auto-accepted\n")
    print("| set / kind | n | refused | match without PAD | match with PAD | PAD flagged |")
    print("|---|---:|---:|---:|---:|---:|")
    for res in (res_spoof, res_photos):
        for k, c in res["by_kind"].items():
            print(
                f"| {k} | {c['n']} | {c['refused']} | {c['match_no_pad_share']:.1%} | "
                f"{c['match_with_pad_share']:.1%} | {c['pad_flagged_share']:.1%} |"
            )
    print(f"\nenrolled: spoof {res_spoof['enrolled']}, photos {res_photos['enrolled']}")
    for r in by_engine.values():
        print_timing(r)


if __name__ == "__main__":
    main()
