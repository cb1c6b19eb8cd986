"""Enrolment (đăng ký): creating a person, adding enrolment photos, activation codes, devices."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.config import Settings
from server.core import audit, crypto
from server.core.enums import AreaKind, ImageKind, PersonStatus
from server.core.errors import Conflict, FieldProblem, InvalidFields, InvalidRequest, NotAllowed
from server.core.jsonsafe import json_safe
from server.core.security import code_digest, new_token, token_digest
from server.people.models import ActivationCode, Area, Device, FaceTemplate, Person, StoredImage
from server.people.schemas import PersonCreate
from server.storage import ImageStore

#: Enrolment photos per person: one is enough to start, two or three match better.
MAX_ENROLMENT_PHOTOS = 3
#: 10 characters from a 31-symbol alphabet without look-alikes: ~49.5 bits, typed as XXXXX-XXXXX.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10
CODE_TTL = timedelta(hours=72)


@dataclass(frozen=True)
class IssuedCode:
    code: str
    expires_at: datetime
    qr_payload: str
    #: The web app's activation link (what the printed / on-screen QR code holds: any phone
    #: camera opens it in the browser).
    activation_url: str = ""

    def qr_svg(self) -> str:
        """The activation link as an inline SVG QR code (no script, no style: CSP-safe)."""
        import segno

        return segno.make(self.activation_url or self.qr_payload, error="m").svg_inline(
            scale=6, border=2, title="QR"
        )

    def qr_terminal(self) -> str:
        """The activation link as a QR code of text blocks, for a terminal."""
        import io

        import segno

        out = io.StringIO()
        segno.make(self.activation_url or self.qr_payload, error="m").terminal(out, compact=True)
        return out.getvalue()


def create_person(
    *,
    session: Session,
    data: PersonCreate,
    now: datetime,
    actor_id: int | None,
    ward: Area,
    actor_kind: str = "staff",
) -> Person:
    """Insert the person (status ``active`` once isolation has started, else ``enrolled``)."""
    if ward.kind is not AreaKind.ward:
        raise InvalidFields(FieldProblem("ward_code", "not_a_ward"))
    person = Person(
        full_name=data.full_name,
        phone=data.phone,
        date_of_birth=data.date_of_birth,
        national_id=data.national_id,
        category=data.category,
        ward_id=ward.id,
        home_address=data.home_address,
        # no coordinates typed: placeholders until the phone's position is confirmed
        home_lat=data.home_lat if data.home_lat is not None else 0.0,
        home_lon=data.home_lon if data.home_lon is not None else 0.0,
        home_source="typed" if data.home_lat is not None else "pending",
        geofence_radius_m=data.geofence_radius_m,
        timezone=data.timezone,
        isolation_start=data.isolation_start,
        isolation_end=data.isolation_end,
        status=PersonStatus.active if data.isolation_start <= now else PersonStatus.enrolled,
        risk_factors=data.risk_factors.model_dump(),
        max_devices=data.max_devices,
        created_at=now,
        updated_at=now,
    )
    session.add(person)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict("person_exists") from exc
    audit.record(
        session=session,
        actor_kind=actor_kind,
        actor_id=actor_id,
        action="person.create",
        target_kind="person",
        target_id=person.id,
        area_id=ward.id,
        at=now,
    )
    return person


def store_image(
    *,
    session: Session,
    store: ImageStore,
    person: Person,
    kind: ImageKind,
    data: bytes,
    content_type: str | None,
    now: datetime,
) -> StoredImage:
    """Encrypt and keep an upload with its hashes *before* anything judges it."""
    key = store.save(data)
    row = StoredImage(
        person_id=person.id,
        kind=kind.value,
        storage_key=key,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        content_type=(content_type or "")[:64] or None,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def keep_perceptual_hashes(image: StoredImage, source: Any) -> None:
    """Copy the perceptual hashes the face library computed (from a Template of an enrolment
    photo or a Result of a selfie) onto the stored image row, for later replay checks."""
    image.phash = getattr(source, "image_phash", None) or getattr(source, "phash", None) or None
    image.face_phash = getattr(source, "face_phash", None) or None


def add_enrolment_photo(
    *,
    session: Session,
    settings: Settings,
    store: ImageStore,
    person: Person,
    template: Any,
    data: bytes,
    content_type: str | None,
    now: datetime,
    actor_kind: str,
    actor_id: int | None,
    ip: str | None = None,
) -> FaceTemplate:
    """Keep an enrolment photo that passed the strict quality gate (``template`` is what
    ``Verifier.enrol`` made of ``data``): the encrypted image with its hashes, the encrypted
    template, and an audit event. The caller checks scope and the photo limit, and commits."""
    image = store_image(
        session=session,
        store=store,
        person=person,
        kind=ImageKind.enrolment,
        data=data,
        content_type=content_type,
        now=now,
    )
    keep_perceptual_hashes(image, template)
    row = add_template(
        session=session,
        settings=settings,
        person=person,
        template=template,
        source="enrolment",
        image=image,
        now=now,
    )
    audit.record(
        session=session,
        actor_kind=actor_kind,
        actor_id=actor_id,
        ip=ip,
        at=now,
        action="enrolment_photo.add",
        target_kind="person",
        target_id=person.id,
        area_id=person.ward_id,
        details={"template_id": row.id},
    )
    return row


def enrolment_photo_count(*, session: Session, person: Person) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(FaceTemplate)
            .where(FaceTemplate.person_id == person.id, FaceTemplate.source == "enrolment")
        )
        or 0
    )


def add_template(
    *,
    session: Session,
    settings: Settings,
    person: Person,
    template: Any,
    source: str,
    image: StoredImage | None,
    now: datetime,
) -> FaceTemplate:
    """Store a verification.Template encrypted at rest."""
    row = FaceTemplate(
        person_id=person.id,
        embedder=template.embedder,
        model_id=template.model_sha256,
        data=crypto.encrypt(template.to_bytes(), keys=settings.encryption_key),
        source=source,
        image_id=image.id if image else None,
        quality=json_safe(getattr(template, "quality", None)),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def load_templates(*, session: Session, settings: Settings, person: Person) -> list[Any]:
    """The person's templates as verification.Template objects (decrypted)."""
    from verification import Template

    rows = session.scalars(
        select(FaceTemplate).where(FaceTemplate.person_id == person.id).order_by(FaceTemplate.id)
    ).all()
    return [Template.from_bytes(crypto.decrypt(r.data, keys=settings.encryption_key)) for r in rows]


def issue_activation_code(
    *,
    session: Session,
    person: Person,
    now: datetime,
    actor_id: int | None,
    server_url: str,
    secret: str,
) -> IssuedCode:
    """A new one-time code; earlier unused codes of the person stop working. Stored as a keyed
    hash under ``secret`` (the server's secret key), never in clear."""
    session.execute(
        update(ActivationCode)
        .where(ActivationCode.person_id == person.id, ActivationCode.used_at.is_(None))
        .values(expires_at=now)
    )
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    code = f"{raw[:5]}-{raw[5:]}"
    expires = now + CODE_TTL
    session.add(
        ActivationCode(
            person_id=person.id,
            code_hash=code_digest(normalise_code(code), secret=secret),
            expires_at=expires,
            created_by_id=actor_id,
            created_at=now,
        )
    )
    audit.record(
        session=session,
        actor_kind="staff",
        actor_id=actor_id,
        action="activation_code.issue",
        target_kind="person",
        target_id=person.id,
        area_id=person.ward_id,
        at=now,
    )
    return IssuedCode(
        code=code,
        expires_at=expires,
        qr_payload=f"isocheck://activate?server={server_url}&code={code}",
        activation_url=f"{server_url.rstrip('/')}/app/activate?code={code}",
    )


def normalise_code(code: str) -> str:
    """What the person types: case, spaces and dashes do not matter."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def activate_device(
    *,
    session: Session,
    code: str,
    now: datetime,
    platform: str | None,
    push_token: str | None,
    secret: str,
) -> tuple[Device, Person, str]:
    """Trade an activation code for a device token (returned once, stored hashed).

    1. Find the unused, unexpired code by its hash; mark it used with a compare-and-swap so two
       phones racing with one code cannot both win.
    2. Revoke the person's older devices beyond ``max_devices`` (a new phone replaces the old).
    3. Create the device with the token's hash; return the token itself.
    """
    typed = normalise_code(code)
    # Codes issued before keyed hashing (plain SHA-256) still verify until they expire (72 h
    # at most): the lookup takes either digest, the keyed one first.
    digests = [code_digest(typed, secret=secret), token_digest(typed)]
    row = session.scalar(
        select(ActivationCode)
        .where(ActivationCode.code_hash.in_(digests))
        .order_by(ActivationCode.id.desc())
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise InvalidRequest("invalid_activation_code")
    won = session.execute(
        update(ActivationCode)
        .where(ActivationCode.id == row.id, ActivationCode.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if won != 1:
        raise InvalidRequest("invalid_activation_code")
    person = session.get(Person, row.person_id)
    if person is None or person.status is PersonStatus.released:
        raise NotAllowed("isolation_ended")
    active = session.scalars(
        select(Device)
        .where(Device.person_id == person.id, Device.revoked_at.is_(None))
        .order_by(Device.created_at.desc(), Device.id.desc())
    ).all()
    for old in active[max(person.max_devices - 1, 0) :]:
        old.revoked_at = now
    token = new_token()
    device = Device(
        person_id=person.id,
        token_hash=token_digest(token),
        platform=platform,
        push_token=push_token,
        created_at=now,
        last_seen_at=now,
    )
    session.add(device)
    session.flush()
    audit.record(
        session=session,
        actor_kind="device",
        actor_id=device.id,
        action="device.activate",
        target_kind="person",
        target_id=person.id,
        area_id=person.ward_id,
        at=now,
        details={"revoked_devices": [d.id for d in active[max(person.max_devices - 1, 0) :]]},
    )
    return device, person, token


def revoke_devices(*, session: Session, person: Person, now: datetime, actor_id: int | None) -> int:
    count = session.execute(
        update(Device)
        .where(Device.person_id == person.id, Device.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount
    audit.record(
        session=session,
        actor_kind="staff",
        actor_id=actor_id,
        action="device.revoke_all",
        target_kind="person",
        target_id=person.id,
        area_id=person.ward_id,
        at=now,
        details={"revoked": count},
    )
    return count
