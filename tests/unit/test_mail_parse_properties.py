"""Properties of the parser on random mail: random MIME trees (charsets, transfer encodings, file
names, dispositions, nesting, attached messages) never make it raise and never lose a part: each leaf
part's decoded content is in a body or is an attachment's data. Random and damaged bytes never make
it raise either, and what it gives is always storable."""

from __future__ import annotations

import base64
import html
import io
import json
import quopri
import unicodedata
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.message import Message
from email.policy import compat32

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.mail.parse import ParsedMessage, parse_message

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "iso-8859-15", "us-ascii", "koi8-r", "iso-2022-jp", "utf-16"]
# Text people write: no control characters (the C1 range is what Windows-1252 reuses), no surrogates.
_TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp"), blacklist_characters="\x00")
    | st.sampled_from("\n\t €“”\u2013éßø"),
    min_size=1,
    max_size=60,
)


@dataclass
class Leaf:
    content_type: str
    data: bytes  # the decoded content
    text: str | None = None  # for text parts: the content as text
    charset: str = ""
    inner: list[Leaf] = field(default_factory=list)  # for an attached message: its leaves


@dataclass
class Tree:
    message: Message
    leaves: list[Leaf]


def _encode(msg: Message, data: bytes, encoding: str) -> None:
    if encoding == "base64":
        msg["Content-Transfer-Encoding"] = "base64"
        msg.set_payload(base64.encodebytes(data).decode("ascii"))
    elif encoding == "quoted-printable":
        msg["Content-Transfer-Encoding"] = "quoted-printable"
        msg.set_payload(quopri.encodestring(data).decode("ascii"))
    else:
        msg["Content-Transfer-Encoding"] = encoding
        msg.set_payload(data.decode("ascii", "surrogateescape"))


def _describe(msg: Message, draw: st.DrawFn) -> None:
    """A file name and a disposition, or neither."""
    # Any name a header can carry (a raw line break would end the header: the generator does not fold it).
    names = st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
        max_size=40,
    )
    name = draw(st.none() | names | st.sampled_from(["../x.pdf", "a\u202efdp.exe", "..", "C:\\x\\y.doc"]))
    disposition = draw(st.sampled_from([None, "inline", "attachment"]))
    if disposition or name is not None:
        params = {"filename": name} if name is not None else {}
        msg.add_header("Content-Disposition", disposition or "attachment", **params)


@st.composite
def text_leaf(draw: st.DrawFn) -> Tree:
    charset = draw(st.sampled_from(CHARSETS))
    text = draw(_TEXT)
    try:
        data = text.encode(charset)
    except UnicodeEncodeError:
        charset, data = "utf-8", text.encode("utf-8")
    if charset in ("iso-8859-1", "iso-8859-15", "koi8-r") and any(0x80 <= b <= 0x9F for b in data):
        charset, data = "utf-8", text.encode("utf-8")  # C1 bytes there are read as Windows-1252, as browsers do
    valid_utf8 = data.decode("utf-8", "ignore").encode() == data
    if charset in ("iso-8859-1", "windows-1252") and not data.isascii() and valid_utf8:
        charset, data = "utf-8", text.encode("utf-8")  # Latin-1-labelled text that is valid UTF-8 is read as UTF-8
    subtype = draw(st.sampled_from(["plain", "html", "plain", "csv", "x-unknown"]))
    msg = Message()
    msg["Content-Type"] = f"text/{subtype}; charset={charset}"
    # UTF-16 is not line-based text: only base64 carries it whole.
    encodings = ["base64", "quoted-printable", "8bit"] if charset != "utf-16" else ["base64"]
    _encode(msg, data, draw(st.sampled_from(encodings)))
    if draw(st.booleans()):
        _describe(msg, draw)
    return Tree(msg, [Leaf(f"text/{subtype}", data, text, charset)])


@st.composite
def binary_leaf(draw: st.DrawFn) -> Tree:
    content_type = draw(
        st.sampled_from(["application/pdf", "image/png", "application/octet-stream", "application/x-weird", "audio/x"])
    )
    data = draw(st.binary(min_size=1, max_size=200))
    msg = Message()
    msg["Content-Type"] = content_type
    _encode(msg, data, "base64")  # quoted-printable is for text: it does not keep a lone CR
    if draw(st.booleans()):
        _describe(msg, draw)
    return Tree(msg, [Leaf(content_type, data)])


def _as_bytes(msg: Message) -> bytes:
    buffer = io.BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=compat32).flatten(msg)
    return buffer.getvalue()


@st.composite
def attached_message(draw: st.DrawFn) -> Tree:
    inner = draw(mime_tree(depth=1))
    inner.message["Subject"] = draw(st.sampled_from(["Doorgestuurd", "=?utf-8?q?Caf=C3=A9?=", ""]))
    inner.message["From"] = "kees@visser.example"
    msg = Message()
    msg["Content-Type"] = "message/rfc822"
    if draw(st.booleans()):  # some servers base64-encode an attached message as a whole
        _encode(msg, _as_bytes(inner.message), "base64")
    else:
        msg.set_payload([inner.message])
    return Tree(msg, [Leaf("message/rfc822", b"", inner=inner.leaves)])


@st.composite
def mime_tree(draw: st.DrawFn, depth: int = 0) -> Tree:
    kinds = ["text", "binary", "text"] + (["multipart", "multipart"] if depth < 3 else [])
    kinds += ["message"] if depth == 0 else []
    kind = draw(st.sampled_from(kinds))
    if kind == "text":
        return draw(text_leaf())
    if kind == "binary":
        return draw(binary_leaf())
    if kind == "message":
        return draw(attached_message())
    children = draw(st.lists(mime_tree(depth=depth + 1), min_size=1, max_size=4))
    msg = Message()
    subtype = draw(st.sampled_from(["mixed", "alternative", "related", "signed"]))
    # A boundary of our own: email's own comes from the random module, which hypothesis warns about.
    msg["Content-Type"] = f'multipart/{subtype}; boundary="=_hub_{depth}_{draw(st.integers(0, 10**6))}"'

    msg.set_payload([child.message for child in children])
    return Tree(msg, [leaf for child in children for leaf in child.leaves])


def _kept(parsed: ParsedMessage, leaf: Leaf) -> bool:
    """The leaf's content is shown in a body or is (in) an attachment."""
    if leaf.content_type == "message/rfc822":
        attached = [parse_message(a.data) for a in parsed.attachments if a.content_type == "message/rfc822"]
        return any(all(_kept(inner, lf) for lf in leaf.inner) for inner in attached)
    if any(leaf.data in a.data for a in parsed.attachments):
        return True
    if leaf.text is None:
        return False
    # Text sent 8-bit has the line ends of the wire (the transport's, not the sender's content).
    data = leaf.data.replace(b"\r\n", b"\n")
    if any(data in a.data.replace(b"\r\n", b"\n") for a in parsed.attachments):
        return True
    text = leaf.text.replace("\r\n", "\n")
    bodies = (parsed.text_body + parsed.html_body).replace("\r\n", "\n")
    # Plain text shown among HTML is shown escaped, as preformatted text.
    return any(t in bodies for t in (text, "\n".join(text.splitlines()), html.escape(text)))


def _storable(parsed: ParsedMessage) -> None:
    fields = [parsed.subject, parsed.from_address, parsed.from_name, parsed.text_body, parsed.html_body]
    fields += [a.filename for a in parsed.attachments] + [json.dumps(parsed.details)]
    for value in fields:
        assert "\x00" not in value
        value.encode("utf-8")  # no lone surrogates
    for attachment in parsed.attachments:
        name = attachment.filename
        assert name and "/" not in name and "\\" not in name and name not in (".", "..")
        assert len(name.encode("utf-8")) <= 255
        assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name), name


@FAST
@given(mime_tree(), st.sampled_from(["\n", "\r\n"]))
def test_random_mime_trees_lose_no_part(tree: Tree, linesep: str) -> None:
    tree.message["From"] = "Anna <anna@bakker.example>"
    tree.message["Subject"] = "Random"
    tree.message["MIME-Version"] = "1.0"
    buffer = io.BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=compat32).flatten(tree.message, linesep=linesep)
    parsed = parse_message(buffer.getvalue())
    _storable(parsed)
    for leaf in tree.leaves:
        assert _kept(parsed, leaf), (leaf, parsed.text_body, parsed.html_body, parsed.attachments)


@FAST
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    _storable(parse_message(raw))


@FAST
@given(mime_tree(), st.data())
def test_damaged_mail_never_raises(tree: Tree, data: st.DataObject) -> None:
    raw = bytearray(_as_bytes(tree.message))
    for _ in range(data.draw(st.integers(0, 8))):
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        raw[at : at + 1] = data.draw(st.sampled_from([b"", b"\x80", b"\x00", b"=?", b"--", b"\n", b"\xff", b";"]))
    cut = data.draw(st.integers(0, len(raw)))
    _storable(parse_message(bytes(raw[:cut])))
