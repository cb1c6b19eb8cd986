"""Hàng đợi cảnh báo: the alert queue, its rows polled by script, acknowledging and resolving
(through :mod:`server.alerts.service`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for

from server.alerts.service import (
    AlertScopeError,
    AlertStateError,
    acknowledge_alert,
    resolve_alert,
)
from server.core.enums import AlertKind, AlertState
from server.dashboard import service as svc
from server.dashboard.pages import int_arg, ip, now, t
from server.dashboard.security import safe_next, staff_page
from server.http.context import db_session
from server.scope import alert_in_scope, area_for_filter, areas_in_scope


def _alert_filters() -> dict[str, Any]:
    s = db_session()
    kind = request.args.get("kind") or None
    state = request.args.get("state") or None
    area_id = int_arg("area")
    area = None
    if area_id is not None:
        area = area_for_filter(session=s, staff=g.staff, area_id=area_id)
        if area is None:
            abort(404)
    return {
        "kind": AlertKind(kind) if kind in AlertKind.__members__ else None,
        "state": AlertState(state) if state in AlertState.__members__ else None,
        "area": area,
    }


def _queue_rows(filters: dict[str, Any]) -> list[svc.QueueRow]:
    return svc.alert_queue(session=db_session(), staff=g.staff, **filters)


@staff_page()
def alerts():
    """Open and acknowledged alerts of the caller's scope, most urgent first."""
    filters = _alert_filters()
    query = {k: request.args[k] for k in ("kind", "state", "area") if request.args.get(k)}
    return render_template(
        "dashboard/alerts.html",
        rows=_queue_rows(filters),
        filters=filters,
        query=query,
        areas=areas_in_scope(session=db_session(), staff=g.staff),
        kinds=list(AlertKind),
        states=list(AlertState),
        rows_url=url_for(".alert_rows", **query),
        refresh_seconds=current_app.config.get("DASHBOARD_REFRESH_SECONDS", 15),
        back=url_for(".alerts", **query),
    )


@staff_page()
def alert_rows():
    """The queue's table rows alone: polled every 15 s by ``static/dashboard.js``."""
    filters = _alert_filters()
    query = {k: request.args[k] for k in ("kind", "state", "area") if request.args.get(k)}
    return render_template(
        "dashboard/_alert_rows.html", rows=_queue_rows(filters), back=url_for(".alerts", **query)
    )


def _act_on_alert(alert_id: int, action: Callable, ok_key: str, note: str | None):
    s = db_session()
    if alert_in_scope(session=s, staff=g.staff, alert_id=alert_id) is None:
        abort(404)
    try:
        action(session=s, alert_id=alert_id, staff=g.staff, now=now(), note=note, ip=ip())
    except AlertScopeError:
        s.rollback()
        abort(404)
    except AlertStateError as exc:
        s.rollback()
        flash(t(exc.code), "error")
    else:
        s.commit()
        flash(t(ok_key), "ok")
    return redirect(safe_next(request.form.get("next")))


@staff_page()
def alert_acknowledge(alert_id: int):
    note = request.form.get("note", "").strip()[:2000] or None
    return _act_on_alert(alert_id, acknowledge_alert, "acknowledged_ok", note)


@staff_page()
def alert_resolve(alert_id: int):
    note = request.form.get("note", "").strip()[:2000]
    if not note:
        if alert_in_scope(session=db_session(), staff=g.staff, alert_id=alert_id) is None:
            abort(404)
        flash(t("note_required"), "error")
        return redirect(safe_next(request.form.get("next")))
    return _act_on_alert(alert_id, resolve_alert, "resolved_ok", note)
