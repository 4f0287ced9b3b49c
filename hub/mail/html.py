"""E-mail HTML made safe to show: sanitised with nh3 (no scripts, handlers, forms, frames), shown in a
sandboxed frame with a strict Content-Security-Policy.

What the sender controls and what hub does about it:

- links: http(s), mailto and tel only; ``data:`` and ``javascript:`` are dropped, and so are relative
  URLs. A relative URL would resolve against hub itself: ``<img src="/logout">`` would be a request to
  hub with the user's cookies, a relative link a hub-looking address. Dropping them in the sanitiser
  (rather than a ``<base href>`` in the frame) keeps hub's own image-proxy URLs, the only relative URLs
  in the document, working without having to know the public address hub is reached on.
- inline CSS: an allow-list of harmless properties, and each value checked (no ``expression()``, no
  ``url()`` except https images through the proxy, no escapes or comments to hide either behind), so
  a message can neither run code nor lay an overlay across the frame.
- remote images: dropped unless the user asks for them; then every one loads through hub's image
  proxy (``hub.mail.image_proxy``), so the sender's server never sees the reader's browser.
- ``<title>``, ``<style>`` and ``<script>`` contents are removed, not shown as body text.
"""

from __future__ import annotations

import html as html_text
import re
from collections.abc import Callable
from urllib.parse import unquote

import nh3

# Maps a remote image's URL (http or https) to the URL the frame may load it from: hub's image proxy.
ImageUrl = Callable[[str], str]
# Maps the Content-ID a "cid:" URL names (an inline image of the message itself) to hub's URL of that
# attachment, or None when the message has no such part.
CidUrl = Callable[[str], str | None]

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


URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
# Removed with everything inside them; the parser would otherwise show their text as body text.
CONTENT_TAGS = {"script", "style", "title", "head", "noscript", "template", "textarea", "select", "object"}
# Properties that only colour, size and lay out text and boxes in the normal flow. Left out on purpose:
# position, top/left/…, z-index, transform (overlays), behavior, -moz-binding, cursor, content,
# filter, animation (code, or images outside the proxy), unicode-bidi (text spoofing).
CSS_PROPERTIES = {
    "color",
    "background",
    "background-color",
    "background-image",
    "background-position",
    "background-repeat",
    "background-size",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-top-color",
    "border-right-color",
    "border-bottom-color",
    "border-left-color",
    "border-top-style",
    "border-right-style",
    "border-bottom-style",
    "border-left-style",
    "border-top-width",
    "border-right-width",
    "border-bottom-width",
    "border-left-width",
    "border-radius",
    "border-collapse",
    "border-spacing",
    "box-sizing",
    "caption-side",
    "clear",
    "direction",
    "display",
    "empty-cells",
    "float",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-variant",
    "font-weight",
    "height",
    "letter-spacing",
    "line-height",
    "list-style",
    "list-style-position",
    "list-style-type",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "max-height",
    "max-width",
    "min-height",
    "min-width",
    "overflow",
    "overflow-wrap",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "table-layout",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "vertical-align",
    "white-space",
    "width",
    "word-break",
    "word-spacing",
    "word-wrap",
}
# Functions a value may call; url() is checked on its own below.
CSS_FUNCTIONS = {"rgb", "rgba", "hsl", "hsla", "url"}
# Words that have no business in a harmless value, whatever property carries them (position and
# z-index are not allowed at all, so overlays need no word list).
CSS_FORBIDDEN = ("expression", "javascript", "vbscript", "behavior", "binding")
_CSS_PROPERTY = re.compile(r"^-?[a-z][a-z-]*$")
_CSS_FUNCTION = re.compile(r"([a-z_-]+)\s*\(")
_CSS_URL = re.compile(r"url\(\s*(?P<q>[\"']?)(?P<url>[^\"'()\s]*)(?P=q)\s*\)", re.IGNORECASE)
_CSS_VALUE = re.compile(r"^[a-z0-9\s#%.,'\"()!+\-/]*$")
# How browsers read the start of a URL (WHATWG URL standard): C0 controls and spaces around it
# dropped, tabs and line breaks anywhere dropped, the scheme in any case, and after http(s): any
# number of slashes or backslashes. " HTTPS:/\\tracker.example/p.gif" loads from tracker.example.
_URL_EDGES = "".join(map(chr, range(0x21)))
_URL_TABS_AND_BREAKS = str.maketrans("", "", "\t\n\r")
_BEFORE_QUERY = re.compile(r"[^?#]*")
_WEB_URL = re.compile(r"(https?):[/\\]*(.*)", re.IGNORECASE | re.DOTALL)


# The HTML parser behind nh3 (html5ever) takes time that grows with the square of how deep elements
# nest: 100,000 nested <div>s (600 KB) took over half a minute per view of the message. No mail a
# person reads has that many elements (a large newsletter has a few thousand); a message with more
# is shown as its text.
MAX_ELEMENTS = 10_000
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
_START_TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*)")
_TAG = re.compile(r"<[a-zA-Z/!?][^<>]*>")
_BLANKS = re.compile(r"[ \t]{2,}")


def _too_many_elements(html: str) -> bool:
    if html.count("<") <= MAX_ELEMENTS:
        return False
    names = (name.lower() for name in _START_TAG.findall(html))
    return sum(name not in _VOID for name in names) > MAX_ELEMENTS


def _as_text(html: str) -> str:
    """The text of the document, without parsing it: tags out, entities read, the rest escaped."""
    text = _BLANKS.sub(" ", html_text.unescape(_TAG.sub(" ", html)))
    return '<pre style="white-space:pre-wrap">' + html_text.escape(text) + "</pre>"


def sanitise(html: str, image_url: ImageUrl | None = None, cid_url: CidUrl | None = None) -> str:
    """Safe HTML for the e-mail frame.

    Remote images (http and https, in ``<img>`` and in CSS) are removed unless ``image_url`` is given;
    then each goes through it (hub's signed image-proxy URL). ``data:`` images are always removed.
    ``cid:`` images (the message's own inline images) point where ``cid_url`` says, when given.
    """
    if _too_many_elements(html):
        return _as_text(html)
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags=CONTENT_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        url_relative="deny",
        attribute_filter=lambda _tag, attribute, value: _checked_style(value) if attribute == "style" else value,
        filter_style_properties=CSS_PROPERTIES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    # Second pass over HTML that is already clean: point remote images at the proxy. It runs after
    # the first because the first drops relative URLs, and the proxy's URLs are relative.
    return nh3.clean(
        clean,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        url_relative="pass_through",
        attribute_filter=lambda tag, attribute, value: _images_through(tag, attribute, value, image_url, cid_url),
        filter_style_properties=CSS_PROPERTIES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def _images_through(
    tag: str, attribute: str, value: str, image_url: ImageUrl | None, cid_url: CidUrl | None = None
) -> str | None:
    if attribute == "style":
        return _checked_style(value, image_url, rewrite=True)
    if tag == "img" and attribute == "src":
        # Only cid: images (the message's own) stay as they are; every other URL the first pass let
        # through is http(s) as browsers read it, also where it does not look like it ("https:\\x").
        url = value.strip(_URL_EDGES).translate(_URL_TABS_AND_BREAKS)
        if url.lower().startswith("cid:"):
            # RFC 2392: the URL holds the Content-ID %-encoded, without its angle brackets.
            return (cid_url(unquote(url[4:]).strip("<>")) if cid_url else None) or value
        web = _WEB_URL.fullmatch(url)
        if web is None or image_url is None:
            return None
        # Backslashes are slashes before the query, as browsers read them.
        path = _BEFORE_QUERY.match(web[2])[0]  # type: ignore[index]
        return image_url(web[1].lower() + "://" + path.replace("\\", "/") + web[2][len(path) :])
    return value


def _checked_style(style: str, image_url: ImageUrl | None = None, *, rewrite: bool = False) -> str | None:
    """The harmless declarations of a ``style`` attribute, or None when none is left.

    A backslash (CSS escape: ``\\65 xpression``), a comment, braces, ``@`` or ``<`` make the whole
    attribute suspect: such values only serve to slip something past a check like this one.
    ``url()`` is kept only for https images: as it is in the first pass, through ``image_url`` in the
    second (``rewrite``), and not at all when images are not shown.
    """
    if any(mark in style for mark in ("\\", "/*", "{", "}", "@", "<")):
        return None
    kept = []
    for declaration in style.split(";"):
        name, colon, value = declaration.partition(":")
        name, value = name.strip().lower(), value.strip()
        if not colon or not value or not _CSS_PROPERTY.match(name) or name not in CSS_PROPERTIES:
            continue
        checked = _checked_value(value, image_url, rewrite)
        if checked is not None:
            kept.append(f"{name}:{checked}")
    return ";".join(kept) or None


def _checked_value(value: str, image_url: ImageUrl | None, rewrite: bool) -> str | None:
    urls = [match.group("url") for match in _CSS_URL.finditer(value)]
    if not all(url.lower().startswith("https://") for url in urls):
        return None
    # Judge the value with its URLs taken out: a URL may hold any characters, the rest may not.
    bare = _CSS_URL.sub("url()", value).lower()
    if any(word in bare for word in CSS_FORBIDDEN) or not _CSS_VALUE.match(bare):
        return None
    if any(function not in CSS_FUNCTIONS for function in _CSS_FUNCTION.findall(bare)):
        return None
    if bare.count("url(") != len(urls):
        return None  # a url( the pattern above could not read: quotes or parentheses inside it
    if not urls or not rewrite:
        return value
    if image_url is None:
        return None
    return _CSS_URL.sub(lambda match: f'url("{image_url(match.group("url"))}")', value)


def frame_policy(show_images: bool) -> str:
    """The CSP of the frame that shows one e-mail: no scripts; images only from hub's proxy, when asked for."""
    images = "img-src 'self'" if show_images else "img-src 'none'"
    return (
        f"default-src 'none'; {images}; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
        "sandbox allow-popups allow-popups-to-escape-sandbox"
    )


def frame_headers(show_images: bool) -> dict[str, str]:
    """Every header of the e-mail frame's response: its CSP, no referrer, no sniffing, no caching."""
    return {
        "Content-Security-Policy": frame_policy(show_images),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN",
        "Cache-Control": "private, no-store",
    }


# RFC 9110 token characters: what a media type's type and subtype are made of.
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}/[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
# Types a browser runs or applies when a page on hub's address names the download in <script src>,
# a worker, or <link rel=stylesheet>: the WHATWG "JavaScript MIME type essence matches" and CSS.
_ACTIVE_SUBTYPES = ("javascript", "ecmascript", "jscript", "livescript")
DOWNLOAD_FALLBACK = "application/octet-stream"


def download_type(content_type: str) -> str:
    """The Content-Type an attachment (or a document made from one) is served with.

    The sender chooses the type. Served as it is, a type that is not plain ASCII broke the download
    (a header must be Latin-1: the server dropped the connection), and a script or style sheet type
    would let any HTML that ever slipped into a hub page load the sender's file as a script or style
    from hub's own address, which the page CSP (script-src 'self') allows. Those are served as bytes;
    with ``Content-Disposition: attachment`` the browser saves them under their name all the same.
    """
    essence = content_type.split(";", 1)[0].strip().lower()
    if _MEDIA_TYPE.fullmatch(essence) is None:
        return DOWNLOAD_FALLBACK
    subtype = essence.partition("/")[2]
    if essence == "text/css" or any(word in subtype for word in _ACTIVE_SUBTYPES):
        return DOWNLOAD_FALLBACK
    return essence


def attachment_headers(content_type: str) -> dict[str, str]:
    """Headers for downloading an attachment, whatever type it claims to be.

    An HTML or SVG attachment opened from hub's address would run its scripts as hub (with the
    user's session); the sandbox CSP makes it an opaque origin that can run and load nothing, and
    nosniff keeps a browser from deciding a "PDF" is HTML after all. ``content_type`` is taken so
    callers need not decide which types are dangerous: a sender chooses the type, so every
    attachment gets the same headers.
    """
    del content_type  # the same for every type, see above
    return {
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
