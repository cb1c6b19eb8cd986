"""A demo world in a data directory, made by the real `isocheck demo` command."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.live.server import REPO


def make_demo(env: dict[str, str]) -> dict[str, str]:
    """Run `isocheck demo`; return {username: password} of the accounts it printed."""
    out = subprocess.run(
        [sys.executable, "-m", "isocheck.cli", "demo"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    return dict(re.findall(r"^\s+(\S+)\s+(?:admin|area_staff)\s+.*?\s(\S+)\s*$", out, re.M))
