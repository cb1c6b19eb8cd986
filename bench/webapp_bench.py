"""Weight of the mobile web app shell (issue 14): each file raw and gzip -9, and the total.

    uv run python bench/webapp_bench.py

Target: the shell (HTML + JS + CSS + manifest + icon + service worker) <= 150 KB gzipped.
Writes bench/results/webapp_bench.json.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from server.webapp.views import SHELL, STATIC  # noqa: E402


def main() -> None:
    rows = []
    for name in (*SHELL, "sw.js"):
        raw = (STATIC / name).read_bytes()
        rows.append({"file": name, "bytes": len(raw), "gzip_bytes": len(gzip.compress(raw, 9))})
    total = {k: sum(r[k] for r in rows) for k in ("bytes", "gzip_bytes")}
    print(f"{'file':<24}{'bytes':>8}{'gzip':>8}")
    for r in rows:
        print(f"{r['file']:<24}{r['bytes']:>8}{r['gzip_bytes']:>8}")
    print(f"{'total':<24}{total['bytes']:>8}{total['gzip_bytes']:>8}   (target <= 153600)")
    out = REPO / "bench" / "results" / "webapp_bench.json"
    out.write_text(
        json.dumps({"files": rows, "total": total, "target_gzip_bytes": 153600}, indent=2)
    )


if __name__ == "__main__":
    main()
