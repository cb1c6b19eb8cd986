"""The one interface every delivery channel implements, and the outcomes it may report.

A channel receives detached snapshots of claimed outbox rows (:class:`OutboxMessage`) — never ORM
rows — because it runs outside any database transaction: nothing is locked while a network call
waits. It returns one :class:`Result` per message, in order, and never raises for a single bad
message (a raise fails the whole chunk, which the delivery sweep then retries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Outcome(StrEnum):
    #: The receiver accepted the message.
    sent = "sent"
    #: A temporary failure (timeout, HTTP 5xx/429, SMTP 4xx): try again after a backoff.
    retry = "retry"
    #: The message itself is unacceptable (bad payload, HTTP 4xx): trying again cannot help.
    permanent = "permanent"
    #: The recipient does not exist (FCM ``UNREGISTERED``, SMTP 550): forget it, do not retry.
    invalid_recipient = "invalid_recipient"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    #: What the receiver said; stored in ``notifications.last_error`` unless sent.
    detail: str | None = None
    #: Seconds the receiver asked us to wait (HTTP ``Retry-After``); None = our own backoff.
    retry_after: float | None = None

    @classmethod
    def ok(cls) -> Result:
        return cls(Outcome.sent)


@dataclass(frozen=True)
class OutboxMessage:
    """A claimed outbox row as a channel sees it. ``attempts`` already counts this attempt."""

    id: int
    channel: str
    recipient: str
    idempotency_key: str
    attempts: int
    payload: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    #: The ``notifications.channel`` value this channel delivers.
    name: str
    #: Most messages handed to one :meth:`send_batch` call (FCM's ``send_each`` allows 500).
    max_batch: int

    def send_batch(self, messages: Sequence[OutboxMessage]) -> list[Result]:
        """Deliver ``messages``; return one result per message, in the same order."""
        ...


#: The ISO name the interface was asked for; both names mean the same protocol.
Notifier = Channel
