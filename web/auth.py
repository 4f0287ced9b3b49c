"""Logging in and out, and the user's own profile (language, password)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from hub.accounts.users import (
    LoginBlocked,
    authenticate,
    change_password,
    create_token,
    end_sessions,
    revoke_token,
    tokens_of,
)
from hub.errors import NotFound, ValidationError
from web.context import db_session, settings
from web.forms import show_errors
from web.security import login_required, user

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail address"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class TokenForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    scope = SelectField(
        _l("Access"),
        choices=[("read", _l("Read-only: can only read (GET)")), ("write", _l("Read and write"))],
        default="read",
    )


class ProfileForm(FlaskForm):
    language = SelectField(
        _l("Language"), choices=[("", _l("Browser language")), ("nl", "Nederlands"), ("en", "English")]
    )
    current_password = PasswordField(_l("Current password"), validators=[Optional()])
    new_password = PasswordField(_l("New password"), validators=[Optional(), Length(min=8)])


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect after login is a phishing tool.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("projects.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():
        s = settings()
        try:
            found = authenticate(
                db_session(),
                form.email.data or "",
                form.password.data or "",
                request.remote_addr or "",
                max_failures=s.login_max_failures,
                window_seconds=s.login_window_seconds,
            )
        except LoginBlocked:
            form.form_errors.append(str(_l("Too many failed attempts. Wait a few minutes and try again.")))
            return render_template("auth/login.html", form=form), 429
        if found is None:
            form.form_errors.append(str(_l("The e-mail address or password is wrong.")))
            # 200, not 4xx: the failure record must be committed for rate limiting to work.
            return render_template("auth/login.html", form=form)
        login_user(found)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Any:
    # Every session of this user ends, not only this browser's: a copied cookie stops working too.
    end_sessions(db_session(), user())
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile() -> Any:
    me = user()
    form = ProfileForm(language=me.language or "")
    if form.validate_on_submit():
        if form.new_password.data:
            try:
                change_password(db_session(), me, form.current_password.data or "", form.new_password.data)
            except ValidationError as error:
                show_errors(form, error)
                return render_template("auth/profile.html", form=form), 400
            # Every other session ended with the change; this one goes on under the new epoch.
            login_user(me)
        me.language = form.language.data or None
        return redirect(url_for("auth.profile", saved=1))
    return render_template("auth/profile.html", form=form, saved=request.args.get("saved"))


@bp.route("/profile/tokens", methods=["GET", "POST"])
@login_required
def tokens() -> Any:
    """The user's own API tokens; a new token is shown on this response only (never stored readable)."""
    me = user()
    form = TokenForm()
    created = None
    if form.validate_on_submit():
        try:
            created = create_token(db_session(), me, form.name.data or "", scope=form.scope.data or "read")
        except ValidationError as error:
            show_errors(form, error)
        else:
            form = TokenForm(formdata=None)
    status = 400 if request.method == "POST" and created is None else 200
    page = render_template("auth/tokens.html", form=form, tokens=tokens_of(db_session(), me), created=created)
    # The token is in this page: no cache may keep it.
    return page, status, {"Cache-Control": "no-store"}


@bp.route("/profile/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke(token_id: int) -> Any:
    try:
        revoke_token(db_session(), user(), token_id)
    except NotFound:
        abort(404)
    return redirect(url_for("auth.tokens", revoked=1))
