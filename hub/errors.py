"""The errors services raise; views and the API turn them into pages and JSON."""

from __future__ import annotations


class NotFound(Exception):
    """The object does not exist, or the user may not see it: both look the same (404)."""


class ValidationError(Exception):
    """Bad input. ``errors`` maps a field name (or "" for the whole form) to a message."""

    def __init__(self, errors: dict[str, str] | str, field: str = "") -> None:
        self.errors = {field: errors} if isinstance(errors, str) else dict(errors)
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in self.errors.items()))

    @property
    def field(self) -> str:
        return next(iter(self.errors))

    @property
    def message(self) -> str:
        return next(iter(self.errors.values()))
