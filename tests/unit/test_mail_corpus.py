"""Every message of the corpus (tests/mail_corpus.py) parsed in-process shows what a user must see:
the same checks the sync test makes on the stored rows, here without servers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from hub.mail.parse import ParsedMessage, parse_message
from tests.mail_corpus import Sample, Seen, check, corpus

SAMPLES = corpus()


def seen(parsed: ParsedMessage) -> Seen:
    return Seen(
        subject=parsed.subject,
        from_address=parsed.from_address,
        from_name=parsed.from_name,
        sent_at=parsed.sent_at,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        text_body=parsed.text_body,
        html_body=parsed.html_body,
        attachments=[(a.filename, a.content_type, a.data) for a in parsed.attachments],
        kind=parsed.kind,
        details=parsed.details,
        problems=parsed.problems,
    )


def parse_again(raw: bytes) -> Seen:
    return seen(parse_message(raw))


def test_the_corpus_is_large_and_its_names_and_messages_unique() -> None:
    assert len(SAMPLES) >= 40
    assert len({s.name for s in SAMPLES}) == len(SAMPLES)
    assert len({s.raw for s in SAMPLES}) == len(SAMPLES)


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_corpus_message_is_read_as_a_mail_client_shows_it(sample: Sample) -> None:
    parsed = parse_message(sample.raw)
    assert check(sample.expected, seen(parsed), parse_again) == []
    json.dumps(parsed.details)  # what the sync stores as JSON
    if parsed.sent_at is not None:
        assert parsed.sent_at.utcoffset() == timedelta(0)
