"""``isocheck export fhir``: bulk NDJSON export for a health information system."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from server.cli_context import CliContext, pass_cli


@click.group("export")
def export_command() -> None:
    """Exports for other systems."""


@export_command.command("fhir")
@click.option("--area", "area_code", default=None, help="Area code (default: whole system).")
@click.option("--since", default=None, help="Only changes at/after this ISO 8601 instant.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@pass_cli
def export_fhir(cli: CliContext, area_code: str | None, since: str | None, out_dir: Path) -> None:
    """Write FHIR R4 NDJSON (one file per resource type) to OUT."""
    from server.core import audit
    from server.core.db import make_engine, make_session_factory, session_scope
    from server.fhir.export import export_ndjson
    from server.people.areas import get_area_by_code

    since_dt = None
    if since:
        try:
            since_dt = datetime.fromisoformat(since)
        except ValueError as exc:
            raise click.BadParameter(
                f"not an ISO 8601 instant: {since}", param_hint="--since"
            ) from exc
        if since_dt.tzinfo is None:
            since_dt = since_dt.replace(tzinfo=UTC)
    factory = make_session_factory(make_engine(cli.settings.effective_database_url))
    with session_scope(factory) as session:
        area = None
        if area_code:
            area = get_area_by_code(session=session, code=area_code)
            if area is None:
                raise click.ClickException(f"unknown area: {area_code}")
        counts = export_ndjson(session=session, out_dir=out_dir, area=area, since=since_dt)
        audit.record(
            session=session,
            actor_kind="cli",
            action="fhir.export",
            area_id=area.id if area else None,
            details={"since": since, "counts": counts},
        )
    for rtype, n in counts.items():
        click.echo(f"{rtype:<22} {n}")
