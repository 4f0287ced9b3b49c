"""The search page reads its results as plain rows (hub.crm.search's ContactHit, RelationHit,
ProjectHit, EmailHit: the columns the list shows, a contact's addresses and numbers, a relation's
own numbers) and renders them in Python (web/search.py search_items). The page must show what the
ORM objects rendered by the template's macro showed, byte for byte: hostile names escaped, the
match marked, the words and dates in the reader's language; on SQLite and PostgreSQL. And a first
page read together with its kind's count (one statement) must count what the count statement counts."""

# ruff: noqa: E501  (the macro the Python code replaced is quoted line for line)
from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask, render_template_string
from flask_login import login_user

from hub.accounts.users import UserInput, create_user
from hub.config import Settings
from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.crm.search import CAP, ContactHit, EmailHit, ProjectHit, RelationHit, search
from hub.db import Database
from hub.mail.privacy import email_visible
from hub.models import Choice, Contact, Email, Mailbox, MailboxEmail, MailSecurity, Project, Relation, User
from tests.conftest import PASSWORD, EnglishClient

HOSTILE = "<script>alert(\"x\")</script> & 'quoted'"
_n = itertools.count(1)

# The template's macro the Python code replaced, fed the ORM objects search used to load: the
# page must show exactly this.
ITEM_MACRO = """\
{% macro item(kind, o) -%}
{% if kind == 'contacts' %}
  <a href="{{ url_for('contacts.show', contact_id=o.id) if contact_page else url_for('relations.show', relation_id=o.relation_id) }}">{{ o.name|highlight(q) }}</a>
  <span class="muted">{% if o.function %}{{ o.function }} · {% endif %}{{ o.relation.name }}</span>
  {% if o.emails or o.phones %}<span class="search-detail">{% for e in o.emails %}{{ e.address|highlight(q) }}{% if not loop.last or o.phones %} · {% endif %}{% endfor %}{% for p in o.phones %}{{ p.number }}{% if not loop.last %} · {% endif %}{% endfor %}</span>{% endif %}
{% elif kind == 'relations' %}
  <a href="{{ url_for('relations.show', relation_id=o.id) }}">{{ o.name|highlight(q) }}</a>
  <span class="muted">{{ o.city|highlight(q) }}</span>
  {% set details = ([_('KvK') ~ ' ' ~ o.coc_number|highlight(q)] if o.coc_number else []) + ([_('VAT') ~ ' ' ~ o.vat_number|highlight(q)] if o.vat_number else []) + o.phones|map(attribute='number')|list %}
  {% if details %}<span class="search-detail">{{ details|join(' · ') }}</span>{% endif %}
{% elif kind == 'projects' %}
  <a href="{{ url_for('projects.show', project_id=o.id) }}">{{ o.name|highlight(q) }}</a>
  <span class="muted">P-{{ o.id }} · {{ o.relation.name }}{% if o.status %} · {{ o.status.name }}{% endif %}{% if o.closed %} · {{ _('closed') }}{% endif %}</span>
  {% set texts = [o.free_text_1, o.free_text_2, o.free_text_3, o.free_text_4]|select|list %}
  {% if texts %}<span class="search-detail">{% for t in texts %}{{ t|highlight(q) }}{% if not loop.last %} · {% endif %}{% endfor %}</span>{% endif %}
{% else %}
  <a href="{{ url_for('mail.show', email_id=o.id) }}">{{ (o.subject or _('(no subject)'))|highlight(q) }}</a>
  <span class="muted">{% if o.from_name %}{{ o.from_name|highlight(q) }} {% endif %}&lt;{{ o.from_address|highlight(q) }}&gt;{% if o.sent_at %} · {{ o.sent_at|datetime }}{% endif %}</span>
{% endif %}
{%- endmacro %}{% for o in items %}<li>{{ item(kind, o) }}</li>{% endfor %}"""

MODELS: dict[str, Any] = {"contacts": Contact, "relations": Relation, "projects": Project, "emails": Email}
HITS: dict[str, Any] = {"contacts": ContactHit, "relations": RelationHit, "projects": ProjectHit, "emails": EmailHit}


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


def _hostile_world(db: Database, language: str) -> User:
    """Every kind matching "zoe", with every variant of what its result shows: hostile names,
    functions, cities, numbers and texts; details present and absent; a status, none, closed; an
    e-mail without subject, without sender's name, without a date."""
    with db.transaction() as s:
        reader = create_user(
            s,
            UserInput(
                email=f"reader{next(_n)}@staff.example",
                name="Reader",
                password=PASSWORD,
                is_admin=True,
                language=language,
            ),
        )
        status = save_choice(s, ChoiceInput(field="status", name=f"Status {HOSTILE}")).id
        loud = save_relation(
            s,
            RelationInput(
                name=f"Zoë {HOSTILE}",
                city='Zoeterwoude "<b>"',
                coc_number="12345678",
                vat_number="NL001234567B01",
                phones=["071 580 0000", "+31 71 580 0001"],
                emails=["info@zoe.example"],
            ),
        )
        quiet = save_relation(s, RelationInput(name="Café Zoe"))
        save_contact(
            s,
            loud,
            ContactInput(
                name=f"Zoë {HOSTILE}",
                function=f"Chef <i>{HOSTILE}</i>",
                emails=["zoe@zoe.example", "ZOE.second@Zoe.example"],
                phones=["030 231 4567", "06 1234 5678"],
            ),
        )
        save_contact(s, quiet, ContactInput(name="Zoe Zonder"))
        save_contact(s, quiet, ContactInput(name="Zoe Alleen Nummer", phones=["010 999 8888"]))
        save_project(
            s,
            reader,
            ProjectInput(
                relation_id=loud.id,
                name=f"Zoë {HOSTILE}",
                closed=True,
                choices={"status": status},
                free_texts={"free_text_1": f"Over zoë {HOSTILE}", "free_text_3": "zoe & co"},
            ),
        )
        save_project(s, reader, ProjectInput(relation_id=quiet.id, name="Zoe plain"))
        box = Mailbox(
            name=f"shared {next(_n)}",
            owner_id=None,
            host="imap.example",
            port=993,
            security=MailSecurity.ssl,
            username=f"box{next(_n)}@example.nl",
            password_encrypted="x",
        )
        s.add(box)
        s.flush()
        for i, (subject, sender, name, sent) in enumerate(
            [
                (f"Zoë {HOSTILE}", "zoe@zoe.example", f"Zoë {HOSTILE}", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
                ("", "zoe@zoe.example", "", None),
                ("Offerte", "karin@zoe.example", "Karin", datetime(2026, 6, 1, 23, 15, tzinfo=UTC)),
            ]
        ):
            mail = Email(
                message_key=f"c:render{next(_n)}",
                message_id=f"<{i}@zoe.example>",
                subject=subject,
                from_address=sender,
                from_name=name,
                sent_at=sent,
                raw_sha256="0" * 64,
            )
            s.add(mail)
            s.flush()
            s.add(MailboxEmail(mailbox_id=box.id, email_id=mail.id))
        return reader


@pytest.mark.parametrize("language", ["en", "nl"])
@pytest.mark.parametrize("contact_page", [True, False])
def test_results_rendered_in_python_are_the_macro_on_orm_objects(
    site: Flask, any_db: Database, language: str, contact_page: bool
) -> None:
    reader = _hostile_world(any_db, language)
    q = "ZOE"
    with any_db.transaction() as s:
        user = s.get_one(User, reader.id)
        results = search(s, user, q, per_page=25, emails_visible=email_visible)
        with site.test_request_context("/search"):
            login_user(user)
            for group in results.groups:
                assert group.items and all(type(hit) is HITS[group.kind] for hit in group.items), group.kind
                # What search loaded before: the ORM objects, with what the macro reads of them.
                objects = [s.get_one(MODELS[group.kind], hit.id) for hit in group.items]
                context = {"q": q, "kind": group.kind, "contact_page": contact_page}
                macro = render_template_string(ITEM_MACRO, items=objects, **context)
                python = render_template_string("{{ search_items(kind, items) }}", items=group.items, **context)
                assert python == macro, group.kind
                # What a reader sees: names as typed, never markup; the match marked.
                assert "<script>" not in python and "<i>" not in python and "<b>" not in python
                assert "<mark>" in python
    contacts, relations, projects, emails = results.groups
    assert [len(g.items) for g in results.groups] == [3, 2, 2, 3]
    # Each contact's own addresses and numbers in the order they were added; a relation's own
    # numbers only (not its contacts').
    loud = next(c for c in contacts.items if c.function)
    assert [e.address for e in loud.emails] == ["zoe@zoe.example", "ZOE.second@Zoe.example"]
    assert [p.number for p in loud.phones] == ["030 231 4567", "06 1234 5678"]
    assert [len(c.phones) for c in contacts.items if not c.function] in ([0, 1], [1, 0])
    assert sorted(len(r.phones) for r in relations.items) == [0, 2]
    assert {p.status.name if p.status else None for p in projects.items} == {f"Status {HOSTILE}", None}
    assert {e.subject for e in emails.items} == {f"Zoë {HOSTILE}", "", "Offerte"}


def test_a_first_page_counts_as_the_count_statement_does(any_db: Database) -> None:
    """The first page of each kind is read with its count in one statement; a kind's later page (or
    another kind's page) has it counted by the count statement. Both give the same totals, exact
    below the cap and "1,000+" above, whatever is paged."""
    with any_db.transaction() as s:
        reader = create_user(
            s, UserInput(email=f"count{next(_n)}@staff.example", name="Counter", password=PASSWORD, is_admin=True)
        )
        many = save_relation(s, RelationInput(name="Veel Zoeker"))
        for i in range(CAP + 5):
            s.add(Contact(relation_id=many.id, name=f"Zoeker {i:04d}"))
        for i in range(7):
            save_relation(s, RelationInput(name=f"Zoeker bv {i}"))
    with any_db.transaction() as s:
        user = s.get_one(User, reader.id)
        overview = search(s, user, "zoeker", per_page=5, emails_visible=email_visible)
        expected = {"contacts": (CAP, True), "relations": (8, False), "projects": (0, False), "emails": (0, False)}
        assert {g.kind: (g.total, g.capped) for g in overview.groups} == expected
        for kind in ("contacts", "relations"):
            alone = search(s, user, "zoeker", kinds=(kind,), per_page=5, emails_visible=email_visible)
            assert {g.kind: (g.total, g.capped) for g in alone.groups} == expected
            group = alone.group(kind)
            assert group is not None and group.next_cursor is not None
            later = search(
                s, user, "zoeker", kinds=(kind,), cursor=group.next_cursor, per_page=5, emails_visible=email_visible
            )
            assert {g.kind: (g.total, g.capped) for g in later.groups} == expected


def test_a_free_choice_is_found_the_moment_it_is_named_so_and_other_dropdowns_never(any_db: Database) -> None:
    """SQLite asks first whether any free choice's name holds the text and leaves the projects'
    look-up of their choices out when none does: a choice renamed to hold it finds its projects on
    the very next search, in any of the five free fields; a status of that name finds nothing."""
    with any_db.transaction() as s:
        reader = create_user(
            s, UserInput(email=f"choice{next(_n)}@staff.example", name="Chooser", password=PASSWORD, is_admin=True)
        )
        relation = save_relation(s, RelationInput(name="Klant"))
        status = save_choice(s, ChoiceInput(field="status", name="Zonnepanelen gepland")).id
        first = save_choice(s, ChoiceInput(field="free_choice_1", name="Warmtepomp")).id
        last = save_choice(s, ChoiceInput(field="free_choice_5", name="Isolatie")).id
        for name, choices in [
            ("Dak", {"free_choice_1": first}),
            ("Gevel", {"free_choice_5": last}),
            ("Status alleen", {"status": status}),
        ]:
            save_project(s, reader, ProjectInput(relation_id=relation.id, name=name, choices=choices))

    def projects(text: str) -> list[str]:
        with any_db.transaction() as s:
            group = search(s, s.get_one(User, reader.id), text, kinds=("projects",)).group("projects")
            assert group is not None
            return sorted(hit.name for hit in group.items)

    assert projects("zonnepanelen") == []
    with any_db.transaction() as s:
        save_choice(s, ChoiceInput(field="free_choice_1", name="Zonnepanelen"), s.get_one(Choice, first))
        save_choice(s, ChoiceInput(field="free_choice_5", name="Zonnepanelen plus"), s.get_one(Choice, last))
    assert projects("zonnepanelen") == ["Dak", "Gevel"]
    assert projects("warmtepomp") == []
    assert projects("PLUS") == ["Gevel"]
