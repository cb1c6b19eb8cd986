"""FHIR NDJSON export of the demo world: every line validates with the R4B models, counts equal
the database, `since` returns only changes, an area export sees only its area."""

from __future__ import annotations

import json
from datetime import timedelta

from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import func, select

from server.config import load_settings
from server.core.clock import FrozenClock
from server.declarations.models import Declaration
from server.demo import load_demo
from server.fhir.export import TYPES, export_ndjson
from server.people.areas import get_area_by_code
from server.people.models import Person
from tests.conftest import T0


def _world(session):
    load_demo(session=session, clock=FrozenClock(T0), settings=load_settings())
    persons = list(session.scalars(select(Person).order_by(Person.id)))
    session.add(
        Declaration(
            person_id=persons[0].id,
            measured_at=T0,
            received_at=T0,
            temperature_c=39.4,
            spo2=92,
            heart_rate=110,
            symptoms=["fever", "shortness_of_breath"],
        )
    )
    session.add(Declaration(person_id=persons[2].id, measured_at=T0, received_at=T0, symptoms=[]))
    session.commit()
    return persons


def _read(out):
    lines = {}
    for t in TYPES:
        rows = [json.loads(x) for x in (out / f"{t}.ndjson").read_text().splitlines()]
        for row in rows:
            assert row["resourceType"] == t
            get_fhir_model_class(t).model_validate(row)  # raises when invalid
        lines[t] = rows
    return lines


def test_demo_world_round_trip(session, tmp_path, db_backend):
    persons = _world(session)
    counts = export_ndjson(session=session, out_dir=tmp_path, area=None, since=None)
    lines = _read(tmp_path)
    assert counts["Patient"] == len(lines["Patient"]) == len(persons)
    assert counts["EpisodeOfCare"] == len(persons)
    assert counts["QuestionnaireResponse"] == session.scalar(select(func.count(Declaration.id)))
    # 3 vitals + 1 symptom observation, and 1 symptom observation ("no symptoms")
    assert counts["Observation"] == 5
    assert counts["Flag"] == len(persons)
    temp = next(o for o in lines["Observation"] if o["id"].endswith("-temp"))
    assert temp["code"]["coding"][0]["code"] == "8310-5"
    assert temp["valueQuantity"]["code"] == "Cel"


def test_since_and_area_scope(session, tmp_path, db_backend):
    persons = _world(session)
    # Rows' timestamps come from the wall clock (column defaults); later = after all of them.
    newest = max(
        session.scalar(select(func.max(Person.updated_at))).replace(tzinfo=None),
        T0.replace(tzinfo=None),
    )
    later = (newest + timedelta(seconds=1)).replace(tzinfo=T0.tzinfo)
    assert export_ndjson(session=session, out_dir=tmp_path / "a", area=None, since=later) == {
        t: 0 for t in TYPES
    }
    ward = get_area_by_code(session=session, code="79-764-26896")
    counts = export_ndjson(session=session, out_dir=tmp_path / "w", area=ward, since=None)
    in_ward = [p for p in persons if p.ward_id == ward.id]
    assert counts["Patient"] == len(in_ward)
    ids = {int(r["id"]) for r in _read(tmp_path / "w")["Patient"]}
    assert ids == {p.id for p in in_ward}
