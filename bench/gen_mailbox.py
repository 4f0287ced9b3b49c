"""Generate a realistic mailbox as a Maildir, and the relations CSV of the contacts that write in it.

usage: python bench/gen_mailbox.py MAILDIR N [--contacts FILE.csv] [--seed 1]

The same seed gives the same bytes, on every machine and Python version that keeps ``random``'s
sequence (CPython does): the benchmarks cache what they generate and compare runs on equal data.
Messages are written one at a time straight into ``MAILDIR/cur`` (nothing is held in memory), as
plain MIME text rather than through :mod:`email`'s object model, so 50,000 messages take seconds.

What the mailbox holds, so that sync, parsing and matching meet what real mail does:

- senders and recipients from a fixed set of relations (Dutch companies, ``relN.example.nl``) and
  their contacts, whose names carry accents (Chloé, Zoë, Içim); mail from the staff mailbox to
  contacts (outgoing) and from addresses nobody knows (free mail, newsletters) as well;
- threads: replies carry ``Re:``, In-Reply-To and a References chain of their thread;
- plain text (quoted-printable or 8-bit UTF-8), HTML alternatives, non-ASCII subjects and names
  (RFC 2047 encoded words), attachments of 2 kB to 200 kB (PDF, PNG, DOCX);
- Maildir flags: most messages seen, some answered or flagged, some new.

The contacts CSV (``--contacts``) is one header row and one row per contact:
``relation,domain,contact_name,email,phone`` — the format ``hub import relations`` reads.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import os
import random
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime, formataddr
from pathlib import Path

FIRST_NAMES = [
    "Anna",
    "Bram",
    "Chloé",
    "Daan",
    "Eva",
    "Finn",
    "Gijs",
    "Hanna",
    "Içim",
    "Jan",
    "Kees",
    "Lotte",
    "Milan",
    "Noor",
    "Olaf",
    "Pien",
    "Quinten",
    "Roos",
    "Sem",
    "Tess",
    "Utku",
    "Vera",
    "Wouter",
    "Zoë",
    "Sanne",
    "Thijs",
    "Fleur",
    "Joris",
    "Maaike",
    "Ruben",
]
LAST_NAMES = (
    "de Vries",
    "Jansen",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Dijk",
    "van den Berg",
    "Dekker",
    "Brouwer",
)
COMPANY_KINDS = ("BV", "Groep", "Techniek", "Handel", "NV", "Installaties", "& Zn.")
WORDS = [
    "offerte",
    "levering",
    "factuur",
    "planning",
    "project",
    "bezoek",
    "rapport",
    "afspraak",
    "voorstel",
    "contract",
    "prijs",
    "korting",
    "order",
    "retour",
    "service",
    "onderhoud",
    "installatie",
    "kwartaal",
    "budget",
    "campagne",
    "folder",
    "beurs",
    "demo",
    "tekening",
    "montage",
    "bestelling",
    "garantie",
    "storing",
    "oplevering",
    "meerwerk",
    "werkbon",
]
# Non-ASCII subjects: an en dash and a coffee cup, German, an em dash, a check mark, Dutch accents.
ACCENTED = (" \u2013 café \u2615", " (größe ëxtra)", " \u2014 reçu", " \u2714 akkoord", " \u00b7 één vraag")
UNKNOWN_SENDERS = (
    ("Nieuwsbrief Vakblad", "nieuws@vakblad-techniek.example.org"),
    ("Pieter", "pieter1978@gmail.com"),
    ("Marketing Desk", "noreply@mailing.example.com"),
    ("Sandra", "sandra.k@hotmail.com"),
)
ATTACHMENTS = (
    ("application", "pdf", "offerte-{i}.pdf"),
    ("application", "pdf", "factuur-{i}.pdf"),
    ("image", "png", "foto-{i}.png"),
    ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document", "verslag-{i}.docx"),
)
ATTACHMENT_SIZES = (2_000, 20_000, 200_000)
DEFAULT_STAFF = "Verkoop <verkoop@hub.example.com>"
START = datetime(2025, 1, 1, 8, tzinfo=UTC)


@dataclass(frozen=True)
class Contact:
    relation: str
    domain: str
    name: str
    email: str
    phone: str


def _ascii(text: str) -> str:
    """Chloé de Boer → chloedeboer: a plausible local part of an e-mail address."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch == ".")


def contacts(seed: int = 1, relations: int = 400, per_relation: int = 5) -> list[Contact]:
    """The relations and their contacts (``relations`` times ``per_relation``), the same for the same seed.

    Relation ``r`` is named ``<Name> <kind> r`` with mail domain ``relr.example.nl``; its contacts have
    unique addresses and the phone numbers ``+31 20 rrr cccc``.
    """
    rng = random.Random(f"contacts-{seed}")
    rows = []
    for r in range(relations):
        company = f"{rng.choice(LAST_NAMES).replace(' ', '')} {rng.choice(COMPANY_KINDS)} {r}"
        domain = f"rel{r}.example.nl"
        for c in range(per_relation):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{_ascii(first)}.{_ascii(last)}{c}@{domain}"
            rows.append(Contact(company, domain, f"{first} {last}", email, f"+31 20 {r:03d} {c:04d}"))
    return rows


def write_contacts(path: Path | str, people: list[Contact]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["relation", "domain", "contact_name", "email", "phone"])
        out.writerows((p.relation, p.domain, p.name, p.email, p.phone) for p in people)


def _header(value: str) -> str:
    """A header value, RFC 2047 encoded when it is not ASCII."""
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(maxlinelen=76)


def _address(name: str, email: str) -> str:
    return formataddr((name, email), charset="utf-8")


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


@dataclass
class _Sent:
    """What a later reply needs of a message: its subject, Message-ID and References chain."""

    subject: str
    message_id: str
    references: tuple[str, ...]


class _Writer:
    """Builds one message at a time; keeps only the recent messages that replies may answer."""

    def __init__(self, rng: random.Random, people: list[Contact], staff: str, seed: int, attachment_rate: float):
        self.rng, self.people, self.staff, self.seed = rng, people, staff, seed
        self.attachment_rate = attachment_rate
        self.recent: list[_Sent] = []

    def message(self, i: int, when: datetime) -> bytes:
        rng = self.rng
        person = rng.choice(self.people)
        roll = rng.random()
        outgoing = roll < 0.12
        if outgoing:
            sender, to = self.staff, _address(person.name, person.email)
            domain = self.staff.rsplit("@", 1)[1].rstrip(">")
            signer = self.staff.split("<")[0].strip() or "Verkoop"
        elif roll < 0.18:
            name, email = rng.choice(UNKNOWN_SENDERS)
            sender, to, domain, signer = _address(name, email), self.staff, email.rsplit("@", 1)[1], name
        else:
            sender, to, domain, signer = _address(person.name, person.email), self.staff, person.domain, person.name

        message_id = f"<{when:%Y%m%d%H%M%S}.{i}.{self.seed}.{rng.getrandbits(32):08x}@{domain}>"
        headers = [f"Return-Path: <{sender.rsplit('<', 1)[-1].rstrip('>')}>"]
        parent = rng.choice(self.recent) if self.recent and rng.random() < 0.3 else None
        if parent is not None:
            subject = "Re: " + parent.subject.removeprefix("Re: ")
            references = (*parent.references, parent.message_id)[-10:]
        else:
            subject = _sentence(rng, rng.randint(2, 6))[:-1]
            if rng.random() < 0.15:
                subject += rng.choice(ACCENTED)
            references = ()
        headers += [f"From: {sender}", f"To: {to}"]
        if rng.random() < 0.2:
            cc = rng.choice(self.people)
            headers.append(f"Cc: {_address(cc.name, cc.email)}")
        headers += [
            f"Subject: {_header(subject)}",
            f"Date: {format_datetime(when)}",
            f"Message-ID: {message_id}",
        ]
        if parent is not None:
            headers.append(f"In-Reply-To: {parent.message_id}")
            headers.append("References: " + "\n ".join(references))
        headers.append("MIME-Version: 1.0")

        paragraphs = [_sentence(rng, rng.randint(8, 40)) for _ in range(rng.randint(1, 8))]
        text = "Beste,\n\n" + "\n\n".join(paragraphs) + f"\n\nMet vriendelijke groet,\n{signer}\n"
        if roll >= 0.18:  # a contact signs with their company and phone number
            text += f"{person.relation}\nT {person.phone}\n"
        html = None
        if rng.random() < 0.5:
            body_html = "".join(f"<p>{p}</p>" for p in paragraphs)
            html = f"<html><body><p>Beste,</p>{body_html}<p><b>{signer}</b></p></body></html>\n"
        attachment = None
        if rng.random() < self.attachment_rate:
            kind = rng.choice(ATTACHMENTS)
            attachment = (kind, rng.randbytes(rng.choice(ATTACHMENT_SIZES)))

        body = self._body(headers, text, html, attachment, i)
        self.recent.append(_Sent(subject, message_id, references))
        if len(self.recent) > 50:
            self.recent.pop(0)
        return body

    def _body(
        self,
        headers: list[str],
        text: str,
        html: str | None,
        attachment: tuple[tuple[str, str, str], bytes] | None,
        i: int,
    ) -> bytes:
        parts = [self._text_part("plain", text)]
        if html is not None:
            parts = [self._multipart("alternative", [parts[0], self._text_part("html", html)], f"alt{i}")]
        if attachment is not None:
            (maintype, subtype, pattern), data = attachment
            filename = pattern.format(i=i)
            encoded = base64.encodebytes(data).decode()
            parts.append(
                f'Content-Type: {maintype}/{subtype}; name="{filename}"\n'
                "Content-Transfer-Encoding: base64\n"
                f'Content-Disposition: attachment; filename="{filename}"\n\n{encoded}'
            )
            root = self._multipart("mixed", parts, f"mix{i}")
        else:
            root = parts[0]
        return ("\n".join(headers) + "\n" + root).encode()

    def _text_part(self, subtype: str, text: str) -> str:
        # Most mail programs send quoted-printable; some send raw 8-bit UTF-8.
        encoding, payload = "8bit", text
        if self.rng.random() < 0.8:
            encoding, payload = "quoted-printable", binascii.b2a_qp(text.encode()).decode()
        return f'Content-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: {encoding}\n\n{payload}'

    def _multipart(self, subtype: str, parts: list[str], tag: str) -> str:
        boundary = f"=_hub_{self.seed}_{tag}"
        inner = "".join(f"--{boundary}\n{part}\n" for part in parts)
        return f'Content-Type: multipart/{subtype}; boundary="{boundary}"\n\n{inner}--{boundary}--\n'


def messages(
    n: int,
    *,
    seed: int = 1,
    people: list[Contact] | None = None,
    staff: str = DEFAULT_STAFF,
    attachment_rate: float = 0.1,
) -> Iterator[tuple[str, bytes]]:
    """(Maildir file name, message bytes) for ``n`` messages, oldest first, made one at a time."""
    rng = random.Random(f"mail-{seed}")
    writer = _Writer(rng, people if people is not None else contacts(seed), staff, seed, attachment_rate)
    when = START
    for i in range(n):
        when += timedelta(minutes=rng.randint(1, 90))
        body = writer.message(i, when)
        roll = rng.random()
        flags = "S" if roll < 0.65 else "RS" if roll < 0.72 else "FS" if roll < 0.75 else ""
        yield f"{int(when.timestamp())}.M{i}P{seed}.hubgen:2,{flags}", body


def generate(
    maildir: Path | str,
    n: int,
    *,
    contacts_csv: Path | str | None = None,
    seed: int = 1,
    staff: str = DEFAULT_STAFF,
    attachment_rate: float = 0.1,
    people: list[Contact] | None = None,
) -> None:
    """Write ``n`` messages into the Maildir ``maildir`` (created) and, if asked, the contacts CSV.

    ``people`` (default: :func:`contacts` of ``seed``) lets mailboxes of different seeds, so different
    messages, share one set of contacts.
    """
    people = people if people is not None else contacts(seed)
    if contacts_csv is not None:
        write_contacts(contacts_csv, people)
    root = Path(maildir)
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    cur = root / "cur"
    for name, body in messages(n, seed=seed, people=people, staff=staff, attachment_rate=attachment_rate):
        # Straight to disk, so memory stays flat however many messages are asked for.
        with open(cur / name, "wb") as fh:
            fh.write(body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("maildir", type=Path)
    parser.add_argument("n", type=int, help="how many messages")
    parser.add_argument("--contacts", type=Path, help="also write the relations CSV of the contacts here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--staff", default=DEFAULT_STAFF, help="the mailbox's own address (To of incoming mail)")
    parser.add_argument(
        "--attachment-rate", type=float, default=0.1, help="share of messages with an attachment (0 to 1)"
    )
    args = parser.parse_args(argv)
    if args.n < 0 or not 0 <= args.attachment_rate <= 1:
        parser.error("N must be >= 0 and --attachment-rate between 0 and 1")
    generate(
        args.maildir,
        args.n,
        contacts_csv=args.contacts,
        seed=args.seed,
        staff=args.staff,
        attachment_rate=args.attachment_rate,
    )
    print(f"wrote {args.n} messages to {args.maildir}", file=sys.stderr)


if __name__ == "__main__":
    os.umask(0o022)
    main()
