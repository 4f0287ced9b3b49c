"""Message-IDs as threading needs them: "<id>", also when a mailer left the angle brackets off."""

from __future__ import annotations

import re

# The message_key column holds 500 characters: a longer "Message-ID" cannot identify the message
# whole, so it is not used rather than cut and mismatched later.
# Nor are control characters or lone surrogates part of a usable one.
MSGID = re.compile("<[^<>\\s\x00-\x1f\x7f\ud800-\udfff]{1,498}>")
# A bare id ("1234.abc@mail.example"): a word with an @ and nothing that cannot be in an id.
_BARE_ID = re.compile('[^<>\\s\x00-\x1f\x7f\ud800-\udfff(),;"]{1,496}@[^<>\\s\x00-\x1f\x7f\ud800-\udfff(),;"@]{1,200}')

# An id with blanks inside its brackets: some mailers fold a long id ("<1234.x\r\n @mail.example>"),
# and unfolding leaves a blank; no id holds one, so blanks inside brackets around an @ are dropped.
_FOLDED_ID = re.compile(r"<[^<>@]*@[^<>]*>")  # no @ before the first: one way to match, linear time


def message_ids(text: str) -> list[str]:
    """The ids in a Message-ID, In-Reply-To or References value, each as "<id>".

    Bare ids count only when no id in angle brackets is there: In-Reply-To often carries an address
    in its comment ("<id@x> (Anna <anna@x>'s message)").
    """
    if "<" in text and any(blank in text for blank in " \t\r\n"):
        text = _FOLDED_ID.sub(lambda match: "".join(match[0].split()), text)
    found = MSGID.findall(text)
    if found or "@" not in text:
        return found
    return [f"<{word}>" for word in text.split() if _BARE_ID.fullmatch(word) and len(word) <= 498]
