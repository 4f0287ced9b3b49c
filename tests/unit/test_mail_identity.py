"""What makes two copies of a message one e-mail: their content, never a claimed Message-ID."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.mail.identity import _normal_body, content_key

MESSAGE = (
    b"From: Kees <kees@klant.example>\r\nTo: anna@staff.example\r\nSubject: Offerte\r\n"
    b"Date: Mon, 2 Nov 2026 10:00:00 +0100\r\nMessage-ID: <q-1@klant.example>\r\n\r\nGraag een offerte.\r\n"
)


def test_transport_headers_and_line_ends_do_not_make_another_email() -> None:
    delivered = b"Received: from mx1 by imap; Mon, 2 Nov 2026 10:00:02 +0100\r\nDelivered-To: a@s.example\r\n"
    sent_copy = b"Bcc: boss@staff.example\r\nX-Mozilla-Draft-Info: x\r\n"
    assert content_key(delivered + MESSAGE) == content_key(MESSAGE)
    assert content_key(sent_copy + MESSAGE.replace(b"\r\n", b"\n")) == content_key(MESSAGE)


def test_a_message_reusing_a_message_id_is_another_email() -> None:
    assert content_key(MESSAGE.replace(b"Graag een offerte.", b"Iets anders.")) != content_key(MESSAGE)
    assert content_key(MESSAGE.replace(b"Subject: Offerte", b"Subject: Lokaas")) != content_key(MESSAGE)
    assert content_key(MESSAGE.replace(b"anna@", b"mallory@")) != content_key(MESSAGE)


_REFERENCE = re.compile(rb"[ \t]*\r?\n")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.sampled_from([b" ", b"\t", b"\r", b"\n", b"\r\n", b"x"]), max_size=40))
def test_the_fast_body_normalisation_equals_its_definition(noise: bytes, pieces: list[bytes]) -> None:
    body = noise + b"".join(pieces)
    assert _normal_body(body) == _REFERENCE.sub(b"\n", body).rstrip(b"\r\n \t")
