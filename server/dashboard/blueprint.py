"""The staff dashboard (``/dashboard``): every URL and the page that answers it, one module per
page under :mod:`server.dashboard.views`. Handlers are thin: they parse a form, call
:mod:`server.dashboard.service` or a domain service, commit and render. Security plumbing
(session, CSRF, headers, roles): :mod:`server.dashboard.security`; template helpers:
:mod:`server.dashboard.pages`.
"""

from __future__ import annotations

from flask import Blueprint

from server.dashboard import pages, security
from server.dashboard.views import alerts, auth, enrol, persons, reviews, stats

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)
security.install(bp)
pages.install(bp)

GET, POST, BOTH = ["GET"], ["POST"], ["GET", "POST"]

#: (rule, handler, methods); the endpoint is ``dashboard.<handler name>``.
ROUTES = (
    # login, logout, password
    ("/login", auth.login, BOTH),
    ("/logout", auth.logout, POST),
    ("/password", auth.password, BOTH),
    ("/", auth.index, GET),
    # alert queue
    ("/alerts", alerts.alerts, GET),
    ("/alerts/rows", alerts.alert_rows, GET),
    ("/alerts/<int:alert_id>/acknowledge", alerts.alert_acknowledge, POST),
    ("/alerts/<int:alert_id>/resolve", alerts.alert_resolve, POST),
    # failed check-in review
    ("/reviews", reviews.reviews, GET),
    ("/reviews/<int:attempt_id>", reviews.review, GET),
    ("/reviews/<int:attempt_id>", reviews.review_decide, POST),
    ("/images/<int:image_id>", reviews.image, GET),
    # persons
    ("/persons", persons.persons, GET),
    ("/persons/<int:person_id>", persons.person, GET),
    ("/persons/<int:person_id>/isolation", persons.person_isolation, POST),
    ("/persons/<int:person_id>/schedule", persons.person_schedule, POST),
    ("/persons/<int:person_id>/schedule-form", persons.person_schedule_form, POST),
    ("/persons/<int:person_id>/home", persons.person_home, POST),
    ("/persons/<int:person_id>/checkin-now", persons.person_checkin_now, POST),
    ("/areas/<int:area_id>/checkin-now", persons.area_checkin_now, POST),
    ("/persons/<int:person_id>/activation-code", persons.person_activation, POST),
    ("/persons/<int:person_id>/doctor", persons.person_doctor, POST),
    ("/persons/<int:person_id>/declarations", persons.person_declaration, POST),
    # enrolment
    ("/enrol", enrol.enrol, BOTH),
    # statistics
    ("/stats", stats.stats, GET),
    ("/stats.csv", stats.stats_csv, GET),
)

for _rule, _view, _methods in ROUTES:
    bp.add_url_rule(_rule, view_func=_view, methods=_methods)
