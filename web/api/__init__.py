"""The JSON API under /api/v1: token auth, the same access rules as the pages, JSON errors."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__)

from web.api import errors, routes  # noqa: E402, F401  (registers the routes and handlers on bp)
