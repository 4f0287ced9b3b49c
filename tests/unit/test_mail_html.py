"""The e-mail frame's HTML: hostile markup loses everything that could run, track, overlay or reach
hub itself, and keeps what makes a message readable."""

from __future__ import annotations

import re

import pytest

from hub.mail.html import attachment_headers, frame_headers, frame_policy, sanitise


def proxied(url: str) -> str:
    return "/mail/image?url=" + url.replace("&", "%26") + "&sig=s"


def style_of(html: str) -> str:
    match = re.search(r'style="([^"]*)"', html)
    return match.group(1) if match else ""


@pytest.mark.parametrize(
    "style",
    [
        "width: expression(alert(1))",
        "width: EXPRESSION(alert(1))",
        "background: url(javascript:alert(1))",
        "background-image: url('javascript:alert(1)')",
        "background: url(data:image/png;base64,AAAA)",
        "background: url(http://tracker.example/p.gif)",
        "background: url(/logout)",
        "behavior: url(evil.htc)",
        "-moz-binding: url('https://evil.example/x.xml#y')",
        "position: fixed",
        "position: absolute; top: 0; left: 0; width: 100%; height: 100%",
        "position: sticky",
        "z-index: 2147483647",
        "color: \\65 xpression(alert(1))",
        "color: red/**/; width: expr/**/ession(1)",
        "@import url(https://evil.example/x.css)",
        "color: red } body { background: red",
        "font-family: x; background: image-set('https://evil.example/a.png' 1x)",
        "cursor: url(https://evil.example/c.cur), auto",
        "content: 'spoof'",
        "transform: translate(-100px, -100px)",
    ],
)
def test_hostile_css_is_dropped(style: str) -> None:
    html = sanitise(f'<p style="{style}">text</p>', proxied)
    kept = style_of(html)
    for word in (
        "expression",
        "javascript",
        "data:",
        "http:",
        "logout",
        "behavior",
        "binding",
        "position",
        "z-index",
        "import",
        "image-set",
        "cursor",
        "content",
        "transform",
        "evil",
        "\\",
    ):
        assert word not in kept.lower(), (style, kept)
    assert "text" in html


def test_harmless_css_is_kept() -> None:
    html = sanitise(
        '<table><tr><td style="color: #333; background-color: rgb(250, 250, 250); font: 14px/1.4 Arial, sans-serif;'
        ' padding: 4px 8px; text-align: center; border: 1px solid #ccc; table-layout: fixed">x</td></tr></table>'
    )
    kept = style_of(html)
    for part in (
        "color:#333",
        "background-color:rgb(250, 250, 250)",
        "padding:4px 8px",
        "text-align:center",
        "table-layout:fixed",
        "border:1px solid #ccc",
    ):
        assert part in kept, kept


def test_one_bad_declaration_costs_only_itself() -> None:
    kept = style_of(sanitise('<p style="color: red; position: fixed; z-index: 99999; font-weight: bold">x</p>'))
    assert kept == "color:red;font-weight:bold"


def test_links_keep_tel_mailto_and_http() -> None:
    html = sanitise(
        '<a href="tel:+31201234567">call</a><a href="mailto:a@b.example">mail</a>'
        '<a href="https://example.com/x?a=1&amp;b=2">web</a>'
    )
    assert 'href="tel:+31201234567"' in html
    assert 'href="mailto:a@b.example"' in html
    assert 'href="https://example.com/x?a=1&amp;b=2"' in html
    assert "noopener" in html and "noreferrer" in html


@pytest.mark.parametrize(
    "href",
    [
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "DATA:text/html,<script>alert(1)</script>",
        "javascript:alert(1)",
        "vbscript:msgbox(1)",
        "/logout",
        "../settings/users",
        "?delete=1",
        "//evil.example/phish",
    ],
)
def test_data_script_and_relative_links_are_removed(href: str) -> None:
    html = sanitise(f'<a href="{href}">click</a>')
    assert "href" not in html and "click" in html


@pytest.mark.parametrize(
    "src", ["data:image/png;base64,iVBORw0KGgo=", "/logout", "emails/1/raw", "//tracker.example/p.gif", "javascript:x"]
)
def test_data_and_relative_images_are_removed_even_when_images_are_shown(src: str) -> None:
    html = sanitise(f'<img src="{src}" alt="a">', proxied)
    assert "src" not in html


def test_remote_images_are_removed_until_asked_for() -> None:
    html = sanitise('<img src="https://tracker.example/p.gif?u=1" alt="logo"><img src="http://t.example/q.gif">')
    assert "tracker" not in html and "t.example" not in html
    assert 'alt="logo"' in html


def test_shown_images_go_through_the_proxy_http_and_https() -> None:
    html = sanitise(
        '<img src="https://cdn.example/logo.png?a=1&amp;b=2" alt="logo"><img src="http://t.example/q.gif">'
        "<div style=\"background-image: url('https://cdn.example/bg.png'); color: red\">x</div>",
        proxied,
    )
    assert 'src="/mail/image?url=https://cdn.example/logo.png?a=1%26b=2&amp;sig=s"' in html
    assert 'src="/mail/image?url=http://t.example/q.gif&amp;sig=s"' in html
    assert "url(&quot;/mail/image?url=https://cdn.example/bg.png&amp;sig=s&quot;)" in html
    assert "color:red" in html
    # Nothing left that the browser would fetch from the sender directly.
    assert not re.search(r'(src="|url\(&quot;)https?:', html)


def test_css_images_are_dropped_when_not_shown() -> None:
    kept = style_of(sanitise('<div style="background: #fff url(https://cdn.example/bg.png); color: red">x</div>'))
    assert kept == "color:red"


def test_cid_images_are_left_alone() -> None:
    assert 'src="cid:logo@example"' in sanitise('<img src="cid:logo@example">')


def test_title_style_and_script_text_are_not_shown() -> None:
    html = sanitise(
        "<html><head><title>Invoice 2026-17 SECRET-TITLE</title><style>p { color: red } STYLE-TEXT</style>"
        "<script>var SCRIPT_TEXT = 1;</script></head><body><p>Dear customer</p>"
        "<noscript>NOSCRIPT-TEXT</noscript><textarea>TEXTAREA-TEXT</textarea></body></html>"
    )
    assert "Dear customer" in html
    for hidden in ("SECRET-TITLE", "STYLE-TEXT", "SCRIPT_TEXT", "NOSCRIPT-TEXT", "TEXTAREA-TEXT", "<title"):
        assert hidden not in html


def test_scripts_handlers_and_frames_are_gone() -> None:
    html = sanitise(
        '<img src="x" onerror="alert(1)"><svg onload="alert(1)"></svg><iframe src="https://e.example"></iframe>'
        '<form action="https://e.example"><input name="pw"></form><base href="https://evil.example/">'
        '<meta http-equiv="refresh" content="0;url=https://evil.example"><link rel="stylesheet" href="https://e.example/x.css">'
    )
    for bad in ("onerror", "onload", "<svg", "<iframe", "<form", "<input", "<base", "<meta", "<link", "evil"):
        assert bad not in html


def test_the_frame_loads_images_only_from_hub_and_only_when_asked() -> None:
    assert "img-src 'none'" in frame_policy(False)
    shown = frame_policy(True)
    assert "img-src 'self';" in shown and "data:" not in shown and "http" not in shown
    assert "default-src 'none'" in shown and "sandbox" in shown and "script-src" not in shown
    headers = frame_headers(True)
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Content-Security-Policy"] == shown


@pytest.mark.parametrize("content_type", ["text/html", "image/svg+xml", "application/xhtml+xml", "application/pdf", ""])
def test_every_attachment_is_sandboxed(content_type: str) -> None:
    headers = attachment_headers(content_type)
    assert headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"
