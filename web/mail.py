"""Mail pages: an e-mail shown safely, its attachments and .eml, linking by hand, mailboxes and their health."""

from __future__ import annotations

import io
import json
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, PasswordField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Optional

from hub.accounts.users import active_users
from hub.crm.documents import add_document
from hub.crm.projects import get_project
from hub.errors import NotFound, ValidationError
from hub.mail import quarantine
from hub.mail.html import attachment_headers, download_type, frame_headers, sanitise
from hub.mail.links import link_to_project, unlink_from_project
from hub.mail.mailboxes import MailboxInput, get_mailbox, health_of, mailboxes_for, save_mailbox
from hub.mail.parse import parse_message
from hub.mail.privacy import own_copies, set_private, who_can_see
from hub.mail.read import attachment_bytes, get_attachment, get_email, linked_projects, raw_message, thread_of
from hub.models import Email, Mailbox, MailSharing, Project, Relation, User
from hub.paging import KeysetPage, Sort
from web.context import blobs, database, db_session, installation, settings
from web.forms import optional_text, show_errors
from web.images import proxy_url
from web.security import login_required, user
from web.views import cursor_page, page_arg, posted_id, safe_next

bp = Blueprint("mail", __name__)

# The E-mails tabs' only order, newest first (as the API's e-mail lists and hub.mail.read's tabs).
EMAIL_SORTS = {"date": Sort(Email.sent_at, Email.id, lambda e: e.sent_at, descending=True)}


def email_tab_page(
    me: User, *, project: Project | None = None, relation: Relation | None = None, search: str = ""
) -> KeysetPage[Email]:
    """A project's or relation's E-mails tab, one page by cursor (see hub.mail.read.tab_emails)."""
    from hub.mail.read import tab_emails

    query = tab_emails(me, project=project, relation=relation, search=search)
    page, _sort = cursor_page(query, EMAIL_SORTS, "-date", "-date")
    return page


class MailboxForm(FlaskForm):
    name = StringField(_l("Name"))
    owner_id = SelectField(_l("Owner"), coerce=optional_text, validate_choice=False)
    host = StringField(_l("Server"), validators=[DataRequired()])
    port = IntegerField(_l("Port"), default=993, validators=[DataRequired()])
    security = SelectField(_l("Security"), choices=[("ssl", "SSL/TLS"), ("starttls", "STARTTLS"), ("none", _l("None"))])
    username = StringField(_l("User name"), validators=[DataRequired()])
    password = PasswordField(_l("Password"))
    folders = TextAreaField(_l("Folders (one per line; empty: INBOX and Sent)"))
    sync_since = DateField(_l("First sync reaches back to"), validators=[Optional()])
    poll_interval_seconds = IntegerField(_l("Check every (seconds)"), default=300)
    sharing = RadioField(
        _l("Who sees the mail of this mailbox"),
        choices=[
            (MailSharing.only_me.value, _l("Only me")),
            (MailSharing.colleagues.value, _l("Colleagues who may see the relation or project an e-mail is linked to")),
        ],
        default=MailSharing.only_me.value,
    )
    never_share = TextAreaField(
        _l("Never share mail with these addresses or domains (one per line)"),
        description=_l("For example your doctor, your bank or your family's domain."),
    )


def _mailbox_or_404(mailbox_id: int) -> Mailbox:
    box = get_mailbox(db_session(), mailbox_id)
    me = user()
    if not (me.is_admin or box.owner_id == me.id):
        abort(404)
    return box


@bp.route("/emails/<int:email_id>")
@login_required
def show(email_id: int) -> Any:
    from web.contacts import email_link_reasons

    session = db_session()
    email = get_email(session, user(), email_id)
    copies = own_copies(session, user(), email)
    return render_template(
        "mail/show.html",
        email=email,
        thread=thread_of(session, user(), email),
        projects=linked_projects(session, user(), email),
        reasons=email_link_reasons(email),
        show_images=request.args.get("images") == "1",
        details=json.loads(email.details) if email.details else {},
        owner=bool(copies),
        private=any(row.private for _box, row in copies),
        audience=who_can_see(session, user(), email) if copies else [],
    )


@bp.route("/emails/<int:email_id>/private", methods=["POST"])
@login_required
def private(email_id: int) -> Any:
    """The owner's switch: colleagues do not see this e-mail, whatever it is linked to."""
    session = db_session()
    email = get_email(session, user(), email_id)
    if not set_private(session, user(), email, request.form.get("private") == "1"):
        abort(404)
    return redirect(url_for("mail.show", email_id=email.id))


@bp.route("/emails/<int:email_id>/body")
@login_required
def body(email_id: int) -> Any:
    """The sanitised HTML, only ever inside the sandboxed frame of the e-mail page."""
    email = get_email(db_session(), user(), email_id)
    show_images = request.args.get("images") == "1"
    html = sanitise(email.html_body, proxy_url if show_images else None) if email.html_body else ""
    document = render_template("mail/body.html", html=html, text=email.text_body)
    response = Response(document, mimetype="text/html")
    # CSP (no scripts; images only through hub's proxy, once asked for), no referrer, no caching.
    response.headers.update(frame_headers(show_images))
    return response


@bp.route("/emails/<int:email_id>/raw")
@login_required
def raw(email_id: int) -> Any:
    email = get_email(db_session(), user(), email_id)
    stream = stream_with_context(raw_message(blobs(), email))
    # The sender's bytes, as the quarantined copy and the attachments: sandboxed should a browser
    # ever show rather than save them (an MHTML reader, a type sniffed).
    return Response(
        stream,
        mimetype="message/rfc822",
        headers={
            "Content-Disposition": f'attachment; filename="email-{email.id}.eml"',
            **attachment_headers("message/rfc822"),
        },
    )


@bp.route("/emails/<int:email_id>/attachments/<int:attachment_id>")
@login_required
def attachment(email_id: int, attachment_id: int) -> Any:
    email = get_email(db_session(), user(), email_id)
    item = get_attachment(email, attachment_id)
    response = send_file(
        io.BytesIO(attachment_bytes(blobs(), item)),
        mimetype=download_type(item.content_type),
        as_attachment=True,
        download_name=item.filename,
        max_age=0,
    )
    response.headers.update(attachment_headers(item.content_type))
    return response


@bp.route("/emails/<int:email_id>/attachments/<int:attachment_id>/message")
@login_required
def attached_message(email_id: int, attachment_id: int) -> Any:
    """A forwarded message (message/rfc822 attachment) opened as an e-mail of its own."""
    email = get_email(db_session(), user(), email_id)
    item = get_attachment(email, attachment_id)
    if item.content_type != "message/rfc822":
        abort(404)
    inner = parse_message(attachment_bytes(blobs(), item))
    return render_template("mail/attached.html", email=email, attachment=item, inner=inner)


@bp.route("/emails/<int:email_id>/attachments/<int:attachment_id>/message/<int:index>")
@login_required
def attached_message_part(email_id: int, attachment_id: int, index: int) -> Any:
    """An attachment of a forwarded message."""
    email = get_email(db_session(), user(), email_id)
    item = get_attachment(email, attachment_id)
    if item.content_type != "message/rfc822":
        abort(404)
    parts = parse_message(attachment_bytes(blobs(), item)).attachments
    if not 0 <= index < len(parts):
        abort(404)
    part = parts[index]
    response = send_file(
        io.BytesIO(part.data),
        mimetype=download_type(part.content_type),
        as_attachment=True,
        download_name=part.filename,
        max_age=0,
    )
    response.headers.update(attachment_headers(part.content_type))
    return response


@bp.route("/emails/<int:email_id>/attachments/<int:attachment_id>/save", methods=["POST"])
@login_required
def save_attachment(email_id: int, attachment_id: int) -> Any:
    """One click: the attachment becomes a document of the project."""
    session = db_session()
    email = get_email(session, user(), email_id)
    item = get_attachment(email, attachment_id)
    try:
        project = get_project(session, user(), posted_id(request.form.get("project_id")) or -1)
    except NotFound:
        abort(404)
    with io.BytesIO(attachment_bytes(blobs(), item)) as stream:
        add_document(
            session,
            blobs(),
            user(),
            project,
            item.filename,
            stream,
            download_type(item.content_type),  # (the document is served with the type it is saved with)
            max(settings().upload_max_bytes, item.size),
        )
    return redirect(url_for("projects.documents", project_id=project.id))


@bp.route("/emails/<int:email_id>/link", methods=["POST"])
@login_required
def link(email_id: int) -> Any:
    session = db_session()
    email = get_email(session, user(), email_id)
    try:
        project = get_project(session, user(), posted_id(request.form.get("project_id")) or -1)
    except NotFound:
        abort(404)
    if request.form.get("action") == "unlink":
        unlink_from_project(session, email, project)
    else:
        link_to_project(session, email, project)
    return redirect(safe_next("mail.show", email_id=email.id))


@bp.route("/mail/health")
@login_required
def health() -> Any:
    session = db_session()
    boxes = mailboxes_for(session, user())
    parts = installation()
    from hub.calendar.accounts import account_health_rows
    from hub.campaigns.mailings import mailing_health_rows
    from hub.telephony.sources import all_sources
    from hub.telephony.sources import health_of as source_health

    call_sources = all_sources(session) if user().is_admin else []
    return render_template(
        "mail/health.html",
        boxes=boxes,
        parts=parts,
        health={b.id: health_of(b, user(), workers_alive=parts.workers_alive) for b in boxes},
        quarantine_counts=quarantine.counts(session, [b.id for b in boxes]),
        quarantined=quarantine.quarantined(session, user(), page=page_arg()),
        call_sources=call_sources,
        call_health={s.id: source_health(s, workers_alive=parts.workers_alive) for s in call_sources},
        calendars=account_health_rows(database(), workers_alive=parts.workers_alive),
        mailings=mailing_health_rows(database(), workers_alive=parts.workers_alive),
    )


@bp.route("/mail/quarantine/<int:quarantine_id>/raw")
@login_required
def quarantined_raw(quarantine_id: int) -> Any:
    """The raw message the sync could not store, for its mailbox's owner."""
    message, _box = quarantine.get_quarantined(db_session(), user(), quarantine_id)
    response = send_file(
        io.BytesIO(quarantine.raw_bytes(blobs(), message)),
        mimetype="message/rfc822",
        as_attachment=True,
        download_name=f"quarantined-{message.id}.eml",
        max_age=0,
    )
    response.headers.update(attachment_headers("message/rfc822"))
    return response


@bp.route("/mail/quarantine/<int:quarantine_id>/retry", methods=["POST"])
@login_required
def quarantine_retry(quarantine_id: int) -> Any:
    session = db_session()
    message, box = quarantine.get_quarantined(session, user(), quarantine_id)
    quarantine.ask_retry(session, message, box)
    from workers.enqueue import mailbox_sync_after_commit

    mailbox_sync_after_commit(session, box.id)
    return redirect(url_for("mail.health"))


@bp.route("/mail/mailboxes/<int:mailbox_id>/sync", methods=["POST"])
@login_required
def sync_now(mailbox_id: int) -> Any:
    box = _mailbox_or_404(mailbox_id)
    box.next_attempt_at = None
    from workers.enqueue import mailbox_sync_after_commit

    mailbox_sync_after_commit(db_session(), box.id)
    return redirect(url_for("mail.health"))


def _save_mailbox_view(box: Mailbox | None) -> Any:
    me = user()
    form = MailboxForm(obj=box) if box is not None and request.method == "GET" else MailboxForm()
    owners = [("", str(_l("Shared (all staff)")))] + [(str(u.id), u.name) for u in active_users(db_session())]
    form.owner_id.choices = owners if me.is_admin else [(str(me.id), me.name)]
    if request.method == "GET":
        form.owner_id.data = str(box.owner_id or "") if box is not None else str(me.id)
        if box is not None:
            form.security.data = box.security.value
            form.sharing.data = box.sharing
    if form.validate_on_submit():
        owner = int(form.owner_id.data) if form.owner_id.data else None
        if not me.is_admin:
            owner = me.id  # staff connect their own mailbox only
        data = MailboxInput(
            host=form.host.data or "",
            port=form.port.data or 0,
            security=form.security.data or "ssl",
            username=form.username.data or "",
            password=form.password.data or None,
            owner_id=owner,
            name=form.name.data or "",
            folders=form.folders.data or "",
            sync_since=form.sync_since.data,
            poll_interval_seconds=form.poll_interval_seconds.data or 300,
            sharing=form.sharing.data or MailSharing.only_me.value,
            never_share=form.never_share.data or "",
        )
        try:
            saved = save_mailbox(
                db_session(), settings().secret_key, data, box, allowed_hosts=settings().mail_allowed_hosts
            )
        except ValidationError as error:
            show_errors(form, error)
        else:
            if box is None:  # a new mailbox syncs at once, not when beat next looks
                from workers.enqueue import mailbox_sync_after_commit

                mailbox_sync_after_commit(db_session(), saved.id)
            return redirect(url_for("mail.health"))
    status = 400 if request.method == "POST" else 200
    form.password.data = ""  # never sent back to the browser
    return render_template("mail/mailbox_form.html", form=form, box=box), status


@bp.route("/mail/mailboxes/new", methods=["GET", "POST"])
@login_required
def new_mailbox() -> Any:
    return _save_mailbox_view(None)


@bp.route("/mail/mailboxes/<int:mailbox_id>", methods=["GET", "POST"])
@login_required
def edit_mailbox(mailbox_id: int) -> Any:
    return _save_mailbox_view(_mailbox_or_404(mailbox_id))


# --- pause, resume, remove a mailbox ------------------------------------------------------------------


@bp.route("/mail/mailboxes/<int:mailbox_id>/pause", methods=["POST"])
@login_required
def pause(mailbox_id: int) -> Any:
    from hub.mail.mailboxes import pause_mailbox

    pause_mailbox(db_session(), _mailbox_or_404(mailbox_id))
    return redirect(url_for("mail.health"))


@bp.route("/mail/mailboxes/<int:mailbox_id>/resume", methods=["POST"])
@login_required
def resume(mailbox_id: int) -> Any:
    from hub.mail.mailboxes import resume_mailbox
    from workers.enqueue import mailbox_sync_after_commit

    box = _mailbox_or_404(mailbox_id)
    resume_mailbox(db_session(), box)
    mailbox_sync_after_commit(db_session(), box.id)  # on where it stopped, at once
    return redirect(url_for("mail.health"))


class RemoveMailboxForm(FlaskForm):
    mail = RadioField(
        _l("Its e-mails"),
        choices=[
            ("keep", _l("Keep them: they stay on relations and projects, seen by the same people as now")),
            ("delete", _l("Delete them (e-mails another mailbox also holds stay)")),
        ],
        validators=[DataRequired(_l("Choose whether to keep its e-mails."))],
    )


@bp.route("/mail/mailboxes/<int:mailbox_id>/remove", methods=["GET", "POST"])
@login_required
def remove(mailbox_id: int) -> Any:
    """Ask first: keep the mailbox's e-mails, or delete them; then remove it."""
    from hub.mail.mailboxes import remove_mailbox
    from workers.enqueue import mailbox_sync_after_commit

    box = _mailbox_or_404(mailbox_id)
    form = RemoveMailboxForm()
    if form.validate_on_submit():
        remove_mailbox(db_session(), box, keep_mail=form.mail.data == "keep")
        # Its folders (and mail, if asked) are cleared in batches by the worker, not in this request.
        mailbox_sync_after_commit(db_session(), box.id)
        return redirect(url_for("mail.health", removed=1))
    status = 400 if request.method == "POST" else 200
    return render_template("mail/remove_mailbox.html", form=form, box=box), status
