"""The read API under /fhir/r4: every answer parses with the R4B models, Bundles page, the
scope is the caller's, every served record is audited, errors are OperationOutcomes."""

from __future__ import annotations

import json
from datetime import timedelta

from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import func, select

from server.checkins.models import CheckinPrompt
from server.core.audit import AuditEvent
from server.declarations.models import Declaration
from server.fhir.export import CLOSED

FHIR = "application/fhir+json"


def _resource(response, rtype=None):
    assert response.mimetype == FHIR, (response.status_code, response.mimetype)
    body = response.get_json(force=True)
    get_fhir_model_class(body["resourceType"]).model_validate(body)  # raises when invalid
    if rtype:
        assert body["resourceType"] == rtype, body
    return body


def _outcome(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = _resource(response, "OperationOutcome")
    assert body["issue"][0]["details"]["coding"][0]["code"] == code
    return body


def test_metadata_is_a_capability_statement(client):
    body = _resource(client.get("/fhir/r4/metadata"), "CapabilityStatement")
    assert body["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert types == {"Patient", "Observation", "EpisodeOfCare"}
    assert body["rest"][0]["operation"][0]["name"] == "export"


def test_patient_read_is_scoped_and_audited(client, world, bearer, session, db_backend):
    own, other = world.own.person, world.other.person
    body = _resource(client.get(f"/fhir/r4/Patient/{own.id}", headers=bearer("ward_a")), "Patient")
    assert body["id"] == str(own.id)
    assert body["name"][0]["text"] == own.full_name
    assert "Phường 1" in body["address"][0]["line"]
    assert body["address"][0]["district"] == "Quận Gò Vấp"
    audited = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "fhir.read", AuditEvent.target_id == own.id)
    ).all()
    assert [(a.actor_id, a.target_kind) for a in audited] == [(world.staff["ward_a"].id, "person")]
    # outside the caller's area: 404, the same as a person who does not exist; nothing audited
    _outcome(client.get(f"/fhir/r4/Patient/{other.id}", headers=bearer("ward_a")), 404, "not_found")
    _outcome(client.get("/fhir/r4/Patient/999999", headers=bearer("admin")), 404, "not_found")
    assert not session.scalar(
        select(func.count()).where(
            AuditEvent.action == "fhir.read", AuditEvent.target_id == other.id
        )
    )


def test_patient_search_pages_with_next_links(client, world, bearer, session, db_backend):
    page = _resource(client.get("/fhir/r4/Patient?_count=1", headers=bearer("admin")), "Bundle")
    assert page["type"] == "searchset" and page["total"] == 2
    first = [e["resource"]["id"] for e in page["entry"]]
    links = {link["relation"]: link["url"] for link in page["link"]}
    assert "_count=1" in links["next"] and "_offset=1" in links["next"]
    nxt = _resource(client.get(links["next"], headers=bearer("admin")), "Bundle")
    second = [e["resource"]["id"] for e in nxt["entry"]]
    assert "next" not in {link["relation"] for link in nxt["link"]}
    assert sorted(first + second) == sorted(
        str(p.id) for p in (world.own.person, world.other.person)
    )
    assert nxt["entry"][0]["fullUrl"].endswith(f"/fhir/r4/Patient/{second[0]}")
    # the district sees its own person only; each served person is audited once per page
    body = _resource(client.get("/fhir/r4/Patient", headers=bearer("district")), "Bundle")
    assert [e["resource"]["id"] for e in body["entry"]] == [str(world.own.person.id)]
    searched = session.scalars(
        select(AuditEvent.target_id).where(
            AuditEvent.action == "fhir.search", AuditEvent.actor_id == world.staff["district"].id
        )
    ).all()
    assert searched == [world.own.person.id]


def test_patient_search_by_last_updated(client, world, bearer, db_backend):
    stamp = world.own.person.updated_at
    later = (stamp + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    earlier = (stamp - timedelta(seconds=1)).isoformat()
    admin = bearer("admin")

    def total(query):
        return _resource(client.get(f"/fhir/r4/Patient?{query}", headers=admin))["total"]

    assert total(f"_lastUpdated=ge{later}") == 0
    assert total(f"_lastUpdated=gt{earlier.replace('+', '%2B')}") == 2
    assert total(f"_lastUpdated=gt{earlier.replace('+', '%2B')}&_lastUpdated=lt{later}") == 2
    assert total(f"_lastUpdated=lt{earlier.replace('+', '%2B')}") == 0
    _outcome(client.get(f"/fhir/r4/Patient?_lastUpdated=eq{later}", headers=admin), 400,
             "fhir_invalid_search")  # fmt: skip
    _outcome(client.get("/fhir/r4/Patient?_lastUpdated=geyesterday", headers=admin), 400,
             "fhir_invalid_search")  # fmt: skip
    # a filter we do not support is refused, never silently ignored (more data than asked for)
    bad = _outcome(
        client.get("/fhir/r4/Patient?name=Hoa", headers=admin), 400, "fhir_invalid_search"
    )
    assert bad["issue"][1]["expression"] == ["name"]
    _outcome(client.get("/fhir/r4/Patient?_count=0", headers=admin), 400, "fhir_invalid_search")
    _outcome(client.get("/fhir/r4/Patient?_count=101", headers=admin), 400, "fhir_invalid_search")


def test_observations_and_episode_of_a_patient(client, world, bearer, session, db_backend):
    person = world.own.person
    decls = session.scalars(select(Declaration).where(Declaration.person_id == person.id)).all()
    vitals = sum(
        (d.temperature_c is not None) + (d.spo2 is not None) + (d.heart_rate is not None)
        for d in decls
    )
    closed = session.scalar(
        select(func.count()).where(
            CheckinPrompt.person_id == person.id, CheckinPrompt.state.in_(CLOSED)
        )
    )
    want = vitals + len(decls) + closed
    assert want == 7  # 2 declarations (SpO2 + temperature) + their symptoms + 1 check-in
    seen, url = [], f"/fhir/r4/Observation?patient=Patient/{person.id}&_count=3"
    while url:
        page = _resource(client.get(url, headers=bearer("doctor")), "Bundle")
        assert page["total"] == want
        seen += [e["resource"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert len(seen) == want == len({o["id"] for o in seen})
    assert {o["code"]["coding"][0]["code"] for o in seen if "coding" in o["code"]} >= {
        "8310-5",
        "59408-5",
    }
    assert all(o["subject"]["reference"] == f"Patient/{person.id}" for o in seen)
    eoc = _resource(
        client.get(f"/fhir/r4/EpisodeOfCare?patient={person.id}", headers=bearer("ward_a")),
        "Bundle",
    )
    assert [e["resource"]["resourceType"] for e in eoc["entry"]] == ["EpisodeOfCare"]
    assert eoc["entry"][0]["resource"]["status"] == "active"
    # outside the scope: 404; no patient: 400
    other = world.other.person.id
    _outcome(client.get(f"/fhir/r4/Observation?patient={other}", headers=bearer("doctor")), 404,
             "not_found")  # fmt: skip
    _outcome(client.get("/fhir/r4/EpisodeOfCare", headers=bearer("admin")), 400,
             "fhir_invalid_search")  # fmt: skip
    _outcome(client.get("/fhir/r4/Observation?patient=Group/1", headers=bearer("admin")), 400,
             "fhir_invalid_search")  # fmt: skip


def test_errors_are_operation_outcomes_in_both_languages(client, world, bearer):
    body = _outcome(client.get("/fhir/r4/Patient/1"), 401, "unauthorized")
    assert body["issue"][0]["code"] == "login"
    en = client.get("/fhir/r4/Patient/999999", headers={**bearer("admin"), "Accept-Language": "en"})
    assert _outcome(en, 404, "not_found")["issue"][0]["details"]["text"].startswith("The requested")
    assert en.headers["Content-Language"] == "en"
    vi = client.get("/fhir/r4/Patient/999999", headers=bearer("admin"))
    assert vi.headers["Content-Language"] == "vi"
    _outcome(client.get("/fhir/r4/Nothing", headers=bearer("admin")), 404, "not_found")
    r = client.post("/fhir/r4/Patient", headers=bearer("admin"))
    _outcome(r, 405, "method_not_allowed")
    assert "GET" in r.headers["Allow"]
    _outcome(client.get("/fhir/r4/$export", headers=bearer("doctor")), 403, "forbidden")
    # the problem+json API outside /fhir/ is untouched
    assert client.get("/api/v1/admin/persons/1").mimetype == "application/problem+json"
    assert json.loads(client.get("/fhir/r4/Patient/1").data)["resourceType"] == "OperationOutcome"


def test_person_page_links_to_the_fhir_record(app, world):
    from tests.dashboard.world import log_in

    client = app.test_client()
    log_in(client, world.staff["ward_a"])
    person = world.own.person
    page = client.get(f"/dashboard/persons/{person.id}").get_data(as_text=True)
    href = f'href="/fhir/r4/Patient/{person.id}"'
    assert href in page
    followed = client.get(f"/fhir/r4/Patient/{person.id}")  # the dashboard session reads it
    assert followed.status_code == 200
    assert _resource(followed, "Patient")["id"] == str(person.id)
