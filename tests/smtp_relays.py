"""Real SMTP relays (aiosmtpd) that behave as the relays companies use do, one behaviour a switch:
Office 365 (STARTTLS before AUTH, AUTH LOGIN only, PIPELINING only after TLS, a recipient limit
answered "452 4.5.3 Too many recipients", "432 4.3.2 Concurrent connections limit exceeded", 30
messages a session), Gmail (implicit TLS on 465, "421 4.7.0 Try again later, closing connection",
multi-line "550-5.7.1" for blocked content), Postfix and Exim (greylisting "451 4.7.1", no
PIPELINING, no 8BITMIME and refusing 8-bit data, no SMTPUTF8, a SIZE limit, a session ended after so
many messages), and certificates hub must refuse (self-signed, issued to another name).

    with started(Behaviour(tls="starttls", login=("user", "pw"), messages_per_session=30), certs) as relay:
        relay.url(certs)   # HUB_SMTP_URL that reaches it, trusting the test CA
        relay.received     # what it took: envelope, options, data, session number
"""

from __future__ import annotations

import asyncio
import datetime
import email
import ipaddress
import ssl
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers import free_port


# Certificates ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Certificates:
    """A private CA with a certificate for 127.0.0.1 and one for another name, and a self-signed one."""

    ca: Path  # the CA's certificate: what ?cafile= trusts
    good: tuple[Path, Path]  # (certificate, key) for 127.0.0.1, issued by the CA
    wrong_name: tuple[Path, Path]  # issued by the CA to relay.elsewhere.example
    self_signed: tuple[Path, Path]  # for 127.0.0.1, issued by nobody


def make_certificates(directory: Path) -> Certificates:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub test CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def leaf(name: str, san: x509.GeneralName, issuer: x509.Certificate | None) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        signer = ca_key if issuer is not None else key
        cert = (
            _builder(subject, issuer.subject if issuer is not None else subject, key)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert_path, key_path

    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    return Certificates(
        ca=ca_path,
        good=leaf("relay", loopback, ca),
        wrong_name=leaf("relay.elsewhere.example", x509.DNSName("relay.elsewhere.example"), ca),
        self_signed=leaf("self-signed", loopback, None),
    )


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
    )


# Behaviours --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Behaviour:
    tls: Literal["", "starttls", "implicit"] = ""
    certificate: Literal["good", "wrong_name", "self_signed"] = "good"
    login: tuple[str, str] | None = None  # required, after STARTTLS
    mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN")
    pipelining: bool = True  # announced (after STARTTLS when the relay has TLS)
    eight_bit: bool = True  # 8BITMIME; without it 8-bit data is refused, as strict relays do
    smtputf8: bool = True
    size: int = 0  # SIZE announced and enforced
    max_recipients: int = 0  # "452 4.5.3 Too many recipients" after this many in one transaction
    greylist: tuple[str, ...] = ()  # these recipients get "451 4.7.1" the first time
    messages_per_session: int = 0  # the session ends after this many messages
    goodbye: bool = False  # ... with "421" to the next MAIL, not by silently closing
    max_sessions: int = 0  # "432 4.3.2 Concurrent connections limit exceeded" beyond this many
    blocked: tuple[str, ...] = ()  # these recipients get a multi-line "550-5.7.1" for the content
    later_at_message: tuple[int, ...] = ()  # these messages (1-based) get Gmail's 421 at DATA
    lost_at_message: tuple[int, ...] = ()  # the connection drops once these have come, unanswered


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    mail_options: tuple[str, ...]
    data: bytes
    session: int
    login: str

    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=default_policy)


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    received: list[Received] = field(default_factory=list)
    greylisted: set[str] = field(default_factory=set)
    sessions: int = 0  # opened so far
    open: int = 0
    messages: int = 0  # DATA ends seen, taken or not


class _Relay(SMTP):
    """aiosmtpd's SMTP server counting its sessions and the messages in each."""

    state: _State

    def connection_made(self, transport: Any) -> None:
        with self.state.lock:
            self.state.sessions += 1
            self.state.open += 1
            self.number = self.state.sessions
        self.in_session = 0
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        with self.state.lock:
            self.state.open -= 1
        super().connection_lost(error)


class _Handler:
    def __init__(self, behaviour: Behaviour, state: _State) -> None:
        self.b = behaviour
        self.state = state

    async def handle_EHLO(
        self, server: _Relay, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        dropped = {"8BITMIME"} if not self.b.eight_bit else set()
        lines = [line for line in responses if line[4:].split(" ")[0].upper() not in dropped]
        if self.b.pipelining and (not self.b.tls or session.ssl is not None):
            lines.insert(1, "250-PIPELINING")
        return lines

    async def handle_MAIL(
        self, server: _Relay, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.state.lock:
            crowded = self.b.max_sessions and self.state.open > self.b.max_sessions
        if crowded:
            _close_soon(server)
            return "432 4.3.2 Concurrent connections limit exceeded"
        if self.b.messages_per_session and server.in_session >= self.b.messages_per_session and self.b.goodbye:
            _close_soon(server)
            return "421 4.7.0 Too many messages for this session, closing connection"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self, server: _Relay, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.b.max_recipients and len(envelope.rcpt_tos) >= self.b.max_recipients:
            return "452 4.5.3 Too many recipients"
        if address in self.b.greylist:
            key = f"{envelope.mail_from} {address}"
            with self.state.lock:
                first = key not in self.state.greylisted
                self.state.greylisted.add(key)
            if first:
                return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: _Relay, session: Session, envelope: Envelope) -> str:
        with self.state.lock:
            self.state.messages += 1
            number = self.state.messages
        data = envelope.original_content or b""
        assert isinstance(data, bytes)
        server.in_session += 1
        if self.b.messages_per_session and server.in_session >= self.b.messages_per_session and not self.b.goodbye:
            _close_soon(server)  # after this message's 250, as Postfix and Office 365 do
        if number in self.b.lost_at_message and isinstance(server.transport, asyncio.Transport):
            server.transport.abort()  # (a relay that dies answers nothing and keeps nothing)
            return "451 4.3.0 never seen"
        if number in self.b.later_at_message:
            _close_soon(server)
            return "421 4.7.0 Try again later, closing connection. (gmail)"
        if not self.b.eight_bit and not data.isascii():
            return "554 5.6.1 Message contains 8-bit data but 8BITMIME was not offered"
        blocked = [address for address in envelope.rcpt_tos if address in self.b.blocked]
        if blocked:
            return (
                "550-5.7.1 [127.0.0.1] Our system has detected that this message is likely\r\n"
                "550-5.7.1 unsolicited mail. To reduce the amount of spam sent, this message\r\n"
                "550 5.7.1 has been blocked. (content policy)"
            )
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else ""
        item = Received(
            str(envelope.mail_from),
            tuple(envelope.rcpt_tos),
            tuple(envelope.mail_options),
            data,
            server.number,
            login,
        )
        with self.state.lock:
            self.state.received.append(item)
        return "250 2.0.0 OK queued"


def _close_soon(server: SMTP) -> None:
    """Close once the reply being given has gone (a relay says its last word, then hangs up)."""
    transport = server.transport
    if transport is not None:
        # (the reply is written before this loop turns again; closing flushes it)
        asyncio.get_running_loop().call_soon(transport.close)


class _Controller(Controller):
    def __init__(self, state: _State, *args: Any, **kwargs: Any) -> None:
        self.state = state
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # (aiosmtpd warns about AUTH without STARTTLS, which on implicit TLS is what is meant)
            warnings.simplefilter("ignore", UserWarning)
            server = _Relay(self.handler, **self.SMTP_kwargs)
        server.state = self.state
        return server


class Relay:
    def __init__(self, behaviour: Behaviour, certificates: Certificates | None) -> None:
        self.behaviour = behaviour
        self.port = free_port()
        self.state = _State()
        kwargs: dict[str, Any] = {}
        server_context: ssl.SSLContext | None = None
        if behaviour.tls:
            assert certificates is not None
            server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert, key = getattr(certificates, behaviour.certificate)
            server_context.load_cert_chain(cert, key)
        if behaviour.tls == "starttls":
            kwargs.update(tls_context=server_context, require_starttls=True)
        if behaviour.login is not None:
            user, password = behaviour.login

            def authenticator(
                server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
            ) -> AuthResult:
                ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
                    user.encode(),
                    password.encode(),
                )
                return AuthResult(success=ok, handled=False, auth_data=auth_data)

            excluded = [m for m in ("LOGIN", "PLAIN") if m not in behaviour.mechanisms]
            kwargs.update(authenticator=authenticator, auth_required=True, auth_exclude_mechanism=excluded)
            if behaviour.tls == "implicit":
                kwargs.update(auth_require_tls=False)  # (the whole session is TLS already)
        self._controller = _Controller(
            self.state,
            _Handler(behaviour, self.state),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=server_context if behaviour.tls == "implicit" else None,
            decode_data=False,
            enable_SMTPUTF8=behaviour.smtputf8,
            data_size_limit=behaviour.size or None,
            **kwargs,
        )

    def url(self, certificates: Certificates | None = None, *, query: str = "") -> str:
        scheme = {"": "smtp+plain", "starttls": "smtp", "implicit": "smtps"}[self.behaviour.tls]
        login = (
            "{}:{}@".format(*(quote(part, safe="") for part in self.behaviour.login)) if self.behaviour.login else ""
        )
        extra = [f"cafile={certificates.ca}"] if certificates is not None and not query else []
        extra += [query] if query else []
        return f"{scheme}://{login}127.0.0.1:{self.port}" + ("?" + "&".join(extra) if extra else "")

    @property
    def received(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)

    def recipients(self) -> list[str]:
        return [address for item in self.received for address in item.rcpt_tos]

    @property
    def sessions(self) -> int:
        with self.state.lock:
            return self.state.sessions

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


@contextmanager
def started(behaviour: Behaviour, certificates: Certificates | None = None) -> Iterator[Relay]:
    relay = Relay(behaviour, certificates)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()
