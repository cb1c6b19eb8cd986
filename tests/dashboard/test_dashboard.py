"""The dashboard's behaviour: login and sessions, CSRF, headers, language, the alert queue,
face review, images, person actions, password change, statistics and CSV."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from server.alerts.models import Alert
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.core.audit import AuditEvent
from server.core.enums import AlertKind, AlertState, AttemptDecision, PromptState
from server.people.models import ActivationCode, Person, StaffUser
from tests.dashboard.world import PASSWORD, csrf_token, log_in


def events(session, action):
    return session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def post(client, url, **data):
    return client.post(url, data={**data, "csrf_token": csrf_token(client)})


# --- login, session, CSRF, headers ----------------------------------------------------


def test_login_sets_a_shift_long_httponly_session_and_logout_ends_it(app, client, world):
    token = csrf_token(client, logged_in=False)
    r = client.post(
        "/dashboard/login",
        data={
            "username": "p1",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/dashboard/persons",
        },
    )
    assert r.status_code == 302 and r.headers["Location"].endswith("/dashboard/persons")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert app.permanent_session_lifetime == timedelta(hours=8)
    assert client.get("/dashboard/alerts").status_code == 200
    r = post(client, "/dashboard/logout")
    assert r.status_code == 302
    assert client.get("/dashboard/alerts").status_code == 302


def test_login_refuses_wrong_passwords_throttles_and_never_redirects_off_site(app, client, world):
    token = csrf_token(client, logged_in=False)
    for _ in range(5):
        r = client.post(
            "/dashboard/login", data={"username": "p1", "password": "nope", "csrf_token": token}
        )
        assert "Sai thông tin đăng nhập" in r.get_data(as_text=True)
    r = client.post(
        "/dashboard/login", data={"username": "p1", "password": PASSWORD, "csrf_token": token}
    )
    # this client waits, even with the right password (issue 13, finding 12: a wait for the
    # client, not a lock of the account for everyone)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "Tạm dừng đăng nhập" in r.get_data(as_text=True)
    assert client.get("/dashboard/alerts").status_code == 302
    r = client.post(
        "/dashboard/login",
        data={
            "username": "govap",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "https://evil.example/x",
        },
    )
    assert r.status_code == 302 and r.headers["Location"] == "/dashboard/alerts"


def test_every_form_needs_its_csrf_token_but_the_api_does_not(app, client, world):
    log_in(client, world.staff["ward_a"])
    r = client.post(f"/dashboard/alerts/{world.own.alert.id}/acknowledge", data={"note": "x"})
    assert r.status_code == 400
    assert "Biểu mẫu đã hết hạn" in r.get_data(as_text=True)
    r = client.post("/dashboard/login", data={"username": "p1", "password": PASSWORD})
    assert r.status_code == 400
    # the JSON API keeps its bearer tokens and no CSRF
    r = app.test_client().post("/api/v1/auth/token", json={"username": "p1", "password": PASSWORD})
    assert r.status_code == 200, r.get_json()


def test_security_headers_and_no_inline_script_or_style(app, client, world):
    log_in(client, world.staff["admin"])
    pages = [
        "/dashboard/alerts",
        "/dashboard/reviews",
        f"/dashboard/reviews/{world.own.attempt.id}",
        "/dashboard/persons",
        f"/dashboard/persons/{world.own.person.id}",
        "/dashboard/enrol",
        "/dashboard/stats",
        "/dashboard/password",
    ]
    for page in pages:
        r = client.get(page)
        assert r.status_code == 200, page
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "http" not in csp
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "same-origin"
        assert r.headers["Cache-Control"] == "no-store"
        html = r.get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), page
        assert " style=" not in html and "<style" not in html, page
        assert not re.search(r"<[^>]+\son[a-z]+=", html), page  # no inline handlers
        assert "//cdn" not in html and "https://" not in html, page


def test_language_from_query_session_or_accept_language(app, client, world):
    log_in(client, world.staff["ward_a"])
    assert "Hàng đợi cảnh báo" in client.get("/dashboard/alerts").get_data(as_text=True)
    r = client.get("/dashboard/alerts", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Alert queue" in r.get_data(as_text=True)
    assert "Alert queue" in client.get("/dashboard/alerts?lang=en").get_data(as_text=True)
    assert "People in isolation" in client.get("/dashboard/persons").get_data(as_text=True)
    assert "Người cách ly" in client.get("/dashboard/persons?lang=vi").get_data(as_text=True)


# --- alert queue ------------------------------------------------------------------------


def test_queue_orders_by_severity_then_age_and_filters(app, client, world, session, clock):
    from server.alerts.service import raise_alert

    person = session.get(Person, world.own.person.id)
    severe, _ = raise_alert(
        session=session,
        person=person,
        kind=AlertKind.severe_symptoms,
        now=clock.now() - timedelta(minutes=1),
        dedupe_key="t:severe",
    )
    missed, _ = raise_alert(
        session=session,
        person=person,
        kind=AlertKind.missed_checkin,
        now=clock.now() - timedelta(hours=3),
        dedupe_key="t:missed",
    )
    session.commit()
    log_in(client, world.staff["district"])
    html = client.get("/dashboard/alerts").get_data(as_text=True)
    order = [int(x) for x in re.findall(r'id="alert-(\d+)"', html)]
    # the newest, most severe first; the older missed check-in (severity 2) last
    assert order[0] == severe.id and order[-1] == missed.id
    assert world.own.alert.id in order and world.other.alert.id not in order
    html = client.get("/dashboard/alerts/rows?kind=missed_checkin").get_data(as_text=True)
    assert re.findall(r'id="alert-(\d+)"', html) == [str(missed.id)]
    assert "<html" not in html  # a fragment
    r = client.get(f"/dashboard/alerts?area={world.ward_c.id}")
    assert r.status_code == 404


def test_a_repeat_is_one_queue_row_with_its_count_and_evidence(app, client, world, session, clock):
    from server.alerts.service import raise_alert

    person = session.get(Person, world.own.person.id)
    first, created = raise_alert(session=session, person=person, kind=AlertKind.outside_home,
                                 now=clock.now() - timedelta(minutes=1), dedupe_key="t:out1")
    assert created
    again, created = raise_alert(session=session, person=person, kind=AlertKind.outside_home,
                                 now=clock.now(), dedupe_key="t:out2")
    session.commit()
    assert again.id == first.id and not created
    log_in(client, world.staff["ward_a"])
    html = client.get("/dashboard/alerts").get_data(as_text=True)
    row = re.search(rf'<tr[^>]*id="alert-{first.id}".*?</tr>', html, re.S).group(0)
    assert "×2 lần" in row, row[:600]
    ids = re.findall(r'id="alert-(\d+)"', html)
    assert ids.count(str(first.id)) == 1
    page = client.get(f"/dashboard/persons/{person.id}").get_data(as_text=True)
    item = re.search(rf'id="history-alert-{first.id}".*?</tr>', page, re.S).group(0)
    assert "×2 lần" in item and "Các lần lặp lại" in item


def test_acknowledge_then_resolve_with_a_note(app, client, world, session):
    log_in(client, world.staff["ward_a"])
    url = f"/dashboard/alerts/{world.own.alert.id}"
    r = post(client, url + "/acknowledge", note="Đã gọi điện", next="/dashboard/alerts?kind=x")
    assert r.status_code == 302 and r.headers["Location"] == "/dashboard/alerts?kind=x"
    alert = session.get(Alert, world.own.alert.id)
    session.refresh(alert)
    assert alert.state is AlertState.acknowledged
    assert alert.acknowledged_by_id == world.staff["ward_a"].id
    (ack,) = events(session, "alert.acknowledge")
    assert ack.ip == "127.0.0.1" and ack.details["note"] == "Đã gọi điện"
    r = post(client, url + "/acknowledge")
    follow = client.get("/dashboard/alerts").get_data(as_text=True)
    assert "đã được tiếp nhận trước đó" in follow
    post(client, url + "/resolve", note="")
    assert "Cần nhập ghi chú" in client.get("/dashboard/alerts").get_data(as_text=True)
    post(client, url + "/resolve", note="Người bệnh ổn, đã xác minh qua video")
    session.refresh(alert)
    assert alert.state is AlertState.resolved
    assert alert.resolution_note == "Người bệnh ổn, đã xác minh qua video"


def test_anonymous_rows_poll_gets_401_for_the_script(app, client, world):
    r = client.get("/dashboard/alerts/rows")
    assert r.status_code == 401 and r.mimetype == "application/problem+json"


# --- failed check-in review ---------------------------------------------------------------


def test_review_same_person_counts_the_checkin_and_keeps_the_case(app, client, world, session):
    log_in(client, world.staff["ward_a"])
    aid = world.own.attempt.id
    page = client.get(f"/dashboard/reviews/{aid}").get_data(as_text=True)
    assert "Khuôn mặt không khớp" in page and "0.620" in page  # localised reason, the score
    assert f"/dashboard/images/{world.own.selfie.id}" in page
    assert f"/dashboard/images/{world.own.enrolment.id}" in page
    assert "<svg" in page and "home-zone" in page
    r = post(client, f"/dashboard/reviews/{aid}", outcome="same_person", note="")
    assert r.status_code == 302  # a note is required
    assert session.get(CheckinAttempt, aid).review_outcome is None
    r = post(client, f"/dashboard/reviews/{aid}", outcome="same_person", note="Ảnh tối, cùng người")
    assert r.status_code == 302
    attempt = session.get(CheckinAttempt, aid)
    session.refresh(attempt)
    assert attempt.decision is AttemptDecision.verified
    assert attempt.review_outcome == "same_person"
    assert attempt.reviewed_by_id == world.staff["ward_a"].id
    assert attempt.score == 0.62 and attempt.code == "face_mismatch"
    assert attempt.details["machine_decision"] == "rejected"
    prompt = session.get(CheckinPrompt, world.own.prompt.id)
    session.refresh(prompt)
    assert prompt.state is PromptState.completed
    alert = session.get(Alert, world.own.alert.id)
    session.refresh(alert)
    assert alert.state is AlertState.resolved
    (review,) = events(session, "checkin.review")
    assert review.details["outcome"] == "same_person" and review.ip == "127.0.0.1"
    # reviewed once only; gone from the queue
    post(client, f"/dashboard/reviews/{aid}", outcome="not_same_person", note="again")
    session.refresh(attempt)
    assert attempt.review_outcome == "same_person"
    assert world.own.person.full_name not in client.get("/dashboard/reviews").get_data(as_text=True)


def test_review_not_same_person_keeps_a_failed_verification_alert(app, client, world, session):
    # a review-band attempt had completed its prompt; "not the same person" fails it
    attempt = session.get(CheckinAttempt, world.own.attempt.id)
    attempt.decision = AttemptDecision.review
    attempt.code = "face_review"
    prompt = session.get(CheckinPrompt, world.own.prompt.id)
    prompt.state = PromptState.completed
    old = session.get(Alert, world.own.alert.id)  # as if that prompt had raised none
    old.dedupe_key, old.state = "unrelated", AlertState.resolved
    session.commit()
    log_in(client, world.staff["admin"])
    post(
        client,
        f"/dashboard/reviews/{attempt.id}",
        outcome="not_same_person",
        note="Không phải người này",
    )
    session.refresh(attempt)
    session.refresh(prompt)
    assert attempt.review_outcome == "not_same_person"
    assert attempt.decision is AttemptDecision.rejected
    assert prompt.state is PromptState.failed
    alerts = session.scalars(
        select(Alert).where(
            Alert.kind == AlertKind.failed_verification,
            Alert.person_id == world.own.person.id,
            Alert.state == AlertState.open,
        )
    ).all()
    assert len(alerts) == 1 and alerts[0].state is AlertState.open
    assert alerts[0].attempt_id == attempt.id


def test_face_images_stream_jpeg_no_store_and_every_view_is_audited(app, client, world, session):
    log_in(client, world.staff["district"])
    for _ in range(2):
        r = client.get(f"/dashboard/images/{world.own.selfie.id}")
        assert r.status_code == 200 and r.mimetype == "image/jpeg"
        assert r.headers["Cache-Control"] == "no-store"
        assert r.data[:2] == b"\xff\xd8"
    views = events(session, "face_image.view")
    assert len(views) == 2
    assert views[0].actor_id == world.staff["district"].id and views[0].ip == "127.0.0.1"
    assert views[0].target_id == world.own.selfie.id
    assert views[0].details["person_id"] == world.own.person.id
    assert client.get(f"/dashboard/images/{world.other.selfie.id}").status_code == 404
    assert len(events(session, "face_image.view")) == 2


# --- persons --------------------------------------------------------------------------


def test_person_list_search_and_risk_sort(app, client, world, session):
    log_in(client, world.staff["admin"])
    html = client.get("/dashboard/persons").get_data(as_text=True)
    # both have a red declaration (SpO2 94 %): then by name
    assert html.index("Nguyễn Thị Hoa") < html.index("Trần Văn Cường")
    other = session.get(Person, world.other.person.id)
    from server.core.enums import RiskLevel

    session.get(Person, world.own.person.id).risk_level = RiskLevel.yellow
    other.risk_level = RiskLevel.red
    session.commit()
    html = client.get("/dashboard/persons?sort=risk").get_data(as_text=True)
    assert html.index("Trần Văn Cường") < html.index("Nguyễn Thị Hoa")
    html = client.get("/dashboard/persons?q=hoa").get_data(as_text=True)
    assert "Nguyễn Thị Hoa" in html and "Trần Văn Cường" not in html
    html = client.get("/dashboard/persons?q=0907654").get_data(as_text=True)
    assert "Trần Văn Cường" in html and "Nguyễn Thị Hoa" not in html
    html = client.get("/dashboard/persons?q=%25").get_data(as_text=True)
    assert "Nguyễn Thị Hoa" not in html  # LIKE wildcards are escaped


def test_person_page_shows_compliance_charts_history_and_audit(app, client, world, session):
    log_in(client, world.staff["doctor"])
    html = client.get(f"/dashboard/persons/{world.own.person.id}").get_data(as_text=True)
    assert "0 / 1" in html  # the failed prompt was due, none completed
    assert html.count("<svg") >= 2 and "polyline" in html
    assert "Xác thực khuôn mặt thất bại" in html  # alert history
    assert "Khai báo y tế" in html and "declaration.submit" not in html  # audit trail, in words
    assert "Cấp lại mã kích hoạt" not in html  # doctors do not manage
    assert client.get(f"/dashboard/persons/{world.other.person.id}").status_code == 404


def test_extend_and_end_isolation(app, client, world, session, clock):
    log_in(client, world.staff["ward_a"])
    pid = world.own.person.id
    person = session.get(Person, pid)
    end = person.isolation_end
    post(client, f"/dashboard/persons/{pid}/isolation", action="extend", days="3")
    session.refresh(person)
    assert person.isolation_end == end + timedelta(days=3)
    post(client, f"/dashboard/persons/{pid}/isolation", action="extend", days="90")
    session.refresh(person)
    assert person.isolation_end == end + timedelta(days=3)
    post(client, f"/dashboard/persons/{pid}/isolation", action="end")  # not confirmed
    session.refresh(person)
    assert person.isolation_end > clock.now()
    post(client, f"/dashboard/persons/{pid}/isolation", action="end", confirm="1")
    session.refresh(person)
    assert person.isolation_end == clock.now()
    actions = {e.action for e in events(session, "person.isolation_extend")} | {
        e.action for e in events(session, "person.isolation_end")
    }
    assert actions == {"person.isolation_extend", "person.isolation_end"}


def test_schedule_policy_is_validated_json(app, client, world, session):
    log_in(client, world.staff["ward_a"])
    pid = world.own.person.id
    r = post(client, f"/dashboard/persons/{pid}/schedule", policy="{not json")
    assert r.status_code == 422 and "Lịch điểm danh không hợp lệ" in r.get_data(as_text=True)
    r = post(client, f"/dashboard/persons/{pid}/schedule", policy='{"response_minutes": 1}')
    assert r.status_code == 422
    r = post(client, f"/dashboard/persons/{pid}/schedule", policy='{"spot_checks_per_day": 2}')
    assert r.status_code == 302
    person = session.get(Person, pid)
    session.refresh(person)
    assert person.schedule_policy == {"spot_checks_per_day": 2}
    post(client, f"/dashboard/persons/{pid}/schedule", policy="")
    session.refresh(person)
    assert person.schedule_policy is None
    assert len(events(session, "person.schedule_policy")) == 2


def test_activation_code_is_shown_once_and_stored_hashed(app, client, world, session):
    log_in(client, world.staff["ward_a"])
    pid = world.own.person.id
    html = post(client, f"/dashboard/persons/{pid}/activation-code").get_data(as_text=True)
    code = re.search(r'id="activation-code">([A-Z0-9-]+)<', html).group(1)
    assert f"code={code}" in html  # the QR payload
    # a QR image of the web app's activation link, drawn inline (no external image, CSP-safe)
    qr = re.search(r'<figure class="qr" id="activation-qr">(.*?)</figure>', html, re.S).group(1)
    assert qr.lstrip().startswith("<svg") and "<path" in qr
    assert f"/app/activate?code={code}" in html
    assert code not in client.get(f"/dashboard/persons/{pid}").get_data(as_text=True)
    stored = session.scalars(select(ActivationCode.code_hash)).all()
    assert code not in stored and len(stored) == 1


def test_assign_only_a_doctor_in_scope(app, client, world, session):
    log_in(client, world.staff["ward_b"])  # ward B's staff may not see ward A's doctor
    pid = world.own.person.id
    assert post(client, f"/dashboard/persons/{pid}/doctor", doctor_id="").status_code == 404
    client = app.test_client()
    log_in(client, world.staff["ward_a"])
    r = post(client, f"/dashboard/persons/{pid}/doctor", doctor_id=str(world.staff["ward_b"].id))
    assert r.status_code == 404  # not a doctor
    r = post(client, f"/dashboard/persons/{pid}/doctor", doctor_id="")
    assert r.status_code == 302
    assert session.scalar(select(Person.doctor_id).where(Person.id == pid)) is None
    post(client, f"/dashboard/persons/{pid}/doctor", doctor_id=str(world.staff["doctor"].id))
    assert (
        session.scalar(select(Person.doctor_id).where(Person.id == pid)) == world.staff["doctor"].id
    )
    assert len(events(session, "person.assign_doctor")) == 2


def test_doctor_enters_a_declaration_for_the_person(app, client, world, session):
    log_in(client, world.staff["doctor"])
    pid = world.own.person.id
    r = post(
        client,
        f"/dashboard/persons/{pid}/declarations",
        spo2="92",
        temperature_c="39.1",
        symptoms="dyspnea",
    )
    assert r.status_code == 302
    from server.declarations.models import Declaration

    latest = session.scalar(
        select(Declaration)
        .where(Declaration.person_id == pid)
        .order_by(Declaration.id.desc())
        .limit(1)
    )
    assert latest.spo2 == 92 and latest.entered_by_id == world.staff["doctor"].id
    post(client, f"/dashboard/persons/{pid}/declarations", spo2="12")
    assert "Khai báo không hợp lệ" in client.get(f"/dashboard/persons/{pid}").get_data(as_text=True)


# --- password ---------------------------------------------------------------------------


def test_password_change_revokes_other_sessions_and_api_tokens(app, client, world, session):
    other_session = app.test_client()
    log_in(other_session, world.staff["ward_a"])
    api = app.test_client()
    token = api.post("/api/v1/auth/token", json={"username": "p1", "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.get_json()['token']}"}
    assert (
        api.get(f"/api/v1/admin/persons/{world.own.person.id}", headers=bearer).status_code == 200
    )
    log_in(client, world.staff["ward_a"])
    new = "mat-khau-moi-dai-hon-10"
    for bad, message in (
        ({"current": "wrong", "new": new, "again": new}, "Mật khẩu hiện tại không đúng"),
        ({"current": PASSWORD, "new": "short", "again": "short"}, "ít nhất 10 ký tự"),
        ({"current": PASSWORD, "new": new, "again": new + "x"}, "không giống nhau"),
    ):
        r = post(client, "/dashboard/password", **bad)
        assert r.status_code == 422 and message in r.get_data(as_text=True)
    r = post(client, "/dashboard/password", current=PASSWORD, new=new, again=new)
    assert r.status_code == 302
    assert client.get("/dashboard/alerts").status_code == 200  # this session stays
    assert other_session.get("/dashboard/alerts").status_code == 302  # the other one is gone
    assert (
        api.get(f"/api/v1/admin/persons/{world.own.person.id}", headers=bearer).status_code == 401
    )
    user = session.get(StaffUser, world.staff["ward_a"].id)
    session.refresh(user)
    assert user.password_changed_at is not None
    assert len(events(session, "staff.password_change")) == 1


# --- statistics ------------------------------------------------------------------------


def test_statistics_and_csv_with_bom_and_vietnamese_names(app, client, world, session, clock):
    alert = session.get(Alert, world.own.alert.id)
    alert.state = AlertState.acknowledged
    alert.acknowledged_at = alert.created_at + timedelta(minutes=12)
    session.commit()
    log_in(client, world.staff["district"])
    html = client.get("/dashboard/stats").get_data(as_text=True)
    assert html.count("<svg") == 2
    r = client.get(f"/dashboard/stats.csv?area={world.ward_a.id}&days=3")
    assert r.mimetype == "text/csv" and r.data.startswith(b"\xef\xbb\xbf")
    assert "attachment" in r.headers["Content-Disposition"]
    text = r.data.decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("Ngày,area_code,Khu vực,Số người theo dõi")
    assert len(lines) == 1 + 3  # one ward, three days
    today = clock.now().astimezone(app.extensions["isocheck"].settings.zone).date().isoformat()
    row = next(line for line in lines if line.startswith(today)).split(",")
    # day, code, name, monitored, due, completed, compliance %, 6 alert kinds, median minutes
    assert row[1:7] == ["79-764-26896", "Phường 1", "1", "1", "0", "0.0"]
    assert row[-1] == "12.0"
    kinds = lines[0].split(",")
    assert row[kinds.index("Xác thực khuôn mặt thất bại")] == "1"
    assert client.get(f"/dashboard/stats?area={world.ward_b.id}").status_code == 200
    assert client.get(f"/dashboard/stats?area={world.ward_c.id}").status_code == 404


def test_enrolment_form_refuses_missing_fields_and_photos(app, client, world, session):
    log_in(client, world.staff["ward_a"])
    before = session.scalar(select(func.count()).select_from(Person))
    r = post(
        client,
        "/dashboard/enrol",
        full_name="Lê Văn Tám",
        phone="0901000999",
        ward_id=str(world.ward_c.id),
        home_address="1 Lê Lợi",
        home_lat="10.8",
        home_lon="106.7",
        isolation_start="2026-11-24",
        isolation_days="7",
    )
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "Cần 1 đến 3 ảnh khuôn mặt" in html
    assert "Phường Bến Nghé" not in html  # another district's ward is not offered
    assert session.scalar(select(func.count()).select_from(Person)) == before
