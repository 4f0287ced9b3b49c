"""Shared form helpers: service ValidationErrors shown next to the WTForms field they concern."""

from __future__ import annotations

from flask_wtf import FlaskForm

from hub.errors import ValidationError


def show_errors(form: FlaskForm, error: ValidationError) -> None:
    """Attach a service's errors to the form's fields (or to the form as a whole)."""
    for name, message in error.errors.items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*list(field.errors), message]
        else:
            form.form_errors.append(message)


def optional_text(value: object) -> str:
    """SelectField coercion that keeps "no choice" empty (WTForms would turn None into "None")."""
    return "" if value is None else str(value)
