"""Duyệt điểm danh: the queue of check-ins to review, one attempt beside the enrolment photos,
the reviewer's verdict (:mod:`server.checkins.review`) and the face images it shows."""

from __future__ import annotations

import logging

from flask import Response, abort, flash, g, redirect, render_template, request, url_for

from server.checkins import review as checkin_review
from server.core import audit
from server.dashboard import charts
from server.dashboard import service as svc
from server.dashboard.pages import ip, now, t
from server.dashboard.security import staff_page
from server.http.context import ctx, db_session
from server.images import as_jpeg
from server.people.models import Person, StaffUser
from server.scope import attempt_in_scope, image_in_scope

log = logging.getLogger("isocheck.dashboard")


@staff_page(*svc.MANAGERS)
def reviews():
    include_quality = request.args.get("all") == "1"
    rows = checkin_review.review_queue(
        session=db_session(), staff=g.staff, include_quality=include_quality
    )
    return render_template("dashboard/reviews.html", rows=rows, include_quality=include_quality)


def _scoped_attempt(attempt_id: int):
    found = attempt_in_scope(session=db_session(), staff=g.staff, attempt_id=attempt_id)
    if found is None:
        abort(404)
    return found


@staff_page(*svc.MANAGERS)
def review(attempt_id: int):
    """The enrolment photo and the selfie side by side, the score, the reason and a map of the
    fix against home; the reviewer decides "same person" or "not the same person"."""
    attempt, person = _scoped_attempt(attempt_id)
    s = db_session()
    details = attempt.details or {}
    fix = (
        (attempt.latitude, attempt.longitude)
        if attempt.latitude is not None and attempt.longitude is not None
        else None
    )
    geo = charts.geofence(
        home=(person.home_lat, person.home_lon),
        fix=fix,
        radius_m=person.geofence_radius_m,
        accuracy_m=attempt.accuracy_m,
        title=t("location"),
        labels={"home": t("home"), "radius": t("geofence_radius"), "fix": t("selfie")},
    )
    reviewer = s.get(StaffUser, attempt.reviewed_by_id) if attempt.reviewed_by_id else None
    return render_template(
        "dashboard/review.html",
        attempt=attempt,
        person=person,
        details=details,
        enrolment=svc.enrolment_images(session=s, person=person),
        geofence_svg=geo,
        reviewer=reviewer,
    )


@staff_page(*svc.MANAGERS)
def review_decide(attempt_id: int):
    attempt, person = _scoped_attempt(attempt_id)
    outcome = request.form.get("outcome")
    note = request.form.get("note", "").strip()[:2000]
    if outcome not in ("same_person", "not_same_person"):
        abort(400)
    if not note:
        flash(t("note_required"), "error")
        return redirect(url_for(".review", attempt_id=attempt_id))
    s = db_session()
    try:
        checkin_review.review_attempt(
            session=s,
            staff=g.staff,
            attempt=attempt,
            person=person,
            same_person=outcome == "same_person",
            note=note,
            now=now(),
            ip=ip(),
        )
    except checkin_review.ReviewError:
        s.rollback()
        flash(t("already_reviewed"), "error")
        return redirect(url_for(".review", attempt_id=attempt_id))
    if outcome == "same_person":
        _learn_template(person, attempt)
    s.commit()
    flash(t("reviewed_same" if outcome == "same_person" else "reviewed_not_same"), "ok")
    return redirect(url_for(".reviews"))


def _learn_template(person: Person, attempt) -> None:
    """The confirmed selfie may join the templates; a failure here never undoes the review."""
    s = db_session()
    try:
        with s.begin_nested():
            checkin_review.learn_confirmed_template(
                session=s,
                settings=ctx().settings,
                staff=g.staff,
                person=person,
                attempt=attempt,
                now=now(),
                ip=ip(),
            )
    except Exception:  # the verifier or the image store: log, keep the review
        log.warning("could not learn a template from attempt %s", attempt.id, exc_info=True)


@staff_page(*svc.MANAGERS)
def image(image_id: int):
    """A face image, decrypted from the store and re-encoded as JPEG (which drops EXIF data
    such as GPS and anything that is not a picture: :func:`server.images.as_jpeg`). Every
    view is audited."""
    from server.face_verifier import get_verifier
    from server.storage import image_store

    s = db_session()
    found = image_in_scope(session=s, staff=g.staff, image_id=image_id)
    if found is None:
        abort(404)
    stored, person = found
    try:
        limits = get_verifier().settings
        data = as_jpeg(
            image_store(ctx().settings).load(stored.storage_key),
            max_bytes=limits.max_image_bytes,
            max_pixels=limits.max_image_pixels,
        )
    except Exception:  # missing file, wrong key, not an image
        log.warning("cannot show image %s", image_id, exc_info=True)
        abort(404)
    audit.record(
        session=s,
        actor_kind="staff",
        actor_id=g.staff.id,
        action="face_image.view",
        target_kind="stored_image",
        target_id=stored.id,
        area_id=person.ward_id,
        ip=ip(),
        at=now(),
        details={"person_id": person.id, "kind": stored.kind},
    )
    s.commit()
    return Response(
        data,
        mimetype="image/jpeg",
        headers={"Cache-Control": "no-store", "Content-Disposition": "inline"},
    )
