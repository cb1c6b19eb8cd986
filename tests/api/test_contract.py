"""The contract (mobile_api_spec/openapi.yaml) against the server.

1. The spec itself: valid OpenAPI 3.1, one operation per route of the app and vice versa, and
   every error code the server knows is documented (statically, per route, as far as the code's
   string constants tell, and from the catalogue as a whole).
2. Real requests through ``contract_client``, which fails a test on any response the spec does
   not allow: the non-face operations' answers and their error cases. The face verifier is never
   reached here (check-in successes are tests/checkins' end-to-end tests).
"""

from __future__ import annotations

import inspect
import io
import types
from datetime import timedelta

import pytest
from openapi_spec_validator import validate as validate_spec
from sqlalchemy import select

from server.checkins.models import CheckinAttempt
from server.core.enums import AttemptDecision, PersonStatus
from server.people.models import Person
from tests.api.contract import (
    WARD_3,
    ContractClient,
    ContractViolation,
    activate,
    add_prompt,
    add_staff,
    assert_conforms,
    bearer,
    clear_prompts,
    enrol,
    operations,
    person_payload,
    spec_dict,
    staff_token,
)

# --- the spec itself ----------------------------------------------------------------------------


def test_the_spec_is_valid_openapi_3_1():
    validate_spec(spec_dict())
    assert spec_dict()["openapi"].startswith("3.1")


def test_every_operation_is_described():
    ids = [op["operationId"] for _m, _p, op in operations().values()]
    assert len(ids) == len(set(ids))
    for op_id, (_method, path, op) in operations().items():
        assert op.get("summary"), op_id
        assert "x-error-codes" in op, op_id
        assert "security" in op, f"{op_id}: say explicitly which token it needs"
        if path.startswith("/api/v1/me"):
            assert op["security"] == [{"deviceToken": []}], op_id
        if path.startswith("/api/v1/admin"):
            assert op["security"] == [{"staffToken": []}], op_id
        if path.startswith("/api/v1"):
            refs = [p.get("$ref", "") for p in op.get("parameters", [])]
            assert "#/components/parameters/AcceptLanguage" in refs, op_id
        for status, response in op["responses"].items():
            if int(status) >= 400 and path.startswith("/api/v1"):  # /readyz: 503 is JSON
                assert "application/problem+json" in _resolve(response)["content"], (op_id, status)


def _spec_routes() -> set[tuple[str, str]]:
    return {(method, path) for method, path, _op in operations().values()}


def _app_routes(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/v1") or rule.rule in ("/healthz", "/readyz")):
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<int:{arg}>", f"{{{arg}}}").replace(f"<{arg}>", f"{{{arg}}}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((method, path))
    return found


def test_every_route_of_the_app_is_in_the_spec_and_vice_versa(app):
    assert _app_routes(app) - _spec_routes() == set(), "routes the spec does not document"
    assert _spec_routes() - _app_routes(app) == set(), "operations the server does not have"


def _resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        target = spec_dict()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _codes_in_schema(schema) -> set[str]:
    """Every ``code`` const/enum value a (problem) schema allows."""
    schema = _resolve(schema)
    found: set[str] = set()
    code = schema.get("properties", {}).get("code")
    if code:
        code = _resolve(code)
        found |= set(code.get("enum", [])) | ({code["const"]} if "const" in code else set())
    for key in ("allOf", "oneOf", "anyOf"):
        for sub in schema.get(key, []):
            found |= _codes_in_schema(sub)
    return found


def _documented_codes(op) -> dict[str, set[int]]:
    """code -> the statuses the operation documents it with."""
    codes: dict[str, set[int]] = {}
    for status, response in op["responses"].items():
        content = _resolve(response).get("content", {})
        if "application/problem+json" in content:
            for code in _codes_in_schema(content["application/problem+json"]["schema"]):
                codes.setdefault(code, set()).add(int(status))
    return codes


@pytest.mark.parametrize("op_id", sorted(operations()))
def test_x_error_codes_match_the_problem_schemas(op_id):
    _m, path, op = operations()[op_id]
    if not path.startswith("/api/v1"):
        assert op["x-error-codes"] == []
        return
    documented = _documented_codes(op)
    assert set(op["x-error-codes"]) == set(documented), op_id
    unconstrained = [
        s
        for s, r in op["responses"].items()
        if int(s) >= 400
        and not _codes_in_schema(_resolve(r)["content"]["application/problem+json"]["schema"])
    ]
    assert unconstrained == [], f"{op_id}: every problem response must enumerate its codes"


def _catalogue() -> set[str]:
    from server.http.problem import MESSAGES
    from verification.errors import CODES

    return set(MESSAGES) | set(CODES)


def test_every_code_the_server_knows_is_in_the_spec(app):
    """The catalogue (server.http.problem.MESSAGES with the verification codes the app registers,
    and verification.errors.CODES) against the spec: x-error-codes of the operations and of the
    whole API, and the check-in result codes."""
    schemas = spec_dict()["components"]["schemas"]
    in_spec = set(spec_dict()["x-error-codes"]) | set(schemas["CheckinCode"]["enum"])
    in_spec |= set(spec_dict()["x-fhir-error-codes"])  # the FHIR API's own (docs/fhir.md)
    for _m, _p, op in operations().values():
        in_spec |= set(op["x-error-codes"])
    assert _catalogue() - in_spec == set()
    assert in_spec - _catalogue() == set(), "codes in the spec that the server does not have"


# Static view of what each route can answer: the catalogue codes among the string constants of
# the view, its decorators and every server function it reaches, plus the containers of codes
# it reads (CLOSED_CODES, BAD_IMAGE_STATUS). Codes computed at run time from the face library
# (``exc.code``) are covered by the catalogue test above and by the e2e tests.


def _code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _strings_in(value) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return {str(k) for k in value} | {v for v in value.values() if isinstance(v, str)}
    if isinstance(value, set | frozenset | tuple | list):
        return {v for v in value if isinstance(v, str)}
    return set()


#: Module-level containers that hold codes but are not answers: the catalogue itself, and alert
#: kinds (``outside_home`` is an alert kind as well as a check-in result).
NOT_ANSWERS = {"MESSAGES", "HTTP_STATUS_CODES", "ALERT_POLICY", "SERVER_FAULT_CODES"}


def _reachable_codes(view) -> tuple[set[str], bool]:
    catalogue = _catalogue()
    found: set[str] = set()
    limited = False
    seen: set[int] = set()
    stack = [view]
    while stack:
        fn = stack.pop()
        fn = getattr(fn, "__func__", fn)
        if not inspect.isfunction(fn) or id(fn) in seen:
            continue
        seen.add(id(fn))
        filename = fn.__code__.co_filename
        if "flask_limiter" in filename:
            limited = True
        stack.extend(c.cell_contents for c in fn.__closure__ or () if _filled(c))
        if "/server/" not in filename and "flask_limiter" not in filename:
            continue
        names: set[str] = set()
        for code in _code_objects(fn.__code__):
            found |= {c for c in code.co_consts if isinstance(c, str) and c in catalogue}
            names |= set(code.co_names)
        for name in names:
            obj = fn.__globals__.get(name)
            if isinstance(obj, types.ModuleType) and obj.__name__.startswith("server"):
                stack.extend(getattr(obj, n) for n in names if hasattr(obj, n))
            elif inspect.isfunction(obj):
                stack.append(obj)
            elif name not in NOT_ANSWERS:
                found |= _strings_in(obj) & catalogue
    return found, limited


def _filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("op_id", sorted(operations()))
def test_every_code_a_route_can_raise_is_documented_for_it(app, op_id):
    method, path, op = operations()[op_id]
    flask_path = path.replace("{", "<int:").replace("}", ">")
    rule = next(r for r in app.url_map.iter_rules() if r.rule == flask_path and method in r.methods)
    codes, limited = _reachable_codes(app.view_functions[rule.endpoint])
    allowed = set(op["x-error-codes"]) | set(spec_dict()["x-error-codes"])
    if op_id == "submitCheckin":
        allowed |= set(spec_dict()["components"]["schemas"]["CheckinCode"]["enum"])
    assert codes - allowed == set(), f"{op_id} can answer codes its contract does not list"
    assert limited == ("rate_limited" in op["x-error-codes"]), f"{op_id}: rate limit documented?"


# --- real requests ------------------------------------------------------------------------------


def test_probes(contract: ContractClient, app, clock):
    assert contract.get("/healthz").get_json() == {"status": "ok"}
    assert contract.get("/readyz").get_json()["status"] == "ready"
    app.extensions["isocheck"].scheduler = object()  # in-process scheduler that never swept
    r = contract.get("/readyz")
    assert r.status_code == 503 and r.get_json()["checks"]["scheduler"]["ok"] is False


def test_activation_gives_a_device_token_and_its_person(world, contract):
    r = contract.get("/api/v1/me", headers=world.device)
    assert r.status_code == 200
    me = r.get_json()
    assert me["id"] == world.person_id and me["full_name"] == "Nguyễn Thị Hoa"
    assert "national_id" not in me  # the phone sees the summary, not the staff record


def test_activation_errors(world, contract, session, clock):
    code = world.person["activation"]["code"]
    r = contract.post("/api/v1/devices/activate", json={"code": code})
    assert (r.status_code, r.get_json()["code"]) == (400, "invalid_activation_code")  # used
    r = contract.post("/api/v1/devices/activate", data="{", content_type="application/json")
    assert (r.status_code, r.get_json()["code"]) == (400, "bad_request")
    r = contract.post("/api/v1/devices/activate", data="code=ABCDE", content_type="text/plain")
    assert (r.status_code, r.get_json()["code"]) == (415, "unsupported_media_type")
    r = contract.post("/api/v1/devices/activate", json={"code": "AB", "platform": "nokia"})
    assert r.status_code == 422
    assert {e["field"] for e in r.get_json()["errors"]} == {"code", "platform"}
    r = contract.post("/api/v1/devices/activate", json={"code": "ABCDE-FGHJK", "extra": 1})
    assert [e["field"] for e in r.get_json()["errors"]] == ["extra"]

    # a released person's new code: isolation_ended
    r = contract.post(
        f"/api/v1/admin/persons/{world.person_id}/activation-code", headers=world.staff
    )
    new_code = r.get_json()["code"]
    _set_status(session, world.person_id, PersonStatus.released)
    r = contract.post("/api/v1/devices/activate", json={"code": new_code})
    assert (r.status_code, r.get_json()["code"]) == (403, "isolation_ended")


def _set_status(session, person_id: int, status: PersonStatus) -> None:
    person = session.get(Person, person_id)
    person.status = status
    session.commit()


def test_device_calls_without_a_valid_token_are_401(world, contract):
    for headers in ({}, bearer("not-a-token"), world.staff):
        r = contract.get("/api/v1/me", headers=headers)
        assert (r.status_code, r.get_json()["code"]) == (401, "unauthorized")
        assert r.headers["WWW-Authenticate"] == "Bearer"
    r = contract.put("/api/v1/me/push-token", json={"push_token": "x"})
    assert r.status_code == 401


def test_a_released_person_is_told_isolation_ended(world, contract, session):
    _set_status(session, world.person_id, PersonStatus.released)
    for path in ("/api/v1/me", "/api/v1/me/prompt", "/api/v1/me/history"):
        r = contract.get(path, headers=world.device)
        assert (r.status_code, r.get_json()["code"]) == (403, "isolation_ended")


def test_push_token(world, contract):
    r = contract.put(
        "/api/v1/me/push-token",
        headers=world.device,
        json={"push_token": "fcm:abc", "platform": "ios"},
    )
    assert r.status_code == 204 and r.data == b""
    r = contract.put("/api/v1/me/push-token", headers=world.device, json={"platform": "ios"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "push_token"
    r = contract.put("/api/v1/me/push-token", headers=world.device, data="x")
    assert r.status_code == 415


def test_current_prompt_none_then_open_with_a_challenge(world, contract, session, clock):
    clear_prompts(session, world.person_id)
    r = contract.get("/api/v1/me/prompt", headers=world.device)
    assert r.get_json() == {
        "prompt": None,
        "next_opens_at": None,
        "server_time": clock.now().isoformat(),
    }
    now = clock.now()
    prompt = add_prompt(
        session, world.person_id, now, challenge={"kind": "turn_left", "nonce": "9f2c4e1a7b3d5c60"}
    )
    later = add_prompt(session, world.person_id, now, opens_in_min=180, state="planned")
    body = contract.get("/api/v1/me/prompt", headers=world.device).get_json()
    assert body["prompt"]["nonce"] == prompt.nonce
    assert (
        body["prompt"]["attempts_left"] == 3 and body["prompt"]["challenge"]["kind"] == "turn_left"
    )
    assert body["next_opens_at"] == later.opens_at.isoformat()


def test_the_prompts_the_scheduler_plans_conform(world, contract, session, clock):
    """Walk through every prompt planned at enrolment (a ward whose policy always asks for a
    liveness challenge) and fetch it when it is open."""
    from server.checkins.models import CheckinPrompt

    world.places["ward1"].schedule_policy = {"challenge_probability": 1.0}
    session.commit()
    person = enrol(contract, world.admin_token, clock.now())
    device = bearer(activate(contract, person["activation"]["code"])["token"])
    prompts = session.scalars(
        select(CheckinPrompt)
        .where(CheckinPrompt.person_id == person["id"])
        .order_by(CheckinPrompt.opens_at)
    ).all()
    assert prompts, "enrolment plans prompts"
    for prompt in prompts:
        clock.set(prompt.opens_at + timedelta(seconds=1))
        body = contract.get("/api/v1/me/prompt", headers=device).get_json()
        assert body["prompt"]["id"] == prompt.id
    contract.get("/api/v1/me/history", headers=device)


def test_history(world, contract, session, clock):
    clear_prompts(session, world.person_id)
    now = clock.now()
    done = add_prompt(session, world.person_id, now - timedelta(hours=5), state="completed")
    session.add(
        CheckinAttempt(
            prompt_id=done.id,
            person_id=world.person_id,
            received_at=now - timedelta(hours=5),
            decision=AttemptDecision.verified,
            code="face_match",
        )
    )
    session.commit()
    add_prompt(session, world.person_id, now - timedelta(hours=2), state="missed")
    add_prompt(session, world.person_id, now, opens_in_min=60, state="planned")  # not yet
    items = contract.get("/api/v1/me/history", headers=world.device).get_json()["items"]
    assert [(i["state"], i["last_result"], i["last_code"]) for i in items] == [
        ("missed", None, None),
        ("completed", "verified", "face_match"),
    ]
    assert len(contract.get("/api/v1/me/history?limit=1", headers=world.device).json["items"]) == 1
    assert contract.get("/api/v1/me/history?limit=0", headers=world.device).status_code == 200
    r = contract.get("/api/v1/me/history?limit=abc", headers=world.device)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "limit"


def test_staff_token_errors_and_throttle(world, contract, session):
    r = contract.post("/api/v1/auth/token", json={"username": "admin.contract", "password": "no"})
    assert (r.status_code, r.get_json()["code"]) == (401, "invalid_credentials")
    r = contract.post("/api/v1/auth/token", json={"username": "nobody", "password": "x"})
    assert r.status_code == 401
    r = contract.post("/api/v1/auth/token", json={"username": "admin.contract"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "password"
    r = contract.post("/api/v1/auth/token", data="username=a")
    assert r.status_code == 415
    for _ in range(4):
        contract.post("/api/v1/auth/token", json={"username": "admin.contract", "password": "no"})
    right = {"username": "admin.contract", "password": "admin-pass-2026"}
    r = contract.post("/api/v1/auth/token", json=right)
    assert (r.status_code, r.get_json()["code"]) == (429, "login_throttled")  # this client waits
    assert int(r.headers["Retry-After"]) == r.get_json()["retry_after_s"] > 0
    # ... but the account is not locked for everyone (issue 13, finding 12)
    other = {"REMOTE_ADDR": "192.0.2.77"}
    assert contract.post("/api/v1/auth/token", json=right, environ_base=other).status_code == 200


def test_create_person_and_its_errors(world, contract, session, clock):
    now = clock.now()
    body = world.person
    assert body["status"] == "active" and body["active_devices"] == 0
    assert body["activation"]["qr_payload"].endswith(body["activation"]["code"])

    r = contract.post(
        "/api/v1/admin/persons",
        headers=world.staff,
        json=person_payload(now, national_id=body["national_id"]),
    )
    assert (r.status_code, r.get_json()["code"]) == (409, "person_exists")
    r = contract.post(
        "/api/v1/admin/persons", headers=world.staff, json=person_payload(now, ward_code="00-000")
    )
    assert (r.status_code, r.get_json()["code"]) == (422, "area_not_found")
    assert r.get_json()["errors"][0]["field"] == "ward_code"
    r = contract.post(
        "/api/v1/admin/persons", headers=world.staff, json=person_payload(now, ward_code="79-764")
    )
    assert (r.status_code, r.get_json()["code"]) == (422, "validation_error")  # a district
    r = contract.post(
        "/api/v1/admin/persons",
        headers=world.staff,
        json=person_payload(now, phone="abc", home_lat=91, risk_factors={"smoker": True}),
    )
    assert r.status_code == 422
    fields = {e["field"] for e in r.get_json()["errors"]}
    assert fields == {"phone", "home_lat", "risk_factors.smoker"}
    r = contract.post(
        "/api/v1/admin/persons",
        headers=world.staff,
        json=person_payload(now, isolation_end=(now - timedelta(days=3)).isoformat()),
    )
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] is None  # whole body

    r = contract.post("/api/v1/admin/persons", json=person_payload(now))
    assert r.status_code == 401
    r = contract.post("/api/v1/admin/persons", headers=world.device, json=person_payload(now))
    assert r.status_code == 401  # a device token is no staff token
    add_staff(session, "bacsi.p1", "doctor-pass-2026", "doctor", world.places["ward1"])
    doctor = bearer(staff_token(contract, "bacsi.p1", "doctor-pass-2026"))
    r = contract.post("/api/v1/admin/persons", headers=doctor, json=person_payload(now))
    assert (r.status_code, r.get_json()["code"]) == (403, "forbidden")


def test_staff_see_only_their_area(world, contract, session, clock):
    add_staff(session, "canbo.p3", "staff-pass-2026", "area_staff", world.places["ward3"])
    p3 = bearer(staff_token(contract, "canbo.p3", "staff-pass-2026"))
    r = contract.get(f"/api/v1/admin/persons/{world.person_id}", headers=world.staff)
    assert r.status_code == 200 and r.get_json()["active_devices"] == 1
    for path in ("", "/activation-code", "/devices/revoke"):
        method = contract.get if not path else contract.post
        r = method(f"/api/v1/admin/persons/{world.person_id}{path}", headers=p3)
        assert (r.status_code, r.get_json()["code"]) == (404, "not_found"), path
    r = contract.get("/api/v1/admin/persons/999999", headers=world.staff)
    assert r.status_code == 404
    r = contract.get(f"/api/v1/admin/persons/{world.person_id}")
    assert r.status_code == 401
    # their own ward is fine, an unknown-to-them ward is area_not_found
    own = enrol(contract, p3["Authorization"][7:], clock.now(), ward_code=WARD_3[0])
    assert own["ward_id"] == world.places["ward3"].id
    r = contract.post("/api/v1/admin/persons", headers=p3, json=person_payload(clock.now()))
    assert (r.status_code, r.get_json()["code"]) == (422, "area_not_found")


def test_new_activation_code_and_revocation(world, contract):
    old = world.person["activation"]["code"]
    r = contract.post(
        f"/api/v1/admin/persons/{world.person_id}/activation-code", headers=world.staff
    )
    assert r.status_code == 201
    code = r.get_json()["code"]
    phone2 = activate(contract, code.lower().replace("-", " "), platform="ios")  # typed loosely
    assert contract.post("/api/v1/devices/activate", json={"code": old}).status_code == 400
    # max_devices = 1: the new phone replaced the old one
    assert contract.get("/api/v1/me", headers=world.device).status_code == 401
    r = contract.post(
        f"/api/v1/admin/persons/{world.person_id}/devices/revoke", headers=world.staff
    )
    assert r.get_json() == {"revoked": 1}
    assert contract.get("/api/v1/me", headers=bearer(phone2["token"])).status_code == 401
    r = contract.post(
        f"/api/v1/admin/persons/{world.person_id}/devices/revoke", headers=world.staff
    )
    assert r.get_json() == {"revoked": 0}


def test_declarations(world, contract, clock):
    now = clock.now()
    r = contract.post(
        "/api/v1/me/declarations",
        headers={**world.device, "Accept-Language": "en"},
        json={
            "measured_at": (now - timedelta(minutes=5)).isoformat(),
            "temperature_c": 38.6,
            "spo2": 91,
            "symptoms": ["fever", "dyspnea"],
        },
    )
    assert r.status_code == 201
    assert r.get_json()["risk_level"] == "red" and r.get_json()["entered_by_staff"] is False
    r = contract.post(
        f"/api/v1/admin/persons/{world.person_id}/declarations",
        headers=world.staff,
        json={"measured_at": (now - timedelta(hours=1)).isoformat(), "symptoms": []},
    )
    assert r.status_code == 201 and r.get_json()["entered_by_staff"] is True
    items = contract.get("/api/v1/me/declarations", headers=world.device).get_json()["items"]
    assert len(items) == 2
    r = contract.post(
        "/api/v1/me/declarations",
        headers=world.device,
        json={"measured_at": now.isoformat(), "spo2": 40, "symptoms": ["fever", "fever"]},
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.get_json()["errors"]} == {"spo2", "symptoms"}
    r = contract.post(
        "/api/v1/me/declarations",
        headers=world.device,
        json={"measured_at": (now + timedelta(hours=2)).isoformat()},
    )
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "measured_at"


# --- check-in errors that never reach the face verifier -----------------------------------------


def _checkin(contract, world, nonce: str, *, headers=None, **fields):
    data = {
        "selfie": (io.BytesIO(b"\xff\xd8\xff\xe0 not really a jpeg"), "selfie.jpg", "image/jpeg"),
        "nonce": nonce,
        "latitude": "10.8129",
        "longitude": "106.6866",
        "accuracy_m": "15",
        **fields,
    }
    data = {k: v for k, v in data.items() if v is not None}
    return contract.post(
        "/api/v1/me/checkins",
        headers={**world.device, **(headers or {})},
        data=data,
        content_type="multipart/form-data",
    )


def test_checkin_problems_before_verification(world, contract, session, clock):
    clear_prompts(session, world.person_id)
    now = clock.now()
    r = _checkin(contract, world, "unknown-nonce-123")
    assert (r.status_code, r.get_json()["code"]) == (400, "invalid_nonce")

    early = add_prompt(session, world.person_id, now, opens_in_min=30)
    r = _checkin(contract, world, early.nonce)
    assert (r.status_code, r.get_json()["code"]) == (409, "window_not_open")
    assert r.get_json()["opens_at"] == early.opens_at.isoformat()

    late = add_prompt(session, world.person_id, now, opens_in_min=-60, window_min=30)
    r = _checkin(contract, world, late.nonce, headers={"Accept-Language": "en"})
    assert (r.status_code, r.get_json()["code"]) == (409, "window_closed")
    assert r.get_json()["title"] == "Window closed" and r.headers["Content-Language"] == "en"

    for state, code in (("completed", "already_checked_in"), ("missed", "window_closed")):
        closed = add_prompt(session, world.person_id, now, state=state)
        r = _checkin(contract, world, closed.nonce)
        assert (r.status_code, r.get_json()["code"]) == (409, code)
    used_up = add_prompt(session, world.person_id, now, attempts_used=3)
    r = _checkin(contract, world, used_up.nonce)
    assert (r.status_code, r.get_json()["code"]) == (409, "attempts_exhausted")

    open_ = add_prompt(session, world.person_id, now)
    r = _checkin(contract, world, open_.nonce, selfie=None)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "selfie"
    r = _checkin(contract, world, "short", latitude="north", accuracy_m=None)
    assert {e["field"] for e in r.get_json()["errors"]} == {"nonce", "latitude", "accuracy_m"}
    r = _checkin(contract, world, open_.nonce, headers={"Idempotency-Key": "k" * 129})
    assert r.get_json()["errors"][0]["field"] == "Idempotency-Key"
    frames = [(io.BytesIO(b"x"), f"f{i}.jpg", "image/jpeg") for i in range(9)]
    r = _checkin(contract, world, open_.nonce, frames=frames)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "frames"
    r = contract.post("/api/v1/me/checkins", headers=world.device, json={"nonce": open_.nonce})
    assert (r.status_code, r.get_json()["code"]) == (415, "unsupported_media_type")
    # nothing was stored for any of these
    assert session.scalars(select(CheckinAttempt)).all() == []


def test_request_too_large(world, contract, app):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    big = {"selfie": (io.BytesIO(b"\xff" * 4096), "selfie.jpg", "image/jpeg"), "nonce": "x" * 16}
    r = contract.post(
        "/api/v1/me/checkins", headers=world.device, data=big, content_type="multipart/form-data"
    )
    assert (r.status_code, r.get_json()["code"]) == (413, "request_too_large")
    r = contract.post("/api/v1/devices/activate", json={"code": "A" * 4000})
    assert (r.status_code, r.get_json()["code"]) == (413, "request_too_large")


# --- what every route shares --------------------------------------------------------------------


def test_unknown_addresses_and_methods(world, contract):
    r = contract.get("/api/v1/nothing-here")
    assert (r.status_code, r.get_json()["code"]) == (404, "not_found")
    r = contract.delete("/api/v1/me", headers=world.device)
    assert (r.status_code, r.get_json()["code"]) == (405, "method_not_allowed")
    assert "GET" in r.headers["Allow"]
    r = contract.get("/api/v1/devices/activate", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert r.status_code == 405 and r.get_json()["title"] == "Method not allowed"
    r = contract.get("/api/v1/admin/persons/abc", headers=world.staff)
    assert r.status_code == 404


def test_rate_limited_answers_say_when_to_retry(world, contract, app):
    state = app.extensions["isocheck"]
    state.settings = state.settings.model_copy(update={"rate_limit_activation": "2/minute"})
    codes = [
        contract.post("/api/v1/devices/activate", json={"code": "ABCDE-FGHJK"}).status_code
        for _ in range(3)
    ]
    assert codes[:2] == [400, 400]
    r = contract.post("/api/v1/devices/activate", json={"code": "ABCDE-FGHJK"})
    assert (r.status_code, r.get_json()["code"]) == (429, "rate_limited")
    assert int(r.headers["Retry-After"]) == r.get_json()["retry_after_s"] >= 1


def test_the_checker_itself_catches_a_broken_response(world, contract, app):
    """The validator is not vacuous: a response missing a required field is refused."""
    r = app.test_client().get("/api/v1/me", headers=world.device)
    r.set_data(b'{"id": 1}')
    with pytest.raises(ContractViolation):
        assert_conforms(r)
    r = app.test_client().get("/api/v1/me")  # a problem with a code the operation lacks
    r.set_data(r.get_data().replace(b'"unauthorized"', b'"forbidden"'))
    with pytest.raises(ContractViolation):
        assert_conforms(r)


def test_a_retry_while_the_first_upload_is_undecided_is_not_a_500(world, contract, session, clock):
    from server.people.models import Device

    clear_prompts(session, world.person_id)
    prompt = add_prompt(session, world.person_id, clock.now())
    device = session.scalars(select(Device).where(Device.person_id == world.person_id)).one()
    session.add(
        CheckinAttempt(
            prompt_id=prompt.id,
            person_id=world.person_id,
            device_id=device.id,
            idempotency_key="5b0c7c2e-retry",
            received_at=clock.now(),
        )
    )
    session.commit()
    r = _checkin(contract, world, prompt.nonce, headers={"Idempotency-Key": "5b0c7c2e-retry"})
    assert r.status_code == 409
    assert r.get_json()["code"] == "checkin_in_progress"
    assert int(r.headers["Retry-After"]) >= 1
