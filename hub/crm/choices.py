"""Company-defined dropdown choices and free-field labels (CRM set-up, admins only)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hub.errors import NotFound, ValidationError
from hub.i18n import _
from hub.models import FREE_CHOICE_FIELDS, FREE_TEXT_FIELDS, Choice, ChoiceField, FieldLabel, Project

# Labels shown until the company renames a free field.
DEFAULT_LABELS = {
    **{f: f"Free text {i}" for i, f in enumerate(FREE_TEXT_FIELDS, 1)},
    **{f.value: f"Free choice {i}" for i, f in enumerate(FREE_CHOICE_FIELDS, 1)},
}


@dataclass
class ChoiceInput:
    field: str
    name: str
    sort_order: int = 0
    active: bool = True


def choices_for(session: Session, field: ChoiceField, *, include_inactive: bool = False) -> list[Choice]:
    query = select(Choice).where(Choice.field == field)
    if not include_inactive:
        query = query.where(Choice.active)
    return list(session.scalars(query.order_by(Choice.sort_order, Choice.name)))


def all_choices(session: Session) -> dict[ChoiceField, list[Choice]]:
    """Every dropdown's choices (active and not) in one query, for the settings page and forms."""
    grouped: dict[ChoiceField, list[Choice]] = {f: [] for f in ChoiceField}
    for choice in session.scalars(select(Choice).order_by(Choice.field, Choice.sort_order, Choice.name)):
        grouped[choice.field].append(choice)
    return grouped


def get_choice(session: Session, choice_id: int) -> Choice:
    choice = session.get(Choice, choice_id)
    if choice is None:
        raise NotFound(choice_id)
    return choice


def save_choice(session: Session, data: ChoiceInput, choice: Choice | None = None) -> Choice:
    errors: dict[str, str] = {}
    name = data.name.strip()
    if data.field not in {f.value for f in ChoiceField}:
        errors["field"] = _("Unknown dropdown.")
    if not name:
        errors["name"] = _("A choice needs a name.")
    elif len(name) > 120:
        errors["name"] = _("The name can be at most 120 characters.")
    if errors:
        raise ValidationError(errors)
    field = ChoiceField(data.field)
    if choice is not None and choice.field != field:
        raise ValidationError(_("A choice cannot move to another dropdown."), field="field")
    clash = session.scalar(select(Choice.id).where(Choice.field == field, func.lower(Choice.name) == name.lower()))
    if clash is not None and (choice is None or clash != choice.id):
        raise ValidationError(_("This dropdown already has a choice with this name."), field="name")
    if choice is None:
        choice = Choice(field=field, name=name)
        session.add(choice)
    choice.name = name
    choice.sort_order = data.sort_order
    choice.active = data.active
    session.flush()
    return choice


def choice_in_use(session: Session, choice: Choice) -> bool:
    columns = [getattr(Project, f"{f.value}_id") for f in ChoiceField]
    uses = select(func.count()).select_from(Project).where(or_(*(c == choice.id for c in columns)))
    return bool(session.scalar(uses))


def delete_choice(session: Session, choice: Choice) -> None:
    """Delete a choice no project uses; one in use can only be deactivated."""
    if choice_in_use(session, choice):
        raise ValidationError(_("This choice is in use by projects; deactivate it instead."))
    session.delete(choice)
    session.flush()


def default_labels() -> dict[str, str]:
    """The free fields' names before the company renames them, in the reader's language."""
    return {
        **{f: _("Free text %(n)s", n=i) for i, f in enumerate(FREE_TEXT_FIELDS, 1)},
        **{f.value: _("Free choice %(n)s", n=i) for i, f in enumerate(FREE_CHOICE_FIELDS, 1)},
    }


def field_labels(session: Session) -> dict[str, str]:
    labels = default_labels()
    for row in session.scalars(select(FieldLabel)):
        labels[row.field] = row.label
    return labels


def save_field_labels(session: Session, labels: dict[str, str]) -> None:
    errors = {}
    for field, label in labels.items():
        if field not in DEFAULT_LABELS:
            errors[field] = _("Unknown field.")
        elif not label.strip():
            errors[field] = _("A label cannot be empty.")
        elif len(label.strip()) > 120:
            errors[field] = _("The label can be at most 120 characters.")
    if errors:
        raise ValidationError(errors)
    for field, label in labels.items():
        row = session.get(FieldLabel, field)
        if row is None:
            session.add(FieldLabel(field=field, label=label.strip()))
        else:
            row.label = label.strip()
    session.flush()
