"""``isocheck scheduler-status``: what the scheduler did last, for operators."""

from __future__ import annotations

from datetime import datetime

import click
from sqlalchemy import func, select

from server.alerts.models import Alert
from server.checkins.models import CheckinPrompt
from server.cli_context import CliContext, pass_cli
from server.core.enums import AlertState, PromptState
from server.heartbeat import SchedulerHeartbeat


def _age(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def status_report(*, session, now: datetime) -> str:
    """The text ``scheduler-status`` prints: one line per sweep (last run, age, duration,
    instance, error), then prompts and alerts counted by state."""
    lines = [f"scheduler status at {now.isoformat(timespec='seconds')}", ""]
    beats = list(session.scalars(select(SchedulerHeartbeat).order_by(SchedulerHeartbeat.name)))
    lines.append(f"{'sweep':<24} {'last run (UTC)':<21} {'age':<14} {'duration':>9}  instance")
    if not beats:
        lines.append("  (no sweep has ever run: is a scheduler started?)")
    for b in beats:
        lines.append(
            f"{b.name:<24} {b.last_run_at.strftime('%Y-%m-%d %H:%M:%S'):<21} "
            f"{_age(b.last_run_at, now):<14} {b.last_duration_s:>8.3f}s  {b.instance}"
        )
        if b.last_error:
            lines.append(f"    error: {b.last_error[:300]}")
    counts = dict(
        session.execute(
            select(CheckinPrompt.state, func.count()).group_by(CheckinPrompt.state)
        ).all()
    )
    lines += ["", "prompts by state:"]
    lines += [f"  {s.value:<14} {counts.get(s, 0):>10}" for s in PromptState]
    overdue = session.scalar(
        select(func.count()).where(
            CheckinPrompt.state.in_((PromptState.planned, PromptState.open)),
            CheckinPrompt.due_at < now,
        )
    )
    lines.append(f"  {'(overdue)':<14} {overdue:>10}  planned/open past due: should stay ~0")
    alerts = dict(session.execute(select(Alert.state, func.count()).group_by(Alert.state)).all())
    lines += ["", "alerts by state:"]
    lines += [f"  {s.value:<14} {alerts.get(s, 0):>10}" for s in AlertState]
    late = session.scalar(
        select(func.count()).where(Alert.state == AlertState.open, Alert.next_escalation_at < now)
    )
    lines.append(f"  {'(past deadline)':<14} {late:>10}  open alerts the escalation sweep owes")
    return "\n".join(lines)


@click.command("scheduler-status")
@pass_cli
def scheduler_status_command(cli: CliContext) -> None:
    """Print each sweep's last run, duration and error, and prompts/alerts by state."""
    from server.core.clock import SystemClock
    from server.core.db import make_engine, make_session_factory

    settings = cli.settings
    engine = make_engine(settings.effective_database_url)
    try:
        with make_session_factory(engine)() as session:
            click.echo(status_report(session=session, now=SystemClock().now()))
    finally:
        engine.dispose()
