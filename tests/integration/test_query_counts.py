"""No page issues more SQL statements as data grows (no N+1 queries)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from hub.accounts.users import save_group
from hub.crm.activities import ActivityInput, save_activity
from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.documents import add_document
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import User


@contextmanager
def counting(app: Flask) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = app.extensions["hub.db"].engine

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _seed(db: Database, app: Flask, owner: User, others: list[User], n: int) -> dict[str, int]:
    """n relations with 2n contacts, n projects each with n contacts, activities, documents and links."""
    with db.transaction() as s:
        choices = {f: save_choice(s, ChoiceInput(field=f, name=f"{f} {n}")).id for f in ("type", "status", "chance")}
        group = save_group(s, f"group {n}", [u.id for u in others])
        first_project = first_relation = 0
        for r in range(n):
            relation = save_relation(s, RelationInput(name=f"Relation {n}-{r}", emails=[f"r{r}@x{n}.example"]))
            contacts = [
                save_contact(
                    s, relation, ContactInput(name=f"C{c}", emails=[f"c{c}.{r}@x{n}.example"], phones=["+31201234567"])
                )
                for c in range(2 * n)
            ]
            project = save_project(
                s,
                owner,
                ProjectInput(
                    relation_id=relation.id,
                    name=f"Project {n}-{r}",
                    contact_ids=[c.id for c in contacts[:n]],
                    responsible_user_id=owner.id,
                    choices={"type": choices["type"], "status": choices["status"], "chance": choices["chance"]},
                ),
            )
            set_linked(s, project, [owner.id, *(u.id for u in others)], [group.id])
            for a in range(n):
                save_activity(s, owner, project, ActivityInput(title=f"A{a}", assigned_user_id=owner.id))
                add_document(
                    s, app.extensions["hub.blobs"], owner, project, f"d{a}.txt", io.BytesIO(b"%d" % a), None, 1000
                )
            first_project = first_project or project.id
            first_relation = first_relation or relation.id
        return {"project": first_project, "relation": first_relation}


PAGES = [
    "/projects",
    "/projects?sort=relation",
    "/projects/{project}",
    "/projects/{project}/activities",
    "/projects/{project}/documents",
    "/projects/{project}/users",
    "/projects/{project}/edit",
    "/relations",
    "/relations/{relation}",
    "/search?q=relation",
    "/activities",
    "/api/v1/projects",
    "/api/v1/projects/{project}",
    "/api/v1/relations",
    "/api/v1/relations/{relation}/contacts",
]


def _counts(app: Flask, client: FlaskClient, ids: dict[str, int], headers: dict[str, str]) -> dict[str, int]:
    result = {}
    for page in PAGES:
        url = page.format(**ids)
        with counting(app) as statements:
            response = client.get(url, headers=headers if url.startswith("/api/") else {})
        assert response.status_code == 200, url
        result[page] = len(statements)
    return result


def test_pages_issue_the_same_number_of_queries_with_ten_times_the_data(
    app: Flask, db: Database, make_user: Callable[..., User], login: Callable[[FlaskClient, User], FlaskClient]
) -> None:
    from hub.accounts.users import create_token

    owner = make_user("Owner")
    others = [make_user() for _ in range(3)]
    client = login(app.test_client(), owner)
    with db.transaction() as s:
        headers = {"Authorization": "Bearer " + create_token(s, s.get_one(User, owner.id))}
    # The token's last-used time is written once a minute; do that write before counting.
    assert client.get("/api/v1/relations", headers=headers).status_code == 200
    small = _counts(app, client, _seed(db, app, owner, others, 2), headers)
    more_others = [make_user() for _ in range(10)]
    large = _counts(app, client, _seed(db, app, owner, others + more_others, 20), headers)
    grew = {page: (small[page], large[page]) for page in PAGES if large[page] != small[page]}
    assert grew == {}, f"queries grew with the data (small, large): {grew}"
