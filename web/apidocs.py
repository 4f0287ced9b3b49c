"""The API's interactive documentation (Swagger UI), served by hub itself: no CDN, so it works on a
server without internet access and under a strict Content-Security-Policy (no inline script)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask_swagger_ui
from flask import Blueprint, Response, abort, send_from_directory, url_for

bp = Blueprint("apidocs", __name__)
DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png"}
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>hub API</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" href="{icon}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{bundle}"></script>
  <script src="{start}"></script>
</body>
</html>
"""
POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'"
)


def docs_page() -> Response:
    """The page at /api/v1/docs: Swagger UI on /api/v1/openapi.json."""
    html = PAGE.format(
        css=url_for("apidocs.asset", name="swagger-ui.css"),
        icon=url_for("apidocs.asset", name="favicon-32x32.png"),
        bundle=url_for("apidocs.asset", name="swagger-ui-bundle.js"),
        start=url_for("apidocs.start"),
    )
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = POLICY
    return response


@bp.route("/api-docs/assets/<name>")
def asset(name: str) -> Any:
    if name not in ASSETS:
        abort(404)
    return send_from_directory(DIST, name, max_age=86400)


@bp.route("/api-docs/start.js")
def start() -> Any:
    script = (
        'window.addEventListener("load", function () {\n'
        f'  window.ui = SwaggerUIBundle({{url: "{url_for("api.openapi")}".replace(/docs$/, "openapi.json"), '
        'dom_id: "#swagger-ui", deepLinking: true});\n'
        "});\n"
    )
    return Response(script, mimetype="text/javascript", headers={"Cache-Control": "no-cache"})
