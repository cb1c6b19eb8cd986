"""Asynchronous $export (FHIR Bulk Data): kick-off → 202 + Content-Location, polling → 202 with
X-Progress then 200 with the manifest, NDJSON downloads that validate, the caller's area only,
_since and _type, DELETE cancels, files expire, a dead worker's job fails."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import select

from server.alerts.models import Alert
from server.alerts.service import resolve_alert
from server.core.enums import AlertState
from server.fhir import bulk
from server.fhir.models import FhirExportJob

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


def _kick_off(client, headers, query=""):
    r = client.get(f"/fhir/r4/$export{query}", headers={**ASYNC, **headers})
    assert r.status_code == 202, r.get_data(as_text=True)
    assert r.mimetype == "application/fhir+json"
    return r.headers["Content-Location"]


def _wait(client, headers, status_url):
    bulk.join_all()
    for _ in range(50):
        r = client.get(status_url, headers=headers)
        if r.status_code != 202:
            return r
        assert "resources written" in r.headers["X-Progress"]
        time.sleep(0.1)
    raise AssertionError("export did not finish")


def _download(client, headers, manifest):
    files = {}
    for out in manifest["output"]:
        r = client.get(out["url"], headers=headers)
        assert r.status_code == 200 and r.mimetype == "application/fhir+ndjson"
        rows = [json.loads(line) for line in r.get_data(as_text=True).splitlines()]
        for row in rows:
            assert row["resourceType"] == out["type"]
            get_fhir_model_class(out["type"]).model_validate(row)
        assert len(rows) == out["count"]
        files[out["type"]] = rows
    return files


def _open_alert_ids(session) -> list[int]:
    return list(
        session.scalars(
            select(Alert.id).where(Alert.state != AlertState.resolved).order_by(Alert.id)
        )
    )


def test_export_kick_off_poll_download(client, world, bearer, settings, session, db_backend):
    admin = bearer("admin")
    status_url = _kick_off(client, admin)
    assert "/fhir/r4/$export-status/" in status_url
    r = _wait(client, admin, status_url)
    assert r.status_code == 200, r.get_data(as_text=True)
    manifest = r.get_json()
    assert manifest["requiresAccessToken"] is True
    assert [o["type"] for o in manifest["output"]] == [
        "Patient",
        "EpisodeOfCare",
        "Observation",
        "QuestionnaireResponse",
        "Flag",
    ]
    files = _download(client, admin, manifest)
    assert {p["id"] for p in files["Patient"]} == {
        str(world.own.person.id),
        str(world.other.person.id),
    }
    assert len(files["QuestionnaireResponse"]) == 4
    open_alerts = _open_alert_ids(session)
    assert len(open_alerts) >= 2  # the failed check-ins' and the declarations' alerts
    assert len(files["Flag"]) == 2 + len(open_alerts)  # a risk flag per person, open alerts
    # the files lie under the data dir, the job's own folder
    assert (settings.data_dir / "fhir-exports" / status_url.rsplit("/", 1)[1]).is_dir()
    # a file of someone else's job is not found
    assert client.get(manifest["output"][0]["url"], headers=bearer("district")).status_code == 404


def test_export_is_scoped_to_the_callers_area(client, world, bearer, db_backend):
    ward = bearer("ward_a")
    manifest = _wait(client, ward, _kick_off(client, ward)).get_json()
    files = _download(client, ward, manifest)
    assert [p["id"] for p in files["Patient"]] == [str(world.own.person.id)]
    subjects = {o["subject"]["reference"] for o in files["Observation"]}
    assert subjects == {f"Patient/{world.own.person.id}"}
    # ward B's staff: their ward has nobody
    b = bearer("ward_b")
    empty = _wait(client, b, _kick_off(client, b)).get_json()
    assert all(o["count"] == 0 for o in empty["output"])


def test_export_since_and_type(client, world, bearer, session, clock, db_backend):
    admin = bearer("admin")
    manifest = _wait(client, admin, _kick_off(client, admin, "?_type=Patient,Flag")).get_json()
    assert [o["type"] for o in manifest["output"]] == ["Patient", "Flag"]
    # resolve one alert: a full export no longer flags it; an export since then says it ended
    before = clock.now()
    resolve_alert(
        session=session,
        alert_id=world.own.alert.id,
        staff=world.staff["admin"],
        now=clock.advance(minutes=5),
        note="đã gọi điện",
    )
    session.commit()
    full = _download(
        client,
        admin,
        _wait(client, admin, _kick_off(client, admin, "?_type=Flag")).get_json(),
    )
    alert_flags = [f["id"] for f in full["Flag"] if f["id"].startswith("alert-")]
    assert f"alert-{world.own.alert.id}" not in alert_flags
    assert alert_flags == [f"alert-{i}" for i in _open_alert_ids(session)]
    since = (before + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    changed = _download(
        client,
        admin,
        _wait(client, admin, _kick_off(client, admin, f"?_type=Flag&_since={since}")).get_json(),
    )
    # (persons' updated_at is the wall clock's, later than the frozen clock: their risk flags
    # are in too; the alerts' times are the frozen clock's)
    assert [(f["id"], f["status"]) for f in changed["Flag"] if f["id"].startswith("alert-")] == [
        (f"alert-{world.own.alert.id}", "inactive")
    ]


def test_export_refuses_bad_requests(client, world, bearer):
    admin = bearer("admin")
    r = client.get("/fhir/r4/$export", headers=admin)  # no Prefer: respond-async
    assert r.status_code == 400 and r.mimetype == "application/fhir+json"
    assert r.get_json()["issue"][0]["details"]["coding"][0]["code"] == "fhir_respond_async_required"
    for query in ("?_type=Person", "?_since=yesterday", "?_outputFormat=text/csv", "?x=1"):
        r = client.get(f"/fhir/r4/$export{query}", headers={**ASYNC, **admin})
        assert r.status_code == 400, query
        assert r.get_json()["issue"][0]["details"]["coding"][0]["code"] == "fhir_invalid_search"
    assert client.get("/fhir/r4/$export-status/not-a-job", headers=admin).status_code == 404


def test_delete_cancels_and_removes_the_files(client, world, bearer, settings, session):
    admin = bearer("admin")
    status_url = _kick_off(client, admin)
    manifest = _wait(client, admin, status_url).get_json()
    job_id = status_url.rsplit("/", 1)[1]
    assert (settings.data_dir / "fhir-exports" / job_id / "Patient.ndjson").is_file()
    r = client.delete(status_url, headers=admin)
    assert r.status_code == 202
    assert client.get(status_url, headers=admin).status_code == 404
    assert client.get(manifest["output"][0]["url"], headers=admin).status_code == 404
    assert not (settings.data_dir / "fhir-exports" / job_id).exists()
    assert session.get(FhirExportJob, job_id) is None


def test_cancelled_running_job_stops_and_leaves_nothing(session_factory, settings, world, clock):
    """The thread asks the row at every batch: a job deleted while running stops."""
    job = bulk.create_job(
        session=world.session,
        staff_id=world.staff["admin"].id,
        area=None,
        since=None,
        types=["Patient"],
        request_url="http://localhost/fhir/r4/$export",
        now=clock.now(),
    )
    world.session.commit()
    calls = []
    original = bulk.export_ndjson

    def export_then_cancel(**kwargs):
        # simulate the DELETE arriving during the export: the next progress call sees it
        with session_factory() as s:
            s.delete(s.get(FhirExportJob, job.id))
            s.commit()
        calls.append(kwargs["on_progress"](1000))
        return original(**kwargs)

    bulk.export_ndjson = export_then_cancel
    try:
        bulk.run_job(session_factory, settings.data_dir, clock, job.id)
    finally:
        bulk.export_ndjson = original
    assert calls == [False]
    assert not bulk.job_dir(settings.data_dir, job.id).exists()


def test_files_expire_and_dead_workers_fail(client, world, bearer, clock, settings, session):
    admin = bearer("admin")
    status_url = _kick_off(client, admin)
    assert _wait(client, admin, status_url).status_code == 200
    job_id = status_url.rsplit("/", 1)[1]
    clock.advance(bulk.EXPIRES_AFTER + timedelta(minutes=1))
    assert client.get(status_url, headers=admin).status_code == 404
    assert not bulk.job_dir(settings.data_dir, job_id).exists()
    # a job whose process died (no heartbeat for STALE_AFTER) is failed on the next poll
    stuck = bulk.create_job(
        session=session,
        staff_id=world.staff["admin"].id,
        area=None,
        since=None,
        types=["Patient"],
        request_url="http://localhost/fhir/r4/$export",
        now=clock.now(),
    )
    stuck.status = "in_progress"
    session.commit()
    url = status_url.replace(job_id, stuck.id)
    assert client.get(url, headers=admin).status_code == 202
    clock.advance(bulk.STALE_AFTER + timedelta(seconds=1))
    r = client.get(url, headers=admin)
    assert r.status_code == 500 and r.mimetype == "application/fhir+json"
    assert r.get_json()["issue"][0]["details"]["coding"][0]["code"] == "export_failed"


def test_one_caller_runs_at_most_two_jobs(client, world, bearer, session, clock):
    for _ in range(bulk.MAX_ACTIVE_PER_CALLER):
        session.add(
            bulk.create_job(
                session=session,
                staff_id=world.staff["ward_a"].id,
                area=world.ward_a,
                since=None,
                types=["Patient"],
                request_url="x",
                now=clock.now(),
            )
        )
    session.commit()
    r = client.get("/fhir/r4/$export", headers={**ASYNC, **bearer("ward_a")})
    assert r.status_code == 429 and r.headers["Retry-After"]
