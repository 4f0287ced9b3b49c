"""Which network addresses hub may connect to on a user's behalf.

A mailbox's host and port, and the remote images of an e-mail, are chosen by users or by senders;
without a check the server would connect wherever they point it: to its own loopback services, to the
office network behind the firewall, to the cloud's metadata address. So every such connection first
resolves the name and refuses any address that is not public, unless an administrator allowed it in
``HUB_MAIL_ALLOWED_HOSTS`` (one list for mail servers and the image proxy: one mechanism to reason about).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hub.i18n import _

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# NAT64 embeds an IPv4 address in IPv6 (RFC 6052); judge the IPv4 address it carries.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class AddressRefused(Exception):
    """The host resolves to an address hub must not connect to; the message says so in plain words."""


@dataclass(frozen=True)
class AllowedEntry:
    """One entry of the allow-list: a host name or a network, on any port (``port`` None) or one port."""

    name: str | None
    network: IPNetwork | None
    port: int | None

    def allows(self, host: str, address: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.name is not None:
            return self.name == _normal_name(host)
        assert self.network is not None
        # ::ffff:10.0.0.5 is 10.0.0.5: an IPv4 network entry covers its IPv4-mapped form too.
        forms = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            forms.append(address.ipv4_mapped)
        return any(form.version == self.network.version and form in self.network for form in forms)


def parse_allowed(allowed: str) -> list[AllowedEntry]:
    """Parse ``"imap.internal, 10.0.0.0/8, 192.168.1.5:993, [::1]:143"``; ValueError names a bad entry."""
    entries = []
    for raw in allowed.split(","):
        item = raw.strip()
        if item:
            entries.append(_parse_entry(item))
    return entries


def _parse_entry(item: str) -> AllowedEntry:
    host, port = item, None
    if item.startswith("["):
        # [IPv6] or [IPv6]:port, the URL way of putting a port after an IPv6 address.
        end = item.find("]")
        if end < 0:
            raise ValueError(f"{item!r}: missing ']'")
        host, rest = item[1:end], item[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{item!r}: expected ':port' after ']'")
            port = _port(item, rest[1:])
    elif item.count(":") == 1:
        host, port_text = item.split(":")
        port = _port(item, port_text)
    try:
        return AllowedEntry(None, ipaddress.ip_network(host, strict=False), port)
    except ValueError:
        pass
    name = _normal_name(host)
    if not name or not all(part and part.replace("-", "").replace("_", "").isalnum() for part in name.split(".")):
        raise ValueError(f"{item!r} is not a host name, IP address or network")
    return AllowedEntry(name, None, port)


def _port(item: str, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{item!r}: the port must be a number from 1 to 65535")
    return int(text)


def _normal_name(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def internal_kind(address: IPAddress) -> str | None:
    """Why ``address`` is not public (loopback, private, link-local, …), or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv6 address that carries an IPv4 one reaches that IPv4 host: judge the IPv4 address.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return internal_kind(embedded)
        if address.is_site_local:
            return "private"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        # What is left and still not global: shared carrier-grade NAT space (100.64.0.0/10) and the like.
        ("private", not address.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def checked_addresses(host: str, port: int, allowed: str) -> list[str]:
    """Every address ``host`` resolves to, each of them public or allowed; connect to these, not to the name.

    Connecting to the returned addresses (rather than resolving the name again) keeps a name that
    answers with a public address now and ``127.0.0.1`` a moment later (DNS rebinding) out.
    Raises :class:`AddressRefused` in plain words, and ``socket.gaierror`` when the name does not resolve.
    """
    entries = parse_allowed(allowed)
    infos = socket.getaddrinfo(_normal_name(host), port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0])
        address = ipaddress.ip_address(text.split("%")[0])
        if internal_kind(address) and not any(entry.allows(host, address, port) for entry in entries):
            raise AddressRefused(
                _(
                    "The server %(host)s is on an internal network (%(address)s). hub only connects to public "
                    "servers, unless an administrator adds this one to HUB_MAIL_ALLOWED_HOSTS.",
                    host=host,
                    address=str(address),
                )
            )
        if text not in addresses:
            addresses.append(text)
    return addresses


def refused_address(host: str, port: int, allowed: str) -> str | None:
    """Why hub refuses to connect to ``host:port`` in plain words, or None when it may.

    A name that does not resolve is not refused here: it reaches nothing, and the connection attempt
    reports it like any other failure to connect.
    """
    try:
        checked_addresses(host, port, allowed)
    except AddressRefused as refused:
        return str(refused)
    except (OSError, UnicodeError):
        return None
    return None


class NotAWebAddress(ValueError):
    """The URL is not http(s) with a host name."""


class TooSlow(TimeoutError):
    """The whole exchange with a server took longer than it may (see :class:`_TimeLeft`)."""


class _TimeLeft:
    """A socket whose every wait is cut to the time left of the whole exchange.

    A socket's timeout bounds one wait, not the exchange: a server that sends one byte of its
    answer every few seconds (a tarpit, or a hostile sender's image server) never trips it, and
    http.client reads the status line and each header a line at a time, up to 100 headers of 64 kB.
    Such a server held a web worker (the image proxy) or a delivery worker past its claim, for hours.
    Each read and write here first sets the timeout to what is left before ``deadline``
    (time.monotonic()) and fails with :class:`TooSlow` once nothing is."""

    deadline: float = float("inf")
    wait: float | None = None  # the longest one wait may take (the socket's own timeout)

    def _cut(self) -> None:
        if self.deadline == float("inf") or self.gettimeout() == 0.0:  # type: ignore[attr-defined]
            return  # (no deadline, or a non-blocking socket, which never waits)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TooSlow("the server took too long")
        self.settimeout(left if self.wait is None else min(left, self.wait))  # type: ignore[attr-defined]

    def _timed(self, call: Any, *args: Any) -> Any:
        self._cut()
        try:
            return call(*args)
        except TimeoutError as exc:
            # A wait cut to the time left that ran out is the whole exchange's deadline passing.
            if not isinstance(exc, TooSlow) and time.monotonic() >= self.deadline - 0.05:
                raise TooSlow("the server took too long") from exc
            raise

    def recv(self, *args: Any) -> Any:
        return self._timed(super().recv, *args)  # type: ignore[misc]

    def recv_into(self, *args: Any) -> Any:
        return self._timed(super().recv_into, *args)  # type: ignore[misc]

    def send(self, *args: Any) -> Any:
        return self._timed(super().send, *args)  # type: ignore[misc]

    def sendall(self, *args: Any) -> Any:
        return self._timed(super().sendall, *args)  # type: ignore[misc]


class _TimeLeftSocket(_TimeLeft, socket.socket):
    pass


class _TimeLeftTLSSocket(_TimeLeft, ssl.SSLSocket):
    # (ssl.SSLSocket reads and writes through OpenSSL, not through the plain socket's methods: the
    # cut is made here too. Its handshake is bounded as a whole by the timeout set before it.)

    @classmethod
    def _create(cls, sock: Any, *args: Any, **kwargs: Any) -> Any:
        # The deadline of the socket it wraps (TLS from the start, or STARTTLS later) goes on.
        deadline, wait = getattr(sock, "deadline", float("inf")), getattr(sock, "wait", None)
        wrapped = super()._create(sock, *args, **kwargs)  # type: ignore[misc]
        wrapped.deadline, wrapped.wait = deadline, wait
        return wrapped


def time_left(sock: socket.socket, deadline: float, wait: float | None) -> socket.socket:
    """``sock`` (a plain connected socket, taken over) as one whose every wait ends at ``deadline``
    (time.monotonic()) at the latest, and after ``wait`` seconds each; see :class:`_TimeLeft`. Its
    timeout is set for what comes before the first read (a TLS handshake, bounded as a whole)."""
    cut: Any = _TimeLeftSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    cut.deadline, cut.wait = deadline, wait
    left = deadline - time.monotonic()
    if left <= 0:
        cut.close()
        raise TooSlow("the server took too long")
    cut.settimeout(left if wait is None else min(left, wait))
    return cut


def keeping_time_left(context: ssl.SSLContext) -> ssl.SSLContext:
    """``context``, made to wrap sockets into ones that keep the deadline of the :func:`time_left`
    socket they wrap."""
    context.sslsocket_class = _TimeLeftTLSSocket
    return context


def set_deadline(sock: Any, deadline: float, wait: float | None) -> None:
    """Give a socket of :func:`time_left` (or wrapped by :func:`keeping_time_left`'s context) a new
    deadline; ``float("inf")`` lifts it: a plain socket again, whose timeout is ``wait``."""
    if isinstance(sock, _TimeLeft):
        sock.deadline, sock.wait = deadline, wait
        if deadline == float("inf"):
            sock.settimeout(wait)  # type: ignore[attr-defined]


class PinnedHTTPConnection(http.client.HTTPSConnection):
    """HTTP(S) to the addresses :func:`checked_addresses` approved, never to a fresh lookup.

    Resolving the name again could answer 127.0.0.1 this time (DNS rebinding). The name is still
    what goes into Host, SNI and the certificate check. The whole exchange (connecting, TLS, the
    request, the answer) ends at ``deadline`` (time.monotonic()), however the server drips its
    answer: then a read or write raises :class:`TooSlow`, a TimeoutError.
    """

    def __init__(
        self, scheme: str, host: str, port: int, addresses: list[str], timeout: float, deadline: float
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=keeping_time_left(ssl.create_default_context()))
        self._tls = scheme == "https"
        # The Host header leaves out the port when it is the scheme's default.
        self.default_port = 443 if self._tls else 80
        self._addresses = addresses
        self.deadline = deadline

    def _time_left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TooSlow("the server took too long")
        return left if self.timeout is None else min(left, self.timeout)

    def connect(self) -> None:
        error: OSError = OSError("no address to connect to")
        for address in self._addresses:
            try:
                plain = socket.create_connection((address, self.port), self._time_left())
                break
            except TooSlow:
                raise
            except OSError as exc:
                error = exc
        else:
            raise error
        sock = time_left(plain, self.deadline, self.timeout)
        if self._tls:
            sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
        self.sock = sock


def pinned_http(
    url: str, allowed: str, timeout: float, deadline: float | None = None
) -> tuple[PinnedHTTPConnection, str]:
    """A connection to ``url``'s host, pinned to its checked addresses, and the path to request.
    ``timeout`` bounds each wait; ``deadline`` (time.monotonic(); ``timeout`` from now by default)
    the whole exchange.

    Raises :class:`NotAWebAddress` (not http(s) with a host), :class:`AddressRefused` (an internal
    address not in ``allowed``), or OSError/ValueError/UnicodeError (no such host, a bad port).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotAWebAddress(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = checked_addresses(parts.hostname, port, allowed)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if deadline is None:
        deadline = time.monotonic() + timeout
    return PinnedHTTPConnection(parts.scheme, parts.hostname, port, addresses, timeout, deadline), path


class SocketGroup:
    """The sockets of one HTTP session (plain ones, and the TLS ones wrapping them) and the deadline
    they share. A session keeps a connection alive for its next request, so a deadline fixed when the
    socket was made would end a later request early: :meth:`start` gives every socket of the group
    the deadline of the request that begins."""

    def __init__(self, wait: float) -> None:
        self.deadline = float("inf")
        self.wait = wait  # the longest one wait may take
        self.connections = 0  # how many were made (a kept-alive one serves many requests)
        self._sockets: weakref.WeakSet[Any] = weakref.WeakSet()

    def start(self, seconds: float) -> None:
        """A request begins: it, and every connection it opens, must end within ``seconds``."""
        self.deadline = time.monotonic() + seconds
        for sock in list(self._sockets):
            set_deadline(sock, self.deadline, self.wait)

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline - 0.05  # (the margin :class:`_TimeLeft` allows too)

    def adopt(self, sock: socket.socket) -> socket.socket:
        """``sock`` (connected, taken over) as a :func:`time_left` socket of this group."""
        cut: Any = time_left(sock, self.deadline, self.wait)
        cut.group = self
        self._sockets.add(cut)
        self.connections += 1
        return cut

    def context(self, context: ssl.SSLContext) -> ssl.SSLContext:
        """``context``, made to wrap this group's sockets into TLS ones that stay in the group."""
        context.sslsocket_class = _GroupedTLSSocket
        return context


class _GroupedTLSSocket(_TimeLeftTLSSocket):
    @classmethod
    def _create(cls, sock: Any, *args: Any, **kwargs: Any) -> Any:
        group = getattr(sock, "group", None)
        wrapped = super()._create(sock, *args, **kwargs)
        if isinstance(group, SocketGroup):
            wrapped.group = group
            group._sockets.add(wrapped)
        return wrapped
