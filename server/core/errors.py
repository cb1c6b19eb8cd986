"""Domain errors: a refusal with a stable ``code``, and no HTTP in it.

Services raise these; the HTTP layer (:mod:`server.http.problem`) turns each kind into its
status and a problem+json body, the CLI and the dashboard into their own words. The kind says
*why* the domain refused, never which status it becomes:

============================  ==============================================================
:class:`InvalidRequest`       the request names something that is not there for the caller
:class:`InvalidFields`        one or more fields are refused (``validation_error`` + fields)
:class:`NotAuthenticated`     the credentials do not identify anyone
:class:`NotAllowed`           the caller is known but may not do this (``isolation_ended``)
:class:`Conflict`             the state of the data refuses it now (window closed, duplicate)
:class:`Throttled`            this caller must wait ``retry_after_s`` (repeated failed logins)
:class:`Unavailable`          our side cannot do it now (a dependency is down); retry later
============================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Field-level refusals outside pydantic: key -> (vi, en), ``{…}`` from the problem's params.
FIELD_MESSAGES: dict[str, tuple[str, str]] = {
    "in_the_future": ("Thời điểm nằm trong tương lai.", "in the future"),
    "older_than_7_days": ("Cũ hơn 7 ngày.", "older than 7 days"),
    "at_most_chars": ("Tối đa {n} ký tự.", "at most {n} characters"),
    "selfie_required": ("Cần gửi kèm ảnh selfie.", "a selfie file is required"),
    "at_most_frames": ("Tối đa {n} khung hình.", "at most {n} frames"),
    "integer_range": ("Cần số nguyên từ {lo} đến {hi}.", "an integer from {lo} to {hi}"),
    "unknown_ward": ("Không có phường/xã này.", "unknown ward"),
    "not_a_ward": ("Mã này không phải phường/xã.", "not a ward"),
    "photo_required": ("Cần gửi kèm ảnh.", "a photo is required"),
}


@dataclass(frozen=True)
class FieldProblem:
    """One refused field. ``key`` names a :data:`FIELD_MESSAGES` entry; a problem with a fixed
    ``text`` (the same in every language) uses ``key`` as its ``type`` instead."""

    field: str | None
    key: str
    params: Mapping[str, Any] = field(default_factory=dict)
    text: str | None = None

    def render(self, lang: str) -> dict[str, Any]:
        """The ``errors[]`` entry in ``lang`` (``vi`` or ``en``)."""
        if self.text is not None:
            return {"field": self.field, "message": self.text, "type": self.key}
        vi, en = FIELD_MESSAGES[self.key]
        text = en if lang == "en" else vi
        return {"field": self.field, "message": text.format(**self.params), "type": self.key}


class DomainError(Exception):
    """A refusal with a stable ``code`` (a key of the message catalogue).

    ``extra`` adds plain members to what the caller reports (e.g. ``opens_at``);
    ``retry_after_s`` says when trying again makes sense; ``fields`` lists refused fields.
    """

    def __init__(
        self,
        code: str,
        *,
        extra: Mapping[str, Any] | None = None,
        retry_after_s: int | None = None,
        fields: Sequence[FieldProblem] = (),
    ) -> None:
        super().__init__(code)
        self.code = code
        self.extra: dict[str, Any] = dict(extra or {})
        self.retry_after_s = retry_after_s
        self.fields = tuple(fields)


class InvalidRequest(DomainError):
    """The request names something that does not exist for the caller (unknown nonce, code)."""


class InvalidFields(DomainError):
    """Fields refused by a domain rule (``validation_error``), each with its reason."""

    def __init__(self, *fields: FieldProblem) -> None:
        super().__init__("validation_error", fields=fields)


class NotAuthenticated(DomainError):
    """The credentials identify nobody."""


class NotAllowed(DomainError):
    """Known caller, refused action."""


class Conflict(DomainError):
    """The data's current state refuses the action (closed window, duplicate, in progress)."""


class Throttled(DomainError):
    """This caller must wait ``retry_after_s`` before trying again (repeated failed logins)."""


class Unavailable(DomainError):
    """Our side cannot do it now; the caller may retry after ``retry_after_s``."""
