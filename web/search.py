"""The search box: relations and projects matching a text, only those the user may see."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from hub.crm.projects import list_projects
from hub.crm.relations import list_relations
from web.context import db_session
from web.security import login_required, user

bp = Blueprint("search", __name__)


@bp.route("/search")
@login_required
def index() -> Any:
    q = request.args.get("q", "").strip()
    relations = projects = None
    if q:
        relations, _ = list_relations(db_session(), user(), search=q, per_page=25)
        projects, _ = list_projects(db_session(), user(), search=q, per_page=25)
    return render_template("search/index.html", q=q, relations=relations, projects=projects)
