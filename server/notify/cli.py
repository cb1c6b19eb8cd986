"""``isocheck outbox``: what the notification outbox holds, for administrators.

:data:`outbox_command` is registered on the ``isocheck`` group by ``isocheck.cli``.
"""

from __future__ import annotations

import click

from server.core.enums import NotificationState


@click.command("outbox")
@click.option("--dead", is_flag=True, help="List dead notifications (default: undelivered ones).")
@click.option("--channel", default=None, help="Only this channel (fcm, email, webhook, log).")
@click.option("--limit", type=int, default=50, show_default=True, help="Rows to list.")
@click.option(
    "--requeue",
    "requeue",
    type=int,
    multiple=True,
    metavar="ID",
    help="Give dead notification ID another full set of attempts (repeatable).",
)
def outbox_command(dead: bool, channel: str | None, limit: int, requeue: tuple[int, ...]) -> None:
    """Counts of the notification outbox per state and channel, then its rows.

    Without options: the undelivered (pending/sending) rows by due time. With --dead: the
    notifications that gave up (max attempts, refused, invalid recipient) and why.
    """
    from server.config import ConfigError, load_settings
    from server.core.clock import SystemClock
    from server.core.db import make_engine, make_session_factory, session_scope
    from server.notify.service import outbox_report, requeue_dead

    try:
        settings = load_settings()
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    engine = make_engine(settings.effective_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            if requeue:
                n = requeue_dead(session=session, ids=list(requeue), now=SystemClock().now())
                click.echo(f"requeued {n} of {len(requeue)} notification(s)")
            report = outbox_report(session=session, dead=dead, channel=channel, limit=limit)
            channels = sorted({c for per in report.counts.values() for c in per})
            states = [s.value for s in NotificationState]
            click.echo(f"{'state':<9}" + "".join(f"{c:>9}" for c in channels) + f"{'total':>9}")
            for state in states:
                per = report.counts.get(state, {})
                cells = "".join(f"{per.get(c, 0):>9}" for c in channels)
                click.echo(f"{state:<9}{cells}{sum(per.values()):>9}")
            if report.oldest_due_at is not None:
                click.echo(f"oldest undelivered due at {report.oldest_due_at.isoformat()}")
            click.echo("")
            title = "dead notifications" if dead else "undelivered notifications"
            click.echo(f"{title} ({len(report.rows)} listed):")
            for row in report.rows:
                when = row.next_attempt_at.isoformat(timespec="seconds")
                click.echo(
                    f"  #{row.id:<6} {row.channel:<8} {row.state.value:<8} "
                    f"attempts={row.attempts:<2} next={when} key={row.idempotency_key}"
                )
                click.echo(f"          to {_short(row.recipient)}")
                if row.last_error:
                    click.echo(f"          error: {row.last_error[:300]}")
    finally:
        engine.dispose()


def _short(recipient: str) -> str:
    return recipient if len(recipient) <= 60 else f"{recipient[:24]}…{recipient[-8:]}"
