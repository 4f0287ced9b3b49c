"""``/healthz`` for load balancers: plain, unauthenticated, and telling nothing but up or down."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from hub.ops.health import cached, check_broker, check_database
from web.context import celery, database

bp = Blueprint("ops", __name__)


@bp.route("/healthz")
def healthz() -> Any:
    """200 "ok" while the database and the broker answer; 503 otherwise (no details: it is public)."""
    ok = check_database(database()).ok and cached("broker", 5, lambda: check_broker(celery())).ok
    return Response("ok\n" if ok else "unavailable\n", status=200 if ok else 503, mimetype="text/plain")
