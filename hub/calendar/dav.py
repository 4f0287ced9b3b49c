"""Talking to a CalDAV server: the caldav library's client, with the conditional writes it lacks.

The library finds the user's calendars and reads changes (RFC 6578 sync-collection). Writes go
through its client too (one HTTP session, its authentication), but with the headers that make them
safe, which its own save() does not send: ``If-None-Match: *`` on a create, so a retry after a lost
answer cannot make a second event, and ``If-Match: <etag>`` on an update or delete, so a change
made in the calendar meanwhile is a 412 (a conflict to resolve) instead of being overwritten.
Every HTTP request is counted (``requests``), for ``hub calendar push`` and the benchmark.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import caldav
import niquests
from caldav.elements import dav as dav_elements
from caldav.lib import error as dav_error
from caldav.lib import url as caldav_url
from lxml import etree
from niquests.adapters import HTTPAdapter
from urllib3.contrib.resolver.in_memory import InMemoryResolver
from urllib3.util.ssl_ import create_urllib3_context

from hub.i18n import N_, _, english, shown
from hub.net import AddressRefused, SocketGroup, TooSlow, checked_addresses

TIMEOUT_SECONDS = 30  # the longest one wait (connecting, each read or write) may take
# The longest one whole request may take, however the server drips its answer: a tarpit sending a
# byte every few seconds never trips the timeout above, and held a sync worker (its claim renewed by
# the heartbeat, "syncing" on the health page) for hours. Two minutes is four such waits: room for a
# slow server's REPORT over a big calendar (most answers take well under a second), while a pull or
# push against a dripping server ends at its first request instead of never.
REQUEST_SECONDS = 120
# The same bound where a person waits for the answer ("Test connection", saving the settings): a
# page held for two minutes by a server that drips its answer (or a colleague's tarpit address,
# clicked again and again) held a web worker as long; a calendar's own server answers discovery in
# seconds.
INTERACTIVE_SECONDS = 20
MAX_ANSWER_BYTES = 100_000_000


class CalendarError(Exception):
    """The calendar server could not do what was asked; ``words`` says why in plain words (in the
    reader's language inside a request, English elsewhere). Made with an :func:`~hub.i18n.N_` message,
    ``stored`` keeps it for the sync-health page, shown later in its reader's language.
    ``temporary``: trying again later may help (a 5xx, a timeout); otherwise the settings are wrong."""

    def __init__(self, words: str, *, temporary: bool) -> None:
        super().__init__(english(words))
        self.stored = words
        self.words = shown(words)
        self.temporary = temporary


_RESOURCETYPE = (
    '<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/></d:prop></d:propfind>'
)


def same_resource(a: str, b: str) -> bool:
    """Whether two hrefs (absolute or not, percent-encoded or not, with or without the collection's
    closing slash) name one resource: servers spell the same href differently from one answer to
    the next (Xandikos: ``uid@hub.ics`` in a PROPFIND, ``uid%40hub.ics`` in a REPORT)."""
    return unquote(urlsplit(a).path).rstrip("/") == unquote(urlsplit(b).path).rstrip("/")


def says_missing(tree: Any, url: str) -> bool:
    """Whether a multistatus answer says that the resource at ``url`` itself is not there.

    RFC 4918 has a PROPFIND on a missing resource answered 404; some servers (Xandikos) answer a
    207 Multi-Status instead, whose one ``<response>`` for that href carries ``HTTP/1.1 404``. Read
    as a listing, that is an empty calendar: every event in it would look deleted."""
    if tree is None:
        return False
    for response in tree.iter("{DAV:}response"):
        href = (response.findtext("{DAV:}href") or "").strip()
        status = (response.findtext("{DAV:}status") or "").split()
        if href and same_resource(urljoin(url, href), url) and status[1:2] in (["404"], ["410"]):
            return True
    return False


def _xml(body: bytes) -> Any:
    # As caldav parses its answers: no entities resolved, nothing fetched from the network.
    try:
        return etree.XML(body, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None


_NO_UID_CONFLICT = "{urn:ietf:params:xml:ns:caldav}no-uid-conflict"


@dataclass(frozen=True)
class Answer:
    status: int
    etag: str
    body: bytes

    def uid_conflict(self) -> Any:
        """The CALDAV:no-uid-conflict element of a refused write (RFC 4791 §5.3.2.1: the calendar
        holds an event with this UID at another address), or None. Radicale says so with a 409,
        Xandikos with a 412, others with a 403."""
        if self.status not in (403, 409, 412) or b"no-uid-conflict" not in self.body:
            return None
        tree = _xml(self.body)
        return None if tree is None else next(tree.iter(_NO_UID_CONFLICT), None)


@dataclass(frozen=True)
class Found:
    url: str
    name: str


class _CountingClient(caldav.DAVClient):  # type: ignore[misc,valid-type]
    requests = 0

    def _sync_request(
        self, url: str, method: str = "GET", body: str = "", headers: Mapping[str, str] | None = None
    ) -> Any:
        # Counted per HTTP exchange: the library re-sends a request once after a 401 challenge.
        self.requests += 1
        return super()._sync_request(url, method, body, headers)


def plain(exc: BaseException) -> CalendarError:
    """Any failure talking to the server, as a :class:`CalendarError` in plain words."""
    if isinstance(exc, CalendarError):
        return exc
    if isinstance(exc, dav_error.AuthorizationError):
        return CalendarError(
            N_("The calendar server refused the user name or password (or this user may not use the calendar)."),
            temporary=False,
        )
    if isinstance(exc, dav_error.NotFoundError):
        return CalendarError(
            N_("The calendar was not found on the server: was it deleted? Choose a calendar again."), temporary=False
        )
    if isinstance(exc, dav_error.RateLimitError):
        return CalendarError(N_("The calendar server asks hub to slow down; hub tries again later."), temporary=True)
    name = type(exc).__name__
    if "Timeout" in name or isinstance(exc, TimeoutError):
        return CalendarError(N_("The calendar server did not answer in time; hub tries again later."), temporary=True)
    if "Connection" in name or isinstance(exc, OSError):
        return CalendarError(
            N_(
                "The calendar server could not be reached (%(reason)s); hub tries again later.",
                reason=str(exc)[:200] or name,
            ),
            temporary=True,
        )
    return CalendarError(
        N_("The calendar server answered something hub did not understand: %(reason)s", reason=f"{name}: {exc}"[:300]),
        temporary=True,
    )


def status_error(status: int, what: str) -> CalendarError:
    if status in (401, 403):
        return plain(dav_error.AuthorizationError())
    if status >= 500:
        return CalendarError(
            _(
                "The calendar server had an error (HTTP %(status)s) while %(what)s; hub tries again later.",
                status=status,
                what=what,
            ),
            temporary=True,
        )
    return CalendarError(
        _("The calendar server refused %(what)s (HTTP %(status)s).", status=status, what=what), temporary=False
    )


def too_slow(seconds: float | None = None) -> CalendarError:
    return CalendarError(
        N_(
            "The calendar server is too slow: one request took longer than %(seconds)s seconds; hub tries again later.",
            seconds=int(REQUEST_SECONDS if seconds is None else seconds),
        ),
        temporary=True,
    )


class _TimedResolver(InMemoryResolver):
    """The pinned addresses (urllib3-future's in-memory resolver), connected to as sockets of the
    session's :class:`~hub.net.SocketGroup`: every wait is cut to what is left of the request."""

    def __init__(self, host: str, addresses: list[str], sockets: SocketGroup) -> None:
        super().__init__()
        for address in addresses:
            self.register(host, address)
        self.sockets = sockets

    def create_connection(self, address: tuple[str, int], timeout: Any = None, *args: Any, **kwargs: Any) -> Any:
        left = self.sockets.deadline - time.monotonic()
        if left <= 0:
            raise TooSlow("the server took too long")
        sock = super().create_connection(address, min(left, self.sockets.wait), *args, **kwargs)
        if sock.type != socket.SOCK_STREAM:  # (QUIC is turned off: never a datagram socket)
            sock.close()
            raise OSError("not a stream socket")
        return self.sockets.adopt(sock)


class _TimedAdapter(HTTPAdapter):
    """niquests' adapter, its connections made with ``context``: urllib3-future's own TLS context
    (the same certificate checks as niquests makes by default: its CA bundle, the host name, TLS
    1.2 or later) whose TLS sockets keep the session's deadline (see :meth:`SocketGroup.context`)."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self._timed_context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        pool_kwargs["ssl_context"] = self._timed_context
        super().init_poolmanager(*args, **pool_kwargs)


class _PinnedSession(niquests.Session):
    """An HTTP session that reaches one server only: its name resolves to the addresses checked
    when the session was made (so a DNS answer that changes to 127.0.0.1 later, DNS rebinding,
    reaches nothing), and a redirect to any other server is refused, not followed. Each request
    ends within :data:`REQUEST_SECONDS` (its connecting, TLS, sending and the whole answer),
    however slowly the server drips it; then it fails with :func:`too_slow`."""

    def __init__(
        self, host: str, addresses: list[str], timeout: float = TIMEOUT_SECONDS, bound: float | None = None
    ) -> None:
        self.bound = REQUEST_SECONDS if bound is None else bound  # (read when made: tests shorten it)
        self.sockets = SocketGroup(timeout)
        resolver = _TimedResolver(host, addresses, self.sockets)
        # HTTP/1.1 only: one request at a time on a connection, so the request's deadline is its
        # socket's (HTTP/2's background pings and HTTP/3's UDP would not go through these sockets).
        options: dict[str, Any] = {"resolver": resolver, "disable_http2": True, "disable_http3": True}
        super().__init__(**options)
        context = self.sockets.context(create_urllib3_context())
        for prefix in ("https://", "http://"):
            self.mount(prefix, _TimedAdapter(context, quic_cache_layer=self.quic_cache_layer, **options))
        self.pinned_host = host.lower()
        self.gave_up = False
        # The status of the last answer: caldav parses a 500's HTML page as XML and reports only
        # the parse error; with the status hub can say what happened (see Dav.failure).
        self.last_status = 0
        self.hooks["response"].append(self._seen)

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.last_status = 0  # a failure without an answer must not be read as the last one's
        if self.gave_up:
            # The server was too slow once in this run: the run ends at its next request instead of
            # waiting that long again for each (a push sends a hundred at a time); it is retried later.
            raise too_slow(self.bound)
        # A kept-alive connection carries this request too: its sockets get this request's deadline.
        self.sockets.start(self.bound)
        try:
            return super().request(*args, **kwargs)
        except CalendarError:
            raise
        except Exception as exc:
            if _caused_by_too_slow(exc) or self.sockets.expired():
                self.gave_up = True
                raise too_slow(self.bound) from exc
            raise

    def _seen(self, response: Any, **_kwargs: Any) -> Any:
        # Runs before the body is read: an answer announced larger than any calendar's is refused
        # unread (memory stays bounded).
        self.last_status = int(response.status_code or 0)
        if int(response.headers.get("Content-Length") or 0) > MAX_ANSWER_BYTES:
            response.close()
            raise CalendarError(
                N_(
                    "The calendar server sent an answer larger than %(size)s MB; hub does not read it.",
                    size=MAX_ANSWER_BYTES // 1_000_000,
                ),
                temporary=True,
            )
        return response

    def rebuild_method(self, prepared_request: Any, response: Any) -> None:
        # requests (and niquests) turn a request answered 302 into a GET, as browsers do; RFC 9110
        # §15.4.3 allows that for POST only. A PROPFIND sent to a moved address must arrive as a
        # PROPFIND: Xandikos answers /.well-known/caldav (RFC 6764) with a 302 to its root.
        method = prepared_request.method
        super().rebuild_method(prepared_request, response)
        if response.status_code in (301, 302) and method not in ("GET", "HEAD", "POST"):
            prepared_request.method = method

    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        super().rebuild_auth(prepared_request, response)
        # Called after the library dropped the body of a request redirected by a 301 or 302 (kept
        # only for 307 and 308): a WebDAV request whose method stayed keeps its body (the
        # properties it asks for) too.
        previous = response.request
        if (
            response.status_code in (301, 302)
            and previous is not None
            and prepared_request.method == previous.method
            and previous.method not in ("GET", "HEAD", "POST")
            and prepared_request.body is None
            and previous.body is not None
        ):
            prepared_request.body = previous.body
            for header in ("Content-Type", "Content-Length"):
                if header in previous.headers:
                    prepared_request.headers[header] = previous.headers[header]

    def get_redirect_target(self, resp: Any) -> Any:
        target = super().get_redirect_target(resp)
        if target:
            where = urlsplit(urljoin(str(resp.url), target if isinstance(target, str) else target.decode()))
            if (where.hostname or "").lower() != self.pinned_host:
                raise CalendarError(
                    N_(
                        "The calendar server sent hub to another server (%(host)s); hub does not follow that.",
                        host=where.hostname or "?",
                    ),
                    temporary=False,
                )
        return target


def _caused_by_too_slow(exc: BaseException) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, TooSlow):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def pinned_session(
    url: str, allowed_hosts: str, timeout: float = TIMEOUT_SECONDS, bound: float | None = None
) -> niquests.Session:
    """A session for ``url``'s server if it is a public one (or allowed by ``HUB_MAIL_ALLOWED_HOSTS``,
    see :mod:`hub.net`): a colleague's CalDAV address must not make hub talk to internal services."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = checked_addresses(host, port, allowed_hosts)
    except AddressRefused as refused:
        raise CalendarError(str(refused), temporary=False) from None
    except (OSError, UnicodeError, ValueError):
        raise CalendarError(N_("The server name %(host)s cannot be found.", host=host), temporary=True) from None
    return _PinnedSession(host, addresses, timeout, bound)


def _takes_events(cal: Any) -> bool:
    """Whether the calendar takes events. A collection may be limited to tasks (RFC 4791 §5.2.3
    supported-calendar-component-set: a task list in Xandikos, Nextcloud, iCloud); chosen as "the
    first calendar", every appointment would be refused there. Without the property a calendar
    takes every kind (the library answers so); if it cannot be read, the calendar is kept."""
    try:
        return "VEVENT" in {str(kind).upper() for kind in cal.get_supported_components()}
    except Exception:
        return True


class Dav:
    """One connection to one account's server (one HTTP session, reused for every request)."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        allowed_hosts: str,
        timeout: int = TIMEOUT_SECONDS,
        bound: float | None = None,
    ) -> None:
        """``bound``: how long one request may take in all (:data:`REQUEST_SECONDS` by default,
        :data:`INTERACTIVE_SECONDS` where a person waits for the answer)."""
        session = pinned_session(url, allowed_hosts, timeout, bound)
        self.client = _CountingClient(
            url=url,
            username=username or None,
            password=password or None,
            timeout=timeout,
            enable_rfc6764=False,
            require_tls=False,
            rate_limit_handle=False,
        )
        # The library's own session resolves names freely and follows redirects anywhere.
        with contextlib.suppress(Exception):
            self.client.session.close()
        self.client.session = session

    @property
    def requests(self) -> int:
        return self.client.requests

    def failure(self, exc: BaseException, what: str = "") -> CalendarError:
        """``exc`` in plain words; an answer caldav could not parse is reported by its HTTP status
        when that was an error (a 500's HTML page, a 404), which says more than the parse error."""
        if isinstance(exc, CalendarError | dav_error.AuthorizationError | dav_error.RateLimitError):
            return plain(exc)
        status = getattr(self.client.session, "last_status", 0)
        if status == 404:
            return plain(dav_error.NotFoundError())
        if status >= 400:
            return status_error(status, what or _("reading the calendar"))
        return plain(exc)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead session must not hide the real error
            self.client.close()

    def __enter__(self) -> Dav:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- discovery ---------------------------------------------------------------------------------

    def calendars(self) -> list[Found]:
        """The user's calendars that take events (principal → calendar home → calendars)."""
        try:
            found = self.client.principal().calendars()
        except Exception as exc:
            typed = urlsplit(str(self.client.url))
            if getattr(self.client.session, "last_status", 0) == 404 and not (
                typed.path.endswith("/") or typed.query or typed.fragment
            ):
                # A collection's address typed without its closing slash: a server that does not
                # redirect (Xandikos under a path prefix, /dav for /dav/) answers 404. Once more
                # with the slash, as calendar apps do.
                self.client.url = caldav_url.URL.objectify(str(self.client.url) + "/")
                self.client._principal = None  # the library keeps the first (failed) lookup
                return self.calendars()
            raise self.failure(exc, _("finding the calendars")) from exc
        result = []
        for cal in found:
            if not _takes_events(cal):
                continue
            try:
                name = str(cal.get_display_name() or "")
            except Exception:
                name = ""
            result.append(Found(str(cal.url), name or str(cal.url).rstrip("/").rsplit("/", 1)[-1]))
        return result

    def calendar(self, url: str) -> Any:
        return self.client.calendar(url=url)

    # --- conditional writes ------------------------------------------------------------------------

    def _call(self, url: str, method: str, body: bytes | str = "", headers: dict[str, str] | None = None) -> Answer:
        try:
            response = self.client.request(
                url, method, body.decode() if isinstance(body, bytes) else body, headers or {}
            )
        except dav_error.AuthorizationError as exc:
            if exc.status == 403 and exc.preconditions:
                # Refused for a reason the server names (an RFC 4918 §16 DAV:error: the UID is in
                # use at another address, the calendar takes no events): the caller's to handle,
                # not a refused login (which the library raises 403s as).
                raw_body = exc.body.encode() if isinstance(exc.body, str) else (exc.body or b"")
                return Answer(403, "", raw_body)
            raise plain(exc) from exc
        except Exception as exc:
            raise plain(exc) from exc
        raw = response.raw
        data = raw.encode() if isinstance(raw, str) else (raw or b"")
        etag = str(response.headers.get("ETag") or response.headers.get("etag") or "")
        return Answer(int(response.status), etag, data)

    def create(self, href: str, body: bytes) -> Answer:
        """PUT a new resource; 412 when something is there already (the caller adopts it)."""
        return self._call(href, "PUT", body, {"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"})

    def update(self, href: str, body: bytes, etag: str) -> Answer:
        """PUT over the resource only if it is still the version ``etag`` (412 otherwise)."""
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if etag:
            headers["If-Match"] = etag
        return self._call(href, "PUT", body, headers)

    def get(self, href: str) -> Answer:
        return self._call(href, "GET")

    def holder_of(self, calendar_url: str, uid: str, refused: Answer) -> str:
        """Where the calendar keeps the event with ``uid`` that made ``refused`` a UID conflict: the
        href the server names in its answer (RFC 4791 says it SHOULD), else found by its UID (a
        calendar-query REPORT); "" when it cannot be found."""
        conflict = refused.uid_conflict()
        href = (conflict.findtext("{DAV:}href") or "").strip() if conflict is not None else ""
        if href:
            return urljoin(calendar_url, href)
        try:
            return str(self.calendar(calendar_url).get_event_by_uid(uid).url)
        except dav_error.NotFoundError:
            return ""
        except Exception as exc:
            raise self.failure(exc, _("reading the calendar")) from exc

    def gone(self, collection_url: str) -> bool:
        """Whether the collection at ``collection_url`` is not on the server (any more): a 404 or
        410, or a multistatus saying so for it (see :func:`says_missing`)."""
        answer = self._call(
            collection_url, "PROPFIND", _RESOURCETYPE, {"Depth": "0", "Content-Type": "application/xml"}
        )
        if answer.status in (404, 410):
            return True
        return answer.status == 207 and says_missing(_xml(answer.body), collection_url)

    def delete(self, href: str, etag: str) -> Answer:
        return self._call(href, "DELETE", "", {"If-Match": etag} if etag else {})

    def etags(self, calendar_url: str) -> dict[str, str]:
        """href → ETag of every resource (PROPFIND Depth 1): the comparison for servers without
        sync-collection, as vdirsyncer lists a collection."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
        )
        try:
            response = self.client.propfind(calendar_url, body, depth=1)
        except Exception as exc:
            raise self.failure(exc, _("listing the calendar")) from exc
        if response.status in (404, 410) or says_missing(response.tree, calendar_url):
            # Not an empty calendar: none at all (read as empty, every event would seem deleted).
            raise plain(dav_error.NotFoundError())
        if response.status >= 400:
            raise status_error(response.status, _("listing the calendar"))
        result: dict[str, str] = {}
        for href, props in (response.expand_simple_props([dav_elements.GetEtag()]) or {}).items():
            url = urljoin(calendar_url, href)
            if same_resource(url, calendar_url):
                continue
            result[url] = str(props.get(dav_elements.GetEtag.tag) or "")
        return result
