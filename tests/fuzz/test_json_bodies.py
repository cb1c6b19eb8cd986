"""Hypothesis over every JSON request body: arbitrary JSON values (deep nesting, huge and tiny
numbers, NaN-like strings, unicode incl. lone surrogates and NUL), valid bodies with one field
replaced by such a value, and raw bytes that are not quite JSON. Whatever arrives: never a 5xx,
every 4xx is ``application/problem+json`` with a ``code``, and no request takes long.

The whole contract is fuzzed by tests/api/test_schemathesis.py (slow); the image decoder by
tests/verification/test_verification_image.py::test_random_bytes_never_crash and
::test_mutated_real_images_never_crash.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import hypothesis
import pytest
from hypothesis import strategies as st

from tests.api.contract import person_payload

EXAMPLES = 60
#: A request that takes longer than this is a hang for our purposes (typical: a few ms).
SLOW_S = 2.0

WEIRD_STRINGS = st.sampled_from([
    "NaN", "-Infinity", "1e999", "-0", "0x10", "null", "true", "\u0000", "\ud800", "\ufeff",
    "Nguyễn Thị Hoa", "🦠" * 50, "' OR 1=1 --", "<script>alert(1)</script>", "../../etc/passwd",
    "a" * 5000, "%s%s%n", "\r\n\r\nX: y",
])  # fmt: skip
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([10**300, -(10**300), 2**63, -(2**63) - 1, 1e308, 5e-324, 0.1]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=40), WEIRD_STRINGS)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=12), WEIRD_STRINGS), children, max_size=5),
    ),
    max_leaves=25,
)
RAW_BODIES = [
    b"[" * 100_000 + b"]" * 100_000,  # deeper than the JSON decoder's recursion limit
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b"9" * 5000,  # more digits than Python's int-from-string limit
    b'{"code": NaN, "push_token": Infinity}',
    b'{"code": 1e999999}',
    b'"\\ud800"',
    b"\xff\xfe\x00{",
    b"",
    b"{",
    b'{"code": "x"}' * 1000,
    b"\x00" * 64,
]


def _endpoints(world, now):
    """(method, path, headers, a valid body) of every route that takes a JSON body."""
    staff, device = world.staff, world.device
    declaration = {"measured_at": (now - timedelta(minutes=5)).isoformat(),
                   "temperature_c": 37.1, "spo2": 97, "symptoms": ["cough"]}  # fmt: skip
    return {
        "activateDevice": ("POST", "/api/v1/devices/activate", {},
                           {"code": "ABCD-1234", "platform": "android"}),
        "updatePushToken": ("PUT", "/api/v1/me/push-token", device,
                            {"push_token": "fcm-token", "platform": "ios"}),
        "createStaffToken": ("POST", "/api/v1/auth/token", {},
                             {"username": "nobody", "password": "x"}),
        "createPerson": ("POST", "/api/v1/admin/persons", staff, person_payload(now)),
        "submitDeclaration": ("POST", "/api/v1/me/declarations", device, declaration),
        "submitDeclarationForPerson": ("POST",
                                       f"/api/v1/admin/persons/{world.person_id}/declarations",
                                       staff, declaration),
    }  # fmt: skip


def _send(client, method, path, headers, *, body=None, raw=None):
    started = time.perf_counter()
    if raw is not None:
        r = client.open(path, method=method, data=raw,
                        headers={**headers, "Content-Type": "application/json"})  # fmt: skip
    else:
        data = json.dumps(body, allow_nan=True)
        r = client.open(path, method=method, data=data,
                        headers={**headers, "Content-Type": "application/json"})  # fmt: skip
    elapsed = time.perf_counter() - started
    assert r.status_code < 500, (r.status_code, r.get_data()[:300])
    if r.status_code >= 400:
        assert r.mimetype == "application/problem+json", (r.status_code, r.mimetype)
        problem = r.get_json()
        assert isinstance(problem.get("code"), str) and problem["status"] == r.status_code
    assert elapsed < SLOW_S, f"{method} {path} took {elapsed:.2f} s"
    return r


def _run(test):
    hypothesis.settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )(test)()  # fmt: skip


OPS = ["activateDevice", "updatePushToken", "createStaffToken", "createPerson",
       "submitDeclaration", "submitDeclarationForPerson"]  # fmt: skip


@pytest.mark.parametrize("op", OPS)
def test_arbitrary_json_never_breaks_the_server(op, client, world, clock):
    method, path, headers, _valid = _endpoints(world, clock.now())[op]

    @hypothesis.given(body=JSON_VALUES)
    def run(body):
        _send(client, method, path, headers, body=body)

    _run(run)


@pytest.mark.parametrize("op", OPS)
def test_valid_body_with_one_field_broken(op, client, world, clock):
    method, path, headers, valid = _endpoints(world, clock.now())[op]

    @hypothesis.given(field=st.sampled_from(sorted(valid) + ["unexpected_field"]),
                      value=JSON_VALUES)  # fmt: skip
    def run(field, value):
        _send(client, method, path, headers, body={**valid, field: value})

    _run(run)


@pytest.mark.parametrize("op", OPS)
def test_raw_bodies_that_are_not_quite_json(op, client, world, clock):
    method, path, headers, _valid = _endpoints(world, clock.now())[op]
    for raw in RAW_BODIES:
        r = _send(client, method, path, headers, raw=raw)
        assert 400 <= r.status_code < 500


def test_deeply_nested_json_is_a_400_not_a_500(client):
    """Regression: RecursionError from the JSON decoder was a 500 (server/validation.py)."""
    r = client.post("/api/v1/devices/activate", data=b"[" * 100_000 + b"]" * 100_000,
                    headers={"Content-Type": "application/json"})  # fmt: skip
    assert (r.status_code, r.get_json()["code"]) == (400, "bad_request")
