"""Security properties that docs/security.md claims and no other test proved: device tokens are
stored hashed, biometric data is encrypted at rest with rotatable keys, the admin API ignores the
dashboard's session cookie, and the client address behind a reverse proxy (ISOCHECK_PROXY_HOPS)
is the phone's, never a spoofable header when no proxy is configured."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from server.core import crypto
from server.people.models import Device, Person
from server.storage import ImageStore, image_store
from tests.api.contract import activate, add_staff, enrol, make_places, staff_token
from tests.dashboard.world import World, log_in


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        "server.core.security._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def test_device_tokens_are_stored_only_as_digests(client, session, clock):
    make_places(session)
    add_staff(session, "admin.sec", "admin-pass-2026", role="admin")
    token = staff_token(client, "admin.sec", "admin-pass-2026")
    person = enrol(client, token, clock.now())
    device_token = activate(client, person["activation"]["code"])["token"]
    row = session.scalar(select(Device).where(Device.person_id == person["id"]))
    assert device_token not in (row.token_hash, str(row.__dict__))
    assert len(row.token_hash) == 64  # SHA-256 hex of a 256-bit random token
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {device_token}"})
    assert me.status_code == 200
    forged = {"Authorization": f"Bearer {row.token_hash}"}  # a leaked digest is not a token
    assert client.get("/api/v1/me", headers=forged).status_code == 401


def test_images_are_encrypted_at_rest(settings, tmp_path):
    store = image_store(settings)
    photo = b"\xff\xd8\xff\xe0" + b"JFIF face pixels" * 100
    key = store.save(photo)
    raw = store._path(key).read_bytes()
    assert b"JFIF" not in raw and not raw.startswith(b"\xff\xd8")
    assert Fernet(settings.encryption_key.split(",")[0].encode()).decrypt(raw) == photo
    with pytest.raises(crypto.DecryptionError):
        ImageStore(store.root, keys=Fernet.generate_key().decode()).load(key)


def test_key_rotation_new_key_first_old_data_still_readable(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = ImageStore(tmp_path, keys=old)
    key_old = before.save(b"enrolled under the old key")
    rotated = ImageStore(tmp_path, keys=f"{new},{old}")
    key_new = rotated.save(b"written after the rotation")
    assert rotated.load(key_old) == b"enrolled under the old key"
    assert Fernet(new.encode()).decrypt(rotated._path(key_new).read_bytes())
    # once everything is re-encrypted (or purged) the old key can go
    with pytest.raises(crypto.DecryptionError):
        ImageStore(tmp_path, keys=new).load(key_old)


def test_face_templates_are_encrypted_at_rest(session, settings, clock):
    from types import SimpleNamespace

    from server.people.enrolment import add_template

    world = World(session, settings, clock)
    person = session.scalar(select(Person).limit(1))
    template = SimpleNamespace(embedder="sface", model_sha256="m" * 64, quality=None,
                               to_bytes=lambda: b"EMBEDDING-128-floats")  # fmt: skip
    row = add_template(session=session, settings=settings, person=person, template=template,
                       source="enrolment", image=None, now=clock.now())  # fmt: skip
    assert b"EMBEDDING" not in row.data
    assert crypto.decrypt(row.data, keys=settings.encryption_key) == b"EMBEDDING-128-floats"
    assert world is not None


def test_admin_api_ignores_the_dashboard_session_cookie(app, client, session, settings, clock):
    """A logged-in dashboard browser cannot be ridden cross-site into the JSON API: the API only
    takes bearer tokens (and the dashboard's own forms carry CSRF tokens)."""
    world = World(session, settings, clock)
    log_in(client, world.staff["admin"])
    assert client.get("/dashboard/").status_code in (200, 302)
    person_id = session.scalar(select(Person.id).limit(1))
    r = client.get(f"/api/v1/admin/persons/{person_id}")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    r = client.post("/api/v1/admin/persons", json={})
    assert r.status_code == 401


def _activation_attempts(app, forwarded_for: str) -> int:
    c = app.test_client()
    return c.post("/api/v1/devices/activate", json={"code": "WRONG-CODE"},
                  headers={"X-Forwarded-For": forwarded_for},
                  environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code  # fmt: skip


def test_behind_a_proxy_each_phone_has_its_own_limit(settings, engine, clock):
    """ISOCHECK_PROXY_HOPS=1 (nginx in front): limits count per phone address from
    X-Forwarded-For, not per proxy (activation is 5/minute per address in production)."""
    from server.app import create_app
    from server.http.limits import limiter

    app = create_app(settings.model_copy(update={"proxy_hops": 1,
                                                 "rate_limit_activation": "2/minute"}),
                     clock=clock, test_config={"TESTING": True})  # fmt: skip
    limiter.reset()
    first = [_activation_attempts(app, "203.0.113.7") for _ in range(3)]
    assert first[-1] == 429 and 429 not in first[:2]
    assert _activation_attempts(app, "198.51.100.9") != 429  # another phone, its own budget


def test_without_a_proxy_x_forwarded_for_is_ignored(settings, engine, clock):
    """With no proxy configured a client cannot pick its own rate-limit key."""
    from server.app import create_app
    from server.http.limits import limiter

    app = create_app(settings.model_copy(update={"rate_limit_activation": "2/minute"}),
                     clock=clock, test_config={"TESTING": True})  # fmt: skip
    limiter.reset()
    codes = [_activation_attempts(app, f"203.0.113.{i}") for i in range(3)]
    assert codes[-1] == 429


def test_activation_codes_are_stored_as_a_keyed_hash(client, session, clock, settings):
    """Issue 13, finding 11: a plain SHA-256 of a ~50-bit code is cracked from a database copy.
    The stored value is an HMAC under a key derived from the server secret; codes issued before
    the change (plain SHA-256 rows) still activate until they expire."""
    import hashlib
    from datetime import timedelta

    from server.core.security import code_digest
    from server.people.enrolment import normalise_code
    from server.people.models import ActivationCode

    make_places(session)
    add_staff(session, "admin.codes", "admin-pass-2026", role="admin")
    token = staff_token(client, "admin.codes", "admin-pass-2026")
    person = enrol(client, token, clock.now())
    code = normalise_code(person["activation"]["code"])
    stored = session.scalar(
        select(ActivationCode.code_hash).where(ActivationCode.person_id == person["id"])
    )
    assert stored != hashlib.sha256(code.encode()).hexdigest()  # not crackable without the key
    assert stored == code_digest(code, secret=settings.secret_key)
    assert stored != code_digest(code, secret=settings.secret_key + "x")
    assert activate(client, person["activation"]["code"])["token"]

    # a row written by the previous release (plain SHA-256) still verifies
    legacy = "ABCDE23456"
    session.add(ActivationCode(
        person_id=person["id"], code_hash=hashlib.sha256(legacy.encode()).hexdigest(),
        expires_at=clock.now() + timedelta(hours=1), created_at=clock.now(),
    ))
    session.commit()
    assert activate(client, "abcde-23456")["token"]


def test_metrics_need_the_scraper_token(settings, engine, clock):
    """Issue 13, finding 15: /metrics answered anyone on the app port."""
    from server.app import create_app
    from server.config import Mode

    def metrics(app, headers=None):
        return app.test_client().get("/metrics", headers=headers or {}).status_code

    guarded = create_app(settings.model_copy(update={"metrics_token": "scrape-" + "t" * 40}),
                         clock=clock)
    assert metrics(guarded) == 404
    assert metrics(guarded, {"Authorization": "Bearer wrong"}) == 404
    assert metrics(guarded, {"Authorization": "Bearer scrape-" + "t" * 40}) == 200
    production = create_app(settings.model_copy(update={"mode": Mode.production}), clock=clock)
    assert metrics(production) == 404  # no token configured: never public in production
    assert metrics(create_app(settings, clock=clock)) == 200  # demo without a token: open
    for app in (guarded, production):
        app.extensions["isocheck"].engine.dispose()


def test_media_files_are_readable_by_the_service_user_only(settings):
    """Issue 13, finding 15: media files were 0644 (umask 022)."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        store = image_store(settings)
        key = store.save(b"face bytes")
    finally:
        os.umask(old)
    path = store._path(key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
