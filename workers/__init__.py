"""The Celery side of hub: the app factory, beat schedule and thin tasks over hub services."""
