"""Documents on a project: upload any file (stored by content hash), list, download."""

from __future__ import annotations

import mimetypes
import re
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from hub.blobs import BlobStore, TooLarge
from hub.crm.access import project_visible
from hub.errors import NotFound, ValidationError
from hub.i18n import _
from hub.models import Document, Project, User

_UNSAFE = re.compile(r"[\x00-\x1f/\\]+")


def clean_filename(name: str) -> str:
    """Keep the user's file name but drop path parts and control characters."""
    name = _UNSAFE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    return (name or "document")[:255]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


def add_document(
    session: Session,
    blobs: BlobStore,
    user: User,
    project: Project,
    filename: str,
    stream: IO[bytes],
    content_type: str | None,
    max_bytes: int,
) -> Document:
    """Store an uploaded file on ``project``. Above ``max_bytes`` nothing is stored and a
    :class:`ValidationError` says what the limit is."""
    name = clean_filename(filename)
    try:
        sha, size = blobs.put(stream, max_bytes)
    except TooLarge:
        raise ValidationError(
            _("The file is larger than the limit of %(limit)s.", limit=human_size(max_bytes)), field="file"
        ) from None
    if size == 0:
        raise ValidationError(_("The file is empty."), field="file")
    guessed = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    document = Document(
        project_id=project.id,
        filename=name,
        content_type=guessed[:120],
        size=size,
        sha256=sha,
        uploaded_by_id=user.id,
    )
    session.add(document)
    session.flush()
    return document


def project_documents(session: Session, project: Project) -> list[Document]:
    query = (
        select(Document)
        .where(Document.project_id == project.id)
        .order_by(Document.uploaded_at.desc(), Document.id.desc())
        .options(joinedload(Document.uploaded_by))
    )
    return list(session.scalars(query))


def get_document(session: Session, user: User, document_id: int) -> Document:
    document = session.scalar(
        select(Document)
        .join(Project, Project.id == Document.project_id)
        .where(Document.id == document_id, project_visible(user))
    )
    if document is None:
        raise NotFound(document_id)
    return document


def delete_document(session: Session, document: Document) -> None:
    # The blob stays: another document may share its content; a sweep can collect orphans.
    session.delete(document)
    session.flush()
