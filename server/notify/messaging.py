"""What is said: the title, body and data of each notification (Vietnamese first, then English).

Push notifications pass through Google's and Apple's servers and e-mail through relays we do not
control, so texts name no person and no symptom: they carry ids, the ward and the kind of event;
staff open the dashboard (behind their login) to see who and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from server.core.enums import AlertKind
from server.people.models import Area, Person


class AlertFacts(Protocol):
    """What notify reads of an alert (:class:`server.alerts.models.Alert` has all of it). Notify
    sits below alerts: alerts call into it, it never imports them."""

    id: int
    kind: AlertKind
    severity: int
    person_id: int
    area_id: int
    escalation_level: int
    prompt_id: int | None
    created_at: datetime


#: Alert kind → (Vietnamese, English) name.
ALERT_NAMES: dict[AlertKind, tuple[str, str]] = {
    AlertKind.missed_checkin: ("Bỏ lỡ điểm danh", "Missed check-in"),
    AlertKind.failed_verification: ("Xác minh khuôn mặt thất bại", "Failed face verification"),
    AlertKind.outside_home: ("Điểm danh ngoài nơi cách ly", "Check-in away from home"),
    AlertKind.severe_symptoms: ("Triệu chứng nặng", "Severe symptoms"),
    AlertKind.high_risk: ("Nguy cơ cao", "High risk"),
    AlertKind.non_reporting: ("Không khai báo", "Not reporting"),
}
#: Escalation level → (Vietnamese, English) name of who is being told.
LEVEL_NAMES = {0: ("phường", "ward"), 1: ("quận", "district"), 2: ("thành phố", "city")}

#: Person notification kind → (title, body). ``{due}`` is the local due time (HH:MM) when known.
PERSON_TEXTS: dict[str, tuple[str, str]] = {
    "checkin_prompt": ("Đến giờ điểm danh", "Mở isocheck và chụp ảnh điểm danh trước {due}."),
    "checkin_reminder": ("Nhắc điểm danh", "Bạn chưa điểm danh. Hạn chót {due}."),
    "checkin_retry": ("Cần chụp lại ảnh", "Ảnh điểm danh chưa đạt. Vui lòng chụp lại trước {due}."),
    "declaration_reminder": ("Khai báo y tế", "Mở isocheck để khai báo sức khỏe hôm nay."),
}
GENERIC_PERSON_TEXT = ("isocheck", "Bạn có thông báo mới. Mở isocheck để xem.")
#: The same texts in English: the web app shows them when the person chose English there (the
#: server keeps no language per person; the browser's choice stays in the browser).
PERSON_TEXTS_EN: dict[str, tuple[str, str]] = {
    "checkin_prompt": ("Time to check in", "Open isocheck and take your check-in photo by {due}."),
    "checkin_reminder": ("Check-in reminder", "You have not checked in yet. Deadline {due}."),
    "checkin_retry": ("Please retake the photo", "The photo was not usable. Retake it by {due}."),
    "declaration_reminder": ("Health declaration", "Open isocheck to declare today's health."),
}
GENERIC_PERSON_TEXT_EN = ("isocheck", "You have a new notification. Open isocheck to see it.")


def alert_payload(
    *, alert: AlertFacts, person: Person, ward: Area, level: int, zone: ZoneInfo
) -> dict[str, Any]:
    """The payload sent for ``alert`` at escalation ``level`` (same for every channel):
    ``kind``, ``title``/``body`` (push), ``text`` (e-mail) and ``data`` (ids, as strings).
    Times are shown in ``zone``, the ward's (``schedule.policy.PolicyResolver.zone``)."""
    vi, en = ALERT_NAMES.get(alert.kind, (alert.kind.value, alert.kind.value))
    level_vi, level_en = LEVEL_NAMES.get(level, (str(level), str(level)))
    title = f"Cảnh báo mức {alert.severity}: {vi} — {ward.name}"
    body = f"Cảnh báo #{alert.id} ({en}). Mở isocheck để xử lý."
    escalated = (
        f"Chuyển lên cấp {level_vi} vì chưa được xác nhận đúng hạn.\n"
        f"Escalated to the {level_en} because it was not acknowledged in time.\n"
        if level > 0
        else ""
    )
    text = (
        f"Cảnh báo #{alert.id}: {vi} (mức {alert.severity}/4)\n"
        f"Alert #{alert.id}: {en} (severity {alert.severity}/4)\n\n"
        f"Phường / ward: {ward.name} ({ward.code})\n"
        f"Người cách ly / person: #{person.id}\n"
        f"Lúc / raised at: {_local(alert.created_at, zone)}\n"
        f"{escalated}\n"
        "Đăng nhập bảng điều khiển isocheck để xem chi tiết và xác nhận.\n"
        "Sign in to the isocheck dashboard to see the details and acknowledge.\n"
    )
    return {
        "kind": f"alert.{alert.kind.value}",
        "title": title,
        "body": body,
        "text": text,
        "data": {
            "alert_id": str(alert.id),
            "alert_kind": alert.kind.value,
            "severity": str(alert.severity),
            "level": str(level),
            "person_id": str(person.id),
            "ward_code": ward.code,
        },
    }


def person_payload(*, kind: str, payload: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    """The payload for a message to a person: the caller's ``payload`` becomes ``data`` (e.g.
    ``prompt_id``, ``due_at``); ``title``/``body``/``ttl_seconds`` in it override the defaults.
    Times are shown in ``zone``, the person's (``schedule.policy.PolicyResolver.zone``).
    ``en`` holds the English title and body (web push shows them to a person who chose English)."""
    extra = dict(payload)
    title = extra.pop("title", None)
    body = extra.pop("body", None)
    ttl = extra.pop("ttl_seconds", None)
    default_title, default_body = PERSON_TEXTS.get(kind, GENERIC_PERSON_TEXT)
    due = extra.get("due_at")
    due_local = _local(due, zone, fmt="%H:%M") if due else None
    en_title, en_body = PERSON_TEXTS_EN.get(kind, GENERIC_PERSON_TEXT_EN)
    out: dict[str, Any] = {
        "kind": kind,
        "title": title or default_title,
        "body": body or default_body.format(due=due_local or "hạn chót"),
        "en": {
            "title": title or en_title,
            "body": body or en_body.format(due=due_local or "the deadline"),
        },
        "data": {k: _str(v) for k, v in extra.items() if v is not None},
    }
    if ttl is not None:
        out["ttl_seconds"] = int(ttl)
    return out


def _str(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _local(moment: datetime | str, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    if moment.tzinfo is None:
        return moment.strftime(fmt)
    return moment.astimezone(zone).strftime(fmt)
