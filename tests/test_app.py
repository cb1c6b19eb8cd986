"""The app factory, the probes and the problem+json error contract."""

from datetime import timedelta

import pytest

from scheduler.runner import run_sweep


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_checks_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["database"] == {"ok": True}


def test_readyz_is_red_when_the_database_is_gone(app, client):
    state = app.extensions["isocheck"]
    state.engine.dispose()
    from server.core.db import make_engine, make_session_factory

    state.session_factory = make_session_factory(
        make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"]["ok"] is False


def test_readyz_follows_the_in_process_scheduler_heartbeat(app, client, clock, settings):
    state = app.extensions["isocheck"]
    state.scheduler = object()  # an in-process scheduler is declared…
    assert client.get("/readyz").status_code == 503  # …but has never swept

    run_sweep(
        "heartbeat",
        lambda **_: 0,
        session_factory=state.session_factory,
        clock=clock,
        settings=settings,
    )
    ok = client.get("/readyz")
    assert ok.status_code == 200
    assert ok.get_json()["checks"]["scheduler"]["ok"] is True

    clock.advance(seconds=settings.scheduler_stale_seconds + 1)
    stale = client.get("/readyz")
    assert stale.status_code == 503
    assert stale.get_json()["checks"]["scheduler"]["lag_seconds"] > settings.scheduler_stale_seconds


def _assert_problem(response, status, code):
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["code"] == code
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


def test_404_is_problem_json_in_vietnamese_by_default(client):
    body = _assert_problem(client.get("/no/such/page"), 404, "not_found")
    assert body["title"] == "Không tìm thấy"


def test_english_on_request(client):
    body = _assert_problem(
        client.get("/no/such/page", headers={"Accept-Language": "en-US,en;q=0.9"}), 404, "not_found"
    )
    assert body["title"] == "Not found"


def test_405_names_allowed_methods(client):
    response = client.delete("/healthz")
    _assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_413_for_a_body_over_the_limit(app, client, settings):
    @app.post("/echo-len")
    def echo_len():
        from flask import request

        return {"n": len(request.get_data())}

    big = b"x" * (settings.max_upload_bytes + 1)
    _assert_problem(client.post("/echo-len", data=big), 413, "request_too_large")


def test_500_is_problem_json_and_hides_the_exception(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = client.get("/boom")
    body = _assert_problem(response, 500, "internal_error")
    assert "secret internals" not in response.get_data(as_text=True)
    assert body["instance"] == "/boom"


@pytest.mark.parametrize("code,status", [("validation_error", 422), ("rate_limited", 429)])
def test_api_error_carries_code_extra_and_headers(app, client, code, status):
    from server.http.problem import ApiError

    @app.get("/fail")
    def fail():
        raise ApiError(
            code, status, extra={"errors": [{"field": "x"}]}, headers={"Retry-After": "7"}
        )

    response = client.get("/fail")
    body = _assert_problem(response, status, code)
    assert body["errors"] == [{"field": "x"}]
    assert response.headers["Retry-After"] == "7"


def test_failing_sweep_is_contained_and_recorded(session_factory, clock, settings):
    from server.heartbeat import SchedulerHeartbeat

    def broken(**_):
        raise ValueError("bad row")

    outcome = run_sweep(
        "broken", broken, session_factory=session_factory, clock=clock, settings=settings
    )
    assert outcome.error == "ValueError: bad row"
    clock.advance(timedelta(seconds=5))
    run_sweep(
        "broken", lambda **_: 3, session_factory=session_factory, clock=clock, settings=settings
    )
    with session_factory() as s:
        beat = s.get(SchedulerHeartbeat, "broken")
        assert beat.last_error is None
        assert beat.last_run_at == clock.now()
