"""The credential-free channel: a message is written to the log and counts as delivered.

It is the default for every channel (``ISOCHECK_NOTIFY_CHANNELS=log``): an ``fcm`` row in a demo
installation is logged by a :class:`LogChannel` named ``fcm`` instead of being pushed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from server.notify.channel import OutboxMessage, Result

log = logging.getLogger("isocheck.notify")


class LogChannel:
    """Logs each message at INFO and reports it sent.

    ``name`` is the channel it stands in for; ``stand_in`` says the real channel is disabled, which
    the log line states so an operator sees that nothing left the machine."""

    max_batch = 500

    def __init__(self, name: str = "log", *, stand_in: bool = False) -> None:
        self.name = name
        self.stand_in = stand_in

    def send_batch(self, messages: Sequence[OutboxMessage]) -> list[Result]:
        note = " (channel disabled: logged only)" if self.stand_in else ""
        for m in messages:
            log.info(
                "notification %s via %s%s to %s: %s — %s [key %s]",
                m.id,
                self.name,
                note,
                _short(m.recipient),
                m.payload.get("title", m.payload.get("kind", "")),
                m.payload.get("body", ""),
                m.idempotency_key,
            )
        return [Result.ok() for _ in messages]


def _short(recipient: str) -> str:
    """Push tokens are long and somewhat secret: log only their ends."""
    return recipient if len(recipient) <= 40 else f"{recipient[:12]}…{recipient[-6:]}"
