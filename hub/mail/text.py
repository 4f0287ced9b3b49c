"""Bytes of mail as the text people wrote: charsets read the way browsers and mail clients read them,
RFC 2047 encoded-words decoded as far as they go, format=flowed text un-flowed.

Mailers lie about charsets in well-known ways, and the readers everyone uses forgive them: text
labelled ISO-8859-1 or US-ASCII that holds Windows-1252 bytes (the euro sign and curly quotes,
bytes 0x80 to 0x9f) is read as Windows-1252 (the WHATWG encoding standard makes every browser do
so), unlabelled 8-bit text is UTF-8 when it is valid UTF-8, and Windows-1252 otherwise.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

from hub.text import windows_1252

# Labels read as Windows-1252, as the WHATWG encoding standard maps them (latin-1 and ASCII both).
_WINDOWS_1252 = frozenset(
    {
        "iso-8859-1",
        "iso8859-1",
        "iso_8859-1",
        "iso88591",
        "latin-1",
        "latin1",
        "l1",
        "cp819",
        "ibm819",
        "us-ascii",
        "ascii",
        "ansi_x3.4-1968",
        "windows-1252",
        "cp1252",
        "x-cp1252",
    }
)
# Labels whose text may hold a server's stand-in for a NUL byte (see _standin_nul).
_UTF8_LIKE = frozenset({"", "utf-8", "utf8", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "8bit", "default"})
_ASCII_BASED = ("iso-8859-", "iso8859", "windows-", "cp", "koi8", "gb", "big5", "euc-", "shift", "utf-8")
# Labels mail carries that Python does not know, or knows as a smaller set than the senders meant.
_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "x-sjis": "shift_jis",
    "shift-jis": "cp932",
    "shift_jis": "cp932",
    "unicode-1-1-utf-7": "utf-7",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "utf-8-sig": "utf-8",
    "utf8mb4": "utf-8",  # MySQL's name for UTF-8, copied into mail by web applications
    "windows-31j": "cp932",
    "x-mac-ce": "mac-latin2",
    "x-windows-949": "cp949",
    "gb_2312-80": "gb18030",
    "ucs-2": "utf-16",
    "iso-10646-ucs-2": "utf-16",
}
# Python codecs that are no charset: a label naming one ("undefined", "unicode_escape" …) would fail
# every message, or turn the text into something else, so it counts as an unknown charset.
_NOT_CHARSETS = frozenset({"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "mbcs", "oem"})
_LABEL_JUNK = re.compile(r"[\x00-\x20\x7f\"']")
_SEPARATORS = re.compile(r"[-_ ]")


def _standin_nul(error: UnicodeError) -> tuple[str, int]:
    """Dovecot sends 0x80 where 8-bit text held a NUL byte: in UTF-8 such a lone 0x80 is dropped,
    any other invalid byte still fails the decoding."""
    assert isinstance(error, UnicodeDecodeError)
    if error.object[error.start : error.end] == b"\x80":
        return "", error.end
    raise error


# A well-formed multi-byte UTF-8 character: Windows-1252 text practically never holds one.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")

_UTF8_BEYOND_LATIN1_SYMBOLS = re.compile(rb"[\xc3-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


codecs.register_error("hub-standin-nul", _standin_nul)


def charset_label(charset: str | None) -> str:
    """A charset parameter as a lower-case label without quotes, language or spaces."""
    if not charset:
        return ""
    # Quotes, spaces and control characters are no part of any label (a NUL in one would make
    # Python's codec lookup raise ValueError, not LookupError).
    label = _LABEL_JUNK.sub("", charset).lower()
    return label.split("*", 1)[0]  # RFC 2231 language suffix: utf-8*en


def _codec(label: str) -> str | None:
    """The Python codec for a charset label as mailers write it ("cp-850", "x-mac-cyrillic",
    "latin-2" …), or None when there is none that reads text."""
    for candidate in (_ALIASES.get(label, label), label.removeprefix("x-"), _SEPARATORS.sub("", label)):
        try:
            info = codecs.lookup(candidate)
        except (LookupError, ValueError, TypeError):
            continue
        if info.name not in _NOT_CHARSETS and getattr(info, "_is_text_encoding", True):
            return info.name
    return None


def decode_text(data: bytes, charset: str | None = None, problems: list[str] | None = None) -> str:
    """``data`` as text, read the way mail clients read it; what had to be guessed goes to ``problems``."""
    label = charset_label(charset)
    if data.startswith(codecs.BOM_UTF8):
        # A byte-order mark says UTF-8 whatever the label (as browsers read it), and is no text.
        data, label = data[len(codecs.BOM_UTF8) :], "utf-8"
    # 7-bit data is ASCII in every charset but the 7-bit ones (ISO-2022-JP, UTF-7, HZ …).
    if data.isascii() and (label in _UTF8_LIKE or label in _WINDOWS_1252 or label.startswith(_ASCII_BASED)):
        return data.decode("ascii")
    if label in _WINDOWS_1252 and label not in ("us-ascii", "ascii", "ansi_x3.4-1968"):
        # Labelled Latin-1 but valid UTF-8 (a mailer that labels everything it sends ISO-8859-1): read
        # as Windows-1252 it would be "CafÃ©". Windows-1252 text is practically never valid UTF-8 with
        # a letter or symbol beyond U+00BF in it: every 8-bit byte would have to be part of a pair like
        # "Ã©". (A lone U+0080 to U+00BF, "Â°", is too easily real Latin-1 to count.)
        if _UTF8_BEYOND_LATIN1_SYMBOLS.search(data):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return windows_1252(data)
            _note(problems, f"text labelled {label[:40]} is UTF-8, read as UTF-8")
            return text
        return windows_1252(data)
    if label in _UTF8_LIKE:
        return _utf8_or_1252(data, label, problems)
    codec = _codec(label)
    if codec is None:
        _note(problems, f"unknown charset {label[:40]!r}, read as UTF-8")
        return _utf8_or_1252(data, "", None)
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        _note(problems, f"text is not valid {label[:40]}, read with replacements")
        return data.decode(codec, errors="replace")


def _utf8_or_1252(data: bytes, label: str, problems: list[str] | None) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Declared UTF-8 cut off inside a character (a cut encoded-word); undeclared "caf\xe9" is 1252.
        if exc.reason == "unexpected end of data" and (label in ("utf-8", "utf8") or _UTF8_SEQUENCE.search(data)):
            _note(problems, "text ends inside a character")
            return data.decode("utf-8", errors="replace")
    try:
        text = data.decode("utf-8", errors="hub-standin-nul")
    except UnicodeDecodeError:
        if _UTF8_SEQUENCE.search(data):
            # UTF-8 with bytes that are not: mostly Windows-1252 text joined to it (a mailing list's
            # Latin-1 footer under a UTF-8 message, a quoted older mail), so those bytes are read as
            # Windows-1252 ("Café été", not "Café \ufffdt\ufffd").
            _note(problems, "text mixes UTF-8 with other bytes, read as Windows-1252")
            return data.decode("utf-8", errors="hub-1252-rest")
        if label in ("utf-8", "utf8"):
            _note(problems, "text is not valid UTF-8, read as Windows-1252")
        return windows_1252(data)
    _note(problems, "a server's stand-in for a NUL byte (0x80) was removed")
    return text


def _note(problems: list[str] | None, note: str) -> None:
    if problems is not None and note not in problems:
        problems.append(note)


# An RFC 2047 encoded-word, leniently: stray characters inside the text are dealt with when decoding.
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"[ \t\r\n]*")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def _word_bytes(encoding: str, text: str) -> bytes:
    data = text.encode("ascii", "surrogateescape")
    if encoding in "qQ":
        return _QP_HEX.sub(lambda m: bytes([int(m[1], 16)]), data.replace(b"_", b" "))
    # Broken base64 (bad padding, stray characters) is decoded as far as it goes.
    data = _NOT_BASE64.sub(b"", data)
    data = data[: len(data) - len(data) % 4 if len(data) % 4 == 1 else len(data)]
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return b""


def decode_header_text(value: str) -> str:
    """A header value (raw 8-bit bytes escaped as surrogates, as the email package keeps them) as text.

    Encoded-words next to each other are joined before decoding, so a character split across two of
    them (as some mailers split UTF-8) comes out whole; text outside them is UTF-8 or Windows-1252.
    """
    if value.isascii() and "=?" not in value:
        return value
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    position = 0

    def flush() -> None:
        if pending:
            out.append(decode_text(b"".join(pending), pending_charset))
            pending.clear()

    for match in _ENCODED_WORD.finditer(value):
        gap = value[position : match.start()]
        if not (pending and _BETWEEN_WORDS.fullmatch(gap)):
            flush()
            out.append(_plain(gap))
        charset = charset_label(match[1])
        if pending and charset != pending_charset:
            flush()
        pending_charset = charset
        pending.append(_word_bytes(match[2], match[3]))
        position = match.end()
    flush()
    out.append(_plain(value[position:]))
    return "".join(out)


def _plain(text: str) -> str:
    if text.isascii():
        return text
    return decode_text(text.encode("utf-8", "surrogateescape"))


def unflow(text: str, delsp: bool) -> str:
    """format=flowed text (RFC 3676) as the lines its writer typed: soft line breaks (a line ending in
    a space) joined, space-stuffing removed, quote depth kept, the signature separator left alone."""
    out: list[str] = []
    current: str | None = None
    current_depth = 0
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        content = content.removeprefix(" ")  # space-stuffing (or the space after the quote marks)
        if current is not None and depth != current_depth:
            out.append(_quoted(current, current_depth))  # a flowed line cannot flow into another depth
            current = None
        flowed = content.endswith(" ") and content != "-- "
        if flowed and delsp:
            content = content[:-1]
        current = content if current is None else current + content
        current_depth = depth
        if not flowed:
            out.append(_quoted(current, depth))
            current = None
    if current is not None:
        out.append(_quoted(current, current_depth))
    return "\n".join(out)


def _quoted(line: str, depth: int) -> str:
    return (">" * depth + " " + line) if depth else line
