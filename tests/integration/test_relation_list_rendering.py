"""The relation list and the relation page keep their content rendered (web/relations.py
relation_list_html and relation_sheet_html: relations/_list.html and relations/_sheet.html), under
everything it shows. They must give, byte for byte, the HTML the templates gave when they rendered
it on every request (quoted below as they were): hostile names escaped, both languages, every page
of a list (Next and Previous, sorts, filters, tags, an empty list), readers who may and may not
manage the relation; a change to anything shown (a name, an owner, a tag, a contact, a project's
status) shows on the very next request; and each reader's forms carry his own CSRF token. On SQLite
and PostgreSQL."""

# ruff: noqa: E501  (the templates the kept content replaced are quoted line for line)
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from jinja2 import ChoiceLoader, DictLoader
from sqlalchemy import select

from hub.accounts.users import UserInput, save_group, update_user
from hub.config import Settings
from hub.crm import tags as tag_service
from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.models import Choice, Relation, Tag, User
from tests.conftest import EnglishClient, csrf_token, log_in, new_user

HOSTILE = "<script>alert('x')</script> & \"q\" Zoë"

# The templates as they were before their content moved to relations/_list.html and _sheet.html.
OLD_INDEX = """\
{% extends "base.html" %}
{% from "macros/forms.html" import pager %}
{% block title %}{{ _('Relations') }}{% endblock %}
{% block content %}
<div class="toolbar">
  <h1>{{ _('Relations') }}</h1>
  <form method="get">
    <input type="search" name="q" value="{{ request.args.get('q', '') }}" placeholder="{{ _('Name contains…') }}" aria-label="{{ _('Search relations') }}">
    <select name="status" aria-label="{{ _('Status') }}">
      <option value="">{{ _('All statuses') }}</option>
      {% for key, label in status_labels.items() %}<option value="{{ key }}" {% if request.args.get('status') == key %}selected{% endif %}>{{ label }}</option>{% endfor %}
    </select>
    {% if tags %}<select name="tag" aria-label="{{ _('Tag') }}">
      <option value="">{{ _('All tags') }}</option>
      {% for t in tags %}<option value="{{ t.id }}" {% if tag_id == t.id %}selected{% endif %}>{{ t.name }}</option>{% endfor %}
    </select>{% endif %}
    <button type="submit">{{ _('Filter') }}</button>
  </form>
  <a class="button primary" href="{{ url_for('relations.new') }}">{{ _('New relation') }}</a>
</div>
{% if page.items %}
<table>
  <thead><tr>
    <th>{{ sort_link(_('Name'), 'name', sort, args) }}</th>
    <th>{{ sort_link(_('City'), 'city', sort, args) }}</th>
    <th>{{ sort_link(_('Status'), 'status', sort, args) }}</th>
    <th>{{ _('Owner') }}</th>
    <th>{{ sort_link(_('Changed'), 'updated', sort, args) }}</th>
  </tr></thead>
  <tbody>
  {# A row per relation: name, city, status, owner and last change, rendered in Python
     (web/relations.py relation_rows_html). #}
  {{ relation_rows_html(page.items) }}
  </tbody>
</table>
{{ pager(page, args) }}
{% else %}
<div class="card empty">
  <strong>{% if request.args.get('q') or request.args.get('tag') %}{{ _('No relations match your search.') }}{% else %}{{ _('No relations yet.') }}{% endif %}</strong>
  {{ _('Add one, or import a CSV file with your relations and contacts.') }}
  <p><a class="button primary" href="{{ url_for('relations.new') }}">{{ _('New relation') }}</a> <a class="button" href="{{ url_for('imports.index') }}">{{ _('Import') }}</a></p>
</div>
{% endif %}
{% endblock %}
"""
OLD_SHOW = """\
{% extends "base.html" %}
{% from "tags/_box.html" import tag_box with context %}
{% block title %}{{ relation.name }}{% endblock %}
{% block content %}
<div class="toolbar">
  <h1>{{ relation.name }} <span class="badge {{ relation.status.value }}">{{ status_labels[relation.status.value] }}</span></h1>
  <div>
    <a class="button" href="{{ url_for('relations.emails', relation_id=relation.id) }}">{{ _('E-mails') }}</a>
    <a class="button" href="{{ url_for('campaigns.channels', relation_id=relation.id) }}">{{ _('Contact by channel') }}</a>
    <a class="button" href="{{ url_for('relations.edit', relation_id=relation.id) }}">{{ _('Edit') }}</a>
    <a class="button primary" href="{{ url_for('projects.new', relation_id=relation.id) }}">{{ _('New project') }}</a>
  </div>
</div>
<section class="card">
  <dl class="summary">
    <dt>{{ _('Kind') }}</dt><dd>{{ kind_labels[relation.kind.value] }}</dd>
    <dt>{{ _('Address') }}</dt><dd>{{ relation.street }}{% if relation.street %}<br>{% endif %}{{ relation.postcode }} {{ relation.city }} {{ relation.country }}</dd>
    <dt>{{ _('Phone numbers') }}</dt><dd>{% for p in relation.phones %}{{ p.number }}{% if not loop.last %}, {% endif %}{% endfor %}</dd>
    <dt>{{ _('E-mail addresses') }}</dt><dd>{% for e in relation.emails %}<a href="mailto:{{ e.address }}">{{ e.address }}</a>{% if not loop.last %}, {% endif %}{% endfor %}</dd>
    <dt>{{ _('Website') }}</dt><dd>{{ relation.website }}</dd>
    <dt>{{ _('Chamber of Commerce number') }}</dt><dd>{{ relation.coc_number }}</dd>
    <dt>{{ _('VAT number') }}</dt><dd>{{ relation.vat_number }}</dd>
    <dt>{{ _('Mail domain') }}</dt><dd>{{ relation.domain }}</dd>
    <dt>{{ _('Owner') }}</dt><dd>{{ relation.owner.name if relation.owner else '' }}</dd>
    <dt>{{ _('Linked users') }}</dt><dd>
      {% for u in relation.linked_users %}{{ u.name }}{% if not loop.last %}, {% endif %}{% endfor %}
      {% for g in relation.linked_groups %}{% if loop.first and relation.linked_users %}, {% endif %}{{ g.name }}{% if not loop.last %}, {% endif %}{% endfor %}
      {% if not relation.linked_users and not relation.linked_groups %}<span class="muted">{{ _('Nobody linked: visible to all staff') }}</span>{% endif %}
      {% if can_link %} · <a href="{{ url_for('relations.linked', relation_id=relation.id) }}">{{ _('Change') }}</a>{% endif %}
    </dd>
  </dl>
</section>
{{ tag_box(relation.tags, 'relation', relation.id) }}
<section class="card">
  <div class="toolbar"><h2>{{ _('Contacts') }}</h2><a class="button" href="{{ url_for('relations.new_contact', relation_id=relation.id) }}">{{ _('New contact') }}</a></div>
  {% if contacts %}
  <table>
    <thead><tr><th>{{ _('Name') }}</th><th>{{ _('Function') }}</th><th>{{ _('E-mail addresses') }}</th><th>{{ _('Phone numbers') }}</th><th></th></tr></thead>
    <tbody>
    {{ relation_contact_rows_html(contacts, _('Edit'), _('Delete this contact?'), _('Delete')) }}
    </tbody>
  </table>
  {% else %}<p class="empty">{{ _('No contacts yet.') }}</p>{% endif %}
</section>
<section class="card">
  <div class="toolbar"><h2>{{ _('CRM projects') }}</h2><a class="button" href="{{ url_for('projects.new', relation_id=relation.id) }}">{{ _('New project') }}</a></div>
  {% if projects.items %}
  <table>
    <thead><tr><th>{{ _('Name') }}</th><th>{{ _('Status') }}</th><th>{{ _('Responsible') }}</th><th>{{ _('End date') }}</th></tr></thead>
    <tbody>
    {{ relation_project_rows_html(projects.items) }}
    </tbody>
  </table>
  {% if projects.has_next %}<p><a href="{{ url_for('projects.index', q=relation.name) }}">{{ _('Show all projects') }}</a></p>{% endif %}
  {% else %}<p class="empty">{{ _('No projects yet.') }}</p>{% endif %}
</section>
{% if can_link %}
<form method="post" action="{{ url_for('relations.delete', relation_id=relation.id) }}" data-confirm="{{ _('Delete this relation and its contacts?') }}">
  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}"><button type="submit" class="danger">{{ _('Delete relation') }}</button>
</form>
{% endif %}
{% endblock %}
"""

TOKEN = re.compile(r'name="csrf_token" value="([^"]*)"')


def _apps(settings: Settings, database: Database) -> tuple[Flask, Flask]:
    """The app as it is, and the same app with the templates as they were."""
    from web import create_app

    apps = []
    for old in (False, True):
        app = create_app(settings, database=database, TESTING=True)
        app.test_client_class = EnglishClient
        if old:
            templates = {"relations/index.html": OLD_INDEX, "relations/show.html": OLD_SHOW}
            app.jinja_env.loader = ChoiceLoader([DictLoader(templates), app.jinja_env.loader])  # type: ignore[list-item]
        apps.append(app)
    return apps[0], apps[1]


def _seed(database: Database) -> dict[str, Any]:
    owner = new_user(database, f"Owner {HOSTILE}")
    reader, other_reader = new_user(database, "Reader"), new_user(database, "Reader Two")
    admin = new_user(database, "Admin", admin=True)
    with database.transaction() as s:
        group = save_group(s, f"Zuid {HOSTILE}", [reader.id, other_reader.id])
        tag_service.create_tag(s, f"Rood {HOSTILE}", "#cf222e")
        status = save_choice(s, ChoiceInput(field="status", name=f"Lopend {HOSTILE}")).id
        ids = []
        for n in range(61):
            relation = save_relation(
                s,
                RelationInput(
                    name=[f"Jansen {HOSTILE} {n:02}", f"Émile {n}", f"bakker {n}", "Zoë"][n % 4],
                    city=["Utrecht", f"Delft {HOSTILE}", ""][n % 3],
                    status=["lead", "prospect", "customer", "inactive"][n % 4],
                    owner_id=[owner.id, None, reader.id][n % 3],
                ),
            )
            ids.append(relation.id)
            if n % 6 == 0:
                tag_service.tag_relation(s, relation, f"Rood {HOSTILE}, beurs")
        sheet = s.get_one(Relation, ids[0])
        sheet.street, sheet.website, sheet.domain = f"Kade {HOSTILE}", "https://x.example/?a=1&b=<2>", "jansen.example"
        set_relation_linked(s, sheet, [owner.id], [group.id])
        for n, name in enumerate([f"Contact {HOSTILE}", "anna", "Anna", "Émile", "bert"]):
            contact = save_contact(
                s,
                sheet,
                ContactInput(
                    name=name,
                    function=f"Inkoop {HOSTILE}" if n % 2 else "",
                    emails=[f"c{n}'&x@jansen.example"][: n % 2],
                    phones=["020 765 4321", "06 1234 5678"][: n % 3],
                ),
            )
            if n == 0:
                tag_service.tag_contact(s, contact, f"Rood {HOSTILE}, zz")
        boss = s.get_one(User, admin.id)
        for n in range(53):  # more than the 50 the page shows
            save_project(
                s,
                boss,
                ProjectInput(
                    relation_id=sheet.id,
                    name=f"Project {n:02} {HOSTILE}",
                    responsible_user_id=[owner.id, None][n % 2],
                    end_date=date(2027, 1, 1 + n % 28) if n % 3 else None,
                    choices={"status": status if n % 4 else None},
                ),
            )
        empty = save_relation(s, RelationInput(name="Leeg"))
        tag = s.scalars(select(Tag.id).where(Tag.name == "beurs")).one()
    return {
        "owner": owner,
        "reader": reader,
        "other_reader": other_reader,
        "admin": admin,
        "sheet": ids[0],
        "empty": empty.id,
        "tag": tag,
    }


def _normal(text: str) -> str:
    """The page with its CSRF tokens (one per session) left out, after checking they are all one."""
    assert len(set(TOKEN.findall(text))) <= 1, "a page with two CSRF tokens"
    return TOKEN.sub('name="csrf_token" value=""', text)


def _same(new: FlaskClient, old: FlaskClient, url: str, language: str) -> str:
    """``url`` as the app gives it, twice (kept the second time), and as the old templates gave it."""
    headers = {"Accept-Language": language}
    first, again, before = (c.get(url, headers=headers) for c in (new, new, old))
    assert first.status_code == again.status_code == before.status_code, url
    assert first.text == again.text, url
    assert _normal(first.text) == _normal(before.text), url
    return first.text


def _next_links(text: str) -> tuple[str | None, str | None]:
    found = {rel: re.search(rf'<a href="([^"]*)" rel="{rel}">', text) for rel in ("next", "prev")}
    return tuple(m.group(1).replace("&amp;", "&") if m else None for m in (found["next"], found["prev"]))  # type: ignore[return-value]


def test_kept_list_and_relation_pages_are_what_the_templates_gave(any_db: Database, settings: Settings) -> None:
    seeded = _seed(any_db)
    new_app, old_app = _apps(settings, any_db)
    lists = [
        "/relations",
        "/relations?sort=-updated",
        "/relations?sort=city",
        "/relations?sort=-status",
        "/relations?q=" + "%3Cscript%3Ealert(%27x%27)",
        "/relations?q=%22%3E%3Cb%3E&status=lead",
        f"/relations?tag={seeded['tag']}",
        "/relations?tag=abc",
        "/relations?tag=99999999999999999999",
        "/relations?status=customer&sort=-name",
        "/relations?page=2",
        "/relations?q=nothing+matches+this",
        "/relations?sort=bogus&cursor=broken",
    ]
    for who in ("reader", "owner", "admin"):
        new, old = log_in(new_app.test_client(), seeded[who]), log_in(old_app.test_client(), seeded[who])
        for language in ("en", "nl"):
            for url in lists:
                text = _same(new, old, url, language)
                # Every page of it: Next twice, then Previous.
                following, _previous = _next_links(text)
                for _step in range(2):
                    if not following:
                        break
                    text = _same(new, old, following, language)
                    following, previous = _next_links(text)
                    assert previous
                    _same(new, old, previous, language)
            for relation in (seeded["sheet"], seeded["empty"], 999999):
                _same(new, old, f"/relations/{relation}", language)
    reader = log_in(new_app.test_client(), seeded["reader"])
    text = reader.get(f"/relations/{seeded['sheet']}").text
    assert "<script>" not in text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;q&#34; Zoë" in text
    assert "Show all projects" in text and text.count('<a href="/projects/') == 50


def test_a_change_to_anything_shown_shows_at_once(any_db: Database, settings: Settings) -> None:
    seeded = _seed(any_db)
    new_app, old_app = _apps(settings, any_db)
    new, old = log_in(new_app.test_client(), seeded["reader"]), log_in(old_app.test_client(), seeded["reader"])
    page, listed = f"/relations/{seeded['sheet']}", "/relations?sort=-updated"
    shown = {url: _same(new, old, url, "en") for url in (page, listed)}

    def changed(change: Callable[[Any], None]) -> None:
        with any_db.transaction() as s:
            change(s)
        for url in (page, listed):
            now = _same(new, old, url, "en")
            if url == page or change in on_list:
                assert now != shown[url], (change.__name__, url)
            shown[url] = now

    def relation_renamed(s: Any) -> None:
        s.get_one(Relation, seeded["sheet"]).name = f"Renamed {HOSTILE}"

    def owner_renamed(s: Any) -> None:
        owner = s.get_one(User, seeded["owner"].id)
        update_user(s, owner, UserInput(email=owner.email, name=f"New owner {HOSTILE}", is_active=True))

    def tag_renamed(s: Any) -> None:
        tag_service.rename_tag(s, s.get_one(Tag, seeded["tag"]), "Beurs 2027")

    def contact_added(s: Any) -> None:
        save_contact(s, s.get_one(Relation, seeded["sheet"]), ContactInput(name=f"Nieuw {HOSTILE}"))

    def status_renamed(s: Any) -> None:
        s.scalars(select(Choice).where(Choice.name == f"Lopend {HOSTILE}")).one().name = "Klaar"

    # The list shows the relation's name and its owner's, and the tags to filter on.
    on_list = (relation_renamed, owner_renamed, tag_renamed)
    for change in (relation_renamed, owner_renamed, tag_renamed, contact_added, status_renamed):
        changed(change)
    assert "Renamed &lt;script&gt;" in shown[page] and "New owner &lt;script&gt;" in shown[listed]
    assert "Nieuw &lt;script&gt;" in shown[page] and "Klaar" in shown[page] and "Lopend" not in shown[page]


def test_each_reader_gets_his_own_csrf_token_and_a_refused_tag_keeps_his_input(
    any_db: Database, settings: Settings
) -> None:
    seeded = _seed(any_db)
    new_app, old_app = _apps(settings, any_db)
    url = f"/relations/{seeded['sheet']}"
    first, second = (log_in(new_app.test_client(), seeded[who]) for who in ("reader", "other_reader"))
    pages = [first.get(url).text, second.get(url).text]  # the same relation, the same rights: one kept page
    tokens = [set(TOKEN.findall(text)) for text in pages]
    assert all(len(t) == 1 for t in tokens) and tokens[0] != tokens[1]
    assert _normal(pages[0]) == _normal(pages[1]).replace("Reader Two", "Reader")
    # The token on the kept page's tag form is the second reader's own: it is accepted.
    added = second.post(f"{url}/tags", data={"csrf_token": csrf_token(pages[1]), "tag": "gezien"})
    assert added.status_code == 302
    assert first.post(f"{url}/tags", data={"csrf_token": csrf_token(pages[1]), "tag": "x"}).status_code == 400
    # A refused tag: the page again with what was typed and why, as the old page gave it.
    typed = f"{HOSTILE} " + "x" * 70
    old = log_in(old_app.test_client(), seeded["reader"])
    refused = [
        c.post(f"{url}/tags", data={"csrf_token": csrf_token(c.get(url).text), "tag": typed}) for c in (first, old)
    ]
    assert refused[0].status_code == refused[1].status_code == 400
    assert _normal(refused[0].text) == _normal(refused[1].text)
    assert "at most 60 characters" in refused[0].text and "xxxxxxxxxx" in refused[0].text
    # And the next visit shows the kept page again, without the refused input.
    assert _normal(first.get(url).text) == _normal(old.get(url).text) and "at most 60" not in first.get(url).text
