"""hub: the CRM integration hub's domain, importable without Flask or Celery."""

__version__ = "0.1.0"
