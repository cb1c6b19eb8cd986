"""Fixtures of the verification tests: the photo sets (skipped cleanly when absent), one shared
:class:`Verifier`, and SFace measurements of every identity photo computed once per session."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from verification import FaceAnalysis, VerificationError, VerificationSettings, Verifier
from verification.calibrate import Pair, load_pairs

REPO = Path(__file__).resolve().parents[2]
FACES_DIR = Path(os.environ.get("ISOCHECK_FACES_DIR", REPO.parent / "shared" / "faces"))
ASIA_DIR = Path(os.environ.get("ISOCHECK_FACES_ASIA_DIR", REPO.parent / "shared" / "faces-asia"))


def _need(path: Path, var: str) -> Path:
    if not (path / "pairs.csv").is_file():
        pytest.skip(f"photo set not found at {path} (set {var})")
    return path


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """``ISOCHECK_FACES_DIR`` (default ``../shared/faces``), or skip."""
    return _need(FACES_DIR, "ISOCHECK_FACES_DIR")


@pytest.fixture(scope="session")
def asia_dir() -> Path:
    """``ISOCHECK_FACES_ASIA_DIR`` (default ``../shared/faces-asia``), or skip."""
    return _need(ASIA_DIR, "ISOCHECK_FACES_ASIA_DIR")


@pytest.fixture(scope="session")
def settings() -> VerificationSettings:
    """The documented defaults, whatever ISOCHECK_* variables the shell has."""
    fields = VerificationSettings.model_fields
    return VerificationSettings(**{k: f.default for k, f in fields.items()})


@pytest.fixture(scope="session")
def verifier(settings: VerificationSettings) -> Verifier:
    """One loaded SFace verifier for the session."""
    return Verifier(settings).load()


@dataclass
class PhotoSet:
    """Ungated SFace measurements of every identity photo of one set."""

    root: Path
    pairs: list[Pair]
    analyses: dict[str, FaceAnalysis]
    failures: dict[str, str]

    def vector(self, rel: str) -> np.ndarray | None:
        a = self.analyses.get(rel)
        return None if a is None else a.vectors["sface"]


def _measure(verifier: Verifier, root: Path) -> PhotoSet:
    pairs = load_pairs(root / "pairs.csv")
    analyses, failures = {}, {}
    for rel in sorted({p.img1 for p in pairs} | {p.img2 for p in pairs}):
        try:
            analyses[rel] = verifier.analyse((root / rel).read_bytes(), apply_gate=False)
        except VerificationError as exc:
            failures[rel] = exc.code
    return PhotoSet(root, pairs, analyses, failures)


@pytest.fixture(scope="session")
def asia_set(verifier: Verifier, asia_dir: Path) -> PhotoSet:
    """Every faces-asia photo in pairs.csv, measured once (about 15 s)."""
    return _measure(verifier, asia_dir)


@pytest.fixture(scope="session")
def faces_set(verifier: Verifier, faces_dir: Path) -> PhotoSet:
    """Every faces photo in pairs.csv, measured once (about 30 s)."""
    return _measure(verifier, faces_dir)
