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
