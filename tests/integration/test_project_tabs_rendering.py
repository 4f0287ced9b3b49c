"""A project's E-mails, Calls and Activities tabs read plain values through kept statements and
render their rows (and the opened new-activity form) in Python. They must give exactly the HTML the
templates gave from Project, Email, Call and Activity objects: byte for byte (CSRF tokens aside),
with hostile names, subjects, numbers and texts, in Dutch and English, for an admin, a colleague and
a reader, on every page of lists longer than one page, on SQLite and PostgreSQL. What is hidden stays
hidden: private, withheld and unshared mail, a thread's hidden messages in its count, a project the
reader may not see (404, as a missing one). What is kept is never stale: a user renamed, deactivated
or added, an activity done, shows on the next request."""

# ruff: noqa: E501  (the old templates, verbatim)
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask, render_template_string, request
from flask.testing import FlaskClient
from flask_login import login_user

from hub.config import Settings
from hub.crm.projects import ProjectInput, get_project, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import (
    Activity,
    Call,
    CallSource,
    Email,
    EmailProject,
    EmailRelation,
    Mailbox,
    MailboxEmail,
    Project,
    User,
)
from tests.conftest import EnglishClient, csrf_token, log_in, new_user

HOSTILE = "<script>alert('x')</script> & \"q\" Zoë"
EMAILS = 90  # on the project, as many on the hidden one; each reader sees more than one page of 25
CALLS = 57  # three pages of 25

# The tabs' templates as they were (git: web/templates/projects/*.html before the tabs read plain values).
OLD_EMAILS = """{% extends "projects/_layout.html" %}
{% from "mail/_list.html" import email_list %}
{% block tab %}
{{ email_list(page, threads, args, _('No e-mails yet'), _('E-mails to and from this relation appear here by themselves once mailbox sync is connected.')) }}
{% endblock %}"""
OLD_CALLS = """{% extends "projects/_layout.html" %}
{% from "telephony/_list.html" import call_list %}
{% block tab %}
{{ call_list(page, names, {}, _('No calls yet'), _('Calls with this relation appear here by themselves once the phone system is connected.')) }}
{% endblock %}"""
OLD_ACTIVITIES = """{% extends "projects/_layout.html" %}
{% from "macros/forms.html" import field, form_errors %}
{% block tab %}
{% include "projects/_stranded.html" %}
{% if items %}
<table>
  <thead><tr><th>{{ _('Done') }}</th><th>{{ _('Title') }}</th><th>{{ _('Assigned to') }}</th><th>{{ _('Due date') }}</th><th></th></tr></thead>
  <tbody>
  {% for a in items %}
    {% set overdue = is_overdue(a) %}
    <tr class="{% if a.done %}done{% elif overdue and (current_user.id == project.responsible_user_id or current_user.id == a.assigned_user_id) %}overdue{% endif %}">
      <td><form method="post" action="{{ url_for('activities.toggle_done', activity_id=a.id, next=request.path) }}">
        <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
        <button type="submit" aria-label="{{ _('Mark as not done') if a.done else _('Mark as done') }}">{{ '☑' if a.done else '☐' }}</button>
      </form></td>
      <td>{{ a.title }}{% if a.description %}<br><small class="muted">{{ a.description|truncate(140) }}</small>{% endif %}</td>
      <td>{{ a.assigned_user.name if a.assigned_user else '' }}</td>
      <td class="due">{{ a.due_date or '' }}{% if overdue %} · {{ _('overdue') }}{% endif %}</td>
      <td><a href="{{ url_for('activities.edit', activity_id=a.id) }}">{{ _('Edit') }}</a></td>
    </tr>
  {% endfor %}
  </tbody>
</table>
{% else %}
<p class="empty"><strong>{{ _('No activities yet.') }}</strong>{{ _('Add a to-do for yourself or a colleague below.') }}</p>
{% endif %}
<h2>{{ _('New activity') }}</h2>
<form method="post" novalidate>
  {{ form.hidden_tag() }}
  {{ form_errors(form) }}
  <div class="grid">{{ field(form.title) }}{{ field(form.assigned_user_id) }}{{ field(form.due_date) }}</div>
  {{ field(form.description, rows=3) }}
  <button type="submit" class="primary">{{ _('Add activity') }}</button>
</form>
{% endblock %}"""


def _seed(db: Database) -> dict[str, Any]:
    boss = new_user(db, "Boss", admin=True, language=None)
    reader = new_user(db, "Reader", language=None)
    colleague = new_user(db, f"Colleague {HOSTILE}", language=None)
    gone = new_user(db, "Gone", language=None)
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name=f"Jansen {HOSTILE}"))
        contact = save_contact(s, relation, ContactInput(name=f"Piet {HOSTILE}"))
        project = save_project(
            s,
            s.get_one(User, boss.id),
            ProjectInput(relation_id=relation.id, name=f"Dak {HOSTILE}", responsible_user_id=colleague.id),
        )
        hidden = save_project(
            s, s.get_one(User, boss.id), ProjectInput(relation_id=relation.id, name="Geheim", responsible_user_id=None)
        )
        set_linked(s, hidden, [colleague.id], [])

        def box(owner: User | None, sharing: str) -> Mailbox:
            mailbox = Mailbox(
                name=f"Box {sharing} {owner.id if owner else 0}",
                owner_id=owner.id if owner else None,
                host="mail.example",
                port=993,
                security="ssl",
                username=f"box{owner.id if owner else 0}{sharing}@company.example",
                password_encrypted="",
                sharing=sharing,
            )
            s.add(mailbox)
            s.flush()
            return mailbox

        shared, readers = box(None, "colleagues"), box(reader, "only_me")
        sharing, unshared = box(colleague, "colleagues"), box(colleague, "only_me")
        # Who sees what: the shared box and the reader's own to the reader; the colleague's sharing box
        # unless private or withheld; never the colleague's unshared box.
        where = [(shared, False, False), (sharing, False, False), (sharing, True, False), (sharing, False, True)]
        where += [(unshared, False, False), (readers, False, False)]
        kinds: dict[int, int] = {}
        for n in range(EMAILS * 2):
            mailbox, private, withheld = where[n % len(where)]
            on_hidden = n >= EMAILS  # a thread's message on the hidden project: counts only for who sees it
            email = Email(
                message_key=f"c:{n}",
                message_id=f"<m{n}@example>",
                thread_key=f"<t{n % 7}@example>" if n % 3 else "",
                subject=["", f"Offerte {n} {HOSTILE}", f"Re: {n} \u00e9\u00e8 & <b>"][n % 3],
                from_address=f"o'neil{n}&co@jansen.example",
                from_name="" if n % 4 == 0 else f"Jan {n} {HOSTILE}",
                sent_at=None if n in (5, 6) else now - timedelta(hours=n // 2),  # ties on the moment too
                size=100,
                raw_sha256=f"{n:064x}",
                has_attachments=n % 5 == 0,
            )
            s.add(email)
            s.flush()
            s.add(MailboxEmail(mailbox_id=mailbox.id, email_id=email.id, private=private, withheld=withheld))
            if not on_hidden:
                kinds[email.id] = n % len(where)
            s.add(EmailProject(email_id=email.id, project_id=hidden.id if on_hidden else project.id, how="manual"))
            if n % 2:
                s.add(EmailRelation(email_id=email.id, relation_id=relation.id))
        source = CallSource(name="Centrale", format="asterisk-csv")
        s.add(source)
        s.flush()
        for n in range(CALLS + 2):
            s.add(
                Call(
                    source_id=source.id,
                    call_key=f"k{n}",
                    direction=["inbound", "outbound", "internal", "<b>&'x"][n % 4],
                    number="" if n % 7 == 0 else f"020 <{n}> & '{n}'",
                    e164="" if n % 3 else f"+312012345{n:02d}",
                    started_at=now - timedelta(minutes=5 * (n // 2)),  # pairs at the same moment: the id decides
                    billsec=[0, 59, 61, 3725][n % 4],
                    outcome=["answered", "missed", "busy", "failed", "voicemail", "", 'odd"one'][n % 7],
                    extension=f"<{200 + n}>",
                    user_id=[None, reader.id, colleague.id][n % 3],
                    # (a javascript: link or a file name stored before imports refused them: no link)
                    recording_url=[
                        "",
                        f'https://pbx.example/rec?id={n}&x="<y>"',
                        "",
                        "javascript:alert(1)",
                        "",
                        f"rec-{n}.wav",
                    ][n % 6],
                    contact_id=contact.id if n % 3 else None,
                    relation_id=relation.id if n % 5 else None,
                    project_id=hidden.id if n >= CALLS else project.id,
                )
            )
        long_text = f"{HOSTILE} " * 12
        for n in range(9):
            s.add(
                Activity(
                    project_id=project.id,
                    title=f"Taak {n} {HOSTILE}",
                    description=["", long_text, "kort & <i>"][n % 3],
                    due_date=[None, date(2020, 1, n + 1), date(2999, 1, 1)][n % 3],
                    done=n % 4 == 3,
                    assigned_user_id=[None, reader.id, colleague.id, gone.id][n % 4],
                    created_by_id=boss.id,
                )
            )
        gone_user = s.get_one(User, gone.id)
        gone_user.is_active = False  # his open activities are stranded: shown to who manages the project
    return {
        "project": project.id,
        "hidden": hidden.id,
        "emails": kinds,
        "users": {"Boss": boss, "Reader": reader, "Colleague": colleague},
    }


def _app(settings: Settings, db: Database) -> Flask:
    from web import create_app

    app = create_app(settings, database=db, TESTING=True)
    app.test_client_class = EnglishClient
    return app


def _masked(html: str) -> str:
    """The page without its CSRF tokens (signed per session and moment, not per what is shown)."""
    return re.sub(r'name="csrf_token"( type="hidden")? value="[^"]*"', 'name="csrf_token" value="…"', html)


def _old_page(app: Flask, db: Database, user_id: int, url: str, language: str) -> tuple[int, str]:
    """The tab ``url`` as the old views rendered it, from ORM objects and the old templates."""
    from hub.accounts.users import active_users
    from hub.crm.activities import is_overdue, project_activities, stranded_activities
    from hub.errors import NotFound
    from hub.mail.read import thread_sizes
    from hub.telephony.read import CallFilters, call_names, list_calls
    from web.context import db_session
    from web.mail import email_tab_page
    from web.projects import ActivityForm, _may_manage, _tab_links
    from web.views import list_args, page_arg, search_arg

    with app.test_request_context(url, headers={"Accept-Language": language}):
        session = db_session()
        me = session.get_one(User, user_id)
        login_user(me)
        project_id = int(url.split("/")[2].split("?")[0])
        try:
            project = get_project(session, me, project_id)
        except NotFound:
            return 404, ""
        tab = request.path.rsplit("/", 1)[1]
        common = {"project": project, "tab": tab, "tabs": _tab_links(), "can_manage": _may_manage(project)}
        if tab == "emails":
            page = email_tab_page(me, project=project, search=search_arg())
            threads = thread_sizes(session, me, page.items)
            html = render_template_string(OLD_EMAILS, page=page, threads=threads, args=list_args("q"), **common)
        elif tab == "calls":
            calls = list_calls(session, me, CallFilters(project_id=project.id), page=page_arg())
            html = render_template_string(OLD_CALLS, page=calls, names=call_names(session, calls.items), **common)
        else:
            form = ActivityForm()
            form.assigned_user_id.choices = [("", "—"), *((str(u.id), u.name) for u in active_users(session))]
            form.assigned_user_id.data = str(me.id)
            stranded = stranded_activities(session, project) if _may_manage(project) else []
            items = project_activities(session, project)
            html = render_template_string(
                OLD_ACTIVITIES, form=form, items=items, is_overdue=is_overdue, stranded=stranded, **common
            )
        session.rollback()
        return 200, html


def _pages(client: FlaskClient, project_id: int, language: str) -> dict[str, tuple[int, str]]:
    """Every page of the three tabs, following Next and Previous, searched and by number."""
    seen: dict[str, tuple[int, str]] = {}
    todo = [f"/projects/{project_id}/{tab}" for tab in ("emails", "calls", "activities")] + [
        f"/projects/{project_id}/emails?q=offerte",
        f"/projects/{project_id}/emails?q=%3Cscript%3E",
        f"/projects/{project_id}/emails?page=2",
        f"/projects/{project_id}/emails?cursor=broken",
        f"/projects/{project_id}/calls?page=3",
    ]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        response = client.get(url, headers={"Accept-Language": language})
        seen[url] = (response.status_code, response.text)
        for link in re.findall(r'href="(/projects/\d+/(?:emails|calls)\?[^"]*)"', response.text):
            todo.append(link.replace("&amp;", "&"))
    return seen


def _assert_tabs_render_as_before(app: Flask, db: Database, seeded: dict[str, Any]) -> int:
    compared = 0
    for name, someone in seeded["users"].items():
        client = log_in(app.test_client(), someone)
        for language in ("nl", "en"):
            for url, (status, html) in _pages(client, seeded["project"], language).items():
                old_status, old_html = _old_page(app, db, someone.id, url, language)
                assert status == old_status == 200, (name, url)
                assert _masked(html) == _masked(old_html), (name, language, url)
                compared += 1
    return compared


def test_tabs_render_exactly_as_the_templates_did(any_db: Database, settings: Settings) -> None:
    seeded = _seed(any_db)
    app = _app(settings, any_db)
    compared = _assert_tabs_render_as_before(app, any_db, seeded)
    # E-mails: page 1, 2 (Next), back (Previous), by number, searched twice, a broken cursor; calls: 3
    # pages and by number; activities.
    assert compared >= 3 * 2 * 10
    reader = log_in(app.test_client(), seeded["users"]["Reader"])
    project = seeded["project"]
    emails = reader.get(f"/projects/{project}/emails").text
    assert "<script>" not in emails and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;q&#34;" in emails
    assert 'rel="next"' in emails and 'rel="next"' in reader.get(f"/projects/{project}/calls").text
    # Rows kept: the same page again is the same page.
    assert _masked(reader.get(f"/projects/{project}/emails").text) == _masked(emails)

    # What is kept follows every change: a user renamed (a call's staff, an activity's assignee, the
    # form's choices) and one added; an activity done; the project closed.
    colleague, reader_user = seeded["users"]["Colleague"], seeded["users"]["Reader"]
    new_user(any_db, f"Nieuw {HOSTILE}", language=None)
    with any_db.transaction() as s:
        s.get_one(User, colleague.id).name = f"Renamed {HOSTILE}"
        s.get_one(User, reader_user.id).name = "Reader 2"
        first = s.query(Activity).filter(Activity.project_id == project, Activity.done.is_(False)).first()
        assert first is not None
        first.done = True
        s.get_one(Project, project).closed = True  # the layout's "closed" badge
    _assert_tabs_render_as_before(app, any_db, seeded)
    form_page = reader.get(f"/projects/{project}/activities").text
    assert "Renamed &lt;script&gt;" in form_page and "Nieuw &lt;script&gt;" in form_page
    assert ">Colleague &lt;script&gt;" not in form_page


def test_hidden_mail_and_projects_stay_hidden(any_db: Database, settings: Settings) -> None:
    seeded = _seed(any_db)
    app = _app(settings, any_db)
    project, hidden = seeded["project"], seeded["hidden"]
    # Of every six e-mails: 0 in the shared box, 1 in the colleague's sharing box, 2 the same but
    # private, 3 withheld, 4 in the colleague's unshared box, 5 in the reader's own box.
    sees = {"Boss": {0, 1}, "Reader": {0, 1, 5}, "Colleague": {0, 1, 2, 3, 4}}
    for name, kinds in sees.items():
        client = log_in(app.test_client(), seeded["users"][name])
        shown: list[int] = []
        for url, (_status, html) in _pages(client, project, "en").items():
            if "q=" not in url and "page=" not in url and "broken" not in url and "before=" not in url:
                shown += [int(i) for i in re.findall(r'href="/emails/(\d+)"', html)]
        expected = {key for key, kind in seeded["emails"].items() if kind in kinds}
        assert len(shown) == len(set(shown)) and set(shown) == expected, name  # every page once, none twice
        assert len(expected) > 25  # more than one page
        for tab in ("emails", "calls", "activities"):
            answer, missing = client.get(f"/projects/{hidden}/{tab}"), client.get(f"/projects/999999/{tab}")
            if name == "Reader":  # not linked to the hidden project: as if it did not exist
                assert answer.status_code == missing.status_code == 404 and answer.text == missing.text
            else:
                assert answer.status_code == 200
        calls = client.get(f"/projects/{project}/calls?page=3").text
        assert calls.count('<tr class="call-') == CALLS - 50  # every call of a visible project


def test_new_activity_form_posts_with_its_token_and_keeps_errors(
    any_db: Database, settings: Settings, login: Callable[[FlaskClient, User], FlaskClient]
) -> None:
    seeded = _seed(any_db)
    app = _app(settings, any_db)
    reader = login(app.test_client(), seeded["users"]["Reader"])
    url = f"/projects/{seeded['project']}/activities"
    opened = reader.get(url)
    token = csrf_token(opened.text.split("<h2>")[1])  # the new-activity form's own field
    assert f'<option selected value="{seeded["users"]["Reader"].id}">' in opened.text
    # Sent without a title: refused, the typed text kept, the error shown next to the field.
    refused = reader.post(url, data={"csrf_token": token, "title": "", "description": f"Note {HOSTILE}"})
    assert refused.status_code == 400
    assert "&lt;script&gt;" in refused.text and 'class="field  has-error"' in refused.text
    # Without its token: refused too, nothing saved.
    assert reader.post(url, data={"title": "Zonder token"}).status_code == 400
    saved = reader.post(
        url, data={"csrf_token": token, "title": f"Nieuw {HOSTILE}", "assigned_user_id": "", "due_date": ""}
    )
    assert saved.status_code == 302
    after = reader.get(url).text
    assert f"Nieuw {HOSTILE}".replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")[:20] in after
    assert "Zonder token" not in after
    with any_db.transaction() as s:
        titles = [a.title for a in s.query(Activity).filter(Activity.project_id == seeded["project"])]
    assert f"Nieuw {HOSTILE}" in titles and "Zonder token" not in titles


def test_a_calls_page_beyond_any_call_is_empty_on_both_databases(any_db: Database, settings: Settings) -> None:
    """?page=N of the Calls tab far beyond its calls: an empty page saying so, never an error (the
    largest page number asked an OFFSET of 53 billion, more than PostgreSQL's INTEGER parameter)."""
    seeded = _seed(any_db)
    app = _app(settings, any_db)
    reader = log_in(app.test_client(), seeded["users"]["Reader"])
    for page in (4, 1000, 2**31 - 1):
        response = reader.get(f"/projects/{seeded['project']}/calls?page={page}")
        assert response.status_code == 200, page
        assert '<tr class="call-' not in response.text and "No calls yet" in response.text
