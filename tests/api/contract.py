"""Checking the server against ``mobile_api_spec/openapi.yaml``, and building a small world
through the API itself. Importable from any test module::

    from tests.api.contract import ContractClient, assert_conforms, make_world

:class:`ContractClient` is a Flask test client whose every response is validated against the
spec (openapi-core) before the test sees it; :func:`assert_conforms` validates one response.
Beyond the schema, a problem answer must carry its HTTP status in ``status`` and a ``code`` that
the operation lists in ``x-error-codes``.
"""

from __future__ import annotations

import functools
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_schema_validator import OAS31Validator
from sqlalchemy.orm import Session
from werkzeug.routing import Map, MapAdapter, Rule
from werkzeug.wrappers import Request, Response

SPEC_PATH = Path(__file__).resolve().parents[2] / "mobile_api_spec" / "openapi.yaml"
PROBLEM_JSON = "application/problem+json"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

#: The demo world's places (Gò Vấp district, Ho Chi Minh City).
CITY = ("79", "Thành phố Hồ Chí Minh")
DISTRICT = ("79-764", "Quận Gò Vấp")
WARD_1 = ("79-764-26896", "Phường 1")
WARD_3 = ("79-764-26899", "Phường 3")
HOME = (10.8129, 106.6866)
ADMIN = ("admin.contract", "admin-pass-2026")


class _AnsweredRequest(WerkzeugOpenAPIRequest):
    """The request behind a response: its body stream was read by the app already, and
    response validation does not need it."""

    @property
    def body(self) -> bytes | None:
        try:
            return self.request.get_data(cache=True)
        except Exception:  # noqa: BLE001 - consumed stream (ClientDisconnected)
            return None


class ContractViolation(AssertionError):
    """A response the spec does not allow."""


@functools.cache
def openapi() -> OpenAPI:
    # problem+json is JSON (openapi-core only knows application/json by name)
    config = Config(extra_media_type_deserializers={PROBLEM_JSON: _json_loads})
    return OpenAPI.from_file_path(str(SPEC_PATH), config=config)


def _json_loads(data: bytes | str, **_params: Any) -> Any:
    return json.loads(data)


@functools.cache
def spec_dict() -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(SPEC_PATH.read_text(encoding="utf-8"), Loader=loader)


def operations() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (METHOD, path, operation object)."""
    found = {}
    for path, item in spec_dict()["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                found[op["operationId"]] = (method.upper(), path, op)
    return found


@functools.cache
def _spec_routes() -> MapAdapter:
    """The spec's paths as Werkzeug rules (``{person_id}`` is an integer, as in the server)."""
    rules = Map()
    for path, item in spec_dict()["paths"].items():
        flask_path = path.replace("{", "<int:").replace("}", ">")
        for method in item:
            if method in METHODS:
                rules.add(Rule(flask_path, methods=[method.upper()], endpoint=f"{method} {path}"))
    return rules.bind("localhost")


def _operation_for(request: Request) -> dict[str, Any] | None:
    """The spec's operation object for ``request``, or None when the spec has none."""
    try:
        endpoint, _ = _spec_routes().match(request.path, method=request.method)
    except Exception:  # noqa: BLE001 - not in the spec
        return None
    method, path = endpoint.split(" ", 1)
    return spec_dict()["paths"][path][method]


def _describe(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {str(exc)[:300]}"]
    cause = exc.__cause__
    while cause is not None:
        parts.append(f"{type(cause).__name__}")
        for err in getattr(cause, "schema_errors", ()) or ():
            where = "/".join(str(p) for p in err.absolute_path) or "<body>"
            parts.append(f"  at {where}: {err.message[:500]}")
        cause = cause.__cause__
    return "\n".join(parts)


def assert_conforms(response: Response, request: Request | None = None) -> Response:
    """Fail (``ContractViolation``) unless ``response`` is one the spec allows for ``request``
    (default: the request the test client attached to the response). Returns the response."""
    request = request if request is not None else response.request  # type: ignore[attr-defined]
    label = f"{request.method} {request.full_path.rstrip('?')} -> {response.status_code}"
    try:
        openapi().validate_response(_AnsweredRequest(request), WerkzeugOpenAPIResponse(response))
    except (PathNotFound, OperationNotFound) as exc:
        _check_unrouted(response, label, exc)
        return response
    except OpenAPIError as exc:
        body = response.get_data(as_text=True)[:2000]
        raise ContractViolation(f"{label} breaks the contract:\n{_describe(exc)}\n{body}") from exc
    operation = _operation_for(request)
    if response.status_code >= 400 and not _documented_as_json(operation, response.status_code):
        _check_problem(response, label, operation)
    return response


def _documented_as_json(operation: dict[str, Any] | None, status: int) -> bool:
    """True for an error status the operation answers with plain JSON (``/readyz``'s 503)."""
    response = (operation or {}).get("responses", {}).get(str(status), {})
    return "application/json" in response.get("content", {})


def _check_problem(response: Response, label: str, operation: dict[str, Any] | None) -> None:
    if response.mimetype != PROBLEM_JSON:
        raise ContractViolation(
            f"{label}: an error must be {PROBLEM_JSON}, not {response.mimetype}"
        )
    body = json.loads(response.get_data(as_text=True))
    if body.get("status") != response.status_code:
        raise ContractViolation(f"{label}: problem status {body.get('status')} != HTTP status")
    if body.get("type") != f"https://isocheck.invalid/problems/{body.get('code')}":
        raise ContractViolation(f"{label}: problem type {body.get('type')!r} does not match code")
    if response.headers.get("Content-Language") not in ("vi", "en"):
        raise ContractViolation(f"{label}: a problem must say its Content-Language")
    if operation is not None and body.get("code") not in operation.get("x-error-codes", []):
        raise ContractViolation(
            f"{label}: code {body.get('code')!r} is not in {operation['operationId']}'s "
            f"x-error-codes {operation.get('x-error-codes')}"
        )


def _check_unrouted(response: Response, label: str, exc: Exception) -> None:
    """A request outside the spec's operations may only get ``404 not_found`` (unknown address)
    or ``405 method_not_allowed`` with ``Allow`` (known address, other method), as problems."""
    expected = {PathNotFound: (404, "not_found"), OperationNotFound: (405, "method_not_allowed")}
    status, code = next(v for k, v in expected.items() if isinstance(exc, k))
    if isinstance(exc, PathNotFound) and response.status_code == 405:
        status, code = 405, "method_not_allowed"  # e.g. a path the spec only lists with {id}
    if response.status_code != status:
        raise ContractViolation(
            f"{label}: not in the spec ({exc}) but answered {response.status_code}"
        )
    body = json.loads(response.get_data(as_text=True))
    schema = spec_dict()["components"]["schemas"]["Problem"]
    errors = sorted(OAS31Validator(schema).iter_errors(body), key=str)
    if errors:
        raise ContractViolation(f"{label}: not a Problem: {errors[0].message}")
    if body["code"] != code:
        raise ContractViolation(f"{label}: expected code {code!r}, got {body['code']!r}")
    if status == 405 and not response.headers.get("Allow"):
        raise ContractViolation(f"{label}: a 405 must say which methods are allowed (Allow)")
    _check_problem(response, label, None)


class ContractClient(FlaskClient):
    """A Flask test client that validates every response against the spec."""

    def open(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        response = super().open(*args, **kwargs)
        assert_conforms(response)
        return response


def contract_client_for(app: Flask) -> ContractClient:
    return ContractClient(app, app.response_class, use_cookies=True)


# --- a world built through the API --------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def person_payload(now: datetime, **overrides: Any) -> dict[str, Any]:
    """A valid createPerson body: isolating since yesterday for a week, in Phường 1."""
    body = {
        "full_name": "Nguyễn Thị Hoa",
        "phone": "0901234567",
        "date_of_birth": "1987-03-14",
        "national_id": "0791870" + f"{secrets.randbelow(10**5):05d}",
        "category": "F0",
        "ward_code": WARD_1[0],
        "home_address": "12 Nguyễn Văn Nghi, Phường 1, Quận Gò Vấp, TP. Hồ Chí Minh",
        "home_lat": HOME[0],
        "home_lon": HOME[1],
        "isolation_start": (now - timedelta(days=1)).isoformat(),
        "isolation_end": (now + timedelta(days=6)).isoformat(),
        "risk_factors": {"comorbidities": ["diabetes"], "pregnant": False},
    }
    body.update(overrides)
    return body


def make_places(session: Session) -> dict[str, Any]:
    """City → district → two wards (there is no API for areas: the service makes them)."""
    from server.core.enums import AreaKind
    from server.people.areas import create_area

    city = create_area(session=session, code=CITY[0], name=CITY[1], kind=AreaKind.city)
    district = create_area(
        session=session, code=DISTRICT[0], name=DISTRICT[1], kind=AreaKind.district, parent=city
    )
    ward1 = create_area(
        session=session, code=WARD_1[0], name=WARD_1[1], kind=AreaKind.ward, parent=district
    )
    ward3 = create_area(
        session=session, code=WARD_3[0], name=WARD_3[1], kind=AreaKind.ward, parent=district
    )
    session.commit()
    return {"city": city, "district": district, "ward1": ward1, "ward3": ward3}


def add_staff(session: Session, username: str, password: str, role: str, area=None) -> None:
    from server.core.enums import StaffRole
    from server.people.staff import create_staff

    create_staff(
        session=session,
        username=username,
        password=password,
        full_name=f"Cán bộ {username}",
        role=StaffRole(role),
        area=area,
    )
    session.commit()


def staff_token(client: FlaskClient, username: str, password: str) -> str:
    r = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert r.status_code == 200, r.get_json()
    return r.get_json()["token"]


def enrol(client: FlaskClient, token: str, now: datetime, **overrides: Any) -> dict[str, Any]:
    """createPerson; returns the 201 body (with ``activation``)."""
    r = client.post(
        "/api/v1/admin/persons", headers=bearer(token), json=person_payload(now, **overrides)
    )
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def activate(client: FlaskClient, code: str, platform: str = "android") -> dict[str, Any]:
    r = client.post("/api/v1/devices/activate", json={"code": code, "platform": platform})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


@dataclass
class World:
    """One district with two wards, an administrator, and one person with an activated phone."""

    places: dict[str, Any]
    admin_token: str
    person: dict[str, Any]
    device_token: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def person_id(self) -> int:
        return self.person["id"]

    @property
    def staff(self) -> dict[str, str]:
        return bearer(self.admin_token)

    @property
    def device(self) -> dict[str, str]:
        return bearer(self.device_token)


def make_world(client: FlaskClient, session: Session, now: datetime) -> World:
    """Places and an administrator (service calls: no API makes them), then a staff token, a
    person and an activated phone through the API itself."""
    places = make_places(session)
    add_staff(session, *ADMIN, role="admin")
    token = staff_token(client, *ADMIN)
    person = enrol(client, token, now)
    device = activate(client, person["activation"]["code"])
    return World(places=places, admin_token=token, person=person, device_token=device["token"])


def add_prompt(
    session: Session,
    person_id: int,
    now: datetime,
    *,
    opens_in_min: float = -1,
    window_min: float = 20,
    state: str = "open",
    challenge: dict[str, Any] | None = None,
    attempts_used: int = 0,
):
    """Insert a check-in prompt for ``person_id`` (the scheduler's job, done by hand)."""
    from server.checkins.models import CheckinPrompt
    from server.core.enums import PromptKind, PromptState

    prompt = CheckinPrompt(
        person_id=person_id,
        slot_key=f"test/{secrets.token_hex(4)}",
        kind=PromptKind.scheduled,
        state=PromptState(state),
        opens_at=now + timedelta(minutes=opens_in_min),
        due_at=now + timedelta(minutes=opens_in_min + window_min),
        nonce=secrets.token_urlsafe(16),
        max_attempts=3,
        attempts_used=attempts_used,
        challenge=challenge,
    )
    session.add(prompt)
    session.commit()
    return prompt


def clear_prompts(session: Session, person_id: int) -> None:
    """Remove the prompts planned at enrolment, so a test controls what is open."""
    from sqlalchemy import delete

    from server.checkins.models import CheckinPrompt

    session.execute(delete(CheckinPrompt).where(CheckinPrompt.person_id == person_id))
    session.commit()
