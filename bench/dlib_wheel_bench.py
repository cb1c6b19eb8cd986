"""dlib as the `dlib-bin` wheel vs `dlib` built from source: install time, speed, same results.

    uv run python bench/dlib_wheel_bench.py                  # full run, ~12 min on 2 cores
    uv run python bench/dlib_wheel_bench.py --skip-source    # wheel only, ~1 min

The orchestrator itself needs only the standard library; everything dlib runs in two throwaway
virtualenvs under WORK (default /tmp/dlibbench, never in the repo), deleted at the end unless
``--keep-venvs``:

A. ``wheel``:  dlib-bin==20.0.1.post1 (prebuilt wheel), what pyproject.toml depends on;
B. ``source``: dlib==20.0.1 built from the sdist (``--no-binary dlib``; cmake + the system C++
   compiler), run under ``nice -n 19``.

Both get face-recognition-models, setuptools<81, numpy, pillow and face-recognition (--no-deps),
with ``uv --no-config`` so the repo's ``[tool.uv]`` override does not apply. The dlib step runs
with ``--no-cache`` (a fresh temporary cache: nothing of dlib, dlib-bin or dlib's build
dependencies comes from uv's cache, and uv's shared cache is neither read nor changed; ``uv cache
clean dlib dlib-bin`` would have to wait for every running ``uv run``, this script's own
included), so it downloads (A) or downloads and compiles (B) from scratch; the other packages
are installed in a separate, separately timed step from whatever uv has cached. While a
dlib step runs, the 1-minute load average is sampled every 5 s and the machine's busy CPU time
(/proc/stat) is split into this step's own (rusage of its process tree) and everything else's.

Then the same timing script (written to WORK, run by each venv's python; A and B alternate for
``--rounds`` rounds so a change in background load hits both) loads 40 photos from
ISOCHECK_FACES_DIR (default ../shared/faces: sorted person folders, folders starting with ``_``
skipped, the first photo of each), resizes them to 512x512 (PIL, bilinear, aspect not kept) and
times, after one warm-up, ``face_recognition.face_locations(img)`` (HOG, upsample 1) and
``face_recognition.face_encodings(img, known_face_locations=locs)`` (5-point landmarks + ResNet,
1 jitter) on every photo ``--repeats`` times. Encoding times count photos where a face was found.
It also reports dlib.__version__ and dlib's compile-time flags (DLIB_USE_CUDA, DLIB_USE_BLAS,
DLIB_USE_LAPACK, USE_AVX_INSTRUCTIONS, ...), the compiler recorded in the extension's .comment
section and its shared-library dependencies.

Same results: B also encodes the faces at A's detected boxes, so the encodings are compared on
identical inputs (max abs difference over all 128 values of all faces, and max Euclidean
distance, which face_recognition compares with its 0.6 tolerance); the face count and boxes per
photo are compared too. A sha256 of the 40 resized pixel arrays checks both saw the same input.

Prints a table and writes bench/results/dlib_wheel_bench.json (with --skip-source: WORK/
dlib_wheel_bench.json, so a quick check does not overwrite the full result).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FACES = Path(os.environ.get("ISOCHECK_FACES_DIR", REPO.parent / "shared/faces"))
DEFAULT_OUT = REPO / "bench/results/dlib_wheel_bench.json"
N_PHOTOS = 40
SIZE = 512
PYTHON = "3.11"
COMMON = ["face-recognition-models", "setuptools<81", "numpy", "pillow"]
VARIANTS = {
    "wheel": {"pkgs": ["dlib-bin==20.0.1.post1"], "flags": [], "nice": False},
    "source": {"pkgs": ["dlib==20.0.1"], "flags": ["--no-binary", "dlib"], "nice": True},
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}

TIMING_SCRIPT = r"""
import glob, hashlib, json, os, platform, statistics, subprocess, sys, time
import numpy as np
from PIL import Image
import dlib
import face_recognition

spec = json.load(open(sys.argv[1]))
size, repeats = spec["size"], spec["repeats"]
imgs = [
    np.ascontiguousarray(
        np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
    )
    for p in spec["paths"]
]
digest = hashlib.sha256(b"".join(i.tobytes() for i in imgs)).hexdigest()

FR = face_recognition
FR.face_encodings(imgs[0], known_face_locations=FR.face_locations(imgs[0]))
loc_ms, enc_ms, locs_first, encs_first = [], [], [], []
for r in range(repeats):
    for img in imgs:
        t0 = time.perf_counter()
        locs = face_recognition.face_locations(img)
        t1 = time.perf_counter()
        encs = face_recognition.face_encodings(img, known_face_locations=locs)
        t2 = time.perf_counter()
        loc_ms.append((t1 - t0) * 1e3)
        if locs:
            enc_ms.append((t2 - t1) * 1e3)
        if r == 0:
            locs_first.append([list(map(int, b)) for b in locs])
            encs_first.append([e.tolist() for e in encs])

ref = spec.get("ref_locs")
ref_encs = None
if ref is not None:
    ref_encs = [
        [e.tolist() for e in FR.face_encodings(img, known_face_locations=[tuple(b) for b in boxes])]
        if boxes else []
        for img, boxes in zip(imgs, ref)
    ]

flags = {a: bool(getattr(dlib, a)) for a in dir(dlib) if a.startswith(("DLIB_USE_", "USE_"))}
pkg_dir = os.path.dirname(dlib.__file__)
so = sorted(glob.glob(os.path.join(os.path.dirname(pkg_dir), "_dlib_pybind11*.so")))
so += sorted(glob.glob(os.path.join(pkg_dir, "*.so")))
comment, libs = None, None
if so:
    try:
        cmd = ["readelf", "-p", ".comment", so[0]]
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        comment = sorted({l.split("]", 1)[1].strip() for l in out.splitlines() if "]" in l})
    except OSError:
        pass
    try:
        out = subprocess.run(["ldd", so[0]], capture_output=True, text=True).stdout
        libs = sorted(l.split()[0] for l in out.splitlines() if l.strip())
    except OSError:
        pass
json.dump({
    "dlib_version": dlib.__version__,
    "dlib_flags": flags,
    "extension": os.path.basename(so[0]) if so else None,
    "extension_mb": round(os.path.getsize(so[0]) / 2**20, 1) if so else None,
    "compiler_comment": comment,
    "linked_libs": libs,
    "python": platform.python_version(),
    "numpy": np.__version__,
    "pillow": Image.__version__,
    "input_sha256": digest,
    "loc_ms": loc_ms,
    "enc_ms": enc_ms,
    "locs": locs_first,
    "encs": encs_first,
    "ref_encs": ref_encs,
}, open(sys.argv[2], "w"))
"""


# ---------------------------------------------------------------------------- machine state


def cpu_busy_seconds() -> float:
    """All CPUs' non-idle time since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    vals = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    busy = vals[0] + vals[1] + vals[2] + vals[5] + vals[6] + vals[7]
    return busy / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def load1() -> float:
    return os.getloadavg()[0]


class LoadSampler:
    """Samples the 1-minute load average every `every` s and accounts CPU time while active."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(load1())
            self._stop.wait(self.every)

    def __enter__(self) -> LoadSampler:
        self._busy0, self._own0 = cpu_busy_seconds(), children_cpu_seconds()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(load1())
        self.busy = cpu_busy_seconds() - self._busy0
        self.own = children_cpu_seconds() - self._own0

    def summary(self, wall: float) -> dict:
        s = self.samples
        others = max(self.busy - self.own, 0.0)
        return {
            "load1_min": round(min(s), 2),
            "load1_median": round(statistics.median(s), 2),
            "load1_max": round(max(s), 2),
            "load1_samples": len(s),
            "cpu_s_this_step": round(self.own, 1),
            "cpu_s_other_processes": round(others, 1),
            "other_processes_cores_avg": round(others / wall, 2) if wall > 0 else None,
        }


# ---------------------------------------------------------------------------- steps


def run(cmd: list[str], log: Path, cwd: Path) -> float:
    """Run `cmd`, append its output to `log`, return wall seconds; raise on failure."""
    t0 = time.perf_counter()
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return wall


def build_notes(log: Path) -> list[str]:
    """Lines of the build log that say which compiler and instruction sets were used."""
    pat = re.compile(
        r"(CXX compiler identification|Using CMake version|AVX|SSE[24]|BLAS|LAPACK|CUDA|"
        r"Building wheel|Built dlib|Invoking CMake build|-j\d)",
        re.IGNORECASE,
    )
    seen: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        line = line.strip()
        if pat.search(line) and line not in seen and len(line) < 200:
            seen.append(line)
    return seen[:40]


def install(name: str, work: Path) -> tuple[Path, dict]:
    spec = VARIANTS[name]
    venv = work / f"venv-{name}"
    log = work / f"install-{name}.log"
    log.write_text("")
    shutil.rmtree(venv, ignore_errors=True)
    uv = shutil.which("uv") or "uv"
    py = venv / "bin/python"
    res: dict = {"venv": str(venv), "log": str(log)}

    res["venv_s"] = round(
        run([uv, "--no-config", "venv", "-q", "--python", PYTHON, str(venv)], log, work), 1
    )
    t = run([uv, "--no-config", "pip", "install", "--python", str(py), *COMMON], log, work)
    t += run(
        [uv, "--no-config", "pip", "install", "--python", str(py), "--no-deps", "face-recognition"],
        log,
        work,
    )
    res["common_packages_s"] = round(t, 1)

    cmd = [
        uv,
        "--no-config",
        "pip",
        "install",
        "--no-cache",
        "-v",
        "--python",
        str(py),
        *spec["flags"],
        *spec["pkgs"],
    ]
    if spec["nice"]:
        cmd = ["nice", "-n", "19", *cmd]
    res["dlib_command"] = " ".join(cmd[cmd.index(uv) :]).replace(uv, "uv")
    res["nice"] = 19 if spec["nice"] else 0
    res["load1_before"] = round(load1(), 2)
    print(f"[{name}] installing {' '.join(spec['pkgs'])} ...", flush=True)
    with LoadSampler() as sampler:
        t = run(cmd, log, work)
    res["dlib_install_s"] = round(t, 1)
    res["dlib_install_machine"] = sampler.summary(t)
    res["install_total_s"] = round(res["venv_s"] + res["common_packages_s"] + t, 1)
    if name == "source":
        res["build_notes"] = build_notes(log)
    sp = next((venv / "lib").glob("python*/site-packages"))
    res["installed_dlib_mb"] = round(
        sum(
            f.stat().st_size
            for p in sp.iterdir()
            if "dlib" in p.name.lower()
            for f in ([p] if p.is_file() else p.rglob("*"))
            if f.is_file()
        )
        / 2**20,
        1,
    )
    print(f"[{name}] dlib step {t:.1f} s (total install {res['install_total_s']} s)", flush=True)
    return py, res


def pick_photos() -> list[str]:
    if not FACES.is_dir():
        raise SystemExit(f"photo folder not found: {FACES} (set ISOCHECK_FACES_DIR)")

    def natural(p: Path) -> tuple:
        return (0, int(p.stem), p.name) if p.stem.isdigit() else (1, 0, p.name)

    paths = []
    for d in sorted(p for p in FACES.iterdir() if p.is_dir() and not p.name.startswith("_")):
        imgs = sorted((f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES), key=natural)
        if imgs:
            paths.append(str(imgs[0]))
        if len(paths) == N_PHOTOS:
            break
    if len(paths) < N_PHOTOS:
        raise SystemExit(f"only {len(paths)} person folders with photos in {FACES}")
    return paths


def time_in(
    name: str, py: Path, work: Path, paths: list[str], repeats: int, rnd: int, ref_locs: list | None
) -> dict:
    spec_f = work / f"spec-{name}-{rnd}.json"
    out_f = work / f"out-{name}-{rnd}.json"
    spec_f.write_text(
        json.dumps({"paths": paths, "size": SIZE, "repeats": repeats, "ref_locs": ref_locs})
    )
    log = work / f"timing-{name}.log"
    with LoadSampler(every=2.0) as sampler:
        wall = run([str(py), str(work / "timing.py"), str(spec_f), str(out_f)], log, work)
    out = json.loads(out_f.read_text())
    out["machine"] = sampler.summary(wall)
    loc, enc = statistics.median(out["loc_ms"]), statistics.median(out["enc_ms"])
    print(
        f"[{name}] round {rnd}: HOG median {loc:.1f} ms, encoding median {enc:.1f} ms "
        f"(load {out['machine']['load1_median']})",
        flush=True,
    )
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def summarise(rounds: list[dict]) -> dict:
    loc = [x for r in rounds for x in r["loc_ms"]]
    enc = [x for r in rounds for x in r["enc_ms"]]
    first = rounds[0]
    return {
        "dlib_version": first["dlib_version"],
        "dlib_flags": first["dlib_flags"],
        "extension": first["extension"],
        "extension_mb": first["extension_mb"],
        "compiler_comment": first["compiler_comment"],
        "linked_libs": first["linked_libs"],
        "python": first["python"],
        "numpy": first["numpy"],
        "pillow": first["pillow"],
        "input_sha256": first["input_sha256"],
        "hog_ms_median": round(statistics.median(loc), 1),
        "hog_ms_p90": round(pct(loc, 0.9), 1),
        "hog_calls": len(loc),
        "hog_round_medians": [round(statistics.median(r["loc_ms"]), 1) for r in rounds],
        "encoding_ms_median": round(statistics.median(enc), 1),
        "encoding_ms_p90": round(pct(enc, 0.9), 1),
        "encoding_calls": len(enc),
        "encoding_round_medians": [round(statistics.median(r["enc_ms"]), 1) for r in rounds],
        "faces_per_photo": [len(b) for b in first["locs"]],
        "faces_total": sum(len(b) for b in first["locs"]),
        "timing_load1": [r["machine"]["load1_median"] for r in rounds],
        "timing_other_processes_cores_avg": [
            r["machine"]["other_processes_cores_avg"] for r in rounds
        ],
    }


def compare(a: dict, b: dict) -> dict:
    """Compare run `a` (wheel) with run `b` (source, which also encoded at a's boxes)."""
    same_count = sum(len(x) == len(y) for x, y in zip(a["locs"], b["locs"], strict=True))
    same_boxes = sum(x == y for x, y in zip(a["locs"], b["locs"], strict=True))
    max_abs, max_dist, n = 0.0, 0.0, 0
    for ea, eb in zip(a["encs"], b["ref_encs"], strict=True):
        for va, vb in zip(ea, eb, strict=True):
            d = [abs(p - q) for p, q in zip(va, vb, strict=True)]
            max_abs = max(max_abs, max(d))
            max_dist = max(max_dist, sum(x * x for x in d) ** 0.5)
            n += 1
    # and each build's own pipeline end to end, on photos where both found the same boxes
    own_abs = 0.0
    for la, lb, ea, eb in zip(a["locs"], b["locs"], a["encs"], b["encs"], strict=True):
        if la == lb:
            for va, vb in zip(ea, eb, strict=True):
                own_abs = max(own_abs, max(abs(p - q) for p, q in zip(va, vb, strict=True)))
    return {
        "same_input_pixels": a["input_sha256"] == b["input_sha256"],
        "photos_same_face_count": same_count,
        "photos_same_boxes": same_boxes,
        "faces_compared": n,
        "encoding_max_abs_diff": max_abs,
        "encoding_max_euclidean": max_dist,
        "own_pipeline_encoding_max_abs_diff": own_abs,
    }


def table(res: dict) -> str:
    v = res["variants"]
    names = [n for n in ("wheel", "source") if n in v]
    label = {"wheel": "A: dlib-bin 20.0.1.post1 wheel", "source": "B: dlib 20.0.1 from source"}

    def flags(s: dict) -> str:
        f = s["dlib_flags"]
        return ", ".join(f"{k}={int(x)}" for k, x in f.items() if k != "USE_NEON_INSTRUCTIONS")

    rows = [
        ("dlib.__version__", lambda n: v[n]["timing"]["dlib_version"]),
        (
            "dlib install, wall (--no-cache)",
            lambda n: f"{v[n]['install']['dlib_install_s']} s",
        ),
        ("whole venv install, wall", lambda n: f"{v[n]['install']['install_total_s']} s"),
        (
            "load avg (1 min) during dlib install, median / max",
            lambda n: "{load1_median} / {load1_max}".format(
                **v[n]["install"]["dlib_install_machine"]
            ),
        ),
        (
            "other processes' CPU during dlib install",
            lambda n: "{other_processes_cores_avg} cores".format(
                **v[n]["install"]["dlib_install_machine"]
            ),
        ),
        ("installed dlib size", lambda n: f"{v[n]['install']['installed_dlib_mb']} MiB"),
        (
            "face_locations (HOG) 512², median / p90",
            lambda n: "{hog_ms_median} / {hog_ms_p90} ms".format(**v[n]["timing"]),
        ),
        (
            "face_encodings 1 face, median / p90",
            lambda n: "{encoding_ms_median} / {encoding_ms_p90} ms".format(**v[n]["timing"]),
        ),
        ("faces found on 40 photos", lambda n: str(v[n]["timing"]["faces_total"])),
        ("compile flags", lambda n: flags(v[n]["timing"])),
        ("compiler (.comment)", lambda n: "; ".join(v[n]["timing"]["compiler_comment"] or ["?"])),
    ]
    out = ["| | " + " | ".join(label[n] for n in names) + " |", "|---|" + "---|" * len(names)]
    for title, fn in rows:
        out.append(f"| {title} | " + " | ".join(fn(n) for n in names) + " |")
    c = res.get("comparison")
    if c:
        out.append("")
        out.append(
            f"Same results: input pixels identical: {c['same_input_pixels']}; same face count on "
            f"{c['photos_same_face_count']}/{N_PHOTOS} photos, same boxes on "
            f"{c['photos_same_boxes']}/{N_PHOTOS}; encodings at identical boxes over "
            f"{c['faces_compared']} faces: max abs difference {c['encoding_max_abs_diff']:.3g}, "
            f"max Euclidean distance {c['encoding_max_euclidean']:.3g} (tolerance 0.6)."
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-source", action="store_true", help="only the wheel (quick check)")
    ap.add_argument("--repeats", type=int, default=3, help="passes over the 40 photos per round")
    ap.add_argument("--rounds", type=int, default=2, help="alternating timing rounds per venv")
    ap.add_argument("--work", type=Path, default=Path("/tmp/dlibbench"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--keep-venvs", action="store_true")
    args = ap.parse_args()

    work: Path = args.work.resolve()
    if work == REPO or REPO in work.parents:
        raise SystemExit("--work must be outside the repository")
    out_path = args.out or (work / "dlib_wheel_bench.json" if args.skip_source else DEFAULT_OUT)
    work.mkdir(parents=True, exist_ok=True)
    (work / "timing.py").write_text(TIMING_SCRIPT)
    paths = pick_photos()
    names = ["wheel"] if args.skip_source else ["wheel", "source"]

    res: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "cpu_model": next(
                (
                    ln.split(":", 1)[1].strip()
                    for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")
                ),
                None,
            ),
            "load1_at_start": round(load1(), 2),
        },
        "uv": subprocess.run(["uv", "--version"], capture_output=True, text=True).stdout.strip(),
        "cxx": (
            subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout.splitlines()
            or ["?"]
        )[0],
        "cmake": (
            subprocess.run(
                ["cmake", "--version"], capture_output=True, text=True
            ).stdout.splitlines()
            or ["?"]
        )[0],
        "photos": {
            "dir": str(FACES),
            "n": len(paths),
            "size": f"{SIZE}x{SIZE}",
            "files": [str(Path(p).relative_to(FACES)) for p in paths],
        },
        "repeats": args.repeats,
        "rounds": args.rounds,
        "variants": {},
    }
    pys = {}
    try:
        for n in names:
            pys[n], inst = install(n, work)
            res["variants"][n] = {"install": inst}
        runs: dict[str, list[dict]] = {n: [] for n in names}
        for rnd in range(args.rounds):
            for n in names:
                ref = runs["wheel"][0]["locs"] if n == "source" and rnd == 0 else None
                runs[n].append(time_in(n, pys[n], work, paths, args.repeats, rnd, ref))
        for n in names:
            res["variants"][n]["timing"] = summarise(runs[n])
        if "source" in runs:
            res["comparison"] = compare(runs["wheel"][0], runs["source"][0])
    finally:
        if not args.keep_venvs:
            for n in names:
                shutil.rmtree(work / f"venv-{n}", ignore_errors=True)
    res["machine"]["load1_at_end"] = round(load1(), 2)

    print()
    print(table(res))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nwrote {out_path}")


if __name__ == "__main__":
    main()
