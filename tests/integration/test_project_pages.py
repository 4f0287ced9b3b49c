"""The project pages as a user works with them: list, form with choices, tabs, access, delete."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.accounts.users import UserInput, create_token, create_user, save_group
from hub.config import Settings
from hub.crm.choices import ChoiceInput, get_choice, save_choice, save_field_labels
from hub.crm.documents import add_document
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.models import Project, Relation, User, UserGroup
from tests.conftest import csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]


@pytest.fixture
def data(db: Database, make_user: Callable[..., User]) -> dict[str, int]:
    admin = make_user("Admin", admin=True)
    with db.transaction() as s:
        rel = save_relation(s, RelationInput(name="Bakker BV", city="Utrecht"))
        contact = save_contact(s, rel, ContactInput(name="Anna Smit", emails=["anna@bakker.example"]))
        other = save_relation(s, RelationInput(name="Other NV"))
        other_contact = save_contact(s, other, ContactInput(name="Olaf"))
        status = save_choice(s, ChoiceInput(field="status", name="Offer sent", sort_order=2))
        kind = save_choice(s, ChoiceInput(field="type", name="Installation"))
        chance = save_choice(s, ChoiceInput(field="chance", name="50%"))
        free = save_choice(s, ChoiceInput(field="free_choice_1", name="North"))
        return {
            "relation": rel.id,
            "contact": contact.id,
            "other": other.id,
            "other_contact": other_contact.id,
            "status": status.id,
            "type": kind.id,
            "chance": chance.id,
            "free": free.id,
            "admin": admin.id,
        }


def _form(client: FlaskClient, url: str, **fields: object) -> dict[str, object]:
    return {"csrf_token": csrf_token(client.get(url).text), **fields}


def _project(db: Database, owner: User, relation_id: int, name: str, **fields: object) -> int:
    with db.transaction() as s:
        author = s.get_one(User, owner.id)
        return save_project(s, author, ProjectInput(relation_id=relation_id, name=name, **fields)).id  # type: ignore[arg-type]


def _user(db: Database, user_id: int) -> User:
    with db.transaction() as s:
        return s.get_one(User, user_id)


def _names_in_order(html: str) -> list[str]:
    return re.findall(r'href="/projects/\d+">([^<]+)</a>', html)


def test_empty_list_offers_a_new_project(client: FlaskClient, make_user: Callable[..., User], login: Login) -> None:
    login(client, make_user())
    page = client.get("/projects")
    assert page.status_code == 200
    assert "No projects yet." in page.text and 'href="/projects/new"' in page.text
    assert client.get("/").status_code == 200


def test_list_sorts_filters_and_pages(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    staff = make_user("Staff")
    for n in range(1, 31):
        relation_id = data["relation"] if n % 2 else data["other"]
        _project(db, staff, relation_id, f"P{n:02d}", value=Decimal(n * 1000), closed=n > 28)
    login(client, staff)

    first = client.get("/projects?sort=name").text
    assert _names_in_order(first) == [f"P{n:02d}" for n in range(1, 26)]
    assert "€ 1.000,00" in first and "Bakker BV" in first and "Other NV" in first
    # The sort link of the current column flips the direction; paging keeps the sort.
    assert 'href="/projects?sort=-name&amp;page=1"' in first
    second = client.get("/projects?sort=name&page=2").text
    assert _names_in_order(second) == [f"P{n:02d}" for n in range(26, 31)] and 'rel="prev"' in second

    assert _names_in_order(client.get("/projects?sort=-value").text)[:2] == ["P30", "P29"]
    by_relation = _names_in_order(client.get("/projects?sort=relation").text)
    assert by_relation[0] in {f"P{n:02d}" for n in range(1, 31, 2)}  # Bakker before Other

    open_only = _names_in_order(client.get("/projects?open=1&sort=-name").text)
    assert open_only[0] == "P28"
    searched = _names_in_order(client.get("/projects?q=P1").text)
    assert sorted(searched) == [f"P{n}" for n in range(10, 20)]
    assert "No projects match your search." in client.get("/projects?q=nothing-like-this").text


def test_create_project_with_choices_then_see_it_in_the_list(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    staff = make_user("Staff")
    login(client, staff)
    url = f"/projects/new?relation_id={data['relation']}"
    page = client.get(url)
    assert "Bakker BV" in page.text and "Anna Smit" in page.text and "Offer sent" in page.text
    assert "data-relation-picker" in page.text and "/relations/lookup" in page.text
    response = client.post(
        url,
        data=_form(
            client,
            url,
            relation_id=data["relation"],
            name="Solar panels roof",
            contact_ids=[data["contact"]],
            one_off_contact_name="Piet Site",
            one_off_contact_email="piet@site.example",
            status=data["status"],
            type=data["type"],
            chance=data["chance"],
            free_choice_1=data["free"],
            free_text_1="Roof south",
            value="12.500,50",
            currency="EUR",
            start_date="2026-01-05",
            end_date="2026-03-01",
            end_date_expected="y",
            responsible_user_id=staff.id,
            description="x" * 30000,
        ),
    )
    assert response.status_code == 302, response.text
    project_url = response.headers["Location"]
    summary = client.get(project_url).text
    for expected in (
        "Solar panels roof",
        "Anna Smit",
        "anna@bakker.example",
        "Piet Site",
        "piet@site.example",
        "Offer sent",
        "Installation",
        "50%",
        "North",
        "Roof south",
        "€ 12.500,50",
        "(expected)",
    ):
        assert expected in summary, expected
    listing = client.get("/projects?sort=name").text
    assert "Solar panels roof" in listing and "Bakker BV" in listing


def test_relation_typed_without_javascript_is_picked(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    login(client, make_user())
    url = "/projects/new"
    response = client.post(url, data=_form(client, url, relation_name="bakker bv", relation_id="", name="Typed"))
    assert response.status_code == 302
    with db.transaction() as s:
        assert s.scalars(select(Project.relation_id)).one() == data["relation"]


def test_bad_input_is_shown_next_to_the_field_and_nothing_is_saved(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    login(client, make_user())
    url = f"/projects/new?relation_id={data['relation']}"
    # A status choice in the type dropdown, a contact of another relation, an end before the start.
    response = client.post(
        url,
        data=_form(
            client,
            url,
            relation_id=data["relation"],
            name="Kept name",
            type=data["status"],
            contact_ids=[data["other_contact"]],
            start_date="2026-05-01",
            end_date="2026-04-01",
            value="abc",
        ),
    )
    assert response.status_code == 400
    html = response.text
    # Each message sits in the field block of the field it concerns.
    assert re.search(
        r'id="type".*?</select>\s*<p class="error"[^>]*>This is not a choice of this dropdown\.', html, re.S
    )
    assert re.search(r'id="end_date"[^>]*>\s*<p class="error"[^>]*>The end date is before the start date\.', html)
    assert "Enter an amount such as 1250.00." in html
    assert "Choose contacts of this relation." in html
    assert 'value="Kept name"' in html  # the input is kept
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Project)) == 0


def test_project_for_a_hidden_relation_is_refused(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    insider, outsider = make_user(), make_user()
    with db.transaction() as s:
        set_relation_linked(s, s.get_one(Relation, data["relation"]), [insider.id], [])
    login(client, outsider)
    page = client.get(f"/projects/new?relation_id={data['relation']}")
    assert "Bakker BV" not in page.text and "Anna Smit" not in page.text
    url = "/projects/new"
    response = client.post(url, data=_form(client, url, relation_id=data["relation"], name="Sneaky"))
    assert response.status_code == 400 and "Choose a relation." in response.text
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Project)) == 0


def test_edit_keeps_an_inactive_choice_but_refuses_picking_one(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    staff = make_user("Staff")
    with db.transaction() as s:
        old = save_choice(s, ChoiceInput(field="status", name="Old status"))
        gone = save_choice(s, ChoiceInput(field="status", name="Gone status"))
    project_id = _project(
        db, staff, data["relation"], "Roof", contact_ids=[data["contact"]], choices={"status": old.id}
    )
    with db.transaction() as s:
        for choice_id in (old.id, gone.id):
            choice = get_choice(s, choice_id)
            save_choice(s, ChoiceInput(field="status", name=choice.name, active=False), choice)
        save_field_labels(s, {"free_text_2": "Roof type"})
    login(client, staff)
    url = f"/projects/{project_id}/edit"
    page = client.get(url).text
    assert f'<option selected value="{old.id}">Old status</option>' in page
    assert "Gone status" not in page and "Roof type" in page
    assert re.search(rf'<option selected value="{data["contact"]}">Anna Smit</option>', page)

    common = {"relation_id": data["relation"], "relation_name": "Bakker BV", "contact_ids": [data["contact"]]}
    refused = client.post(url, data=_form(client, url, name="Roof 2", status=gone.id, **common))
    assert refused.status_code == 400 and "This choice is no longer active." in refused.text
    saved = client.post(
        url, data=_form(client, url, name="Roof 2", status=old.id, free_text_2="Flat", value="1250", **common)
    )
    assert saved.status_code == 302 and saved.headers["Location"] == f"/projects/{project_id}"
    summary = client.get(saved.headers["Location"]).text
    assert "Roof 2" in summary and "Old status" in summary and "Roof type" in summary and "Flat" in summary
    with db.transaction() as s:
        project = s.get_one(Project, project_id)
        assert (project.name, project.status_id, project.value) == ("Roof 2", old.id, Decimal("1250.00"))
        assert [c.id for c in project.contacts] == [data["contact"]]


def test_edit_keeps_a_deactivated_responsible_user_until_another_is_picked(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    staff, leaver = make_user("Staff"), make_user("Leaver")
    project_id = _project(db, staff, data["relation"], "Roof", responsible_user_id=leaver.id)
    with db.transaction() as s:
        s.get_one(User, leaver.id).is_active = False
    login(client, staff)
    url = f"/projects/{project_id}/edit"
    page = client.get(url).text
    assert f'<option selected value="{leaver.id}">Leaver (deactivated)</option>' in page
    common = {"relation_id": data["relation"], "relation_name": "Bakker BV"}
    saved = client.post(url, data=_form(client, url, name="Roof 2", responsible_user_id=leaver.id, **common))
    assert saved.status_code == 302
    with db.transaction() as s:
        assert s.get_one(Project, project_id).responsible_user_id == leaver.id
    # Picking a deactivated user anew is refused; the active ones can be picked.
    other = _project(db, staff, data["relation"], "Shed", responsible_user_id=staff.id)
    refused = client.post(
        f"/projects/{other}/edit",
        data=_form(client, f"/projects/{other}/edit", name="Shed", responsible_user_id=leaver.id, **common),
    )
    assert refused.status_code == 400
    assert "Leaver" not in client.get(f"/projects/{other}/edit").text
    # Only the responsible user or an admin hands a project to someone else: the leaver cannot, so an
    # admin does (staff may not make himself responsible for someone else's project).
    taken = client.post(url, data=_form(client, url, name="Roof 2", responsible_user_id=staff.id, **common))
    assert taken.status_code == 400 and "Only the responsible user or an admin" in taken.text
    login(client, _user(db, data["admin"]))
    moved = client.post(url, data=_form(client, url, name="Roof 2", responsible_user_id=staff.id, **common))
    assert moved.status_code == 302
    with db.transaction() as s:
        assert s.get_one(Project, project_id).responsible_user_id == staff.id


def test_linked_project_is_404_for_others_on_every_tab_and_download(
    app: Flask, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    insider, outsider = make_user(), make_user()
    with db.transaction() as s:
        admin = s.get_one(User, data["admin"])
        project = save_project(s, admin, ProjectInput(relation_id=data["relation"], name="Secret deal"))
        set_linked(s, project, [insider.id], [])
        document = add_document(
            s, app.extensions["hub.blobs"], admin, project, "plan.txt", io.BytesIO(b"plan"), None, 1000
        )
        project_id, document_id = project.id, document.id
    inside = login(app.test_client(), insider)
    outside = login(app.test_client(), outsider)
    tabs = ("", "/notepad", "/activities", "/documents", "/emails", "/calls", "/agenda", "/users", "/edit")
    for tab in (*tabs, f"/documents/{document_id}"):
        assert inside.get(f"/projects/{project_id}{tab}").status_code == 200, tab
        assert outside.get(f"/projects/{project_id}{tab}").status_code == 404, tab
    assert "Secret deal" in inside.get("/projects").text
    assert "Secret deal" not in outside.get("/projects").text
    assert "Secret deal" not in outside.get("/search?q=secret").text
    token = csrf_token(outside.get("/projects").text)
    assert outside.post(f"/projects/{project_id}/delete", data={"csrf_token": token}).status_code == 404
    notepad = outside.post(f"/projects/{project_id}/notepad", data={"csrf_token": token, "notepad": "x"})
    assert notepad.status_code == 404


def test_notepad_is_saved_with_who_and_when(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    staff = make_user("Noor")
    project_id = _project(db, staff, data["relation"], "P")
    login(client, staff)
    url = f"/projects/{project_id}/notepad"
    assert "Last saved by" not in client.get(url).text
    response = client.post(url, data=_form(client, url, notepad="Called Anna, wants offer"))
    assert response.status_code == 302
    page = client.get(url).text
    assert "Called Anna, wants offer" in page and "Last saved by Noor on" in page
    with db.transaction() as s:
        assert s.get_one(Project, project_id).notepad == "Called Anna, wants offer"


def test_linked_users_and_groups(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    staff, colleague = make_user("Staff"), make_user("Colleague")
    with db.transaction() as s:
        group = save_group(s, "Sales", [colleague.id])
    project_id = _project(db, staff, data["relation"], "Shared", responsible_user_id=staff.id)
    login(client, staff)
    url = f"/projects/{project_id}/users"
    page = client.get(url).text
    assert "Nobody linked: visible to all staff" in page and "Colleague" in page and "Sales" in page
    response = client.post(url, data=_form(client, url, user_ids=[staff.id], group_ids=[group.id]))
    assert response.status_code == 302 and response.headers["Location"] == url
    with db.transaction() as s:
        project = s.get_one(Project, project_id)
        assert [u.id for u in project.linked_users] == [staff.id]
        assert [g.id for g in project.linked_groups] == [group.id]
    # The responsible user links only someone else and still sees the project (responsible).
    response = client.post(url, data=_form(client, url, user_ids=[colleague.id]))
    assert response.status_code == 302 and response.headers["Location"] == url
    assert client.get(f"/projects/{project_id}").status_code == 200


def test_only_admin_or_responsible_can_delete(
    app: Flask, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    responsible, colleague = make_user("Resp"), make_user("Colleague")
    project_id = _project(db, responsible, data["relation"], "Doomed", responsible_user_id=responsible.id)
    other_id = _project(db, responsible, data["relation"], "Also doomed")
    with db.transaction() as s:
        project = s.get_one(Project, project_id)
        blobs = app.extensions["hub.blobs"]
        add_document(s, blobs, s.get_one(User, responsible.id), project, "a.txt", io.BytesIO(b"a"), None, 9)
    other = login(app.test_client(), colleague)
    page = other.get(f"/projects/{project_id}").text
    assert "/delete" not in page
    assert other.post(f"/projects/{project_id}/delete", data={"csrf_token": csrf_token(page)}).status_code == 404

    owner = login(app.test_client(), responsible)
    page = owner.get(f"/projects/{project_id}").text
    assert f'action="/projects/{project_id}/delete"' in page and "data-confirm" in page
    response = owner.post(f"/projects/{project_id}/delete", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302 and response.headers["Location"] == "/projects"
    assert owner.get(f"/projects/{project_id}").status_code == 404

    admin = login(app.test_client(), _user(db, data["admin"]))
    page = admin.get(f"/projects/{other_id}").text
    assert admin.post(f"/projects/{other_id}/delete", data={"csrf_token": csrf_token(page)}).status_code == 302
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Project)) == 0


def test_dates_are_shown_on_the_summary(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    staff, dutch = make_user(), make_user(language="nl")
    project_id = _project(db, staff, data["relation"], "Dated", start_date=date(2026, 2, 3), closed=True)
    login(client, staff)
    page = client.get(f"/projects/{project_id}").text
    assert "<dd>03/02/2026</dd>" in page and "closed" in page
    # In the reader's language, on the summary and in the list (whose "changed" is a Dutch day too).
    login(client, dutch)
    assert "<dd>03-02-2026</dd>" in client.get(f"/projects/{project_id}").text
    with db.transaction() as s:
        s.get_one(Project, project_id).updated_at = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)  # 00:30 on the 5th
    listed = client.get("/projects").text
    assert "<td>03-02-2026</td>" in listed and "<td>05-03-2026</td>" in listed


def test_each_user_gets_their_own_answer_and_access_changes_count_at_once(
    any_db: Database, settings: Settings, login: Login
) -> None:
    """The visibility rule is built once per user and its compiled SQL is shared by all users (only
    the user id is a parameter): alternating users on one app each see only their own projects, and a
    group change counts from the next request on, in the pages and the API, on both databases."""
    from tests.conftest import PASSWORD, EnglishClient
    from web import create_app

    with any_db.transaction() as s:
        member, outsider, admin = (
            create_user(s, UserInput(email=f"{n}@staff.example", name=n, password=PASSWORD, is_admin=n == "boss"))
            for n in ("member", "outsider", "boss")
        )
        group = save_group(s, "Sales", [member.id])
        relation = save_relation(s, RelationInput(name="Quiet BV"))
        project = save_project(s, admin, ProjectInput(relation_id=relation.id, name="Quiet deal"))
        set_linked(s, project, [], [group.id])
        project_id, group_id = project.id, group.id
        tokens = {u.id: create_token(s, u, "t", scope="read") for u in (member, outsider)}
    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    inside, outside = login(app.test_client(), member), login(app.test_client(), outsider)

    def sees(client: FlaskClient, user: User) -> bool:
        page = client.get(f"/projects/{project_id}").status_code
        listed = "Quiet deal" in client.get("/projects").text
        bearer = {"Authorization": f"Bearer {tokens[user.id]}"}
        api = client.get(f"/api/v1/projects/{project_id}", headers=bearer).status_code
        api_listed = any(p["id"] == project_id for p in client.get("/api/v1/projects", headers=bearer).json["items"])
        assert {page, api} <= {200, 404} and (page == 200) == listed == (api == 200) == api_listed
        return page == 200

    for _ in range(2):
        assert sees(inside, member) and not sees(outside, outsider)
    with any_db.transaction() as s:
        save_group(s, "Sales", [outsider.id], group=s.get_one(UserGroup, group_id))
    assert not sees(inside, member) and sees(outside, outsider)


def test_list_names_inactive_choices_and_deactivated_users_in_a_constant_number_of_queries(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    """The list shows status, type and responsible user by name without joining them: a row whose
    choice was deactivated, or whose responsible user left, still shows the name, and a page of such
    rows costs what a page of ordinary rows costs."""
    from tests.integration.test_query_counts import counting

    staff = make_user("Staff")
    leavers = [make_user(f"Leaver {n}") for n in range(3)]
    with db.transaction() as s:
        old_status = save_choice(s, ChoiceInput(field="status", name="Old status"))
        old_type = save_choice(s, ChoiceInput(field="type", name="Old type"))
    for n in range(30):  # more than one page (25 rows)
        _project(
            db,
            staff,
            data["relation"],
            f"Project {n:02}",
            responsible_user_id=leavers[n % 3].id if n % 2 else staff.id,
            choices={"status": old_status.id, "type": old_type.id},
        )
    login(client, staff)
    with counting(app) as before:
        assert client.get("/projects?sort=name").status_code == 200
    with db.transaction() as s:
        for choice_id in (old_status.id, old_type.id):
            choice = get_choice(s, choice_id)
            save_choice(s, ChoiceInput(field=choice.field.value, name=choice.name, active=False), choice)
        for leaver in leavers:
            s.get_one(User, leaver.id).is_active = False
    with counting(app) as after:
        page = client.get("/projects?sort=name").text
    rows = re.findall(r"<tr>\s*<td><a href=\"/projects/\d+\">(Project \d+)</a>.*?</tr>", page, re.S)
    assert len(rows) == 25
    for n in range(25):
        row = re.search(rf">Project {n:02}</a>.*?</tr>", page, re.S)
        assert row is not None
        assert "Old status" in row.group(0) and "Old type" in row.group(0)
        assert (f"Leaver {n % 3}" if n % 2 else "Staff") in row.group(0)
    # One more statement at most (the deactivated users' names, all in one), never one per row.
    assert len(after) <= len(before) + 1


@pytest.mark.parametrize("sort", ["relation", "-relation", "-updated", "value", "end"])
def test_following_next_and_previous_shows_every_project_once_in_order(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database, sort: str
) -> None:
    """The list's rows are plain columns with cursors made from them: following Next from page 1 to
    the end, then Previous back, shows every project once, in the sort's order, whatever the sort."""
    staff = make_user("Staff")
    for n in range(60):  # three pages; equal sort values (two relations, empty end dates) need the id tie-break
        relation_id = data["relation"] if n % 3 else data["other"]
        end = date(2026, 1 + n % 12, 1) if n % 4 else None
        _project(db, staff, relation_id, f"Q{n:02d}", value=Decimal(n % 5), end_date=end)
    login(client, staff)
    url, pages = f"/projects?sort={sort}", []
    while url:
        page = client.get(url).text
        pages.append(_names_in_order(page))
        found = re.search(r'<a href="([^"]+)" rel="next">', page)
        url = html.unescape(found.group(1)) if found else ""
    seen = [name for names in pages for name in names]
    assert len(pages) == 3 and sorted(seen) == [f"Q{n:02d}" for n in range(60)]
    bakker, other = [f"Q{n:02d}" for n in range(60) if n % 3], [f"Q{n:02d}" for n in range(60) if not n % 3]
    if sort == "relation":  # Bakker BV before Other NV, each in the order they were made (id)
        assert seen == bakker + other
    elif sort == "-relation":
        assert seen == other[::-1] + bakker[::-1]
    back = re.search(r'<a href="([^"]+)" rel="prev">', client.get(_last_page_url(client, sort)).text)
    assert back is not None
    assert _names_in_order(client.get(html.unescape(back.group(1))).text) == pages[1]


def _last_page_url(client: FlaskClient, sort: str) -> str:
    url = f"/projects?sort={sort}"
    for _ in range(2):
        found = re.search(r'<a href="([^"]+)" rel="next">', client.get(url).text)
        assert found is not None
        url = html.unescape(found.group(1))
    return url
