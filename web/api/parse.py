"""Reading JSON request bodies into typed values, with errors that name the field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import request

from web.api.errors import ApiError


def body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return data


def text(data: dict[str, Any], name: str, default: str = "") -> str:
    value = data.get(name, default)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string.", name)
    return value


def boolean(data: dict[str, Any], name: str, default: bool = False) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ApiError(400, f"{name} must be true or false.", name)
    return value


def optional_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{name} must be a whole number or null.", name)
    return value


def int_list(data: dict[str, Any], name: str) -> list[int]:
    value = data.get(name, [])
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise ApiError(400, f"{name} must be a list of whole numbers.", name)
    return value


def str_list(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name, [])
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        raise ApiError(400, f"{name} must be a list of strings.", name)
    return value


def optional_date(data: dict[str, Any], name: str) -> date | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a date (YYYY-MM-DD).", name)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"{name} must be a date (YYYY-MM-DD).", name) from None


def optional_amount(data: dict[str, Any], name: str) -> Decimal | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ApiError(400, f'{name} must be an amount such as "1250.00".', name)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ApiError(400, f'{name} must be an amount such as "1250.00".', name) from None
    if not amount.is_finite():
        raise ApiError(400, f'{name} must be an amount such as "1250.00".', name)
    return amount


def query_int(name: str, default: int, *, minimum: int = 1, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number.", name) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ApiError(400, f"{name} must be between {minimum} and {maximum}.", name)
    return value
