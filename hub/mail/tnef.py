"""winmail.dat (TNEF, the format Outlook and Exchange wrap a message's files and body in) → the files
and body inside it, read with tnefparse.

Outlook sends "rich text" mail with its real attachments, and sometimes its only body, inside one
application/ms-tnef part that no other mail client opens. Unpacked, those files are the message's
attachments in its place. It is kept as the attachment it was when it cannot be read (not TNEF,
broken, truncated, too much work) or holds something that could not be taken out (an attached
Outlook item, a meeting request's details, a body only in RTF), so nothing the sender sent is lost.

The work is bounded: tnefparse trusts the counts and lengths in the file (a property count of four
billion is a loop of four billion steps) and copies the rest of the file for every attribute it
reads. Checking those counts beforehand would mean parsing TNEF a second time by hand, so instead
tnefparse runs under a budget of Python calls and copied bytes, counted by a trace function (each of
its loops calls a function per step), and gives up past it.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from tnefparse import properties
from tnefparse.tnef import TNEF, TNEFObject

from hub.mail.filenames import safe_filename
from hub.mail.text import decode_text

NOT_TNEF = "not TNEF"
TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
# More files than this in one winmail.dat is not mail a person wrote: it stays one attachment.
MAX_FILES = 200
# Python calls tnefparse may make for one winmail.dat (a real one with dozens of files needs a few
# thousand), and bytes it may copy (it copies the rest of the file for each attribute it reads: a
# 30 MB winmail.dat holding a hundred files is about 6 GB, a second or so of copying).
MAX_CALLS = 300_000
MAX_COPIED = 8 * 1024 * 1024 * 1024
_SIGNATURE = struct.pack("<I", TNEF.TNEF_SIGNATURE)
_HEADER = struct.Struct("<BHHI")  # an attribute: level, id, type, length (then its data and a checksum)
_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")
# Hostile input makes tnefparse log once per property it skips; the message's problems say it instead.
logging.getLogger("tnefparse").setLevel(logging.CRITICAL)


@dataclass
class File:
    filename: str  # cleaned by hub.mail.filenames
    content_type: str
    data: bytes
    content_id: str = ""  # what "cid:" URLs in the HTML body name it by, without <>


@dataclass
class Unpacked:
    files: list[File] = field(default_factory=list)
    text_body: str = ""
    html_body: str = ""
    # Something in it could not be taken out: winmail.dat is kept next to what was.
    kept_for: str = ""
    # Its body is only RTF (shown by Outlook alone): winmail.dat is kept when the message has no other.
    rtf_only: bool = False


def is_tnef(content_type: str, name: str | None) -> bool:
    """A TNEF part: by its type, or a winmail.dat that came as application/octet-stream."""
    return content_type in TNEF_TYPES or (name or "").strip().lower() == "winmail.dat"


class _OverBudget(BaseException):
    """Raised inside tnefparse; a BaseException so its own ``except Exception`` does not swallow it."""


@contextmanager
def _budget() -> Iterator[None]:
    calls = copied = 0
    reads_object = TNEFObject.__init__.__code__

    def count(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls, copied
        calls += 1
        if frame.f_code is reads_object:
            copied += len(frame.f_locals.get("data", b""))
        if calls > MAX_CALLS or copied > MAX_COPIED:
            raise _OverBudget
        return None  # no line-by-line tracing: only calls are counted

    previous = sys.gettrace()
    sys.settrace(count)
    try:
        yield
    finally:
        sys.settrace(previous)


def _truncated(data: bytes, tnef: TNEF) -> bool:
    """Whether the file is cut off: tnefparse reads a last attribute as far as it goes (a file that is
    only its first part) and leaves off a last few bytes too short to be one (a file's bytes missing)."""
    if not tnef.objects:
        return True
    end = 6 + sum(obj.length for obj in tnef.objects)
    if end < len(data):  # bytes too few to be an attribute: the start of a cut-off one, or junk after the end
        return data[end] in (TNEF.LVL_MESSAGE, TNEF.LVL_ATTACHMENT)
    start = end - tnef.objects[-1].length
    declared = _HEADER.unpack_from(data, start)[3]
    return start + _HEADER.size + declared + 2 > len(data)


def _parse(data: bytes) -> TNEF | str:
    """The parsed TNEF, or why it could not be read."""
    if not data.startswith(_SIGNATURE):
        return NOT_TNEF
    try:
        with _budget():
            tnef = TNEF(data, do_checksum=True)
    except _OverBudget:
        return "too complex to unpack"
    except RecursionError:
        return "nested too deep"
    except Exception as exc:  # anything tnefparse trips over in a broken file
        return f"broken ({type(exc).__name__})"
    if _truncated(data, tnef):
        return "truncated"
    return tnef


def _text(value: object, codepage: str | None) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return decode_text(bytes(value), codepage)
    return ""


def _mapi(attachment: Any, name: int) -> object:
    return next((a.data for a in attachment.mapi_attrs if a.name == name), None)


def _raw_attach_data(tnef: TNEF) -> list[tuple[bytes | None, bool]]:
    """Each attachment's bytes as its attAttachData attribute holds them, and whether their checksum
    is right. tnefparse takes them from the MAPI properties when those repeat them, with trailing NUL
    bytes cut off, which breaks ZIP files (.docx, .xlsx) whose last bytes are NUL."""
    found: list[tuple[bytes | None, bool]] = []
    for obj in tnef.objects:
        if obj.name == TNEF.ATTATTACHRENDDATA:
            found.append((None, True))
        elif obj.name == TNEF.ATTATTACHDATA and obj.level == TNEF.LVL_ATTACHMENT and found:
            found[-1] = (bytes(obj.data), obj.good_checksum)
    return found


def _content_type(name: str, declared: object) -> str:
    guessed = mimetypes.guess_type(name, strict=False)[0]
    if guessed:
        return guessed
    tag = declared.strip().lower() if isinstance(declared, str) else ""
    return tag if _MIME_TYPE.fullmatch(tag) else "application/octet-stream"


def _content_id(value: object) -> str:
    return "".join(value.split()).strip("<>")[:300] if isinstance(value, str) else ""


def _message_class(tnef: TNEF) -> str:
    return next((str(o.data) for o in tnef.msgprops if o.name == TNEF.ATTMESSAGECLASS), "")


def _is_mail(message_class: str) -> bool:
    """An ordinary message ("IPM.Microsoft Mail.Note" is how TNEF names IPM.Note), not a meeting
    request, task or contact whose details only Outlook reads."""
    name = message_class.strip().lower()
    return not name or name == "ipm.microsoft mail.note" or name == "ipm.note" or name.startswith("ipm.note.")


def _file(tnef: TNEF, attachment: Any, own: bytes | None, index: int) -> File | None:
    long_name = _mapi(attachment, properties.MAPI_ATTACH_LONG_FILENAME)
    # (The 8-bit title is a C string: its NUL terminator is no part of the name.)
    name = (_text(long_name, tnef.codepage) or _text(getattr(attachment, "_name", b""), tnef.codepage)).rstrip("\0")
    data = own if own is not None else bytes(attachment.data)
    if not name.strip("\0 ") and not data:
        return None  # an attachment record with neither a name nor bytes: nothing to offer
    content_type = _content_type(safe_filename(name, "", index), _mapi(attachment, properties.MAPI_ATTACH_MIME_TAG))
    content_id = _content_id(_mapi(attachment, properties.MAPI_ATTACH_CONTENT_ID))
    return File(safe_filename(name, content_type, index), content_type[:120], data, content_id)


def unpack(data: bytes, index: int) -> Unpacked | str:
    """The files and body in a winmail.dat, or why it stays as it is. ``index`` is its position
    in the message, for files without a name ("part-3.pdf")."""
    tnef = _parse(data)
    if isinstance(tnef, str):
        return tnef
    if len(tnef.attachments) > MAX_FILES:
        return f"more than {MAX_FILES} files inside"
    unpacked = Unpacked()
    message_class = _message_class(tnef)
    if not _is_mail(message_class):
        unpacked.kept_for = f"an Outlook {message_class[:60]!r} item"
    raw = _raw_attach_data(tnef)
    for number, attachment in enumerate(tnef.attachments):
        own, checksum_ok = raw[number] if number < len(raw) else (None, True)
        if hasattr(attachment, "embed"):  # an attached Outlook item: only Outlook opens it
            unpacked.kept_for = "an Outlook item inside"
        elif not checksum_ok:
            unpacked.kept_for = "a damaged file inside"
        elif (file := _file(tnef, attachment, own, index)) is not None:
            unpacked.files.append(file)
    # (Bodies are C strings too; a NUL terminator is no part of them.)
    unpacked.text_body = _text(tnef.body, tnef.codepage).rstrip("\0")
    unpacked.html_body = _text(tnef.htmlbody, tnef.codepage).rstrip("\0")
    # (tnefparse decompresses RTF only with the compressed_rtf package, and hub does not show RTF.)
    unpacked.rtf_only = bool(tnef._rtfbody) and not unpacked.text_body.strip() and not unpacked.html_body.strip()
    if not unpacked.files and not unpacked.text_body.strip() and not unpacked.html_body.strip():
        return unpacked.kept_for or "nothing inside hub can show"
    return unpacked
