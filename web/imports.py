"""Import relations from a CSV file in the browser; a worker runs the import."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField

from hub.crm.documents import human_size
from hub.crm.import_jobs import create_import_job, get_import_job, recent_import_jobs
from hub.errors import ValidationError
from web.context import blobs, db_session, settings
from web.forms import show_errors
from web.security import login_required, user
from workers.enqueue import import_job_after_commit

bp = Blueprint("imports", __name__)


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"))


@bp.route("/import", methods=["GET", "POST"])
@login_required
def index() -> Any:
    form = ImportForm()
    session = db_session()
    if form.validate_on_submit():
        upload = form.file.data
        if upload is None or not upload.filename:
            form.file.errors = [str(_l("Choose a CSV file to import."))]
        else:
            try:
                job = create_import_job(
                    session, blobs(), user(), upload.filename, upload.stream, settings().upload_max_bytes
                )
            except ValidationError as error:
                show_errors(form, error)
            else:
                import_job_after_commit(session, job.id)
                return redirect(url_for("imports.show", job_id=job.id))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "imports/index.html",
        form=form,
        jobs=recent_import_jobs(session, user()),
        limit=human_size(settings().upload_max_bytes),
    ), status


@bp.route("/import/<int:job_id>")
@login_required
def show(job_id: int) -> Any:
    job = get_import_job(db_session(), user(), job_id)
    return render_template("imports/show.html", job=job)
