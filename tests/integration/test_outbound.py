"""The SMTP relay connection against a real SMTP server: reuse, and a relay's answers sorted
into "later" and "never"."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest

from hub.config import Settings
from hub.outbound import Connection, Refused, Relay, RelayNotConfigured, send_one


def _message(to: str, subject: str = "Hallo") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "hub@example.nl"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Één regel tekst.\n")
    return msg


def test_many_messages_over_one_connection(smtp_server: Any) -> None:
    relay = Relay.from_url(smtp_server.url)
    with Connection(relay) as connection:
        for n in range(5):
            connection.send(
                _message(f"klant{n}@example.com"), sender="bounce@example.nl", recipients=[f"klant{n}@example.com"]
            )
        first = connection._smtp
        assert first is not None
    assert smtp_server.recipients() == [f"klant{n}@example.com" for n in range(5)]
    received = list(smtp_server.messages())
    assert received[0]["Subject"] == "Hallo"
    assert "Één regel" in received[0].get_content()
    assert smtp_server.received[0].mail_from == "bounce@example.nl"


def test_temporary_and_permanent_refusals_are_told_apart(smtp_server: Any) -> None:
    smtp_server.fail_next(451)
    smtp_server.refuse_recipient("weg@example.com", 550)
    with Connection(Relay.from_url(smtp_server.url)) as connection:
        with pytest.raises(Refused) as later:
            connection.send(_message("a@example.com"), sender="b@example.nl", recipients=["a@example.com"])
        assert later.value.temporary and later.value.code == 451
        with pytest.raises(Refused) as never:
            connection.send(_message("weg@example.com"), sender="b@example.nl", recipients=["weg@example.com"])
        assert not never.value.temporary and never.value.code == 550
        # The session is still usable after both refusals.
        connection.send(_message("a@example.com"), sender="b@example.nl", recipients=["a@example.com"])
    assert smtp_server.recipients() == ["a@example.com"]


def test_a_relay_that_hangs_up_is_temporary_and_the_next_message_reconnects(smtp_server: Any) -> None:
    smtp_server.fail_next(421)
    with Connection(Relay.from_url(smtp_server.url)) as connection:
        with pytest.raises(Refused) as hung_up:
            connection.send(_message("a@example.com"), sender="b@example.nl", recipients=["a@example.com"])
        assert hung_up.value.temporary
        connection.send(_message("a@example.com"), sender="b@example.nl", recipients=["a@example.com"])
    assert smtp_server.recipients() == ["a@example.com"]


def test_send_one_uses_the_configured_relay(settings: Settings, smtp_server: Any) -> None:
    with pytest.raises(RelayNotConfigured):
        send_one(settings, _message("a@example.com"))
    configured = settings.with_overrides(smtp_url=smtp_server.url, mail_from="agenda@example.nl")
    send_one(configured, _message("a@example.com"))
    assert smtp_server.received[0].mail_from == "agenda@example.nl"
    assert smtp_server.recipients() == ["a@example.com"]


def test_a_relay_that_is_not_there_is_temporary() -> None:
    from tests.servers import free_port

    relay = Relay.from_url(f"smtp+plain://127.0.0.1:{free_port()}", timeout=2)
    with Connection(relay) as connection, pytest.raises(Refused) as absent:
        connection.send(_message("a@example.com"), sender="b@example.nl", recipients=["a@example.com"])
    assert absent.value.temporary


def test_send_one_takes_the_bare_addresses_from_the_headers(settings: Settings, smtp_server: Any) -> None:
    message = _message('"Klant, Een" <een@example.com>')
    message.replace_header("From", "Hub Agenda <agenda@example.nl>")
    message["Cc"] = "Twee <twee@example.com>"
    send_one(settings.with_overrides(smtp_url=smtp_server.url), message)
    (received,) = smtp_server.received
    assert received.mail_from == "agenda@example.nl"
    assert received.rcpt_tos == ("een@example.com", "twee@example.com")
