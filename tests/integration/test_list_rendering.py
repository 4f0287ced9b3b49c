"""The project and relation lists render their rows, their pager and their sort links in Python and
keep the project filter form (web/projects.py project_rows_html and project_filter_form,
web/relations.py relation_rows_html, web/lists.py pager and sort_link). They must give the HTML the
Jinja templates gave: hostile names escaped, dates in the reader's language; and a kept filter
form must show a choice or user added, renamed or deactivated on the very next page, with the
reader's own input kept."""

# ruff: noqa: E501  (the templates the Python code replaced are quoted line for line)
from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from flask_login import login_user
from markupsafe import Markup
from sqlalchemy import select

from hub.accounts.users import UserInput, create_user, update_user
from hub.config import Settings
from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.projects import ProjectInput, project_rows, projects_query, save_project
from hub.crm.relations import RelationInput, relation_rows, relations_query, save_relation
from hub.db import Database
from hub.models import Choice, Project, Relation, RelationStatus, User
from hub.paging import KeysetPage, Page, list_rows
from tests.conftest import PASSWORD, EnglishClient, csrf_token
from web.lists import list_url, sort_link
from web.relations import STATUS_LABELS

HOSTILE = "<script>alert(\"x\")</script> & 'quoted'"
_n = itertools.count(1)

# The rows, pager and sort link as the templates had them before they moved to Python: the
# Python versions must give exactly this.
PROJECT_LOOP = """\
  {% set project_href, relation_href = link_pattern('projects.show', 'project_id'), link_pattern('relations.show', 'relation_id') %}
  {% for p in items %}
    <tr>
      <td><a href="{{ project_href % p.id }}">{{ p.name }}</a>{% if p.closed %} <span class="badge inactive">{{ _('closed') }}</span>{% endif %}</td>
      <td><a href="{{ relation_href % p.relation_id }}">{{ p.relation_name }}</a></td>
      <td>{{ choice_names[p.status_id] if p.status_id else '' }}</td>
      <td>{{ choice_names[p.type_id] if p.type_id else '' }}</td>
      <td>{{ user_names[p.responsible_user_id] if p.responsible_user_id else '' }}</td>
      <td>{{ p.start_date|day }}</td>
      <td>{{ p.end_date|day }}{% if p.end_date and p.end_date_expected %} ({{ _('expected') }}){% endif %}</td>
      <td class="num">{{ p.value|money(p.currency) }}</td>
      <td>{{ p.updated_at|day }}</td>
    </tr>
  {% endfor %}
"""
RELATION_LOOP = """\
  {% set relation_href = link_pattern('relations.show', 'relation_id') %}
  {% for relation in items %}
    <tr>
      <td><a href="{{ relation_href % relation.id }}">{{ relation.name }}</a></td>
      <td>{{ relation.city }}</td>
      <td><span class="badge {{ relation.status.value }}">{{ status_labels[relation.status.value] }}</span></td>
      <td>{{ relation.owner_name or '' }}</td>
      <td>{{ relation.updated_at|day }}</td>
    </tr>
  {% endfor %}
"""
PAGER_MACRO = """\
{% macro pager(page, args) %}
<nav class="pager" aria-label="{{ _('Pages') }}">
{% if page.next_cursor is defined %}
  {% if page.prev_cursor %}<a href="{{ list_url(args, {'before': page.prev_cursor}) }}" rel="prev">← {{ _('Previous') }}</a>{% endif %}
  {% if page.next_cursor %}<a href="{{ list_url(args, {'cursor': page.next_cursor}) }}" rel="next">{{ _('Next') }} →</a>{% endif %}
{% else %}
  {% if page.has_prev %}<a href="{{ list_url(args, {'page': page.page - 1}) }}" rel="prev">← {{ _('Previous') }}</a>{% endif %}
  <span>{{ _('Page %(n)s', n=page.page) }}</span>
  {% if page.has_next %}<a href="{{ list_url(args, {'page': page.page + 1}) }}" rel="next">{{ _('Next') }} →</a>{% endif %}
{% endif %}
</nav>
{% endmacro %}"""
# The sort link as web/lists.py built it with Markup.format.
_SORT_LINK = Markup('<a href="{href}" class="{css}">{label}{arrow}</a>')


def _format_sort_link(label: str, key: str, current: str, args: dict[str, Any]) -> Markup:
    return _SORT_LINK.format(
        href=list_url(args, {"sort": f"-{key}" if current == key else key, "page": 1}),
        css="sort sorted" if current.lstrip("-") == key else "sort",
        label=label,
        arrow=" ▲" if current == key else (" ▼" if current == f"-{key}" else ""),
    )


def person(db: Database, name: str, language: str = "en", *, active: bool = True) -> User:
    with db.transaction() as s:
        return create_user(
            s,
            UserInput(
                email=f"person{next(_n)}@staff.example",
                name=name,
                password=PASSWORD,
                language=language,
                is_admin=True,
                is_active=active,
            ),
        )


def logged_in(app: Flask, user: User) -> FlaskClient:
    client = app.test_client()
    page = client.get("/login")
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 302
    return client


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


def _hostile_projects(db: Database) -> tuple[User, User]:
    """A hostile admin (name, relation, choices) with projects that show every column's variants."""
    admin, gone = person(db, HOSTILE), person(db, "Gone <b>user</b>")
    with db.transaction() as s:
        status = save_choice(s, ChoiceInput(field="status", name=f"Status {HOSTILE}")).id
        kind = save_choice(s, ChoiceInput(field="type", name="Type & <i>kind</i>")).id
        relation = save_relation(s, RelationInput(name=f"Relation {HOSTILE}", city='Den "Haag" <b>', owner_id=gone.id))
        save_relation(s, RelationInput(name="Plain relation", status="customer"))
        for i, (closed, expected, currency, responsible) in enumerate(
            [(False, True, "EUR", admin.id), (True, False, "USD", gone.id), (False, False, "EUR", None)]
        ):
            save_project(
                s,
                admin,
                ProjectInput(
                    relation_id=relation.id,
                    name=f"{HOSTILE} {i}",
                    start_date=date(2026, 3, 1 + i),
                    end_date=date(2026, 12, 31) if i != 2 else None,
                    end_date_expected=expected,
                    value=f"{1234 + i},5" if i != 2 else None,
                    currency=currency,
                    closed=closed,
                    responsible_user_id=responsible,
                    choices={"status": status, "type": kind} if i != 2 else {},
                ),
            )
    with db.transaction() as s:
        update_user(s, s.get_one(User, gone.id), UserInput(email=gone.email, name=gone.name, is_active=False))
    return admin, gone


@pytest.mark.parametrize("language", ["en", "nl"])
def test_rows_rendered_in_python_are_the_template_rows_escaped(site: Flask, any_db: Database, language: str) -> None:
    admin, gone = _hostile_projects(any_db)
    with any_db.transaction() as s:
        reader = s.get_one(User, admin.id)
        reader.language = language
        projects = list_rows(s.connection().execute(project_rows(projects_query(reader))))
        relations = list_rows(s.connection().execute(relation_rows(relations_query(reader))))
        choice_names = dict(s.execute(select(Choice.id, Choice.name)).tuples().all())
        user_names = {admin.id: admin.name, gone.id: gone.name}
        assert len(projects) == 3 and len(relations) == 2
        with site.test_request_context("/projects"):
            login_user(reader)

            both = render_template_string(
                PROJECT_LOOP + "|" + "{{ project_rows_html(items, choice_names, user_names) }}",
                items=projects,
                choice_names=choice_names,
                user_names=user_names,
            )
            relation_both = render_template_string(
                RELATION_LOOP + "|" + "{{ relation_rows_html(items) }}", items=relations, status_labels=STATUS_LABELS
            )
    template_rows, python_rows = both.split("|")
    assert template_rows == "  \n  " + python_rows + "\n"
    relation_template_rows, relation_python_rows = relation_both.split("|")
    assert relation_template_rows == "  \n  " + relation_python_rows + "\n"
    # What a reader sees: the names as typed, never markup; the day and the words in their language.
    assert (
        "<script>" not in python_rows
        and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;quoted&#39;" in python_rows
    )
    assert "Gone &lt;b&gt;user&lt;/b&gt;" in python_rows and "Type &amp; &lt;i&gt;kind&lt;/i&gt;" in python_rows
    assert "Den &#34;Haag&#34; &lt;b&gt;" in relation_both and "<b>" not in relation_both
    if language == "nl":
        assert "01-03-2026" in python_rows and "(verwacht)" in python_rows and "afgesloten" in python_rows
        assert "Klant" in relation_both
    else:
        assert "01/03/2026" in python_rows and "(expected)" in python_rows and ">closed<" in python_rows
        assert "Customer" in relation_both
    assert "USD 1.235,50" in python_rows and "€ 1.234,50" in python_rows


@pytest.mark.parametrize("language", ["en", "nl"])
def test_pager_and_sort_links_built_in_python_are_the_macros_links(site: Flask, language: str) -> None:
    args = {"q": '"><script>x</script>', "status": "a&b", "sort": "name"}
    pages: list[Any] = [
        KeysetPage(items=[1], next_cursor="abc", prev_cursor=None),
        KeysetPage(items=[1], next_cursor="n-1", prev_cursor="p_2"),
        KeysetPage(items=[1], next_cursor=None, prev_cursor="p_3"),
        KeysetPage(items=[], next_cursor=None),
        Page(items=[1], page=1, per_page=25, has_next=True),
        Page(items=[1], page=7, per_page=25, has_next=True),
        Page(items=[1], page=9, per_page=25, has_next=False),
    ]
    calls = "".join(
        f"{{{{ old.pager(pages[{i}], args) }}}}|{{{{ pager(pages[{i}], args) }}}}|" for i in range(len(pages))
    )
    with site.test_request_context("/relations?q=x", headers={"Accept-Language": language}):
        old = site.jinja_env.from_string(PAGER_MACRO).make_module()
        out = render_template_string(
            '{% from "macros/forms.html" import pager, sort_link %}' + calls, pages=pages, args=args, old=old
        )
        for current in ("name", "-name", "updated", "-updated"):
            label = "Naam & <b>" if current == "name" else Markup("Name")
            assert sort_link(label, "name", current, args) == _format_sort_link(label, "name", current, args)
        assert "q=%22%3E%3Cscript%3Ex%3C/script%3E&amp;status=a%26b&amp;sort=-name" in sort_link(
            "N", "name", "name", args
        )
    parts = out.split("|")[:-1]
    assert len(parts) == 2 * len(pages)
    for template_html, python_html in zip(parts[::2], parts[1::2], strict=True):
        assert python_html == template_html
    assert "<script>" not in out and "q=%22%3E%3Cscript%3Ex%3C/script%3E" in out
    assert ("Volgende" in out and "Pagina 7" in out) if language == "nl" else ("Next" in out and "Page 7" in out)


def _options(page: str, name: str) -> list[str]:
    select_html = re.search(rf'<select name="{name}">(.*?)</select>', page, re.S)
    assert select_html, name
    return [html.unescape(o) for o in re.findall(r"<option [^>]*>([^<]*)</option>", select_html.group(1))]


def test_a_kept_filter_form_shows_changed_choices_and_users_at_once_and_keeps_input(
    site: Flask, any_db: Database
) -> None:
    eva, piet = person(any_db, "Eva"), person(any_db, "Piet", "nl")
    with any_db.transaction() as s:
        lead = save_choice(s, ChoiceInput(field="status", name="Lead", sort_order=1))
        save_choice(s, ChoiceInput(field="type", name="Installation"))
    a, b = logged_in(site, eva), logged_in(site, piet)
    url = f"/projects?q={HOSTILE.replace('&', '%26')}&status={lead.id}&open=all"
    for _ in range(2):  # the second time the form comes from what was kept
        page = a.get(url).text
        assert _options(page, "status") == ["All", "No status", "Lead"]
        assert f'<option value="{lead.id}" selected>Lead</option>' in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;quoted&#39;" in page
        assert "<script>alert" not in page
        assert _options(page, "responsible") == ["Anyone", "Eva", "Piet"]
        assert f'responsible={eva.id}&amp;open=1" class="my-open"' in page
    # Another reader of the same list: their own link, their own language, the same options.
    page_b = b.get(url).text
    assert f'responsible={piet.id}&amp;open=1" class="my-open"' in page_b and "Iedereen" in page_b
    assert f'responsible={eva.id}&amp;open=1"' not in page_b
    # Changed in Settings and Users: the next page shows it, for every reader.
    person(any_db, "Anna")
    with any_db.transaction() as s:
        save_choice(s, ChoiceInput(field="status", name="Offer <sent>", sort_order=2))
        save_choice(s, ChoiceInput(field="status", name="Qualified lead", sort_order=1), s.get_one(Choice, lead.id))
        save_choice(
            s,
            ChoiceInput(field="type", name="Installation", active=False),
            s.scalars(select(Choice).where(Choice.name == "Installation")).one(),
        )
        update_user(s, s.get_one(User, piet.id), UserInput(email=piet.email, name="Piet de Vries", is_active=True))
    for client in (a, b):
        page = client.get(url).text
        assert _options(page, "status")[2:] == ["Qualified lead", "Offer <sent>"]
        assert f'<option value="{lead.id}" selected>Qualified lead</option>' in page
        assert _options(page, "type")[1:] == []
        assert _options(page, "responsible")[1:] == ["Anna", "Eva", "Piet de Vries"]
    with any_db.transaction() as s:
        update_user(s, s.get_one(User, piet.id), UserInput(email=piet.email, name="Piet de Vries", is_active=False))
    page = a.get(url).text
    assert _options(page, "responsible")[1:] == ["Anna", "Eva"]
    # A deactivated user filtered on still shows, as selected; the board's form is its own.
    page = a.get(f"/projects?responsible={piet.id}").text
    assert f'<option value="{piet.id}" selected>Piet de Vries</option>' in page
    board = a.get(f"/projects/board?status={lead.id}").text
    assert _options(board, "status")[2:] == ["Qualified lead", "Offer <sent>"]
    assert '<a href="/projects/board">Clear filters</a>' in board


def test_kept_rows_show_a_changed_project_relation_choice_or_user_at_once(site: Flask, any_db: Database) -> None:
    """Rows are kept under everything they show: a rename anywhere shows on the next page, in the
    reader's language, and a project closed or hidden since is shown so (or not at all)."""
    admin, gone = _hostile_projects(any_db)
    with any_db.transaction() as s:
        reader = s.get_one(User, admin.id)
        reader.language = "en"
    client = logged_in(site, admin)
    first = client.get("/projects?sort=name").text
    assert first.count('<a href="/projects/') == 3 and "Gone &lt;b&gt;user&lt;/b&gt;" in first
    relations_page = client.get("/relations").text
    assert "Relation &lt;script&gt;" in relations_page and "Lead" in relations_page
    with any_db.transaction() as s:
        project = s.scalars(select(Project).where(Project.name == f"{HOSTILE} 0")).one()
        project.name = "Renamed <one>"
        status = s.scalars(select(Choice).where(Choice.field == "status")).one()
        status.name = "Status renamed"
        update_user(s, s.get_one(User, gone.id), UserInput(email=gone.email, name="Gone renamed", is_active=False))
        relation = s.scalars(select(Relation).where(Relation.name == f"Relation {HOSTILE}")).one()
        relation.name, relation.status = "Relation renamed", RelationStatus.customer
    again = client.get("/projects?sort=name").text
    assert "Renamed &lt;one&gt;" in again and f"{HOSTILE} 0" not in html.unescape(again)
    assert "Status renamed" in again and "Gone renamed" in again and "Status &lt;script&gt;" not in again
    assert again.count("Relation renamed") == 3
    relations_again = client.get("/relations").text
    assert "Relation renamed" in relations_again and "Relation &lt;script&gt;" not in relations_again
    assert '<span class="badge customer">Customer</span>' in relations_again
    # The same rows for a Dutch reader: their own words and days, not the English ones kept.
    with any_db.transaction() as s:
        s.get_one(User, admin.id).language = "nl"
    dutch = client.get("/projects?sort=name").text
    assert "01-03-2026" in dutch and "(verwacht)" in dutch and "01/03/2026" not in dutch
    assert '<span class="badge customer">Klant</span>' in client.get("/relations").text
