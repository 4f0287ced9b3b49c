"""A fresh install, as a Dutch admin meets it: Settings offers the usual type, status and chance choices
in the admin's language (editable from then on, never imposed on dropdowns that have choices); free
field labels the company never changed follow each user's language, a changed one shows as typed."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import Choice, ChoiceField, FieldLabel, User
from tests.conftest import csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]


def names(db: Database, field: ChoiceField) -> list[str]:
    with db.transaction() as s:
        return list(s.scalars(select(Choice.name).where(Choice.field == field).order_by(Choice.sort_order)))


def test_a_fresh_install_offers_the_choices_in_the_admins_language(
    client: FlaskClient, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    login(client, make_user("Beheerder", admin=True, language="nl"))
    page = client.get("/settings/choices").text
    assert "Begin met voorgestelde keuzes" in page and "Offerte verstuurd" in page
    added = client.post("/settings/choices/suggested", data={"csrf_token": csrf_token(page)})
    assert added.status_code == 302
    assert names(db, ChoiceField.status) == [
        "Lead",
        "Gekwalificeerd",
        "Offerte verstuurd",
        "Onderhandeling",
        "Gewonnen",
        "Verloren",
    ]
    assert names(db, ChoiceField.chance)[0] == "Laag (25%)"
    assert names(db, ChoiceField.type) == ["Nieuwe klant", "Bestaande klant", "Onderhoud en service"]
    after = client.get("/settings/choices").text
    assert "13 keuzes toegevoegd" in after and "Begin met voorgestelde keuzes" not in after
    # Editable like any other: renamed, it stays renamed.
    with db.transaction() as s:
        won = s.scalars(select(Choice).where(Choice.name == "Gewonnen")).one()
        won_id = won.id
    edit = client.get(f"/settings/choices/{won_id}")
    saved = client.post(
        f"/settings/choices/{won_id}",
        data={"csrf_token": csrf_token(edit.text), "name": "Opdracht", "sort_order": "50", "active": "y"},
    )
    assert saved.status_code == 302 and "Opdracht" in names(db, ChoiceField.status)
    # Asking again adds nothing: the dropdowns are not empty any more.
    again = client.post("/settings/choices/suggested", data={"csrf_token": csrf_token(after)})
    assert again.status_code == 302 and len(names(db, ChoiceField.status)) == 6


def test_an_english_admin_gets_english_choices_and_filled_dropdowns_are_left_alone(
    client: FlaskClient, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    with db.transaction() as s:
        save_choice(s, ChoiceInput(field="status", name="Our own step"))
    login(client, make_user("Admin", admin=True, language="en"))
    page = client.get("/settings/choices").text
    assert "Start with suggested choices" in page
    client.post("/settings/choices/suggested", data={"csrf_token": csrf_token(page)})
    assert names(db, ChoiceField.status) == ["Our own step"]
    assert names(db, ChoiceField.type) == ["New customer", "Existing customer", "Maintenance and service"]
    assert names(db, ChoiceField.chance)[-1] == "Very likely (90%)"


def test_staff_cannot_add_the_choices(
    client: FlaskClient, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    login(client, make_user("Staff"))
    page = client.get("/projects").text
    assert client.post("/settings/choices/suggested", data={"csrf_token": csrf_token(page)}).status_code == 404
    assert names(db, ChoiceField.status) == []


def test_untouched_labels_follow_each_users_language(
    app: object, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    admin = make_user("Beheerder", admin=True, language="nl")
    english = make_user("Emma", language="en")
    dutch = make_user("Daan", language="nl")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV"))
        project_id = save_project(s, s.get_one(User, admin.id), ProjectInput(relation_id=relation.id, name="Dak")).id
        # Stored by an older version that saved every label as shown: the Dutch default, untouched.
        s.add(FieldLabel(field="free_text_3", label="Vrij tekstveld 3"))
    admin_client = login(app.test_client(), admin)  # type: ignore[attr-defined]
    form = admin_client.get("/settings/labels").text
    assert 'value="Vrij tekstveld 2"' in form
    # The Dutch admin saves the form as shown, with one label changed.
    values = {f"free_text_{i}": f"Vrij tekstveld {i}" for i in range(1, 5)}
    values.update({f"free_choice_{i}": f"Vrij keuzeveld {i}" for i in range(1, 6)})
    values["free_text_1"] = "Bouwnummer"
    saved = admin_client.post("/settings/labels", data={"csrf_token": csrf_token(form), **values})
    assert saved.status_code == 302
    with db.transaction() as s:
        assert dict(s.execute(select(FieldLabel.field, FieldLabel.label)).tuples().all()) == {
            "free_text_1": "Bouwnummer"
        }
    emma = login(app.test_client(), english).get(f"/projects/{project_id}").text  # type: ignore[attr-defined]
    assert "Bouwnummer" in emma and "Free text 2" in emma and "Free text 3" in emma and "Free choice 5" in emma
    assert "Vrij tekstveld" not in emma
    daan = login(app.test_client(), dutch).get(f"/projects/{project_id}").text  # type: ignore[attr-defined]
    assert "Bouwnummer" in daan and "Vrij tekstveld 2" in daan and "Vrij keuzeveld 5" in daan
    # An English admin sees the untouched labels in English in the form, the changed one as typed.
    english_form = login(app.test_client(), make_user("Ann", admin=True)).get("/settings/labels")  # type: ignore[attr-defined]
    assert 'value="Free text 2"' in english_form.text and 'value="Bouwnummer"' in english_form.text
