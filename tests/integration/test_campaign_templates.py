"""Templates cannot leave their sandbox; the rate limit holds across workers; messages carry what
the bulk-sender rules ask for (RFC 8058 headers covered by a valid DKIM signature, a VERP return
path whose signature cannot be forged)."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.campaigns import messages, ratelimit
from hub.campaigns.bounces import verp_recipient
from hub.campaigns.mailings import MailingError
from hub.campaigns.render import TemplateProblem, Templates, check, sample_context
from hub.db import Database
from hub.models.campaigns import MailingRecipient
from tests.integration.test_campaign_sending import mailing_settings, make_mailing, run_to_end, seed_contacts

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ contact.__class__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ range.__self__ }}",
    "{% include '/etc/passwd' %}",
    "{% import '/etc/hostname' as h %}",
    "{% extends '/etc/passwd' %}",
    "{{ contact.update({'name': 'x'}) }}",
    "{{ self.__init__.__globals__ }}",
    "{{ config }}",
    "{{ request }}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_escapes_are_refused(template: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        check("Hi", "", template)
    message = str(caught.value)
    assert "root:" not in message and "uid=" not in message and "<module" not in message


def test_a_template_error_says_what_and_where() -> None:
    with pytest.raises(TemplateProblem, match="unknown field"):
        check("Hi {{ contact.nickname }}", "", "x")
    with pytest.raises(TemplateProblem, match="line 2"):
        Templates.compile("Hi", "", "ok\n{% if %}")
    subject, html, text = Templates.compile(
        "Hi {{ contact.first_name }}", "<p>{{ relation.name }}</p>", "{{ contact.name }}"
    ).render({**sample_context(), "relation": {"name": "<script>alert(1)</script>"}})
    assert subject == "Hi Anna"
    assert "<script>" not in html and "&lt;script&gt;" in html  # HTML bodies escape personal fields
    assert text == "Anna de Vries"


def test_a_mailing_with_an_escaping_template_cannot_be_saved(db: Database) -> None:
    with pytest.raises(MailingError, match="not allowed"):
        make_mailing(db, text="{{ ''.__class__.__mro__ }}", scheduled=False)


def test_rate_limit_holds_across_workers(tmp_path: Path, any_db: Database) -> None:
    """Four workers reserving at once never get overlapping slots: the slots of all of them together
    are spaced by the interval (checked on the slots given out, not on a clock)."""
    starts: list[tuple[float, int]] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            start = ratelimit.reserve(any_db, "relay:25", 120, 10, now=1000.0)
            with lock:
                starts.append((start, 10))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    slots = sorted(start + i * 0.5 for start, count in starts for i in range(count))
    assert len(slots) == 200
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) == pytest.approx(0.5)
    assert slots[0] == pytest.approx(1000.0) and slots[-1] == pytest.approx(1000.0 + 199 * 0.5)
    assert ratelimit.next_free(any_db, "relay:25") == pytest.approx(1100.0)


def test_limiter_waits_for_its_slots(any_db: Database) -> None:
    clock = [5000.0]
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock[0] += seconds

    limiter = ratelimit.Limiter(any_db, "relay:2525", 60, sleep=sleep, clock=lambda: clock[0])
    for _ in range(3):
        limiter.wait()
    assert waited == [pytest.approx(1.0), pytest.approx(1.0)]  # 60 a minute: one a second


def _key(tmp_path: Path) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / "dkim.pem"
    path.write_bytes(pem)
    import base64

    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_dkim_signature_covers_the_unsubscribe_headers_and_verp(tmp_path: Path, db: Database, smtp_server: Any) -> None:
    key_file, record = _key(tmp_path)
    seed_contacts(db, 3)
    mailing_id = make_mailing(db)
    settings = mailing_settings(
        tmp_path,
        db,
        smtp_server.url,
        HUB_DKIM_SELECTOR="hub",
        HUB_DKIM_DOMAIN="hub.example",
        HUB_DKIM_KEY_FILE=str(key_file),
        HUB_BOUNCE_ADDRESS="bounces@hub.example",
    )
    run_to_end(db, settings, mailing_id)
    received = smtp_server.received
    assert len(received) == 3
    for item in received:
        signature = item.message()["DKIM-Signature"]
        signed = {h.strip().lower() for h in signature.split("h=")[1].split(";")[0].replace(" ", "").split(":")}
        assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject"} <= signed
        assert dkim.verify(item.data, dnsfunc=lambda _name, timeout=5: record)
        # The envelope sender names the ledger row, signed: a bounce to it finds the recipient.
        with db.transaction() as s:
            row_id = verp_recipient(s, item.mail_from)
            assert row_id is not None
            assert s.get(MailingRecipient, row_id).message_id == item.message()["Message-ID"]
            forged = item.mail_from.replace(f"+{row_id}.", f"+{row_id % 3 + 1}.")
            assert verp_recipient(s, forged) is None


def test_headers_cannot_be_injected_through_personal_fields() -> None:
    data = messages.build(
        messages.Envelope.of("News", "news@hub.example", ""),
        to_name="Evil\r\nBcc: victim@example.org",
        to_address="a@example.test",
        subject="Hello\r\nBcc: victim@example.org",
        html="",
        text="Body",
        message_id="<1@hub.example>",
        list_unsubscribe="https://hub.example/u/x",
        date=__import__("datetime").datetime(2026, 1, 1, tzinfo=__import__("datetime").UTC),
        boundary="b",
    )
    head = data.split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith(b"bcc:") for line in head.split(b"\r\n"))


# --- the fill-in form: the same messages as rendering in the sandbox -----------------------------------

FILL_SUBJECT = "{{ contact.first_name }}, news for {{ relation.name }}"
FILL_TEXT = (
    "Dear {{ contact.name }},\n\nAs {{ contact.function or 'a customer' }} at {{ relation.name }}"
    " in {{ relation.city }} {# a comment #}you get our offers first. {{ owner.name }} will call.\n"
    + "A long constant line that goes on and on past the seventy-six characters of quoted-printable. " * 3
    + "\n{{ contact['email'] }} {{- '  ' }}\n"
)
FILL_HTML = (
    "<html><body><p>Dear {{ contact.name }},</p><p>As {{ contact.function or 'a customer' }} at"
    " <b>{{ relation.name }}</b> in {{ relation.city }}.</p>{{ owner.name }} &amp; {{ owner.email }}</body></html>"
)
NASTY_NAMES = [
    "Anna de Vries",
    "Zoë Ünal-Øster Łukasz 山田太郎",
    "Evil\r\nBcc: victim@example.org",
    "Eve\nX-Injected: yes",
    "<script>alert('x')</script> & \"quotes\" {0} {name} }{",
    "W" * 300 + " Longname",
    "   ",
    "İstanbul İnci",  # lowers to a longer text: the footer still goes before </body>
]


def _parts(data: bytes) -> tuple[dict[str, str], str, str]:
    """Headers (decoded) and the decoded text and HTML bodies, as a mail program sees them."""
    import email
    from email.policy import default

    message = email.message_from_bytes(data, policy=default)
    headers = {name.lower(): str(value) for name, value in message.items()}
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    return (
        headers,
        text.get_content().replace("\r\n", "\n") if text is not None else "",
        html.get_content().replace("\r\n", "\n") if html is not None else "",
    )


def _reference(envelope: messages.Envelope, name: str, subject: str, html: str, text: str, url: str) -> bytes:
    """The standard library's own build of the same message (EmailMessage, as_bytes)."""
    from email.headerregistry import Address
    from email.message import EmailMessage
    from email.policy import SMTP

    message = EmailMessage(policy=SMTP)
    message["From"] = Address("News", addr_spec="news@hub.example")
    message["To"] = Address(" ".join(name.split()), addr_spec="p1@example.test")
    message["Subject"] = subject
    message["List-Unsubscribe"] = f"<{url}>"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


@pytest.mark.parametrize("name", NASTY_NAMES)
@pytest.mark.parametrize("function", ["", "Director"])
def test_filled_in_messages_are_the_rendered_ones(name: str, function: str) -> None:
    from datetime import UTC, datetime

    from hub.campaigns.render import context_for, field_values

    templates = Templates.compile(FILL_SUBJECT, FILL_HTML, FILL_TEXT)
    assert templates.fills is not None  # fields only: filled in, never rendered per recipient
    envelope = messages.Envelope.of("News", "news@hub.example", "")
    url = messages.unsubscribe_url("https://hub.example", "secret-key-0123456789", 7)
    fields: dict[str, Any] = {
        "contact_name": name,
        "contact_function": function,
        "address": "p1@example.test",
        "relation": {
            "name": f"{name} B.V.",
            "street": "",
            "postcode": "",
            "city": "Zürich",
            "country": "CH",
            "website": "",
        },
        "owner_name": "Olga <Owner>",
        "owner_email": "owner@hub.example",
        "unsubscribe_url": url,
    }
    common: dict[str, Any] = {
        "to_name": name,
        "to_address": "p1@example.test",
        "message_id": "<7.1.abc.hub@hub.example>",
        "list_unsubscribe": url,
        "date": datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        "boundary": "=_hub_1_7",
    }
    subject, html, text = templates.render(context_for(**fields))
    html, text = messages.with_unsubscribe_footer(html, text, url, "Unsubscribe")
    rendered = messages.build(envelope, subject=subject, html=html, text=text, **common)
    filled_subject, filled = messages.Skeleton(envelope, templates.fills, "Unsubscribe").build(
        field_values(**fields), **common
    )
    assert (filled_subject, filled) == (subject, rendered)

    headers, plain, markup = _parts(filled)
    # Nothing a name holds becomes a header of its own; every line stays within the limits.
    assert "bcc" not in headers and "x-injected" not in headers
    # (RFC 5322: 78 characters a line, 998 at most; a 300-letter word can only be folded at its ends)
    limit = 78 if max(len(word) for word in f"{name} x".split()) < 60 else 998
    assert all(len(line) <= limit for line in filled.split(b"\r\n"))
    assert filled.isascii()  # non-ASCII only encoded (RFC 2047 headers, quoted-printable bodies)
    assert headers["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
    assert plain.rstrip("\n").endswith(f"Unsubscribe: {url}")
    assert markup.index('href="https://hub.example/u/') < markup.index("</body>")
    # And it reads as the standard library's own build of the same message reads.
    ref_headers, ref_plain, ref_markup = _parts(_reference(envelope, name, subject, html, text, url))
    for header in ("from", "to", "subject", "list-unsubscribe"):
        assert headers[header] == ref_headers[header], header
    # (set_content ends a body with a newline and makes a lone CR one; the rest is the same text)
    assert plain.rstrip("\n") == ref_plain.replace("\r", "\n").rstrip("\n")
    assert markup.rstrip("\n") == ref_markup.replace("\r", "\n").rstrip("\n")


@pytest.mark.parametrize(
    "template",
    [
        "{% if contact.function %}Dear {{ contact.function }}{% endif %}",
        "{{ contact.name | upper }}",
        "{% for x in [1, 2] %}{{ x }}{% endfor %}",
        "{{ contact.nickname }}",
        "{{ contact.__class__ }}",
        "{{ relation }}",
    ],
)
def test_templates_with_logic_are_rendered_in_the_sandbox(template: str) -> None:
    # Anything beyond placing fields is not filled in: the sandbox renders (or refuses) it per recipient.
    try:
        templates = Templates.compile("Hi", "", template)
    except TemplateProblem:
        return
    assert templates.fills is None
