"""Learning a face template from a check-in selfie: one rule, used both for a confident
automatic match (:func:`server.checkins.service.apply_verdict`) and for a selfie a reviewer
confirmed as the same person (:func:`server.checkins.review.learn_confirmed_template`).

Measured to raise genuine acceptance without raising false matches (docs/verification.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.people.enrolment import add_template
from server.people.models import FaceTemplate, Person, StoredImage


def learn_template(
    *,
    session: Session,
    settings: Any,
    verifier: Any,
    person: Person,
    templates: list[Any],
    result: Any,
    image: StoredImage | None,
    source: str,
    now: datetime,
    staff_confirmed: bool = False,
) -> bool:
    """Keep ``result.candidate`` as an extra template (``source``: ``checkin`` or ``staff``)
    when the face library agrees it adds something (``should_add_template``; a reviewer's
    confirmation is ``staff_confirmed``). At most ``max_templates`` per person: the oldest
    learned template makes room; enrolment templates always stay. The caller commits.
    Returns whether a template was added."""
    if not verifier.should_add_template(result, templates, staff_confirmed=staff_confirmed):
        return False
    if len(templates) >= verifier.settings.max_templates:
        oldest_learned = session.scalar(
            select(FaceTemplate)
            .where(FaceTemplate.person_id == person.id, FaceTemplate.source != "enrolment")
            .order_by(FaceTemplate.created_at, FaceTemplate.id)
            .limit(1)
        )
        if oldest_learned is None:
            return False  # only enrolment templates, and they always stay
        session.delete(oldest_learned)
    add_template(
        session=session,
        settings=settings,
        person=person,
        template=result.candidate,
        source=source,
        image=image,
        now=now,
    )
    return True
