"""``isocheck enrol``: enrol a person from the command line (for an operator without the
dashboard, or scripted bulk enrolment). Prints the activation code and its QR payload once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from pydantic import ValidationError

from server.cli_context import CliContext, pass_cli
from server.http.validation import errors_of


@click.command("enrol")
@click.option("--name", "full_name", required=True, help="Full name (họ và tên).")
@click.option("--phone", required=True, help="Phone number.")
@click.option("--ward-code", required=True, help="Code of the person's ward (phường/xã).")
@click.option("--address", "home_address", required=True, help="Home address.")
@click.option("--lat", "home_lat", type=float, required=True, help="Home latitude (WGS-84).")
@click.option("--lon", "home_lon", type=float, required=True, help="Home longitude (WGS-84).")
@click.option(
    "--radius",
    "geofence_radius_m",
    type=float,
    default=100.0,
    show_default=True,
    help="Geofence radius around home, metres.",
)
@click.option("--national-id", default=None, help="CMND/CCCD number.")
@click.option("--birth-date", "date_of_birth", default=None, help="YYYY-MM-DD.")
@click.option("--category", type=click.Choice(["F0", "F1"]), default="F0", show_default=True)
@click.option(
    "--days",
    type=int,
    default=7,
    show_default=True,
    help="Isolation length from now, when --start/--end are not given.",
)
@click.option("--start", "isolation_start", default=None, help="ISO time (default: now).")
@click.option("--end", "isolation_end", default=None, help="ISO time (default: start + days).")
@click.option("--comorbidity", "comorbidities", multiple=True, help="Repeat for each one.")
@click.option("--pregnant", is_flag=True)
@click.option(
    "--photo",
    "photos",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Enrolment photo; repeat for 2–3 photos.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_cli
def enrol_command(
    cli: CliContext,
    photos: tuple[Path, ...],
    as_json: bool,
    days: int,
    comorbidities,
    pregnant,
    **fields,
) -> None:
    """Enrol a person in home isolation, with 1–3 photos through the strict quality gate.

    Exits 1 (with the reason) when a photo is refused; the person is then not created.
    """
    from server.core.db import make_engine, make_session_factory, session_scope
    from server.face_verifier import get_verifier
    from server.flows.enrolment import enrol_person
    from server.people import enrolment
    from server.people.areas import get_area_by_code
    from server.people.schemas import PersonCreate
    from verification import VerificationError

    settings = cli.settings
    start = fields.pop("isolation_start") or datetime.now(UTC).isoformat()
    end = (
        fields.pop("isolation_end")
        or (datetime.fromisoformat(start) + timedelta(days=days)).isoformat()
    )
    try:
        data = PersonCreate.model_validate(
            {
                **{k: v for k, v in fields.items() if v is not None},
                "isolation_start": start,
                "isolation_end": end,
                "risk_factors": {"comorbidities": list(comorbidities), "pregnant": pregnant},
            }
        )
    except ValidationError as exc:
        raise click.ClickException(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors_of(exc, "en"))
        ) from exc
    if not 1 <= len(photos) <= enrolment.MAX_ENROLMENT_PHOTOS:
        raise click.ClickException("give 1 to 3 --photo")
    verifier = get_verifier()
    templates = []
    for path in photos:
        try:
            templates.append((path, verifier.enrol(path.read_bytes())))
        except VerificationError as exc:
            from server.http.problem import message

            raise click.ClickException(
                f"{path}: {exc.code} — {message(exc.code, 'en')[1]}"
            ) from exc

    factory = make_session_factory(make_engine(settings.effective_database_url))
    now = datetime.now(UTC)
    with session_scope(factory) as s:
        ward = get_area_by_code(session=s, code=data.ward_code)
        if ward is None:
            raise click.ClickException(f"no ward with code {data.ward_code!r}")
        person, issued = enrol_person(
            session=s,
            settings=settings,
            data=data,
            ward=ward,
            now=now,
            actor_kind="cli",
            actor_id=None,
            photos=[(template, path.read_bytes(), "image/jpeg") for path, template in templates],
        )
        result = {
            "person_id": person.id,
            "activation_code": issued.code,
            "expires_at": issued.expires_at.isoformat(),
            "qr_payload": issued.qr_payload,
            "photos": len(templates),
        }
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    else:
        click.echo(f"enrolled person {result['person_id']} with {len(templates)} photo(s)")
        click.echo(
            f"activation code (shown once): {issued.code}  valid until {result['expires_at']}"
        )
        click.echo(f"QR payload: {issued.qr_payload}")
        click.echo(f"web app link: {issued.activation_url}")
        click.echo(issued.qr_terminal())
