"""Issue 13, finding 12: failed staff logins slow down the client, never lock the account for
everyone, and an unknown name is answered exactly like a known one.

Before the fix: five wrong passwords from anyone locked the account for 15 minutes for every
client (``423 account_locked``), and an unknown name never got a 423 (an enumeration oracle).
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from sqlalchemy import select

from server.core.audit import AuditEvent
from server.people import login_throttle
from tests.api.contract import ADMIN

TOKEN = "/api/v1/auth/token"


def _addr(n: int) -> dict[str, str]:
    return {"REMOTE_ADDR": f"198.51.100.{n}"}


def _login(contract, username: str, password: str, n: int):
    return contract.post(
        TOKEN, json={"username": username, "password": password}, environ_base=_addr(n)
    )


def _answer(r) -> tuple:
    body = r.get_json()
    return r.status_code, body["code"], body["title"], body["detail"], "Retry-After" in r.headers


def test_an_unknown_name_is_answered_exactly_like_a_known_one(world, contract):
    known = [_answer(_login(contract, ADMIN[0], "wrong", 1)) for _ in range(7)]
    unknown = [_answer(_login(contract, "no.such.person", "wrong", 2)) for _ in range(7)]
    assert known == unknown
    assert [a[:2] for a in known] == [(401, "invalid_credentials")] * 5 + [
        (429, "login_throttled")
    ] * 2


def test_a_guessing_client_does_not_lock_the_account_for_anyone_else(world, contract, session):
    for _ in range(6):
        _login(contract, ADMIN[0], "wrong", 3)
    r = _login(contract, *ADMIN, 3)  # the right password, from the guessing client: still waits
    assert (r.status_code, r.get_json()["code"]) == (429, "login_throttled")
    assert int(r.headers["Retry-After"]) == r.get_json()["retry_after_s"]
    assert 0 < r.get_json()["retry_after_s"] <= 30  # the 5th failure's 30 s; waits cost nothing
    r = _login(contract, *ADMIN, 4)  # the admin at their own desk
    assert r.status_code == 200 and r.get_json()["token"]
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.ip == "198.51.100.3").order_by(AuditEvent.id)
    ).all()
    assert actions == ["staff.login_failed"] * 5 + ["staff.login_throttled"] * 2


def test_the_wait_doubles_and_a_right_password_after_it_starts_afresh(
    world, contract, monkeypatch
):
    monkeypatch.setattr(login_throttle, "BASE_DELAY", timedelta(seconds=1))
    for _ in range(4):
        assert _login(contract, ADMIN[0], "wrong", 5).status_code == 401
    r = _login(contract, ADMIN[0], "wrong", 5)
    assert r.status_code == 401  # the 5th failure is answered, and starts a 1 s wait
    r = _login(contract, ADMIN[0], "wrong", 5)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    time.sleep(1.1)
    assert _login(contract, ADMIN[0], "wrong", 5).status_code == 401  # 6th: now 2 s
    r = _login(contract, *ADMIN, 5)
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    time.sleep(2.1)
    assert _login(contract, *ADMIN, 5).status_code == 200
    # the run for this name and client is forgotten: the free allowance again
    assert [_login(contract, ADMIN[0], "wrong", 5).status_code for _ in range(6)] == [401] * 5 + [
        429
    ]


def test_one_client_guessing_many_names_waits_for_every_name(world, contract):
    for i in range(login_throttle.PER_CLIENT_FREE):  # 20 failures, at most 4 per name
        assert _login(contract, f"guess.{i % 5}", "wrong", 6).status_code == 401
    r = _login(contract, *ADMIN, 6)  # a name it never tried, with the right password
    assert (r.status_code, r.get_json()["code"]) == (429, "login_throttled")
    assert _login(contract, *ADMIN, 7).status_code == 200


def test_a_valid_account_does_not_reset_a_guessing_clients_count(world, contract):
    for i in range(login_throttle.PER_CLIENT_FREE - 1):
        assert _login(contract, f"guess.{i % 5}", "wrong", 8).status_code == 401
    assert _login(contract, *ADMIN, 8).status_code == 200  # its own (account, client) run only
    assert _login(contract, "guess.x", "wrong", 8).status_code == 401  # the 20th: starts a wait
    assert _login(contract, "guess.y", "wrong", 8).status_code == 429


def test_unknown_and_known_names_take_the_same_time(world, contract, monkeypatch):
    """Both check an argon2 hash (the unknown name a dummy one): the same timing class. The two
    are measured interleaved (a fresh address each, so no wait is in the way) to share the
    machine's load. The unknown name's hash follows the hasher's parameters: here the tests'
    cheap ones, while a hash made at import (default, costly parameters) is left over."""
    from argon2 import PasswordHasher

    from server.people import staff as service

    monkeypatch.setattr(service, "_dummy_hash", PasswordHasher().hash("made before the change"))
    times: dict[str, list[float]] = {ADMIN[0]: [], "no.such.person": []}
    _login(contract, ADMIN[0], "wrong", 99)  # warm-up
    for n in range(15):
        for i, username in enumerate(times):
            start = time.perf_counter()
            assert _login(contract, username, "wrong", 100 + 2 * n + i).status_code == 401
            times[username].append(time.perf_counter() - start)
    known, unknown = (statistics.median(t) for t in times.values())
    assert 1 / 3 < unknown / known < 3, (known, unknown)


def test_backoff_schedule():
    free = login_throttle.PER_ACCOUNT_CLIENT_FREE
    waits = [login_throttle.backoff(n, free) for n in range(1, free + 8)]
    assert waits == [0] * (free - 1) + [30, 60, 120, 240, 480, 900, 900, 900]
    assert login_throttle.backoff(10**9, free) == 900
