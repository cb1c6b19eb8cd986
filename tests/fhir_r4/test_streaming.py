"""A large export streams: its peak memory (tracemalloc) does not grow with the number of
persons. Two sizes, the larger three times the smaller (both past the
1,000-person fetch batch, which bounds what is held); the peak
may not follow. Before the fix, any export past one batch died in expunge_all()."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

import pytest
from sqlalchemy import insert

from server.core.enums import AreaKind, Category, PersonStatus
from server.fhir.export import export_ndjson
from server.people.areas import create_area
from server.people.models import Person
from tests.conftest import T0


def _persons(session, ward, n, start):
    session.execute(
        insert(Person),
        [
            {
                "full_name": f"Nguyễn Văn {i}",
                "phone": f"09{i:08d}",
                "category": Category.f0,
                "ward_id": ward.id,
                "home_address": f"{i} Nguyễn Văn Nghi",
                "home_lat": 10.8,
                "home_lon": 106.7,
                "isolation_start": T0,
                "isolation_end": T0 + timedelta(days=7),
                "status": PersonStatus.active,
                "risk_factors": {},
                "created_at": T0,
                "updated_at": T0,
            }
            for i in range(start, start + n)
        ],
    )
    session.commit()


def _peak(session, tmp_path, name) -> int:
    session.expunge_all()
    tracemalloc.start()
    try:
        counts = export_ndjson(session=session, out_dir=tmp_path / name, area=None, since=None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return counts["Patient"], peak


@pytest.mark.slow  # 4,500 persons exported twice under tracemalloc: ~45 s per database
def test_export_peak_memory_does_not_grow_with_size(session, tmp_path):
    city = create_area(session=session, code="79", name="TP Hồ Chí Minh", kind=AreaKind.city)
    district = create_area(
        session=session, code="79-1", name="Quận 1", kind=AreaKind.district, parent=city
    )
    ward = create_area(
        session=session, code="79-1-1", name="Phường 1", kind=AreaKind.ward, parent=district
    )
    session.commit()
    _persons(session, ward, 1500, 0)
    small_n, small = _peak(session, tmp_path, "small")
    _persons(session, ward, 3000, 1500)
    big_n, big = _peak(session, tmp_path, "big")
    assert (small_n, big_n) == (1500, 4500)
    # three times the persons; a list of them all would triple the peak
    assert big < small * 1.5, (small, big)
