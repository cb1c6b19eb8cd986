"""Where the real photo sets are (never committed): ISOCHECK_FACES_DIR / ISOCHECK_FACES_ASIA_DIR,
default ../shared/faces and ../shared/faces-asia beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def faces_dir(kind: str = "asia") -> Path:
    """The photo set's folder, or skip the test with the reason."""
    if kind == "asia":
        path = Path(os.environ.get("ISOCHECK_FACES_ASIA_DIR", REPO.parent / "shared/faces-asia"))
    else:
        path = Path(os.environ.get("ISOCHECK_FACES_DIR", REPO.parent / "shared/faces"))
    if not path.is_dir():
        pytest.skip(
            f"photo set not found at {path} (set ISOCHECK_FACES_ASIA_DIR or ISOCHECK_FACES_DIR)"
        )
    return path


def photo(relative: str, kind: str = "asia") -> bytes:
    return (faces_dir(kind) / relative).read_bytes()
