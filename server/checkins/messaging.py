"""What people are told about their check-ins (and their release): the messages, built here
and written by :func:`server.notify.persons.send_to_persons`."""

from __future__ import annotations

from datetime import datetime

from server.notify.persons import PersonMessage


def prompt_opened(prompt_id: int, person_id: int, due_at: datetime) -> PersonMessage:
    """ "Check in now" (Đến giờ điểm danh), once per prompt."""
    return PersonMessage(
        person_id, "checkin_prompt", {"prompt_id": prompt_id, "due_at": due_at},
        f"prompt:{prompt_id}:open",
    )  # fmt: skip


def prompt_reminder(prompt_id: int, person_id: int, due_at: datetime) -> PersonMessage:
    """ "You have not checked in yet" (Nhắc điểm danh), once per prompt."""
    return PersonMessage(
        person_id, "checkin_reminder", {"prompt_id": prompt_id, "due_at": due_at},
        f"prompt:{prompt_id}:remind",
    )  # fmt: skip


def isolation_ended(person_id: int, released_at: datetime) -> PersonMessage:
    """Isolation is over (kết thúc cách ly): the phone stops expecting prompts."""
    return PersonMessage(
        person_id,
        "isolation_ended",
        {
            "released_at": released_at,
            "title": "Kết thúc cách ly",
            "body": "Bạn đã hoàn thành thời gian cách ly tại nhà. isocheck sẽ không nhắc điểm "
            "danh nữa. / Your home isolation has ended; no more check-ins.",
        },
        f"person:{person_id}:released",
    )
