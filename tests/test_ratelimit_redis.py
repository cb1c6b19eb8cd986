"""Rate-limit counters shared through Redis: two app instances (two workers, two hosts) count
together. Skips when no Redis answers on 127.0.0.1:6379. (Every app built afterwards re-binds the
shared limiter to its own storage, so later tests are back on memory://.)"""

import socket

import pytest


def _redis_up() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 6379)) == 0


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
def test_two_apps_share_one_limit_through_redis(settings, engine, clock):
    from server.app import create_app
    from server.http.limits import limiter

    shared = settings.model_copy(update={"ratelimit_storage_url": "redis://127.0.0.1:6379/0",
                                         "rate_limit_staff_login": "3/minute"})
    first = create_app(shared, clock=clock)
    second = create_app(shared, clock=clock)
    limiter.reset()  # this test's counters start at zero in Redis
    try:
        body = {"username": "nobody", "password": "wrong"}
        codes = [app.test_client().post("/api/v1/auth/token", json=body).status_code
                 for app in (first, second, first, second)]
        assert codes[:3] == [401, 401, 401]
        assert codes[3] == 429  # the fourth attempt, on the other app, is over the shared limit
    finally:
        for app in (first, second):
            app.extensions["isocheck"].engine.dispose()


def test_a_shared_store_that_does_not_answer_is_no_500(
    settings, engine, clock, caplog, monkeypatch
):
    """Redis down (nothing listens on port 1): the rate limits and the login backoff are counted
    per process until it answers again — logins are still answered 401, then 429 after the
    free failures, never 500 (before: every login was a 500 while the store was down)."""
    from server.app import create_app
    from server.people import login_throttle

    monkeypatch.setattr(login_throttle, "_fallback", None)  # this test's local counts start at 0
    down = settings.model_copy(update={"ratelimit_storage_url": "redis://127.0.0.1:1/0",
                                       "rate_limit_staff_login": "100/minute"})
    app = create_app(down, clock=clock)
    try:
        client = app.test_client()
        body = {"username": "nobody", "password": "wrong"}
        codes = [client.post("/api/v1/auth/token", json=body).status_code for _ in range(6)]
        assert codes == [401] * 5 + [429]  # the fifth failure starts the wait, counted locally
        last = client.post("/api/v1/auth/token", json=body)
        assert last.status_code == 429 and int(last.headers["Retry-After"]) > 0
        assert last.get_json()["code"] == "login_throttled"
        assert "counting locally" in caplog.text
    finally:
        app.extensions["isocheck"].engine.dispose()
