"""Enumerations shared by models, services and the API. Values are stored as strings."""

from enum import StrEnum

from sqlalchemy import Enum as SAEnum


def db_enum(enum: type[StrEnum], name: str) -> SAEnum:
    """A portable VARCHAR column holding ``enum``'s values (no native PostgreSQL ENUM type, so a
    new value is a code change, not a schema migration)."""
    return SAEnum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=24,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class AreaKind(StrEnum):
    city = "city"
    district = "district"
    ward = "ward"


class StaffRole(StrEnum):
    admin = "admin"
    area_staff = "area_staff"
    doctor = "doctor"


class PersonStatus(StrEnum):
    enrolled = "enrolled"  # registered, not yet isolating (start in the future)
    active = "active"  # in home isolation, monitored
    released = "released"  # isolation ended (kết thúc cách ly)


class Category(StrEnum):
    f0 = "F0"
    f1 = "F1"


class RiskLevel(StrEnum):
    green = "green"
    yellow = "yellow"
    orange = "orange"
    red = "red"


class PromptKind(StrEnum):
    scheduled = "scheduled"
    spot = "spot"


class PromptState(StrEnum):
    planned = "planned"
    open = "open"
    completed = "completed"
    failed = "failed"
    missed = "missed"
    missed_system = "missed_system"  # window passed while the scheduler was down: no blame
    cancelled = "cancelled"


class AttemptDecision(StrEnum):
    verified = "verified"
    review = "review"
    rejected = "rejected"


class ImageKind(StrEnum):
    enrolment = "enrolment"
    selfie = "selfie"
    challenge_frame = "challenge_frame"


class AlertKind(StrEnum):
    missed_checkin = "missed_checkin"
    failed_verification = "failed_verification"
    outside_home = "outside_home"
    severe_symptoms = "severe_symptoms"
    high_risk = "high_risk"
    non_reporting = "non_reporting"


class AlertState(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class NotificationState(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    dead = "dead"
