"""Calibration: distances of labelled pairs -> ROC table, equal-error point, thresholds per FMR.

Pure functions over distance lists (lower distance = more alike; a pair is accepted when its
distance is <= the threshold), plus :func:`embed_images` and :func:`pair_distances` that run a
:class:`verification.Verifier` over a photo set. Used by ``isocheck calibrate`` and by
``bench/calib_photosets.py`` (the measurements in ``docs/verification.md``).

Vocabulary: FMR (false-match rate) = share of impostor pairs accepted; FNMR (false non-match
rate, also FRR) = share of genuine pairs refused.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from verification.errors import VerificationError


@dataclass(frozen=True)
class Pair:
    """Two image paths relative to the set's root and whether they show the same person."""

    img1: str
    img2: str
    same: bool


def load_pairs(path: Path | str) -> list[Pair]:
    """Rows of a ``pairs.csv`` with columns ``img1,img2,same`` (same = 1 or 0)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [
            Pair(r["img1"], r["img2"], str(r["same"]).strip() in ("1", "true", "True"))
            for r in csv.DictReader(fh)
        ]


def all_impostor_pairs(images: Iterable[str]) -> list[Pair]:
    """Every pair of images whose identities (parent folder names) differ."""
    imgs = sorted(set(images))
    return [
        Pair(a, b, False)
        for a, b in itertools.combinations(imgs, 2)
        if Path(a).parent.name != Path(b).parent.name
    ]


def rates(
    genuine: Sequence[float], impostor: Sequence[float], threshold: float
) -> tuple[float, float]:
    """(FMR, FNMR) at ``threshold``: share of impostors <= it, share of genuines > it."""
    g = np.asarray(genuine, np.float64)
    i = np.asarray(impostor, np.float64)
    fmr = float((i <= threshold).mean()) if i.size else 0.0
    fnmr = float((g > threshold).mean()) if g.size else 0.0
    return fmr, fnmr


def threshold_at_fmr(impostor: Sequence[float], fmr: float) -> float:
    """The largest threshold (4 decimals, rounded down) whose FMR on ``impostor`` is <= ``fmr``.

    With n impostor distances, at most floor(fmr * n) of them may be accepted; the threshold sits
    just below the next one. The resolution is 1/n: 0.1 % needs >= 1,000 impostor pairs to mean
    anything (``isocheck calibrate --all-impostors`` builds every cross-identity pair).
    """
    d = np.sort(np.asarray(impostor, np.float64))
    if d.size == 0:
        raise ValueError("no impostor distances")
    k = int(math.floor(fmr * d.size + 1e-9))
    if k >= d.size:
        return float(math.floor(d[-1] * 1e4) / 1e4)
    t = math.floor(d[k] * 1e4) / 1e4
    if t >= d[k]:
        t -= 1e-4
    return float(round(t, 4))


def equal_error(genuine: Sequence[float], impostor: Sequence[float]) -> tuple[float, float]:
    """(EER, threshold): the threshold where FMR and FNMR are closest, and their mean there."""
    cands = np.unique(np.concatenate([np.asarray(genuine), np.asarray(impostor)]))
    best = (2.0, 0.0, 0.0)
    for t in cands:
        fmr, fnmr = rates(genuine, impostor, float(t))
        gap = abs(fmr - fnmr)
        if gap < best[0]:
            best = (gap, (fmr + fnmr) / 2, float(t))
    return best[1], best[2]


def roc_table(
    genuine: Sequence[float], impostor: Sequence[float], fmrs: Sequence[float]
) -> list[dict[str, float]]:
    """One row per target FMR: threshold, measured FMR, FNMR and genuine acceptance (1 - FNMR)."""
    rows = []
    for target in fmrs:
        t = threshold_at_fmr(impostor, target)
        fmr, fnmr = rates(genuine, impostor, t)
        rows.append(
            {"target_fmr": target, "threshold": t, "fmr": fmr, "fnmr": fnmr, "gar": 1 - fnmr}
        )
    return rows


@dataclass(frozen=True)
class Embedded:
    """Vectors of a photo set: relative path -> float32 (128,), and path -> error code."""

    vectors: dict[str, np.ndarray]
    failures: dict[str, str]


def embed_images(
    paths: Iterable[str],
    root: Path,
    analyse: Callable[[bytes], np.ndarray],
) -> Embedded:
    """Run ``analyse`` (bytes -> vector) on every ``root/path``; record refusals by code."""
    vectors: dict[str, np.ndarray] = {}
    failures: dict[str, str] = {}
    for rel in sorted(set(paths)):
        try:
            vectors[rel] = analyse((root / rel).read_bytes())
        except VerificationError as exc:
            failures[rel] = exc.code
        except OSError:
            failures[rel] = "file_missing"
    return Embedded(vectors, failures)


def pair_distances(
    pairs: Iterable[Pair],
    vectors: dict[str, np.ndarray],
    distance: Callable[[np.ndarray, np.ndarray], float],
) -> tuple[list[float], list[float], int]:
    """(genuine distances, impostor distances, pairs skipped because an image failed)."""
    genuine: list[float] = []
    impostor: list[float] = []
    skipped = 0
    for p in pairs:
        a, b = vectors.get(p.img1), vectors.get(p.img2)
        if a is None or b is None:
            skipped += 1
            continue
        (genuine if p.same else impostor).append(distance(a, b))
    return genuine, impostor, skipped


def distance_matrix(vectors: np.ndarray, metric: str) -> np.ndarray:
    """All-pairs distances of row vectors (n, 128): ``cosine`` (1 - cos) or ``euclidean``."""
    v = np.asarray(vectors, np.float64)
    if metric == "cosine":
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return 1.0 - v @ v.T
    sq = (v * v).sum(axis=1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * v @ v.T, 0.0))
