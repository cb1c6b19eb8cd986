"""The ``isocheck`` command."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys

import click

from server.cli_context import CliContext, pass_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="isocheck")
@click.pass_context
def main(ctx: click.Context) -> None:
    """isocheck — face-verified home-isolation monitoring.

    Settings come from ISOCHECK_* environment variables (see the README).
    """
    ctx.ensure_object(CliContext)  # read on first use by a subcommand (server.cli_context)


@main.command()
@click.option("--host", default=None, help="Bind address (default ISOCHECK_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default ISOCHECK_PORT, 8000).")
@click.option("--threads", type=int, default=8, show_default=True, help="Worker threads.")
@click.option("--no-scheduler", is_flag=True, help="Do not run the scheduler in this process.")
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Apply database migrations before serving.",
)
@pass_cli
def serve(
    cli: CliContext,
    host: str | None,
    port: int | None,
    threads: int,
    no_scheduler: bool,
    migrate: bool,
) -> None:
    """Serve the web app and API with the scheduler in-process (one machine).

    For several hosts, run the app under gunicorn and `isocheck scheduler` separately.
    """
    from server import migrate as migrations
    from server.app import create_app
    from server.serving import make_server

    settings = cli.settings
    if migrate:
        migrations.upgrade(settings.effective_database_url)
    app = create_app(settings)
    state = app.extensions["isocheck"]
    from server.serving import ready_worker

    ready_worker(warm_verifier=settings.warm_verifier)
    if not no_scheduler:
        from scheduler.app import build_scheduler

        state.scheduler = build_scheduler(
            settings=settings, session_factory=state.session_factory, clock=state.clock
        )
        state.scheduler.start()
    host = host or settings.host
    port = port or settings.port
    click.echo(f"isocheck ({settings.mode.value}) serving on http://{host}:{port}", err=True)
    server = make_server(
        app, host=host, port=port, threads=threads, max_upload_bytes=settings.max_upload_bytes
    )
    try:
        server.run()
    finally:
        if state.scheduler is not None:
            state.scheduler.shutdown(wait=False)


@main.command("scheduler")
@pass_cli
def scheduler_cmd(cli: CliContext) -> None:
    """Run the scheduler alone (production; any number of instances may run)."""
    from scheduler.app import build_scheduler
    from server.core.clock import SystemClock
    from server.core.db import make_engine, make_session_factory

    settings = cli.settings
    logging.basicConfig(level=settings.log_level.upper())
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    engine = make_engine(settings.effective_database_url)
    scheduler = build_scheduler(
        settings=settings,
        session_factory=make_session_factory(engine),
        clock=SystemClock(),
        blocking=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=True))
    click.echo("isocheck scheduler running; Ctrl-C to stop", err=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


@main.group()
def db() -> None:
    """Database schema migrations (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@pass_cli
def db_upgrade(cli: CliContext, revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from server import migrate

    settings = cli.settings
    migrate.upgrade(settings.effective_database_url, revision)
    click.echo(f"database at {revision}: {_redacted(settings.effective_database_url)}")


@db.command("downgrade")
@click.argument("revision")
@pass_cli
def db_downgrade(cli: CliContext, revision: str) -> None:
    """Revert migrations down to REVISION ('base' drops every table: destroys data)."""
    from server import migrate

    migrate.downgrade(cli.settings.effective_database_url, revision)
    click.echo(f"database at {revision}")


@db.command("current")
@pass_cli
def db_current(cli: CliContext) -> None:
    """Print the database's revision and the code's head revision."""
    from server import migrate
    from server.core.db import make_engine

    engine = make_engine(cli.settings.effective_database_url)
    click.echo(
        f"database: {migrate.current_revision(engine)}  code head: {migrate.head_revision()}"
    )


@main.command()
@click.option(
    "--reset-passwords",
    is_flag=True,
    help="Give the demo accounts new passwords and print them (demo mode only).",
)
@pass_cli
def demo(cli: CliContext, reset_passwords: bool) -> None:
    """Load the demo world (idempotent): HCMC → Gò Vấp → 3 wards, staff, persons.

    Passwords of accounts created by this run are printed once; a second run prints none.
    Lost them? `isocheck demo --reset-passwords` prints new ones.
    """
    from server import migrate
    from server.core.clock import SystemClock
    from server.core.db import make_engine, make_session_factory, session_scope
    from server.demo import load_demo

    settings = cli.settings
    if settings.is_production:
        raise click.ClickException("refusing to load demo data in production mode")
    migrate.upgrade(settings.effective_database_url)
    factory = make_session_factory(make_engine(settings.effective_database_url))
    if reset_passwords:
        from server.demo import reset_demo_passwords

        with session_scope(factory) as session:
            rows = reset_demo_passwords(session=session, clock=SystemClock())
        if not rows:
            raise click.ClickException("no demo accounts yet: run `isocheck demo` first")
        click.echo("new passwords of the demo accounts (shown only now; old sessions ended):")
        for username, role, area, password in rows:
            click.echo(f"  {username:<20} {role:<11} {area:<12} {password}")
        return
    with session_scope(factory) as session:
        report = load_demo(session=session, clock=SystemClock(), settings=settings)
    click.echo(
        f"demo data: {report.created_areas} areas and {report.created_persons} persons created"
    )
    if report.credentials:
        click.echo("accounts created (passwords shown only now):")
        for username, role, area, password in report.credentials:
            click.echo(f"  {username:<20} {role:<11} {area:<12} {password}")
    else:
        click.echo("no new accounts (they exist already; passwords were shown when created)")
    if report.open_prompt:
        name, due = report.open_prompt
        click.echo(
            f"check-in prompt open now for {name} until {due:%H:%M} UTC "
            "(dashboard: the person's page; staff ask for more with 'Yêu cầu điểm danh ngay')"
        )


def _register_plugins() -> None:
    """Commands that live beside the code they drive."""
    from isocheck.enrol import enrol_command
    from scheduler.cli import scheduler_status_command
    from server.fhir.cli import export_command
    from server.notify.cli import outbox_command
    from verification.cli import calibrate_command, verify_command

    main.add_command(enrol_command)
    main.add_command(verify_command, "verify")
    main.add_command(calibrate_command, "calibrate")
    main.add_command(outbox_command, "outbox")
    main.add_command(export_command, "export")
    main.add_command(scheduler_status_command, "scheduler-status")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


_register_plugins()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
