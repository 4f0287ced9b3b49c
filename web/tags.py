"""Tag pages: tag and untag a relation or contact from its page (any member of staff who sees it;
typing a new name makes a new tag), and Settings → Tags, where admins rename, recolour and delete
tags. Thin: each view calls one hub.crm.tags service."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from hub.crm import tags as tag_service
from hub.crm.relations import get_contact, get_relation
from hub.errors import NotFound, ValidationError
from hub.models import Tag
from hub.paging import MAX_ID
from web.context import db_session
from web.security import admin_required, login_required, user

bp = Blueprint("tags", __name__)

COLOUR_NAMES = {
    "": _l("No colour"),
    "#1f6feb": _l("Blue"),
    "#2da44e": _l("Green"),
    "#bf8700": _l("Yellow"),
    "#cf222e": _l("Red"),
    "#8250df": _l("Purple"),
    "#57606a": _l("Grey"),
    "#e16f24": _l("Orange"),
    "#0e8a7d": _l("Teal"),
}
# What one add box may hold (several names, comma-separated): more is no one typing.
MAX_INPUT = 1000


@bp.app_template_global("tag_suggestions")
def tag_suggestions() -> list[Tag]:
    """Every tag, for the add box's suggestions (a <datalist>: the phone's keyboard offers them too)."""
    return tag_service.all_tags(db_session())


@bp.app_template_global("tag_colour_names")
def tag_colour_names() -> dict[str, Any]:
    return COLOUR_NAMES


def _id_or_404(value: int) -> int:
    if not 1 <= value <= MAX_ID:
        abort(404)
    return value


def _typed() -> str:
    return (request.form.get("tag") or "")[:MAX_INPUT]


def _refused(page: Any, text: str, message: str) -> Any:
    """The object's own page again, the typed names kept in the box and the reason next to it (400)."""
    g.tag_input = {"text": text, "error": message}
    response = make_response(page())
    response.status_code = 400
    return response


# --- relations ------------------------------------------------------------------------------------


@bp.post("/relations/<int:relation_id>/tags")
@login_required
def tag_relation(relation_id: int) -> Any:
    relation = get_relation(db_session(), user(), _id_or_404(relation_id))
    text = _typed()
    try:
        tag_service.tag_relation(db_session(), relation, text)
    except ValidationError as error:
        from web.relations import show

        return _refused(lambda: show(relation_id), text, error.message)
    return redirect(url_for("relations.show", relation_id=relation.id, _anchor="tags"))


@bp.post("/relations/<int:relation_id>/tags/<int:tag_id>/remove")
@login_required
def untag_relation(relation_id: int, tag_id: int) -> Any:
    relation = get_relation(db_session(), user(), _id_or_404(relation_id))
    tag_service.untag_relation(db_session(), relation, _id_or_404(tag_id))
    return redirect(url_for("relations.show", relation_id=relation.id, _anchor="tags"))


# --- contacts -------------------------------------------------------------------------------------


@bp.post("/contacts/<int:contact_id>/tags")
@login_required
def tag_contact(contact_id: int) -> Any:
    contact = get_contact(db_session(), user(), _id_or_404(contact_id))
    text = _typed()
    try:
        tag_service.tag_contact(db_session(), contact, text)
    except ValidationError as error:
        from web.contacts import show

        return _refused(lambda: show(contact_id), text, error.message)
    return redirect(url_for("contacts.show", contact_id=contact.id, _anchor="tags"))


@bp.post("/contacts/<int:contact_id>/tags/<int:tag_id>/remove")
@login_required
def untag_contact(contact_id: int, tag_id: int) -> Any:
    contact = get_contact(db_session(), user(), _id_or_404(contact_id))
    tag_service.untag_contact(db_session(), contact, _id_or_404(tag_id))
    return redirect(url_for("contacts.show", contact_id=contact.id, _anchor="tags"))


# --- settings: rename, recolour, delete (admins) --------------------------------------------------


def _settings_page(status: int = 200, failed: dict[str, Any] | None = None, editing: Tag | None = None) -> Any:
    return render_template(
        "settings/tags.html",
        rows=tag_service.tags_with_counts(db_session(), user()),
        colours=COLOUR_NAMES,
        failed=failed or {},
        editing=editing,
    ), status


@bp.get("/settings/tags")
@admin_required
def settings_tags() -> Any:
    return _settings_page()


@bp.post("/settings/tags/new")
@admin_required
def create_tag() -> Any:
    name, colour = (request.form.get("name") or "")[:MAX_INPUT], request.form.get("colour") or ""
    try:
        tag = tag_service.create_tag(db_session(), name, colour)
    except ValidationError as error:
        return _settings_page(400, {"id": None, "name": name, "colour": colour, "error": error.message})
    flash(gettext("Tag %(name)s added.", name=tag.name), "success")
    return redirect(url_for("tags.settings_tags"))


@bp.route("/settings/tags/<int:tag_id>", methods=["GET", "POST"])
@admin_required
def rename_tag(tag_id: int) -> Any:
    try:
        tag = tag_service.get_tag(db_session(), _id_or_404(tag_id))
    except NotFound:
        abort(404)
    if request.method == "GET":
        return _settings_page(editing=tag)
    name, colour = (request.form.get("name") or "")[:MAX_INPUT], request.form.get("colour") or ""
    try:
        tag_service.rename_tag(db_session(), tag, name, colour)
    except ValidationError as error:
        db_session().rollback()
        failed = {"id": tag_id, "name": name, "colour": colour, "error": error.message}
        return _settings_page(400, failed, tag_service.get_tag(db_session(), tag_id))
    flash(gettext("Tag saved."), "success")
    return redirect(url_for("tags.settings_tags", _anchor=f"tag-{tag_id}"))


@bp.post("/settings/tags/<int:tag_id>/delete")
@admin_required
def delete_tag(tag_id: int) -> Any:
    try:
        tag = tag_service.get_tag(db_session(), _id_or_404(tag_id))
    except NotFound:
        abort(404)
    name = tag.name
    tag_service.delete_tag(db_session(), tag)
    flash(gettext("Tag %(name)s deleted; it was taken off every relation and contact.", name=name), "success")
    return redirect(url_for("tags.settings_tags"))
