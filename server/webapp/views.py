"""Serve the mobile web app shell at ``/app/``.

Everything is static (ES modules, CSS, manifest, SVG icon, service worker); the app talks only
to the public ``/api/v1`` contract. Strict CSP: scripts, styles and connections from this
origin only, camera and geolocation allowed for this origin, no inline script or style.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, redirect, send_from_directory

STATIC = Path(__file__).parent / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: The files of the app shell (what the service worker caches and what docs/performance.md weighs).
SHELL = ("index.html", "app.js", "i18n.js", "api.js", "app.css", "manifest.webmanifest", "icon.svg")

bp = Blueprint("webapp", __name__, url_prefix="/app")


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Permissions-Policy"] = "camera=(self), geolocation=(self)"
    # Always revalidate: the service worker owns offline copies, not the HTTP cache.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("")
def _no_slash() -> Response:
    return redirect("/app/", code=308)  # type: ignore[return-value]


@bp.get("/")
@bp.get("/activate")
def index() -> Response:
    """The shell. ``/app/activate?server=…&code=…`` is the activation link (the same query as the
    QR payload ``isocheck://activate?server=…&code=…``); the app reads the code from the URL."""
    return send_from_directory(STATIC, "index.html", mimetype="text/html")


@bp.get("/sw.js")
def service_worker() -> Response:
    resp = send_from_directory(STATIC, "sw.js", mimetype="text/javascript")
    resp.headers["Service-Worker-Allowed"] = "/app/"
    return resp


@bp.get("/<path:name>")
def asset(name: str) -> Response:
    mimetypes = {".webmanifest": "application/manifest+json", ".js": "text/javascript"}
    mt = mimetypes.get(Path(name).suffix)
    if mt:
        return send_from_directory(STATIC, name, mimetype=mt)
    return send_from_directory(STATIC, name)
