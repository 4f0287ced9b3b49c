"""Dutch and English: the user's profile language, else the browser's, else the default."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from typing import Any

import babel.dates
import babel.numbers
from flask import Flask, g, request
from flask_babel import Babel, get_locale, get_timezone, get_translations
from flask_login import current_user
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from hub.i18n import shown

LANGUAGES = ("nl", "en")


def select_locale() -> str | None:
    # API calls carry their user in g (token auth); pages in Flask-Login's current_user.
    user = g.get("api_user") or (current_user if getattr(current_user, "is_authenticated", False) else None)
    if user is not None and getattr(user, "language", None):
        return str(user.language)
    return request.accept_languages.best_match(LANGUAGES)


def babel_locale(language: str) -> str:
    """The locale days, times and numbers are written in for ``language``: English as it is written
    in Europe (British English: 03/02/2026, 13:00). hub's English readers work for Dutch companies,
    where Babel's plain "en" (American: 2/3/26, 1:00 PM) reads as the 2nd of March a date that is
    the 3rd of February."""
    return "en_GB" if language == "en" else language


def reader_locale() -> str:
    """:func:`babel_locale` of this request's language."""
    return babel_locale(str(get_locale() or "nl"))


def filesize(size: int | None) -> str:
    """A size as people read it, in their locale: "25,0 MB" (nl), "25.0 MB" (en)."""
    locale = reader_locale()
    value = float(size or 0)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            pattern = "#,##0" if unit == "B" else "#,##0.0"
            return f"{babel.numbers.format_decimal(value, pattern, locale=locale)} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def moment(value: datetime | None) -> str:
    """A moment in the user's locale and the company's time zone: "27-11-2026 13:00" (nl)."""
    if value is None:
        return ""
    return _short_moment(value, str(get_locale() or "nl"), get_timezone())


# Lists show a moment per row, and the same moments come back on every request (the same mails, the
# same calls): formatting one took 20 µs of Babel's pattern work each time. What it gives depends
# on the moment, the locale and the zone alone, so it is kept (it is what Flask-Babel's
# format_datetime(value, "short") gives: hub sets no BABEL date formats of its own).
MOMENTS_KEPT = 16384


@functools.lru_cache(maxsize=MOMENTS_KEPT)
def _short_moment(value: datetime, locale: str, zone: Any) -> str:
    return babel.dates.format_datetime(value, "short", tzinfo=zone, locale=babel_locale(locale))


@pass_context
def day(context: Context, value: date | None) -> str:
    """A day in the reader's locale: "27-11-2026" (nl), "27/11/2026" (en); a moment's day as it is on
    the company's clock (a change at 00:30 Dutch time on the 28th is the 28th, not UTC's 27th).
    Language and zone come from the rendering's context (looked up once per page, not per row)."""
    if value is None:
        return ""
    return short_day(value, context.get("current_language") or "nl", context.get("current_zone") or get_timezone())


@functools.lru_cache(maxsize=MOMENTS_KEPT)
def short_day(value: date, locale: str, zone: Any) -> str:
    """A day as the ``day`` filter shows it in ``locale`` (a moment: its day on ``zone``'s clock), for
    code that looks the reader's language and zone up once and shows many days (web.lists.day_of)."""
    # Kept as _short_moment is: a list shows the same few days on every row and every request.
    if isinstance(value, datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zone).date()
    return babel.dates.format_date(value, "short", locale=babel_locale(locale))


def link_pattern(endpoint: str, name: str) -> str:
    """The URL of ``endpoint`` with ``%d`` where its whole-number argument ``name`` goes, for a list to
    fill in per row (``pattern % row.id``): a url_for call per row cost a list page 5 µs a link, the
    ``%`` costs 1. Whatever else the URL holds is kept as url_for builds it (a ``%`` doubled)."""
    from flask import url_for

    url = url_for(endpoint, **{name: _LINK_HOLE})  # type: ignore[arg-type]  # (mypy reads ** as url_for's flags)
    return url.replace("%", "%%").replace(str(_LINK_HOLE), "%d", 1)


# Stands in for the row's id while the pattern is built: a number no route has in its fixed parts.
_LINK_HOLE = 918273645


def init_app(app: Flask) -> None:
    # Stored moments are UTC; people read them on Dutch clocks.
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Europe/Amsterdam")
    Babel(app, locale_selector=select_locale)
    # Flask-Babel's template gettext looks the request's domain, locale and catalogue up again for
    # every string. Macros imported without context use these (the others _template_gettext's):
    # a list macro with a few texts per row made 230 look-ups a page, a fifth of its time.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # (added by the i18n extension)
        gettext=lambda s: request_catalogue().ugettext(s),
        ngettext=lambda s, p, n: request_catalogue().ungettext(s, p, n),
        pgettext=lambda c, s: request_catalogue().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_catalogue().unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.add_template_filter(filesize, "filesize")
    # What workers stored (sync and import errors) in the reader's language: hub.i18n.N_.
    app.add_template_filter(shown, "shown")
    app.add_template_filter(moment, "datetime")
    app.add_template_filter(day, "day")
    app.add_template_global(link_pattern, "link_pattern")

    @app.context_processor
    def _languages() -> dict[str, object]:
        return {
            "current_language": str(get_locale() or "nl"),
            "current_zone": get_timezone(),
            "languages": LANGUAGES,
            **_template_gettext(),
        }


def request_catalogue() -> Any:
    """Flask-Babel's get_translations(), kept on the request's Babel state for the locale it was
    made for: force_locale (mail in a recipient's language) sets another locale, which misses."""
    try:
        state = g._flask_babel
        locale = state.babel_locale
    except (AttributeError, RuntimeError):  # no locale chosen yet in this request, or no request
        return get_translations()
    kept = getattr(state, "hub_catalogue", None)
    if kept is not None and kept[0] is locale:
        return kept[1]
    translations = get_translations()
    state.hub_catalogue = (locale, translations)
    return translations


def _template_gettext() -> dict[str, Any]:
    """``_``/``gettext``/``ngettext`` for one rendering, bound to the request's catalogue.

    Flask-Babel's template functions look up the request's domain, locale and catalogue again for
    every string (several context-local look-ups each), which was a tenth of a list page. These
    look it up once per rendering and behave as Jinja's "newstyle" gettext does (autoescaped,
    always %-formatted). Macros imported without context still find Flask-Babel's, which agree.
    """
    translations = get_translations()

    @pass_context
    def gettext(context: Context, string: str, **variables: Any) -> str:
        return _filled(context, translations.ugettext(string), variables)

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        return _filled(context, translations.ungettext(singular, plural, num), variables)

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext}


def _filled(context: Context, text: str, variables: dict[str, Any]) -> str:
    """A translated text escaped as the template escapes (autoescape: a Markup, so only the variables
    are escaped) and always %-formatted, as Jinja's newstyle gettext does."""
    if context.eval_ctx.autoescape:
        text = Markup(text)
    if not variables and "%" not in text:
        return text  # what formatting would give: a page's texts mostly have no placeholders
    return text % variables
