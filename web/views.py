"""Small helpers shared by the page blueprints (argument parsing, list arguments, safe redirects)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import request, url_for


def int_arg(name: str, default: int | None = None) -> int | None:
    raw = request.args.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def page_arg() -> int:
    return max(int_arg("page", 1) or 1, 1)


def list_args(*names: str) -> dict[str, Any]:
    """The current list's query arguments, so sort and page links keep the filters."""
    return {name: request.args[name] for name in names if request.args.get(name)}


def lines(text: str | None) -> list[str]:
    """A textarea with one value per line (or comma-separated) → the values."""
    return [part.strip() for line in (text or "").splitlines() for part in line.split(",") if part.strip()]


def safe_next(default_endpoint: str, **values: Any) -> str:
    target = request.values.get("next", "")
    if target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for(default_endpoint, **values)
