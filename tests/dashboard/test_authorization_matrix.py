"""Every dashboard route × every role × own / other area: allowed (2xx, 3xx, or 422 when the
handler ran and refused the form), 404, or — for anonymous callers — a redirect to the login
page (401 for the script-polled rows). The first test fails when a route has no matrix entry.

"own" objects are ward A's (ward A staff, the district above it, the doctor assigned to the
person there); "other" objects are ward C's, in another district. Ward B's staff see neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.dashboard.world import ROLES, World, csrf_token, log_in

ALL = ("admin", "ward_a", "district", "doctor", "ward_b")
MANAGERS = ("admin", "ward_a", "district", "ward_b")
PUBLIC = "public"
#: What each role may see: persons, alerts, attempts, images ("object") and areas ("area").
SEES = {
    "object": {
        "admin": {"own", "other"},
        "ward_a": {"own"},
        "district": {"own"},
        "doctor": {"own"},
        "ward_b": set(),
    },
    "area": {
        "admin": {"own", "other"},
        "ward_a": {"own"},
        "district": {"own"},
        "doctor": set(),
        "ward_b": set(),
    },
}


@dataclass(frozen=True)
class Route:
    path: str
    roles: tuple[str, ...] | str = ALL
    scope: str | None = None  # "object" / "area": the path names an own or other thing
    data: dict = field(default_factory=dict)
    anonymous: str = "login"  # "login" (302 to the login page), "401" or "public"
    plain_too: bool = False  # an area route also asked without the area (variant None)


MATRIX: dict[tuple[str, str], Route] = {
    ("dashboard.static", "GET"): Route(
        "/dashboard/static/dashboard.css", PUBLIC, anonymous="public"
    ),
    ("dashboard.login", "GET"): Route("/dashboard/login", PUBLIC, anonymous="public"),
    ("dashboard.login", "POST"): Route(
        "/dashboard/login", PUBLIC, anonymous="public", data={"username": "nobody", "password": "x"}
    ),
    ("dashboard.logout", "POST"): Route("/dashboard/logout", PUBLIC, anonymous="public"),
    ("dashboard.password", "GET"): Route("/dashboard/password"),
    ("dashboard.password", "POST"): Route(
        "/dashboard/password", data={"current": "wrong", "new": "x" * 12, "again": "x" * 12}
    ),
    ("dashboard.index", "GET"): Route("/dashboard/"),
    ("dashboard.alerts", "GET"): Route(
        "/dashboard/alerts?area={area}", scope="area", plain_too=True
    ),
    ("dashboard.alert_rows", "GET"): Route(
        "/dashboard/alerts/rows?area={area}", scope="area", plain_too=True, anonymous="401"
    ),
    ("dashboard.alert_acknowledge", "POST"): Route(
        "/dashboard/alerts/{alert}/acknowledge", scope="object", data={"note": "matrix"}
    ),
    ("dashboard.alert_resolve", "POST"): Route(
        "/dashboard/alerts/{alert}/resolve", scope="object", data={"note": "matrix"}
    ),
    ("dashboard.reviews", "GET"): Route("/dashboard/reviews", MANAGERS),
    ("dashboard.review", "GET"): Route("/dashboard/reviews/{attempt}", MANAGERS, "object"),
    ("dashboard.review_decide", "POST"): Route(
        "/dashboard/reviews/{attempt}",
        MANAGERS,
        "object",
        data={"outcome": "not_same_person", "note": "matrix"},
    ),
    ("dashboard.image", "GET"): Route("/dashboard/images/{image}", MANAGERS, "object"),
    ("dashboard.persons", "GET"): Route("/dashboard/persons?q=a"),
    ("dashboard.person", "GET"): Route("/dashboard/persons/{person}", scope="object"),
    ("dashboard.person_isolation", "POST"): Route(
        "/dashboard/persons/{person}/isolation",
        MANAGERS,
        "object",
        data={"action": "extend", "days": "1"},
    ),
    ("dashboard.person_schedule", "POST"): Route(
        "/dashboard/persons/{person}/schedule", MANAGERS, "object", data={"policy": ""}
    ),
    ("dashboard.person_schedule_form", "POST"): Route(
        "/dashboard/persons/{person}/schedule-form", MANAGERS, "object", data={"reset": "1"}
    ),
    ("dashboard.person_home", "POST"): Route(
        "/dashboard/persons/{person}/home", MANAGERS, "object", data={"action": "reject"}
    ),
    ("dashboard.person_activation", "POST"): Route(
        "/dashboard/persons/{person}/activation-code", MANAGERS, "object"
    ),
    ("dashboard.person_doctor", "POST"): Route(
        "/dashboard/persons/{person}/doctor", MANAGERS, "object", data={"doctor_id": ""}
    ),
    ("dashboard.person_declaration", "POST"): Route(
        "/dashboard/persons/{person}/declarations", scope="object", data={"spo2": "97"}
    ),
    ("dashboard.person_checkin_now", "POST"): Route(
        "/dashboard/persons/{person}/checkin-now", MANAGERS, "object"
    ),
    ("dashboard.area_checkin_now", "POST"): Route(
        "/dashboard/areas/{area}/checkin-now", MANAGERS, "area"
    ),
    ("dashboard.enrol", "GET"): Route("/dashboard/enrol", MANAGERS),
    ("dashboard.enrol", "POST"): Route("/dashboard/enrol", MANAGERS, data={"full_name": "X"}),
    ("dashboard.stats", "GET"): Route(
        "/dashboard/stats?area={area}", MANAGERS, "area", plain_too=True
    ),
    ("dashboard.stats_csv", "GET"): Route(
        "/dashboard/stats.csv?area={area}", MANAGERS, "area", plain_too=True
    ),
}
# ward B staff are managers of their own ward: they pass the role check and meet the scope


def dashboard_rules(app) -> set[tuple[str, str]]:
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("dashboard.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_dashboard_route_is_in_the_matrix(app):
    rules = dashboard_rules(app)
    missing = rules - set(MATRIX)
    assert not missing, f"routes without an authorization matrix entry: {sorted(missing)}"
    stale = set(MATRIX) - rules
    assert not stale, f"matrix entries for routes that do not exist: {sorted(stale)}"


def _url(route: Route, world: World, variant: str | None) -> str:
    if variant is None:
        return route.path.split("?")[0]
    bundle = world.own if variant == "own" else world.other
    return route.path.format(
        alert=bundle.alert.id,
        attempt=bundle.attempt.id,
        image=bundle.selfie.id,
        person=bundle.person.id,
        area=bundle.area.id,
    )


def expected(route: Route, role: str, variant: str | None) -> str:
    if route.roles == PUBLIC:
        return "public"
    if role == "anonymous":
        return route.anonymous
    if role not in route.roles:
        return "404"
    if variant is None or variant in SEES[route.scope][role]:
        return "ok"
    return "404"


def outcome(response) -> str:
    status = response.status_code
    if status == 302 and "/dashboard/login" in response.headers.get("Location", ""):
        return "login"
    if 200 <= status < 400 or status == 422:
        return "ok"
    return str(status)


@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(app, world, role):
    failures = []
    checked = 0
    for (endpoint, method), route in sorted(MATRIX.items()):
        variants = [None] if route.scope is None else ["own", "other"]
        if route.plain_too:
            variants.insert(0, None)
        for variant in variants:
            client = app.test_client()
            if role != "anonymous":
                log_in(client, world.staff[role])
            url = _url(route, world, variant)
            if method == "POST":
                token = csrf_token(client, logged_in=role != "anonymous")
                response = client.post(url, data={**route.data, "csrf_token": token})
            else:
                response = client.get(url)
            want, got = expected(route, role, variant), outcome(response)
            if want in ("ok", "public") and route.roles == PUBLIC:
                want, got = "ok", "ok" if got in ("ok", "login") else got
            checked += 1
            if got != want:
                failures.append(
                    f"{role:9} {method:4} {endpoint:32} {variant or '-':5} "
                    f"want {want:5} got {got} ({response.status_code})"
                )
    assert checked >= len(MATRIX)
    assert not failures, "\n" + "\n".join(failures)


def test_lists_show_only_what_is_in_scope(app, world):
    """The list pages (no object in the path) are allowed for everyone, so their content is
    what must be scoped: ward B's staff see neither person; ward A's staff only their own."""
    own, other = world.own.person.full_name, world.other.person.full_name
    seen = {
        "admin": {own, other},
        "ward_a": {own},
        "district": {own},
        "doctor": {own},
        "ward_b": set(),
    }
    for role, names in seen.items():
        client = app.test_client()
        log_in(client, world.staff[role])
        pages = ["/dashboard/alerts", "/dashboard/alerts/rows", "/dashboard/persons"]
        if role != "doctor":
            pages.append("/dashboard/reviews")
        for page in pages:
            body = client.get(page).get_data(as_text=True)
            for name in (own, other):
                assert (name in body) == (name in names), (role, page, name)
        if role != "doctor":
            csv_text = client.get("/dashboard/stats.csv").get_data(as_text=True)
            assert ("Phường Bến Nghé" in csv_text) == (other in names), role
            assert ("Phường 1" in csv_text) == (own in names), role


# --- the FHIR API (/fhir/r4): bearer staff tokens ---------------------------------------------
#
# Same roles and world. "object" routes name a person (own: ward A's, other: ward C's); "job"
# routes name an $export job (own: the caller's, other: another account's). Without a token:
# 401 (metadata is public). A role an exporting route does not admit: 403 (the route names no
# person, so saying "forbidden" confirms nothing). Out of scope: 404.

EXPORTERS = ("admin", "ward_a", "district", "ward_b")
FHIR_SEES = {**SEES, "job": {role: {"own"} for role in ALL}}


@dataclass(frozen=True)
class FhirRoute:
    path: str
    roles: tuple[str, ...] | str = ALL
    scope: str | None = None  # "object" (a person) or "job"
    headers: dict = field(default_factory=dict)


FHIR_MATRIX: dict[tuple[str, str], FhirRoute] = {
    ("fhir.metadata", "GET"): FhirRoute("/fhir/r4/metadata", PUBLIC),
    ("fhir.patient_read", "GET"): FhirRoute("/fhir/r4/Patient/{person}", scope="object"),
    ("fhir.patient_search", "GET"): FhirRoute("/fhir/r4/Patient?_count=5"),
    ("fhir.observation_search", "GET"): FhirRoute(
        "/fhir/r4/Observation?patient=Patient/{person}", scope="object"
    ),
    ("fhir.episode_search", "GET"): FhirRoute(
        "/fhir/r4/EpisodeOfCare?patient={person}", scope="object"
    ),
    ("fhir.export_kickoff", "GET"): FhirRoute(
        "/fhir/r4/$export?_type=Patient", EXPORTERS, headers={"Prefer": "respond-async"}
    ),
    ("fhir.export_status", "GET"): FhirRoute("/fhir/r4/$export-status/{job}", EXPORTERS, "job"),
    ("fhir.export_file", "GET"): FhirRoute(
        "/fhir/r4/$export-file/{job}/Patient.ndjson", EXPORTERS, "job"
    ),
    ("fhir.export_cancel", "DELETE"): FhirRoute("/fhir/r4/$export-status/{job}", EXPORTERS, "job"),
}


def test_every_fhir_route_is_in_the_matrix(app):
    rules = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("fhir.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert rules - set(FHIR_MATRIX) == set(), "FHIR routes without a matrix entry"
    assert set(FHIR_MATRIX) - rules == set(), "matrix entries for FHIR routes that do not exist"


def _completed_jobs(app, world) -> dict[str, str]:
    """A completed job with a Patient file per exporting role (written straight to the store)."""
    from server.fhir import bulk

    data_dir = world.settings.data_dir
    jobs = {}
    for role in EXPORTERS:
        job = bulk.create_job(
            session=world.session,
            staff_id=world.staff[role].id,
            area=None,
            since=None,
            types=["Patient"],
            request_url="http://localhost/fhir/r4/$export",
            now=world.clock.now(),
        )
        job.status, job.counts = "completed", {"Patient": 0}
        out = bulk.job_dir(data_dir, job.id)
        out.mkdir(parents=True)
        (out / "Patient.ndjson").write_text("")
        jobs[role] = job.id
    world.session.commit()
    return jobs


def _fhir_expected(route: FhirRoute, role: str, variant: str | None) -> str:
    if route.roles == PUBLIC:
        return "ok"
    if role == "anonymous":
        return "401"
    if role not in route.roles:
        return "403"
    if variant is None or variant in FHIR_SEES[route.scope][role]:
        return "ok"
    return "404"


def _bearer(app, staff) -> dict[str, str]:
    from server.http.auth import issue_staff_token

    with app.app_context():
        return {"Authorization": f"Bearer {issue_staff_token(staff)}"}


@pytest.mark.parametrize("role", ROLES)
def test_fhir_authorization_matrix(app, world, role):
    jobs = _completed_jobs(app, world)
    failures, checked = [], 0
    # DELETE last: it removes the job the other rows read
    order = sorted(FHIR_MATRIX.items(), key=lambda kv: (kv[0][1] == "DELETE", kv[0]))
    for (endpoint, method), route in order:
        for variant in [None] if route.scope is None else ["own", "other"]:
            bundle = world.own if variant == "own" else world.other
            own_job = jobs.get(role, jobs["admin"])
            other_job = jobs["ward_a"] if role == "admin" else jobs["admin"]
            url = route.path.format(
                person=bundle.person.id, job=own_job if variant == "own" else other_job
            )
            headers = dict(route.headers)
            if role != "anonymous":
                headers.update(_bearer(app, world.staff[role]))
            response = app.test_client().open(url, method=method, headers=headers)
            # FHIR everywhere; the $export manifest is plain JSON (Bulk Data)
            assert response.mimetype in (
                "application/fhir+json",
                "application/fhir+ndjson",
                "application/json" if endpoint == "fhir.export_status" else "-",
            ), (endpoint, response.status_code, response.mimetype)
            status = response.status_code
            got = "ok" if 200 <= status < 300 else str(status)
            want = _fhir_expected(route, role, variant)
            checked += 1
            if got != want:
                failures.append(
                    f"{role:9} {method:6} {endpoint:26} {variant or '-':5} want {want} got {got}"
                )
    from server.fhir import bulk

    bulk.join_all()  # the kick-offs started real jobs: let them end before the database goes
    assert checked >= len(FHIR_MATRIX)
    assert not failures, "\n" + "\n".join(failures)


def test_fhir_export_needs_a_bearer_token_not_the_dashboard_cookie(app, world):
    """A cross-site page could make a logged-in browser start an export: cookies do not count."""
    client = app.test_client()
    log_in(client, world.staff["admin"])
    response = client.get("/fhir/r4/$export", headers={"Prefer": "respond-async"})
    assert response.status_code == 401
    # the read API does take the dashboard's session (its link to a person's record)
    assert client.get(f"/fhir/r4/Patient/{world.own.person.id}").status_code == 200
