"""Thống kê: statistics per ward and local day, two charts, and the same table as CSV
(:mod:`server.dashboard.csv_export`)."""

from __future__ import annotations

from flask import Response, abort, g, render_template

from server.core.enums import AlertKind
from server.dashboard import charts, i18n
from server.dashboard import service as svc
from server.dashboard.csv_export import live_ward_rows
from server.dashboard.csv_export import stats_csv as csv_of
from server.dashboard.pages import int_arg, now, t
from server.dashboard.security import staff_page
from server.dashboard.statistics import (
    Stats,
    alert_kind_series,
    statistics_by_area,
    stats_frame,
)
from server.http.context import ctx, db_session
from server.people.models import Area
from server.scope import area_for_filter, area_in_scope, areas_in_scope


def _params() -> tuple[Area | None, int]:
    s = db_session()
    area_id = int_arg("area")
    root = None
    if area_id is not None:
        root = area_for_filter(session=s, staff=g.staff, area_id=area_id)
        if root is None or not area_in_scope(session=s, staff=g.staff, area=root):
            abort(404)
    days = int_arg("days") or 7
    return root, min(max(days, 1), 31)


def _stats() -> tuple[Stats, Area | None, int]:
    """The page's table: by district when the wards shown lie in several (the city's view; each
    district links to its wards), else by ward."""
    root, days = _params()
    stats = statistics_by_area(
        session=db_session(), staff=g.staff, root=root, days=days, now=now(),
        zone=ctx().settings.zone, group="auto",
    )  # fmt: skip
    return stats, root, days


@staff_page(*svc.MANAGERS)
def stats():
    data, root, days = _stats()
    labels = [d.strftime("%d/%m") for d in data.days]
    names = {k.value: i18n.label("alert_kind", k, g.lang) for k in AlertKind}
    return render_template(
        "dashboard/stats.html",
        stats=data,
        root=root,
        days=days,
        areas=areas_in_scope(session=db_session(), staff=g.staff),
        kinds=list(AlertKind),
        compliance_chart=charts.bar_chart(
            list(zip(labels, [r.compliance for r in data.totals], strict=True)),
            title=t("compliance_chart"),
            empty=t("no_data"),
        ),
        alerts_chart=charts.stacked_bars(
            labels, alert_kind_series(data), title=t("alerts_chart"), names=names
        ),
        query={k: v for k, v in (("area", root.id if root else None), ("days", days)) if v},
    )


@staff_page(*svc.MANAGERS)
def stats_csv():
    """The statistics table as CSV: one row per ward and day, streamed. When the unfinished days'
    rows were counted — the oldest snapshot among them (yesterday's, shortly after midnight), or
    now when they are live — is in the file name and in ``X-Isocheck-As-Of``: a line inside the
    file would break the spreadsheets that read it."""
    root, days = _params()
    session, zone, at = db_session(), ctx().settings.zone, now()
    frame = stats_frame(session=session, staff=g.staff, root=root, days=days, now=at, zone=zone)
    live = live_ward_rows(session=session, frame=frame, now=at, zone=zone)
    as_of = frame.as_of or at
    body, name = csv_of(
        frame=frame, live=live, open_session=ctx().session_factory, zone=zone, days=days,
        lang=g.lang, as_of=as_of,
    )  # fmt: skip
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Isocheck-As-Of": as_of.astimezone(zone).isoformat(timespec="seconds"),
        },
    )
