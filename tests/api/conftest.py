"""Fixtures of the contract tests (and for any test that wants its responses checked against
``mobile_api_spec/openapi.yaml``): ``contract_client`` (alias ``contract``) validates every
response it returns; ``world`` is a district with two wards, an administrator and one person
whose phone is activated, all made through the API where the API can make them."""

from __future__ import annotations

import os

import pytest

from tests.api.contract import ContractClient, World, contract_client_for, make_world


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """argon2id with cheap parameters: the real hasher, ~100x faster (the defaults cost ~0.4 s
    per hash or login on a small machine, and every test logs in)."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        "server.core.security._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def contract_client(app) -> ContractClient:
    """A test client whose every response must conform to the spec."""
    return contract_client_for(app)


@pytest.fixture
def contract(contract_client) -> ContractClient:
    return contract_client


@pytest.fixture
def world(contract_client, session, clock) -> World:
    return make_world(contract_client, session, clock.now())


def pytest_collection_modifyitems(config, items):
    """The schemathesis run is about the contract, not the database: SQLite only, unless
    ISOCHECK_FUZZ_POSTGRES=1 (it would double the run's time on PostgreSQL)."""
    if os.environ.get("ISOCHECK_FUZZ_POSTGRES") == "1":
        return
    skip = pytest.mark.skip(reason="schemathesis runs on SQLite (ISOCHECK_FUZZ_POSTGRES=1)")
    for item in items:
        if "test_schemathesis.py" in item.nodeid and "postgresql" in item.nodeid:
            item.add_marker(skip)
