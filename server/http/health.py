"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from server.heartbeat import SchedulerHeartbeat
from server.http.context import ctx, db_session

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and serving requests. Touches nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready to take traffic: the database answers and, when the scheduler runs in this process,
    its last sweep is recent. 503 with the failing checks otherwise."""
    state = ctx()
    checks: dict[str, dict] = {}
    try:
        session = db_session()
        session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
        last = session.scalar(select(func.max(SchedulerHeartbeat.last_run_at)))
    except SQLAlchemyError as exc:
        checks["database"] = {"ok": False, "error": exc.__class__.__name__}
        last = None
    if state.scheduler is not None:
        now = state.clock.now()
        lag = (now - last).total_seconds() if last else None
        ok = lag is not None and lag <= state.settings.scheduler_stale_seconds
        checks["scheduler"] = {
            "ok": ok,
            "last_sweep_at": last.isoformat() if last else None,
            "lag_seconds": round(lag, 3) if lag is not None else None,
        }
    elif last is not None:
        checks["scheduler"] = {"ok": True, "in_process": False, "last_sweep_at": last.isoformat()}
    # Presentation-attack detection: visible, never a reason to refuse traffic (check-ins still
    # work without it, and every suspected attack goes to a person anyway).
    from server.face_verifier import get_verifier

    checks["presentation_attack_detection"] = {"ok": True, **get_verifier().pad_status()}
    # What runs the face networks (ISOCHECK_INFERENCE_ENGINE): informative, never a refusal.
    # networks_built: the process built its face networks at start-up (ISOCHECK_WARM_VERIFIER),
    # so its first check-in is not the one that pays OpenVINO's compilation
    checks["inference"] = {
        "ok": True,
        **get_verifier().engine_status(),
        "networks_built": get_verifier().loaded,
    }
    ready = all(c["ok"] for c in checks.values())
    return jsonify(status="ready" if ready else "not_ready", checks=checks), 200 if ready else 503
