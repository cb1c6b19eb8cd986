"""Areas (city ⊃ district ⊃ ward), staff, persons in isolation, their devices and codes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.core.db import Base, utcnow
from server.core.enums import AreaKind, Category, PersonStatus, RiskLevel, StaffRole, db_enum


def path_ids(path: str) -> list[int]:
    """The ids of a materialised area path, root first (``"1/4/9/"`` -> ``[1, 4, 9]``): the one
    place an area path is parsed."""
    return [int(x) for x in path.split("/") if x]


class Area(Base):
    """An administrative area. ``path`` is the materialised chain of ids (``"1/4/9/"``) so a
    subtree is one ``LIKE 'prefix%'`` query; staff scope is a subtree."""

    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[AreaKind] = mapped_column(db_enum(AreaKind, "area_kind"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    path: Mapped[str] = mapped_column(String(255), index=True, default="")
    timezone: Mapped[str | None] = mapped_column(String(64))
    #: Per-area overrides of the schedule policy (scheduler issue); None = inherit.
    schedule_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Per-area overrides of acknowledgement deadlines per alert kind, in minutes.
    escalation_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Area | None] = relationship(remote_side=[id])

    @property
    def chain_ids(self) -> list[int]:
        """Ids from the top (city) down to this area; the area alone while its path is unset."""
        return path_ids(self.path) or [self.id]


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[StaffRole] = mapped_column(db_enum(StaffRole, "staff_role"))
    #: The root of the caller's scope; None only for administrators (whole system).
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    push_token: Mapped[str | None] = mapped_column(String(4096))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    #: Dashboard sessions carry the epoch they were opened in; logout (and disabling or a new
    #: password) bumps it, so a saved cookie no longer opens anything (issue 13, finding 5).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    area: Mapped[Area | None] = relationship()


#: The expressions of the expression index ``ix_persons_risk_sort``.
RISK_SORT_EXPRESSIONS = (
    "(-\nCASE\n    WHEN risk_level = 'red' THEN 4\n    WHEN risk_level = 'orange' THEN 3\n"
    "    WHEN risk_level = 'yellow' THEN 2\n    WHEN risk_level = 'green' THEN 1\n    ELSE 0\nEND)",
    "(\nCASE\n    WHEN is_high_risk IS TRUE THEN 0\n    ELSE 1\nEND)",
)


class Person(Base):
    """A person in home isolation (người cách ly tại nhà)."""

    __tablename__ = "persons"
    __table_args__ = (
        # the persons list's keyset pages (issue 18); the risk order's expression is
        # server.dashboard.service.person_sort_keys("risk"), with the same constants
        Index("ix_persons_name_sort", "full_name", "id"),
        Index(
            "ix_persons_risk_sort",
            # written as PostgreSQL prints them back, so migrations compare equal to the model
            text(RISK_SORT_EXPRESSIONS[0]),
            text(RISK_SORT_EXPRESSIONS[1]),
            "full_name",
            "id",
        ),
        Index("ix_persons_end_sort", "isolation_end", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32))
    date_of_birth: Mapped[date | None]
    national_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    category: Mapped[Category] = mapped_column(db_enum(Category, "category"), default=Category.f0)
    ward_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    home_address: Mapped[str] = mapped_column(Text)
    home_lat: Mapped[float] = mapped_column(Float)
    home_lon: Mapped[float] = mapped_column(Float)
    #: Where home_lat/home_lon came from: ``typed`` by staff, ``phone`` (the phone's position at
    #: activation, confirmed by staff); ``pending`` until a position is confirmed — then
    #: home_lat/home_lon are placeholders and no check-in is judged against them (issue 19).
    home_source: Mapped[str] = mapped_column(String(8), default="typed", server_default="typed")
    #: The position the phone proposed at activation ("I am at home"), awaiting staff.
    home_proposed_lat: Mapped[float | None] = mapped_column(Float)
    home_proposed_lon: Mapped[float | None] = mapped_column(Float)
    home_proposed_accuracy_m: Mapped[float | None] = mapped_column(Float)
    home_proposed_at: Mapped[datetime | None]
    #: Radius around home inside which a check-in counts as at home (default 100 m, as Poland).
    geofence_radius_m: Mapped[float] = mapped_column(Float, default=100.0)
    timezone: Mapped[str | None] = mapped_column(String(64))
    isolation_start: Mapped[datetime]
    isolation_end: Mapped[datetime]
    status: Mapped[PersonStatus] = mapped_column(
        db_enum(PersonStatus, "person_status"), default=PersonStatus.active, index=True
    )
    #: {"comorbidities": [...], "pregnant": bool, ...}; drives the high-risk flag.
    risk_factors: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_high_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    risk_level: Mapped[RiskLevel] = mapped_column(
        db_enum(RiskLevel, "risk_level"), default=RiskLevel.green, index=True
    )
    schedule_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), index=True)
    #: How many devices may be active at once (an admin may allow two).
    max_devices: Mapped[int] = mapped_column(Integer, default=1)
    released_at: Mapped[datetime | None]
    #: Set when photos, selfies and templates were deleted after the retention period.
    biometrics_purged_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    ward: Mapped[Area] = relationship()


class Device(Base):
    """A phone bound to a person by an activation code. The bearer token is stored hashed."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    push_token: Mapped[str | None] = mapped_column(String(4096))
    platform: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ActivationCode(Base):
    """A one-time code (mã kích hoạt): stored hashed, expires, single use."""

    __tablename__ = "activation_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredImage(Base):
    """An uploaded image (enrolment photo, selfie, challenge frame), encrypted on disk.

    The row and its hashes are written before the image is judged, so nothing sent is lost.
    ``purged_at`` marks a biometric deletion after the retention period (file removed)."""

    __tablename__ = "stored_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    storage_key: Mapped[str] = mapped_column(String(255), unique=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    #: 64-bit perceptual hashes (16 hex) of the whole image and of the aligned face crop.
    phash: Mapped[str | None] = mapped_column(String(32))
    face_phash: Mapped[str | None] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    purged_at: Mapped[datetime | None]


class FaceTemplate(Base):
    """A face embedding, encrypted at rest. Never compared across embedders/models."""

    __tablename__ = "face_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    embedder: Mapped[str] = mapped_column(String(16))
    model_id: Mapped[str] = mapped_column(String(80))
    #: Encrypted serialised template (Fernet token over the library's bytes).
    data: Mapped[bytes]
    #: "enrolment", "checkin" (high-confidence self-update) or "staff" (confirmed by a reviewer).
    source: Mapped[str] = mapped_column(String(16), default="enrolment")
    image_id: Mapped[int | None] = mapped_column(ForeignKey("stored_images.id"))
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = [
    "ActivationCode",
    "Area",
    "Device",
    "FaceTemplate",
    "Person",
    "StaffUser",
    "StoredImage",
]
