"""E-mail HTML made safe to show: sanitised with nh3 (no scripts, handlers, forms, frames), shown in a
sandboxed frame with a strict Content-Security-Policy. Remote images stay blocked by that policy until
the user asks for them."""

from __future__ import annotations

import nh3

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "center",
    "code",
    "col",
    "colgroup",
    "dd",
    "div",
    "dl",
    "dt",
    "em",
    "font",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "*": {"align", "style", "title", "dir", "lang", "width", "height", "bgcolor", "color", "valign"},
    "a": {"href", "name"},
    "img": {"src", "alt"},
    "font": {"face", "size"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "table": {"border", "cellpadding", "cellspacing"},
}


def sanitise(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "cid", "data"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def frame_policy(show_images: bool) -> str:
    """The CSP of the frame that shows one e-mail: no scripts, nothing loads unless images are asked for."""
    images = "img-src data: https: http:" if show_images else "img-src data:"
    return (
        f"default-src 'none'; {images}; style-src 'unsafe-inline'; sandbox allow-popups allow-popups-to-escape-sandbox"
    )
