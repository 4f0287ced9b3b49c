"""Company-defined dropdown choices and free-field labels (CRM set-up, admins only)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

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


# Built once: lists ask it on every page.
_CHOICE_NAMES = select(Choice.id, Choice.name)


def choice_names(session: Session) -> dict[int, str]:
    """Every choice's name by id (active or not), for lists that show a row's choices by name."""
    return dict(session.connection().execute(_CHOICE_NAMES).tuples().all())


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
    # Translated once per language (every project page shows them): nine gettext calls were a
    # noticeable part of a page.
    return dict(_default_labels_in(_reader_locale()))


@cache
def _default_labels_in(locale: str) -> dict[str, str]:
    # ``locale`` is only the cache key: the labels come out in the current request's language, which is it.
    return {
        **{f: _("Free text %(n)s", n=i) for i, f in enumerate(FREE_TEXT_FIELDS, 1)},
        **{f.value: _("Free choice %(n)s", n=i) for i, f in enumerate(FREE_CHOICE_FIELDS, 1)},
    }


def _reader_locale() -> str:
    """The current request's language ("" outside a request: hub.i18n._ then answers in English)."""
    try:
        from flask import has_request_context
        from flask_babel import get_locale
    except ImportError:  # pragma: no cover - the domain runs without Flask installed
        return ""
    if not has_request_context():
        return ""
    locale = get_locale()
    return str(locale) if locale is not None else ""


def field_labels(session: Session) -> dict[str, str]:
    """Every free field's label: the company's own, or (never changed) the default in the reader's language."""
    return labels_from(dict(session.execute(select(FieldLabel.field, FieldLabel.label)).tuples().all()))


def labels_from(stored: dict[str, str | None]) -> dict[str, str]:
    """:func:`field_labels` from the stored labels by field (None or absent: never stored), for a
    page that reads them in a query of its own (see :func:`hub.crm.projects.project_sheet`)."""
    labels = default_labels()
    for name, label in stored.items():
        if label is not None and not is_default_label(name, label):
            labels[name] = label
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
        if is_default_label(field, label):
            # Saved as shown, unchanged: no row, so every user keeps reading it in his own language.
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(FieldLabel(field=field, label=label.strip()))
        else:
            row.label = label.strip()
    session.flush()


# --- a fresh install: suggested choices, and labels nobody changed ---------------------------------------


def suggested_choices() -> dict[ChoiceField, list[str]]:
    """What a fresh install offers for type, status and chance, in the reader's language (the admin who
    adds them): a sales pipeline's usual steps, to be renamed, reordered or deactivated in Settings."""
    return {
        ChoiceField.type: [_("New customer"), _("Existing customer"), _("Maintenance and service")],
        ChoiceField.status: [_("Lead"), _("Qualified"), _("Offer sent"), _("Negotiation"), _("Won"), _("Lost")],
        ChoiceField.chance: [_("Low (25%)"), _("Medium (50%)"), _("High (75%)"), _("Very likely (90%)")],
    }


def empty_dropdowns(session: Session) -> list[ChoiceField]:
    """Type, status and chance dropdowns that have no choice at all (active or not)."""
    used = set(session.scalars(select(Choice.field).distinct()))
    return [f for f in suggested_choices() if f not in used]


def add_suggested_choices(session: Session) -> int:
    """Fill the empty type, status and chance dropdowns with :func:`suggested_choices`, stored in the
    language of whoever adds them (they are the company's own from then on: editable like any other).
    A dropdown that has choices already is left alone. Returns how many were added."""
    added = 0
    empty = set(empty_dropdowns(session))
    for field, names in suggested_choices().items():
        if field not in empty:
            continue
        for order, name in enumerate(names, 1):
            save_choice(session, ChoiceInput(field=field.value, name=name, sort_order=order * 10))
            added += 1
    return added


@cache
def _defaults_in_every_language() -> dict[str, frozenset[str]]:
    """Each free field's default label in English and in every language the UI has a catalogue for: a
    stored label equal to one of these was never changed by the company (saved as shown, or stored by
    an older version that kept untouched labels), so it follows each reader's language."""
    from babel.support import Translations

    catalogues = Path(__file__).resolve().parents[2] / "web" / "translations"
    languages = [p.name for p in catalogues.iterdir() if (p / "LC_MESSAGES" / "messages.mo").is_file()]
    texts = {**{f: ("Free text %(n)s", i) for i, f in enumerate(FREE_TEXT_FIELDS, 1)}}
    texts.update({f.value: ("Free choice %(n)s", i) for i, f in enumerate(FREE_CHOICE_FIELDS, 1)})
    found: dict[str, set[str]] = {field: {DEFAULT_LABELS[field]} for field in texts}
    for language in languages:
        catalogue = Translations.load(str(catalogues), [language])
        for field, (message, n) in texts.items():
            found[field].add(catalogue.gettext(message) % {"n": n})
    return {field: frozenset(names) for field, names in found.items()}


def is_default_label(field: str, label: str) -> bool:
    """Whether ``label`` is the field's own default name (in any language): not the company's choice."""
    label = label.strip()
    return label == default_labels().get(field) or label in _defaults_in_every_language().get(field, ())
