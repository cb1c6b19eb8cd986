"""The periodic jobs. Each is a thin call into a domain service; see :mod:`scheduler.runner`.

Later issues add their sweeps to :data:`SWEEPS` (planning prompts, opening and closing them,
escalating alerts, delivering the outbox, releasing people, purging biometrics).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from scheduler.runner import Sweep
from server.clock import Clock
from server.config import Settings


def heartbeat(*, session: Session, clock: Clock, settings: Settings) -> int:
    """Proves the scheduler is alive; the runner writes its heartbeat row."""
    return 0


@dataclass(frozen=True)
class Job:
    name: str
    fn: Sweep
    #: Seconds between runs; None = the settings' ``scheduler_interval_seconds``.
    every_s: float | None = None


SWEEPS: list[Job] = [
    Job("heartbeat", heartbeat),
]
