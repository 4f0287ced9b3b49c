"""What a task needs from its process: the settings, the database, the blob store.

Built lazily from the Celery app's settings, once per worker process.
"""

from __future__ import annotations

from celery import current_app

from hub.blobs import BlobStore
from hub.config import Settings
from hub.db import Database

_db: Database | None = None


def settings() -> Settings:
    return current_app.hub_settings


def database() -> Database:
    global _db
    if _db is None:
        _db = Database(settings().database_url)
    return _db


def blobs() -> BlobStore:
    return BlobStore(settings().documents_dir)


def reset() -> None:
    global _db
    if _db is not None:
        _db.engine.dispose(close=False)
    _db = None
