"""Serve the mobile web app shell at ``/app/``.

Everything is static (ES modules, CSS, manifest, SVG icon, service worker); the app talks only
to the public ``/api/v1`` contract. Strict CSP: scripts, styles and connections from this
origin only, camera and geolocation allowed for this origin, no inline script or style.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, jsonify, redirect, send_from_directory

from server.http.context import ctx
from server.webapp.push import FIREBASE_CONNECT, web_push

STATIC = Path(__file__).parent / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: With web push configured the page may also call Firebase's registration endpoints.
CSP_PUSH = CSP.replace("connect-src 'self'", "connect-src 'self' " + " ".join(FIREBASE_CONNECT))
#: The files of the app shell (what the service worker caches and what docs/performance.md weighs).
SHELL = ("index.html", "app.js", "i18n.js", "api.js", "app.css", "manifest.webmanifest", "icon.svg")

bp = Blueprint("webapp", __name__, url_prefix="/app")


@bp.after_request
def _headers(response: Response) -> Response:
    push = web_push(ctx().settings)
    response.headers["Content-Security-Policy"] = CSP_PUSH if push else CSP
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


@bp.get("/push.json")
def push_config() -> Response:
    """Whether web push is on and, if so, the Firebase web config and VAPID key the app needs
    (public values; server/webapp/push.py). Off: ``{"enabled": false}`` and nothing more loads."""
    push = web_push(ctx().settings)
    return jsonify(push.public() if push else {"enabled": False})


@bp.get("/vendor/<name>")
def vendor(name: str) -> Response:
    """The Firebase JS SDK modules from ``ISOCHECK_FIREBASE_JS_DIR``; 404 when web push is off."""
    push = web_push(ctx().settings)
    source = push.vendor_source(name) if push else None
    if source is None:
        abort(404)
    return Response(source, mimetype="text/javascript")


@bp.get("/<path:name>")
def asset(name: str) -> Response:
    mimetypes = {".webmanifest": "application/manifest+json", ".js": "text/javascript"}
    mt = mimetypes.get(Path(name).suffix)
    if mt:
        return send_from_directory(STATIC, name, mimetype=mt)
    return send_from_directory(STATIC, name)
