"""Benchmark of face verification: latency, accuracy and memory, against face_recognition's README.

    uv run python bench/verify_bench.py            # full run, ~6 min on 2 idle cores
    uv run python bench/verify_bench.py --quick    # ~1 min, small subsets

Measures, in one process, on the photos at their native sizes:

1. per-selfie latency p50/p95 of ``Verifier.verify`` for each embedder (one OpenCV thread, so
   "one core") on *phone-sized* selfies (every identity photo of ISOCHECK_FACES_DIR whose long
   side is >= 1080 px, re-encoded at 1440 px long side, JPEG q90 — what a phone app uploads) and on
   *large* photos (native, >= 1500 px wide), against the same bytes through face_recognition as its
   README shows (``load_image_file`` + ``face_encodings``, default HOG detection), and the ratio;
2. throughput with 1 and 2 threads sharing one Verifier (per-thread OpenCV objects) and with
   2 threads behind one lock;
3. accuracy of each embedder on both pairs.csv (thresholds from the settings), and of
   README usage (tolerance 0.6) on faces-asia (``no_face`` counts photos refused at detection:
   no face, or ``multiple_faces``; their pairs are skipped);
4. resident memory (RSS) of a loaded verifier.

Prints a table and writes ``bench/results/verify_bench.json`` (``verify_bench.quick.json`` with
``--quick``). The load average at start and end is recorded: numbers taken on a busy machine
are not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verification import VerificationError, Verifier  # noqa: E402
from verification import calibrate as C  # noqa: E402
from verification.face_models import DISTANCES  # noqa: E402

FACES = Path(os.environ.get("ISOCHECK_FACES_DIR", REPO.parent / "shared" / "faces"))
ASIA = Path(os.environ.get("ISOCHECK_FACES_ASIA_DIR", REPO.parent / "shared" / "faces-asia"))
RESULTS = REPO / "bench" / "results"


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def identity_photos(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*.jpg") if not p.parent.name.startswith("_"))


def phone_sized(paths: list[Path], long_side: int = 1440) -> list[tuple[str, bytes]]:
    """Photos with long side >= 1080 px re-encoded at ``long_side`` px, JPEG q90."""
    out = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None or max(img.shape[:2]) < 1080:
            continue
        k = long_side / max(img.shape[:2])
        img = cv2.resize(
            img, None, fx=k, fy=k, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
        )
        out.append(
            (
                str(p.relative_to(FACES)),
                cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes(),
            )
        )
    return out


def large(paths: list[Path]) -> list[tuple[str, bytes]]:
    """Native photos at least 1500 px wide."""
    out = []
    for p in paths:
        img_hdr = cv2.imread(str(p), cv2.IMREAD_REDUCED_GRAYSCALE_8)
        if img_hdr is not None and img_hdr.shape[1] * 8 >= 1500:
            out.append((str(p.relative_to(FACES)), p.read_bytes()))
    return out


def time_verify(v: Verifier, template, photos) -> dict:
    ms, refused = [], {}
    for _, data in photos:
        t = time.perf_counter()
        try:
            v.verify([template], data)
        except VerificationError as exc:
            refused[exc.code] = refused.get(exc.code, 0) + 1
        ms.append((time.perf_counter() - t) * 1000)
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "refused": refused}


def time_readme(photos, tmpdir: Path) -> dict:
    """face_recognition exactly as its README: load_image_file + face_encodings (+ compare)."""
    import face_recognition

    known = None
    ms, no_face = [], 0
    for _name, data in photos:
        path = tmpdir / "selfie.jpg"
        path.write_bytes(data)
        t = time.perf_counter()
        image = face_recognition.load_image_file(str(path))
        encodings = face_recognition.face_encodings(image)
        if encodings and known is not None:
            face_recognition.compare_faces([known], encodings[0])
        ms.append((time.perf_counter() - t) * 1000)
        if not encodings:
            no_face += 1
        elif known is None:
            known = encodings[0]
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "no_face": no_face}


def throughput(v: Verifier, template, photos, threads: int, lock: threading.Lock | None) -> float:
    """Selfies per second with ``threads`` threads sharing ``v`` (optionally behind ``lock``)."""
    work = list(photos) * 2
    idx = iter(range(len(work)))
    guard = threading.Lock()

    def run():
        while True:
            with guard:
                i = next(idx, None)
            if i is None:
                return
            try:
                if lock:
                    with lock:
                        v.verify([template], work[i][1])
                else:
                    v.verify([template], work[i][1])
            except VerificationError:
                pass

    ts = [threading.Thread(target=run) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return len(work) / (time.perf_counter() - t0)


def accuracy(v: Verifier, root: Path, embedder: str, step: int) -> dict:
    pairs = C.load_pairs(root / "pairs.csv")
    images = sorted({p.img1 for p in pairs} | {p.img2 for p in pairs})[::step]
    keep = set(images)
    pairs = [p for p in pairs if p.img1 in keep and p.img2 in keep]
    emb = C.embed_images(
        images,
        root,
        lambda d: v.analyse(d, apply_gate=False, embedders=(embedder,)).vectors[embedder],
    )
    g, i, skipped = C.pair_distances(pairs, emb.vectors, DISTANCES[embedder])
    accept, review = v.thresholds(embedder)
    fmr, fnmr = C.rates(g, i, accept)
    return {
        "photos": len(images),
        "no_face": len(emb.failures),
        "genuine": len(g),
        "impostor": len(i),
        "skipped_pairs": skipped,
        "accept": accept,
        "gar": 1 - fnmr,
        "fmr": fmr,
        "eer": C.equal_error(g, i)[0] if g and i else float("nan"),
    }


def readme_accuracy(root: Path, step: int) -> dict:
    import face_recognition

    pairs = C.load_pairs(root / "pairs.csv")
    images = sorted({p.img1 for p in pairs} | {p.img2 for p in pairs})[::step]
    keep = set(images)
    pairs = [p for p in pairs if p.img1 in keep and p.img2 in keep]
    vecs = {}
    for rel in images:
        enc = face_recognition.face_encodings(face_recognition.load_image_file(str(root / rel)))
        if enc:
            vecs[rel] = enc[0]
    g, i, skipped = C.pair_distances(pairs, vecs, DISTANCES["dlib"])
    fmr, fnmr = C.rates(g, i, 0.6)
    return {
        "photos": len(images),
        "no_face": len(images) - len(vecs),
        "genuine": len(g),
        "impostor": len(i),
        "skipped_pairs": skipped,
        "tolerance": 0.6,
        "gar": 1 - fnmr,
        "fmr": fmr,
        "eer": C.equal_error(g, i)[0] if g and i else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="verification benchmark")
    ap.add_argument("--quick", action="store_true", help="small subsets (~1 min)")
    args = ap.parse_args()
    if not FACES.is_dir():
        sys.exit(f"photo set not found: {FACES} (set ISOCHECK_FACES_DIR)")
    cv2.setNumThreads(1)
    out: dict = {
        "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "opencv": cv2.__version__,
            "loadavg_start": os.getloadavg(),
        },
    }
    n = 8 if args.quick else 10_000
    paths = identity_photos(FACES)
    phone = phone_sized(paths)[:n]
    big = large(paths)[:n]
    out["inputs"] = {"phone_1440px": len(phone), "large_ge_1500px": len(big)}

    # memory first, in a clean order: sface alone, + eye landmarks (dlib 68), + dlib encoder
    mem = {"python_numpy_cv2": rss_mb()}
    v_plain = Verifier(verify_cv_threads=1, checkin_min_ear=0, enrol_min_ear=0).load()
    v_plain.verify([v_plain.enrol((FACES / "angelina_jolie/1.jpg").read_bytes())], phone[0][1])
    mem["sface_without_eye_check"] = rss_mb()
    v_sface = Verifier(verify_cv_threads=1).load()
    tpl_s = v_sface.enrol((FACES / "angelina_jolie/1.jpg").read_bytes())
    v_sface.verify([tpl_s], phone[0][1])
    mem["sface_default_with_dlib68"] = rss_mb()
    v_dlib = Verifier(verify_cv_threads=1, verify_embedder="dlib").load()
    tpl_d = v_dlib.enrol((FACES / "angelina_jolie/1.jpg").read_bytes())
    v_dlib.verify([tpl_d], phone[0][1])
    mem["plus_dlib_embedder"] = rss_mb()
    out["rss_mb"] = mem

    import tempfile

    latency: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, photos in (("phone_1440px", phone), ("large_ge_1500px", big)):
            latency[label] = {
                "sface_no_eye_check": time_verify(
                    v_plain, v_plain.enrol((FACES / "angelina_jolie/1.jpg").read_bytes()), photos
                ),
                "sface": time_verify(v_sface, tpl_s, photos),
                "dlib": time_verify(v_dlib, tpl_d, photos),
                "face_recognition_readme": time_readme(photos, Path(tmp)),
            }
            r = latency[label]
            r["readme_over_sface_p50"] = (
                r["face_recognition_readme"]["p50_ms"] / r["sface"]["p50_ms"]
            )
            r["readme_over_dlib_p50"] = r["face_recognition_readme"]["p50_ms"] / r["dlib"]["p50_ms"]
            print(f"latency {label}: done", flush=True)
    out["latency"] = latency

    out["throughput_per_s"] = {
        "1_thread": throughput(v_sface, tpl_s, phone, 1, None),
        "2_threads_per_thread_models": throughput(v_sface, tpl_s, phone, 2, None),
        "2_threads_one_lock": throughput(v_sface, tpl_s, phone, 2, threading.Lock()),
    }
    print("throughput: done", flush=True)

    step = 6 if args.quick else 1
    acc: dict = {}
    for name, root in (("faces", FACES), ("faces-asia", ASIA)):
        if not root.is_dir():
            continue
        acc[name] = {
            "sface": accuracy(v_sface, root, "sface", step),
            "dlib": accuracy(v_dlib, root, "dlib", step * (3 if args.quick else 1)),
        }
        print(f"accuracy {name}: done", flush=True)
    if ASIA.is_dir():
        acc["faces-asia"]["face_recognition_readme"] = readme_accuracy(
            ASIA, step * (3 if args.quick else 1)
        )
    out["accuracy"] = acc
    out["machine"]["loadavg_end"] = os.getloadavg()

    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / ("verify_bench.quick.json" if args.quick else "verify_bench.json")
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print_table(out)
    print(f"wrote {target}")


def print_table(out: dict) -> None:
    print(
        f"\nload average start {out['machine']['loadavg_start']} "
        f"end {out['machine']['loadavg_end']}"
    )
    print(f"\n{'per selfie (one core)':32} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}  refused/no face")
    for label, r in out["latency"].items():
        for k in ("sface", "sface_no_eye_check", "dlib", "face_recognition_readme"):
            x = r[k]
            extra = x.get("refused", x.get("no_face"))
            print(
                f"{label + ' ' + k:32} {x['n']:>4} {x['p50_ms']:>8.1f} {x['p95_ms']:>8.1f}  {extra}"
            )
        print(
            f"{'':32} README / sface p50 = {r['readme_over_sface_p50']:.1f}x, "
            f"README / dlib p50 = {r['readme_over_dlib_p50']:.1f}x"
        )
    print(
        "\nthroughput (selfies/s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in out["throughput_per_s"].items())
    )
    print("\nRSS MiB: " + ", ".join(f"{k} {v:.0f}" for k, v in out["rss_mb"].items()))
    print(
        f"\n{'accuracy':34} {'photos':>6} {'no face':>7} {'gen':>6} {'imp':>6} {'thr':>6} "
        f"{'GAR':>7} {'FMR':>7} {'EER':>6}"
    )
    for name, per in out["accuracy"].items():
        for emb, r in per.items():
            thr = r.get("accept", r.get("tolerance"))
            print(
                f"{name + ' ' + emb:34} {r['photos']:>6} {r['no_face']:>7} {r['genuine']:>6} "
                f"{r['impostor']:>6} {thr:>6.3f} {r['gar']:>7.2%} {r['fmr']:>7.2%} {r['eer']:>6.2%}"
            )


if __name__ == "__main__":
    main()
