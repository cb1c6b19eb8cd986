"""Every word a user sees in ``vi`` is Vietnamese: the dashboard's pages (served by the app, and
walked in a real browser in test_browser_vietnamese) and the API's problems, including
``errors[].message``; declaration answers say their language."""

from __future__ import annotations

import html as html_lib
import json
import re

import pytest

from server.people.models import Person
from tests.dashboard.untranslated import english_only_words, untranslated
from tests.dashboard.world import log_in


def _visible(html: str) -> str:
    # scripts and styles are not read; a textarea holds what the user typed
    html = re.sub(r"<(script|style|textarea)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r'<(?:input|textarea)[^>]*type="hidden"[^>]*>', " ", html)
    text = re.sub(r"<[^>]+>", " ", html)
    # what a person reads also includes placeholders, titles and alt texts
    attrs = re.findall(r'(?:placeholder|title|alt|aria-label)="([^"]*)"', html)
    return html_lib.unescape(" ".join([text, *attrs]))


def test_the_scanner_finds_what_the_issue_saw():
    found = untranslated("Triệu chứng: fever, bluish_lips — person.create, Field required")
    assert {"fever", "bluish_lips", "person.create", "Field", "required"} <= set(found)
    assert untranslated("Sốt, Môi tím tái — SpO2 94 % — nguyen@example.invalid") == []


def _pages(world) -> list[str]:
    own = world.own
    return [
        "/dashboard/alerts",
        "/dashboard/reviews",
        f"/dashboard/reviews/{own.attempt.id}",
        "/dashboard/persons",
        f"/dashboard/persons/{own.person.id}",
        "/dashboard/enrol",
        "/dashboard/stats",
        "/dashboard/password",
    ]


def test_every_dashboard_page_is_vietnamese(app, client, world, session):
    english = english_only_words()
    log_in(client, world.staff["admin"])
    problems = {}
    for url in _pages(world):
        r = client.get(url, headers={"Accept-Language": "vi"})
        assert r.status_code == 200, url
        found = untranslated(_visible(r.get_data(as_text=True)), english)
        if found:
            problems[url] = found
    # a refused schedule says why in Vietnamese, at the person page
    person = session.get(Person, world.own.person.id)
    from tests.dashboard.world import csrf_token

    r = client.post(
        f"/dashboard/persons/{person.id}/schedule",
        data={"policy": json.dumps({"quiet_start": "05:00", "quiet_end": "05:30"}),
              "csrf_token": csrf_token(client)},
    )
    assert r.status_code == 422
    found = untranslated(_visible(r.get_data(as_text=True)), english)
    if found:
        problems["schedule refusal"] = found
    assert problems == {}


@pytest.fixture
def device(app, client, world, session, clock):
    from server.people.enrolment import activate_device, issue_activation_code

    person = session.get(Person, world.own.person.id)
    secret = app.extensions["isocheck"].settings.secret_key
    code = issue_activation_code(session=session, person=person, now=clock.now(),
                                 actor_id=None, server_url="x", secret=secret).code
    _d, _p, token = activate_device(session=session, code=code, now=clock.now(),
                                    platform=None, push_token=None, secret=secret)
    session.commit()
    return {"Authorization": f"Bearer {token}", "Accept-Language": "vi"}


def test_api_problems_and_field_messages_are_vietnamese(client, device, clock):
    english = english_only_words()
    bodies = [
        {},
        {"measured_at": "yesterday", "spo2": "a", "temperature_c": 99, "symptoms": ["zzz"],
         "extra": 1, "note": "x" * 5000},
        {"measured_at": "2020-01-01T00:00:00+07:00", "spo2": 97},
    ]
    for body in bodies:
        r = client.post("/api/v1/me/declarations", json=body, headers=device)
        assert r.status_code == 422
        assert r.headers["Content-Language"] == "vi"
        problem = r.get_json()
        texts = [problem["title"], problem["detail"]]
        texts += [e["message"] for e in problem.get("errors", [])]
        assert problem["errors"]
        for text in texts:
            assert untranslated(text, english) == [], (body, text)
    r = client.post("/api/v1/me/declarations",
                    json={"measured_at": clock.now().isoformat(), "spo2": 97}, headers=device)
    assert r.status_code == 201
    assert r.headers["Content-Language"] == "vi"
    en = client.post("/api/v1/me/declarations", json={},
                     headers={**device, "Accept-Language": "en"})
    assert en.headers["Content-Language"] == "en"
    assert "Field required" in [e["message"] for e in en.get_json()["errors"]]
    for url in ("/api/v1/no/such", "/api/v1/me"):
        r = client.get(url, headers={"Accept-Language": "vi"})
        assert r.status_code in (401, 404)
        p = r.get_json()
        assert untranslated(p["title"] + " " + p["detail"], english) == []
