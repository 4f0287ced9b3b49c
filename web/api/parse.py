"""Reading JSON request bodies and query strings into typed values, with errors that name the field.

A wrong type is refused here (400, the field named) rather than coerced, so an integration that
sends "abc" for an amount or "1-2-2026" for a date learns so instead of storing something else.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import request

from hub.i18n import _
from web.api.errors import ApiError

# date.fromisoformat also takes "20260201" and week dates; the API promises YYYY-MM-DD only.
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, _("The request body must be a JSON object."))
    return data


def text(data: dict[str, Any], name: str, default: str = "") -> str:
    value = data.get(name, default)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, _("%(name)s must be a string.", name=name), name)
    return value


def boolean(data: dict[str, Any], name: str, default: bool = False) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ApiError(400, _("%(name)s must be true or false.", name=name), name)
    return value


def optional_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, _("%(name)s must be a whole number or null.", name=name), name)
    return value


def int_list(data: dict[str, Any], name: str) -> list[int]:
    value = data.get(name, [])
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise ApiError(400, _("%(name)s must be a list of whole numbers.", name=name), name)
    return value


def str_list(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name, [])
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        raise ApiError(400, _("%(name)s must be a list of strings.", name=name), name)
    return value


def optional_date(data: dict[str, Any], name: str) -> date | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str) or not _DATE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, _("%(name)s must be a date (YYYY-MM-DD).", name=name), name) from None


def optional_amount(data: dict[str, Any], name: str) -> Decimal | None:
    """An amount as a JSON string ("1250.00") or number; the service rounds it to cents."""
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidOperation(value)
        amount = Decimal(str(value).strip())
        if not amount.is_finite():
            raise InvalidOperation(value)
    except InvalidOperation:
        raise ApiError(400, _('%(name)s must be an amount such as "1250.00".', name=name), name) from None
    return amount


def query_int(name: str, default: int, *, minimum: int = 1, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, _("%(name)s must be a whole number.", name=name), name) from None
    if value < minimum or (maximum is not None and value > maximum):
        if maximum is None:
            raise ApiError(400, _("%(name)s must be at least %(minimum)s.", name=name, minimum=minimum), name)
        message = _(
            "%(name)s must be between %(minimum)s and %(maximum)s.", name=name, minimum=minimum, maximum=maximum
        )
        raise ApiError(400, message, name)
    return value


def query_flag(name: str) -> bool:
    """A yes/no query parameter: 1/true/yes are yes, anything else (or absent) is no."""
    return request.args.get(name, "").lower() in {"1", "true", "yes"}
