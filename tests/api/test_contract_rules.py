"""The contract's ``x-rules`` (issue 13, "keep it closed"): rules the server enforces that JSON
Schema cannot state — relative to the clock, across fields, against stored data, about the
multipart encoding. Each rule listed in mobile_api_spec/openapi.yaml is broken here by a request
that otherwise fits the schema, and must be refused with the status, code and field the rule
names; every rule has a case and every case a rule. The live schemathesis run
(tests/live/test_schemathesis_live.py) accepts exactly these refusals of schema-valid data.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from tests.api.contract import operations, person_payload, spec_dict


def _checkin(contract, world, **fields):
    data = {
        "selfie": (io.BytesIO(b"\xff\xd8\xff\xe0 not really a jpeg"), "selfie.jpg", "image/jpeg"),
        "nonce": "n" * 16,
        "latitude": "10.8129",
        "longitude": "106.6866",
        "accuracy_m": "15",
        **fields,
    }
    return contract.post(
        "/api/v1/me/checkins", headers=world.device, data=data, content_type="multipart/form-data"
    )


def _declaration(now, **overrides):
    return {"measured_at": now.isoformat(), "temperature_c": 37.2, "symptoms": [], **overrides}


def _create(contract, world, now, **overrides):
    return contract.post(
        "/api/v1/admin/persons", headers=world.staff, json=person_payload(now, **overrides)
    )


#: (operationId, rule id) → requests, each breaking the rule and nothing else ("*": the
#: contract's global rules, for every operation).
CASES = {
    ("*", "no_nul"): lambda c, w, now: [
        c.post("/api/v1/devices/activate", json={"code": "K7M2Q-9TX\x00P"}),
        c.put("/api/v1/me/push-token", headers=w.device, json={"push_token": "fcm:\x00"}),
        _create(c, w, now, ward_code="79-764-\x0026896"),
        c.get("/api/v1/me/history?limit=1%00", headers=w.device),
    ],
    ("activateDevice", "unknown_code"): lambda c, w, now: [
        c.post("/api/v1/devices/activate", json={"code": "K7M2Q-9TXHP", "platform": "android"}),
    ],
    ("submitCheckin", "selfie_file_part"): lambda c, w, now: [
        # the bytes as a plain form field: no filename in its Content-Disposition
        _checkin(c, w, selfie="\xff\xd8\xff\xe0 not really a jpeg"),
    ],
    ("submitCheckin", "unknown_nonce"): lambda c, w, now: [_checkin(c, w, nonce="z" * 16)],
    ("submitCheckin", "captured_at_range"): lambda c, w, now: [
        _checkin(c, w, captured_at="0001-01-01T00:00:00+00:00"),
        _checkin(c, w, captured_at="2101-01-01T00:00:00+00:00"),
    ],
    ("submitDeclaration", "measured_at_window"): lambda c, w, now: [
        c.post("/api/v1/me/declarations", headers=w.device,
               json=_declaration(now, measured_at=(now + timedelta(hours=1)).isoformat())),
        c.post("/api/v1/me/declarations", headers=w.device,
               json=_declaration(now, measured_at=(now - timedelta(days=8)).isoformat())),
    ],
    ("submitDeclarationForPerson", "measured_at_window"): lambda c, w, now: [
        c.post(f"/api/v1/admin/persons/{w.person_id}/declarations", headers=w.staff,
               json=_declaration(now, measured_at=(now + timedelta(hours=1)).isoformat())),
        c.post(f"/api/v1/admin/persons/{w.person_id}/declarations", headers=w.staff,
               json=_declaration(now, measured_at=(now - timedelta(days=8)).isoformat())),
    ],
    ("createPerson", "isolation_range"): lambda c, w, now: [
        _create(c, w, now, isolation_start="2000-01-01T00:00:00Z",
                isolation_end="2000-01-08T00:00:00Z"),
        _create(c, w, now, isolation_start=(now + timedelta(days=90)).isoformat(),
                isolation_end=(now + timedelta(days=97)).isoformat()),
    ],
    ("createPerson", "isolation_order"): lambda c, w, now: [
        _create(c, w, now, isolation_start=now.isoformat(),
                isolation_end=(now - timedelta(days=1)).isoformat()),
        _create(c, w, now, isolation_start=now.isoformat(),
                isolation_end=(now + timedelta(days=61)).isoformat()),
    ],
    ("createPerson", "known_timezone"): lambda c, w, now: [
        _create(c, w, now, timezone="Mars/Olympus"),
    ],
    ("createPerson", "ward_in_scope"): lambda c, w, now: [
        _create(c, w, now, ward_code="00-000-00000"),
    ],
}


def _rules() -> dict[tuple[str, str], dict]:
    rules = {("*", rule["id"]): rule for rule in spec_dict().get("x-rules", [])}
    for op_id, (_m, _p, op) in operations().items():
        rules |= {(op_id, rule["id"]): rule for rule in op.get("x-rules", [])}
    return rules


def test_every_rule_of_the_contract_has_a_case_and_every_case_a_rule():
    assert set(_rules()) == set(CASES)


@pytest.mark.parametrize("key", sorted(CASES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_a_request_breaking_a_rule_is_refused_as_the_contract_says(key, world, contract, clock):
    rule = _rules()[key]
    for r in CASES[key](contract, world, clock.now()):
        body = r.get_json()
        assert (r.status_code, body["code"]) == (rule["status"], rule["code"]), body
        if "field" in rule:
            assert rule["field"] in {e["field"] for e in body["errors"]}, body
