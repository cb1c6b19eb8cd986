"""Issue #13 (part A) on the dashboard: findings 2, 5, 12, 13."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.dashboard.world import log_in


def test_persons_list_survives_a_person_with_extreme_stored_dates(app, client, world):
    person = world.own.person
    person.isolation_start = datetime(9999, 12, 30, tzinfo=UTC)
    person.isolation_end = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    world.session.commit()
    for role in ("admin", "district", "ward_a"):
        c = app.test_client()
        log_in(c, world.staff[role])
        r = c.get("/dashboard/persons")
        assert r.status_code == 200, role
        r = c.get(f"/dashboard/persons/{person.id}")
        assert r.status_code == 200, role


def _form_login(client, username):
    from tests.dashboard.world import PASSWORD, csrf_token

    token = csrf_token(client, logged_in=False)
    r = client.post(
        "/dashboard/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 302, r.get_data(as_text=True)


def test_logout_ends_the_session_server_side_a_saved_cookie_no_longer_opens_pages(
    app, client, world
):
    _form_login(client, "p1")
    page = f"/dashboard/persons/{world.own.person.id}"
    assert client.get(page).status_code == 200
    saved = client.get_cookie("session").value
    from tests.dashboard.world import csrf_token

    r = client.post("/dashboard/logout", data={"csrf_token": csrf_token(client)})
    assert r.status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", saved)
    r = thief.get(page)
    assert r.status_code == 302 and "/dashboard/login" in r.headers["Location"]
    # logging in again works
    _form_login(client, "p1")
    assert client.get(page).status_code == 200


def test_a_password_change_ends_the_other_sessions(app, client, world):
    _form_login(client, "p1")
    other = app.test_client()
    _form_login(other, "p1")
    from tests.dashboard.world import PASSWORD, csrf_token

    r = client.post(
        "/dashboard/password",
        data={
            "current": PASSWORD,
            "new": "ein-neues-passwort-42",
            "again": "ein-neues-passwort-42",
            "csrf_token": csrf_token(client),
        },
    )
    assert r.status_code == 302
    assert client.get("/dashboard/alerts").status_code == 200
    assert other.get("/dashboard/alerts").status_code == 302


def test_a_staff_api_token_does_not_open_dashboard_pages(app, client, world):
    from tests.dashboard.world import PASSWORD

    r = client.post("/api/v1/auth/token", json={"username": "admin", "password": PASSWORD})
    assert r.status_code == 200, r.get_json()
    bearer = {"Authorization": f"Bearer {r.get_json()['token']}"}
    api = app.test_client()
    for page in (
        "/dashboard/persons",
        f"/dashboard/persons/{world.own.person.id}",
        "/dashboard/alerts",
    ):
        r = api.get(page, headers=bearer)
        assert r.status_code in (302, 401), page
    # the token still works where it belongs
    assert (
        api.get(f"/api/v1/admin/persons/{world.own.person.id}", headers=bearer).status_code == 200
    )


def test_huge_numbers_in_dashboard_forms_and_queries_are_refused_not_500(app, client, world):
    """Finding 6: `days=99999999999999999999` overflowed timedelta, a huge `page` the OFFSET."""
    from tests.dashboard.test_dashboard import post

    log_in(client, world.staff["ward_a"])
    pid = world.own.person.id
    huge = "99999999999999999999"
    r = post(client, f"/dashboard/persons/{pid}/isolation", action="extend", days=huge)
    assert r.status_code in (200, 302, 303), r.status_code
    for url in (
        f"/dashboard/persons?page={huge}",
        "/dashboard/persons?page=1e20",
        f"/dashboard/stats?days={huge}",
        f"/dashboard/stats.csv?days=-{huge}",
    ):
        assert client.get(url).status_code == 200, url


def test_a_deeply_nested_schedule_is_a_refusal_at_the_field_not_a_500(app, client, world):
    from tests.dashboard.test_dashboard import post

    log_in(client, world.staff["ward_a"])
    deep = "[" * 100_000 + "]" * 100_000
    r = post(client, f"/dashboard/persons/{world.own.person.id}/schedule", policy=deep)
    assert r.status_code == 422, r.status_code
