"""FHIR bulk export at city size: time and peak memory of `isocheck export fhir` for N persons.

    uv run python bench/fhir_export_bench.py                    # 100,000 persons, SQLite file
    uv run python bench/fhir_export_bench.py --persons 10000    # quicker
    ISOCHECK_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        uv run python bench/fhir_export_bench.py --db postgresql   # a fresh schema, dropped after

A fresh database is filled in bulk (one city, 20 districts, 300 wards; every person with two
health declarations, one in ten with an open alert) and exported with the same function the
command and `$export` use (``server.fhir.export.export_ndjson``), all resource types, the whole
city. Peak memory is the process's peak RSS growth during the export (``ru_maxrss``) and, in a
second run with ``--heap``, the Python heap peak (tracemalloc, which slows the run; timed apart).
Prints a table and writes ``bench/results/fhir_export_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import insert, text  # noqa: E402

from server.alerts.models import Alert  # noqa: E402
from server.core.db import make_engine, make_session_factory  # noqa: E402
from server.core.enums import (  # noqa: E402
    AlertKind,
    AlertState,
    AreaKind,
    Category,
    PersonStatus,
    RiskLevel,  # noqa: E402
)
from server.declarations.models import Declaration  # noqa: E402
from server.fhir.export import export_ndjson  # noqa: E402
from server.models import Base  # noqa: E402
from server.people.models import Area, Person  # noqa: E402

RESULTS = REPO / "bench" / "results"
NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
CHUNK = 5000


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill(session, n: int) -> dict[str, int]:
    city = Area(code="79", name="TP Hồ Chí Minh", kind=AreaKind.city, path="79")
    session.add(city)
    session.flush()
    wards = []
    for d in range(20):
        dist = Area(code=f"79-{d}", name=f"Quận {d}", kind=AreaKind.district, parent_id=city.id,
                    path=f"79/79-{d}")  # fmt: skip
        session.add(dist)
        session.flush()
        for w in range(15):
            ward = Area(code=f"79-{d}-{w}", name=f"Phường {w}", kind=AreaKind.ward,
                        parent_id=dist.id, path=f"79/79-{d}/79-{d}-{w}")  # fmt: skip
            session.add(ward)
            wards.append(ward)
    session.flush()
    ward_ids = [w.id for w in wards]
    area_ids = {w.id: w.id for w in wards}
    for start in range(0, n, CHUNK):
        ids = range(start, min(n, start + CHUNK))
        session.execute(
            insert(Person),
            [
                {
                    "id": i + 1,
                    "full_name": f"Nguyễn Văn {i}",
                    "phone": f"09{i:08d}",
                    "national_id": f"079{i:09d}",
                    "category": Category.f0,
                    "ward_id": ward_ids[i % len(ward_ids)],
                    "home_address": f"{i} Nguyễn Văn Nghi",
                    "home_lat": 10.8,
                    "home_lon": 106.7,
                    "isolation_start": NOW - timedelta(days=3),
                    "isolation_end": NOW + timedelta(days=4),
                    "status": PersonStatus.active,
                    "risk_factors": {},
                    "created_at": NOW - timedelta(days=3),
                    "updated_at": NOW - timedelta(days=3),
                }
                for i in ids
            ],
        )
        session.execute(
            insert(Declaration),
            [
                {
                    "person_id": i + 1,
                    "measured_at": NOW - timedelta(hours=12 * k + 1),
                    "received_at": NOW - timedelta(hours=12 * k + 1),
                    "temperature_c": 37.0 + (i % 20) / 10,
                    "spo2": 90 + i % 10,
                    "heart_rate": 70 + i % 30,
                    "symptoms": ["cough"] if i % 3 else [],
                    "risk_level": RiskLevel.green,
                    "fired_rules": [],
                }
                for i in ids
                for k in (0, 1)
            ],
        )
        alerts = [
            {
                "person_id": i + 1,
                "area_id": area_ids[ward_ids[i % len(ward_ids)]],
                "kind": AlertKind.missed_checkin,
                "severity": 2,
                "state": AlertState.open,
                "dedupe_key": f"bench:{i}",
                "created_at": NOW - timedelta(hours=2),
            }
            for i in ids
            if i % 10 == 0
        ]
        if alerts:
            session.execute(insert(Alert), alerts)
        session.commit()
    return {"persons": n, "declarations": 2 * n, "alerts": (n + 9) // 10, "wards": len(wards)}


def run(db: str, n: int, heap: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        schema = None
        if db == "postgresql":
            url = os.environ.get("ISOCHECK_TEST_DATABASE_URL")
            if not url:
                raise SystemExit("set ISOCHECK_TEST_DATABASE_URL for --db postgresql")
            schema = f"fhirbench_{uuid.uuid4().hex[:8]}"
            admin = make_engine(url)
            with admin.begin() as c:
                c.execute(text(f'CREATE SCHEMA "{schema}"'))
            engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
        else:
            engine = make_engine(f"sqlite:///{tmp_path / 'bench.db'}")
        try:
            Base.metadata.create_all(engine)
            factory = make_session_factory(engine)
            t0 = time.perf_counter()
            with factory() as s:
                sizes = fill(s, n)
            fill_s = time.perf_counter() - t0
            with factory() as s:
                before = rss_mb()
                t0 = time.perf_counter()
                counts = export_ndjson(session=s, out_dir=tmp_path / "out", area=None, since=None)
                export_s = time.perf_counter() - t0
                rss_growth = rss_mb() - before
            out_mb = sum(f.stat().st_size for f in (tmp_path / "out").iterdir()) / 2**20
            heap_peak = None
            if heap:
                with factory() as s:
                    tracemalloc.start()
                    export_ndjson(session=s, out_dir=tmp_path / "out2", area=None, since=None)
                    _, heap_peak = tracemalloc.get_traced_memory()
                    tracemalloc.stop()
        finally:
            engine.dispose()
            if schema:
                with admin.begin() as c:
                    c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    lines = sum(counts.values())
    return {
        "db": db,
        **sizes,
        "fill_s": round(fill_s, 1),
        "export_s": round(export_s, 1),
        "resources": lines,
        "resources_per_s": round(lines / export_s),
        "by_type": counts,
        "ndjson_mb": round(out_mb, 1),
        "peak_rss_growth_mb": round(rss_growth, 1),
        "python_heap_peak_mb": None if heap_peak is None else round(heap_peak / 2**20, 1),
        "load_average": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--heap", action="store_true", help="a second, traced run for the heap peak")
    args = ap.parse_args()
    r = run(args.db, args.persons, args.heap)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "fhir_export_bench.json"
    data = json.loads(out.read_text()) if out.is_file() else {}
    data[f"{args.db}:{args.persons}"] = r
    out.write_text(json.dumps(data, indent=2))
    print("| db | persons | declarations | alerts | resources | export | resources/s | NDJSON | "
          "peak RSS growth | Python heap peak |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {r['db']} | {r['persons']:,} | {r['declarations']:,} | {r['alerts']:,} | "
        f"{r['resources']:,} | {r['export_s']} s | {r['resources_per_s']:,} | "
        f"{r['ndjson_mb']} MB | "
        f"{r['peak_rss_growth_mb']} MB | {r['python_heap_peak_mb']} MB |"
    )
    print(f"by type: {r['by_type']}; fill {r['fill_s']} s; load average {r['load_average']:.1f}")


if __name__ == "__main__":
    main()
