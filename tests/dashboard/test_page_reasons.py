"""Issue 19, item 9: the pages say why. Compliance counts a failed prompt the moment it fails
(not when its window closes); the review page explains why the thresholds are not the README's
(several templates tighten the accept threshold); the alert queue's rows say what happened
(the SpO2 value, the missed window, the distance from home)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from server.alerts.service import raise_alert
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.core.enums import AlertKind, AttemptDecision, PromptKind, PromptState
from server.declarations.schemas import DeclarationIn
from server.declarations.service import submit
from server.people.models import Person
from tests.dashboard.world import log_in


def _prompt(session, person, clock, state, *, opens_in, due_in, used=0):
    now = clock.now()
    p = CheckinPrompt(
        person_id=person.id,
        slot_key=f"t/{secrets.token_hex(4)}",
        kind=PromptKind.scheduled,
        state=state,
        opens_at=now + timedelta(minutes=opens_in),
        due_at=now + timedelta(minutes=due_in),
        nonce=secrets.token_hex(8),
        max_attempts=3,
        attempts_used=used,
        closed_at=now if state is not PromptState.open else None,
    )
    session.add(p)
    session.flush()
    return p


def test_compliance_counts_a_failed_prompt_when_it_fails(app, client, world, session, clock):
    person = session.get(Person, world.own.person.id)
    # the world's failed prompt (due 20 min ago) aside, a new person-day: one prompt answered
    # early and one failed early (three rejected attempts), both with their windows still open
    world.own.prompt.state = PromptState.cancelled
    _prompt(session, person, clock, PromptState.completed, opens_in=-5, due_in=15, used=1)
    _prompt(session, person, clock, PromptState.failed, opens_in=-5, due_in=25, used=3)
    _prompt(session, person, clock, PromptState.open, opens_in=-5, due_in=35)  # not decided
    session.commit()
    log_in(client, world.staff["ward_a"])
    html = client.get(f"/dashboard/persons/{person.id}").get_data(as_text=True)
    assert "<strong>1 / 2</strong> (50.0 %)" in html, html[html.find('id="compliance"'):][:300]
    csv = client.get(f"/dashboard/stats.csv?area={world.ward_a.id}&days=1").data.decode("utf-8-sig")
    row = csv.strip().splitlines()[1].split(",")
    assert row[4:7] == ["2", "1", "50.0"]  # due, completed, compliance %


def test_review_page_says_why_the_thresholds_are_not_the_readme_s(app, client, world, session):
    attempt = session.get(CheckinAttempt, world.own.attempt.id)
    attempt.details = {
        "accept_threshold": 0.466,
        "review_threshold": 0.725,
        "embedder": "sface",
        "distances": [0.61, 0.62],
        "counted": True,
    }
    session.commit()
    log_in(client, world.staff["ward_a"])
    html = client.get(f"/dashboard/reviews/{attempt.id}").get_data(as_text=True)
    assert "0.466 / 0.725" in html
    assert "Ngưỡng chấp nhận 0.466 chặt hơn mức 0.504" in html
    assert "vì người này có 2 ảnh mẫu" in html and "giảm 0.038" in html
    en = client.get(f"/dashboard/reviews/{attempt.id}?lang=en").get_data(as_text=True)
    assert "tighter than the README&#39;s 0.504" in en and "has 2 templates" in en
    # five templates: the last shift of the measured list
    attempt.details = {**attempt.details, "accept_threshold": 0.435, "distances": [0.6] * 5}
    session.commit()
    html = client.get(f"/dashboard/reviews/{attempt.id}?lang=vi").get_data(as_text=True)
    assert "mức 0.504" in html and "có 5 ảnh mẫu" in html and "giảm 0.069" in html
    # one template: the configured threshold, no shift
    attempt.details = {**attempt.details, "accept_threshold": 0.504, "distances": [0.6]}
    session.commit()
    html = client.get(f"/dashboard/reviews/{attempt.id}").get_data(as_text=True)
    assert "Một ảnh mẫu: ngưỡng chấp nhận 0.504 là mức cấu hình (ISOCHECK_SFACE_ACCEPT)" in html
    # a record without the per-template distances says nothing it cannot know
    attempt.details = {"accept_threshold": 0.56, "review_threshold": 0.7, "embedder": "sface"}
    session.commit()
    html = client.get(f"/dashboard/reviews/{attempt.id}").get_data(as_text=True)
    assert 'id="threshold-note"' not in html


def test_alert_rows_say_why(app, client, world, session, clock, settings):
    person = session.get(Person, world.own.person.id)
    now = clock.now()
    submit(
        session=session,
        settings=settings,
        person=person,
        now=now,
        data=DeclarationIn(measured_at=now - timedelta(minutes=5), spo2=91, temperature_c=38.9),
    )
    missed = _prompt(session, person, clock, PromptState.missed, opens_in=-90, due_in=-60)
    alert_missed, _ = raise_alert(
        session=session, person=person, kind=AlertKind.missed_checkin, now=now,
        dedupe_key=f"missed:{missed.id}", prompt_id=missed.id,
    )
    away = CheckinAttempt(
        prompt_id=missed.id, person_id=person.id, received_at=now, latitude=10.82,
        longitude=106.69, accuracy_m=20.0, distance_from_home_m=812.0,
        decision=AttemptDecision.rejected, code="outside_home", details={},
    )
    session.add(away)
    session.flush()
    alert_away, _ = raise_alert(
        session=session, person=person, kind=AlertKind.outside_home, now=now,
        dedupe_key=f"outside:{away.id}", prompt_id=missed.id, attempt_id=away.id,
        details={"distance_m": 812.0, "accuracy_m": 20.0},
    )
    session.commit()
    log_in(client, world.staff["ward_a"])
    html = client.get("/dashboard/alerts/rows").get_data(as_text=True)
    assert "SpO2 91 %" in html and "38.9 °C" in html, html[:600]
    window = (missed.opens_at.astimezone(settings.zone).strftime("%H:%M") + "–"
              + missed.due_at.astimezone(settings.zone).strftime("%H:%M"))
    assert f'id="why-{alert_missed.id}">Không điểm danh trong khung {window}' in html
    assert f'id="why-{alert_away.id}">Cách nhà 812 m (± 20 m)' in html
    # the world's failed-verification alert: the window and the last attempt's reason
    failed = world.own.alert.id
    assert f'id="why-{failed}">Hết lượt thử trong khung' in html
    assert "0.620" in html
    en = client.get("/dashboard/alerts/rows?lang=en").get_data(as_text=True)
    assert f'id="why-{alert_away.id}">812 m from home' in en
