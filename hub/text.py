"""Small text helpers shared by search, matching, mail and imports."""

from __future__ import annotations

import codecs
import io
import itertools
import unicodedata
from collections.abc import Iterator
from typing import IO, Any, cast


def fold(text: str) -> str:
    """Lower-case and strip accents, so "Café Zoë" and "cafe zoe" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


def like_pattern(text: str) -> str:
    """A LIKE pattern that finds ``text`` anywhere, with LIKE's wildcards taken literally."""
    escaped = fold(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- Windows-1252 ------------------------------------------------------------------------------------------


def _latin1_rest(error: UnicodeError) -> tuple[str, int]:
    """The five bytes Windows-1252 leaves undefined (0x81 0x8d 0x8f 0x90 0x9d) as their C1 code
    points, as browsers decode them."""
    assert isinstance(error, UnicodeDecodeError)
    return error.object[error.start : error.end].decode("latin-1"), error.end


def windows_1252(data: bytes) -> str:
    return data.decode("cp1252", errors="hub-latin1-rest")


def _windows_1252_rest(error: UnicodeError) -> tuple[str, int]:
    """Bytes that are not UTF-8, as Windows-1252 (and its five undefined bytes as C1 code points)."""
    assert isinstance(error, UnicodeDecodeError)
    return windows_1252(error.object[error.start : error.end]), error.end


codecs.register_error("hub-latin1-rest", _latin1_rest)
codecs.register_error("hub-1252-rest", _windows_1252_rest)


# --- CSV files as spreadsheets write them ------------------------------------------------------------------

# What separates the columns: Excel writes a semicolon where the decimal sign is a comma (Dutch
# Excel's "CSV (gescheiden door lijstscheidingsteken)"), a tab in its "Unicode text".
CSV_DELIMITERS = (",", ";", "\t")


def csv_lines(stream: IO[bytes]) -> tuple[Iterator[str], str]:
    """A CSV file's lines (for the csv module) and its delimiter, read as it is written, streaming.

    Text: UTF-16 when it starts with its byte-order mark (Excel's "Unicode text"); else UTF-8 (with
    or without a BOM), where bytes that are not UTF-8 are read as Windows-1252, so a file Excel
    saved as "CSV" on Windows ("Café Zoë" as 0xE9, 0xEB) keeps its accents instead of losing them to
    replacement characters, also when only some of its lines are so. The delimiter is the one of
    ``CSV_DELIMITERS`` the first line holds most often outside quotes (a comma if none)."""
    # (io.BytesIO is no raw stream to typeshed, yet BufferedReader reads it as one)
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(cast(Any, stream))
    start = buffered.peek(4)[:4]
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not start.startswith(codecs.BOM_UTF32_LE):
        text = io.TextIOWrapper(buffered, encoding="utf-16", errors="replace", newline="")
    else:
        text = io.TextIOWrapper(buffered, encoding="utf-8-sig", errors="hub-1252-rest", newline="")
    first = text.readline()
    return (itertools.chain([first], text) if first else iter(())), csv_delimiter(first)


def csv_delimiter(line: str) -> str:
    """The one of :data:`CSV_DELIMITERS` ``line`` (a CSV file's first) holds most often outside quotes;
    a comma if none."""
    counts = dict.fromkeys(CSV_DELIMITERS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(CSV_DELIMITERS, key=lambda d: counts[d])  # (the first of equals: a comma)
    return best if counts[best] else ","
