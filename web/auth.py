"""Logging in and out, and the user's own profile (language, password)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField
from wtforms.validators import DataRequired, Length, Optional

from hub.accounts.passwords import hash_password, verify_password
from hub.accounts.users import LoginBlocked, authenticate
from web.context import db_session, settings
from web.security import login_required, user

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail address"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


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
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile() -> Any:
    me = user()
    form = ProfileForm(language=me.language or "")
    if form.validate_on_submit():
        if form.new_password.data:
            if not verify_password(me.password_hash, form.current_password.data or ""):
                form.current_password.errors = [str(_l("The current password is wrong."))]
                return render_template("auth/profile.html", form=form), 400
            me.password_hash = hash_password(form.new_password.data)
        me.language = form.language.data or None
        return redirect(url_for("auth.profile", saved=1))
    return render_template("auth/profile.html", form=form, saved=request.args.get("saved"))
