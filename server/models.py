"""Every table, imported in one place so Alembic and tests see the whole metadata."""

from server.alerts.models import Alert, AlertOccurrence
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.core.audit import AuditArchive, AuditEvent
from server.core.db import Base
from server.dashboard.rollup import StatsDaily, StatsDailyArea
from server.declarations.models import Declaration
from server.fhir.models import FhirExportJob
from server.heartbeat import SchedulerHeartbeat, SweepCursor
from server.notify.models import Notification
from server.people.models import (
    ActivationCode,
    Area,
    Device,
    FaceTemplate,
    Person,
    StaffUser,
    StoredImage,
)
from server.schedule.models import SchedulePlan

__all__ = [
    "ActivationCode",
    "Alert",
    "AlertOccurrence",
    "Area",
    "AuditArchive",
    "AuditEvent",
    "Base",
    "CheckinAttempt",
    "CheckinPrompt",
    "Declaration",
    "Device",
    "FaceTemplate",
    "FhirExportJob",
    "Notification",
    "Person",
    "SchedulePlan",
    "SchedulerHeartbeat",
    "SweepCursor",
    "StaffUser",
    "StatsDaily",
    "StatsDailyArea",
    "StoredImage",
]
