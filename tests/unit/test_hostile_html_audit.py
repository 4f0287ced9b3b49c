"""A colleague's mailing template written to bring the server down, and a sender's attachment type
written to be served as something hub would run: each refused with a clear reason, while ordinary
templates and attachments are what they were."""

from __future__ import annotations

import pytest

from hub.campaigns.render import TemplateProblem, Templates, check, sample_context
from hub.mail.html import DOWNLOAD_FALLBACK, download_type

# Each of these took seconds to hours of CPU, or gigabytes, on every save, preview and message (sizes
# kept small enough that the old code finished and showed the result, so the test fails instead of
# hanging; the real attacks were larger).
BOMBS = [
    # constant folding made these at compile time, when the mailing was saved
    "{{ ('x' * 100000000)|length }}",
    "{{ (9 ** (9 ** 6)) % 7 }}",
    # doubling a text: replace, ~, +
    "{{ ('x' * 10)" + "|replace('x', 'xxxxxxxxxx')" * 7 + "|length }}",
    "{% set a = 'xxxxxxxxxx' %}" + "{% set a = a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a %}" * 7 + "{{ a|length }}",
    "{% set a = 'xxxxxxxxxx' %}" + "{% set a = a + a + a + a + a + a + a + a + a + a %}" * 7 + "{{ a|length }}",
    "{{ ('ab' * 1000)|join('y' * 10000)|length }}",
    "{{ ''.join(['x' * 2000000] * 3)|length }}",
    # widths
    "{{ 'x'|center(20000000)|length }}",
    "{{ ('%20000000s'|format('x'))|length }}",
    "{{ ('%20000000s' % 'x')|length }}",
    "{{ '{:20000000}'.format('x')|length }}",
    "{{ '{:{}}'.format('x', 20000000)|length }}",
    "{{ (('x' * 1000 ~ '\n') * 1000)|indent(9000)|length }}",
    "{{ ('\t' * 100000).expandtabs(9000)|length }}",
    # work without much text: loops nested, a macro calling itself twice
    "{% for a in 'x' * 1000 %}{% for b in 'x' * 1000 %}{% for c in 'x' * 3 %}{% endfor %}{% endfor %}{% endfor %}",
    "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(19) }}",
    "{% for a in 'x' * 2000 %}{{ ('y' * 100000)|upper|length }}{% endfor %}",
    # Jinja's own parser and compiler: nesting (RecursionError, a 500 on saving), thousands of tags
    # or one endless expression (seconds to minutes of compiling on every save, preview and send run)
    "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",
    "{{ 'x'" + "|upper" * 3000 + " }}",
    "{% if 1 %}x{% endif %}" * 6000,
    "{{ 'a'" + " ~ 'a'" * 20000 + " }}",
    "{{ 1" + "0" * 5000 + " }}",  # (int() refuses more than 4,300 digits: a ValueError, a 500)
]


@pytest.mark.parametrize("template", BOMBS)
def test_a_template_that_would_take_the_server_down_is_refused(template: str) -> None:
    with pytest.raises(TemplateProblem, match="more than any mailing needs"):
        check("Hi", "", template)
    with pytest.raises(TemplateProblem, match="more than any mailing needs"):
        check("Hi", "<p>" + template + "</p>", "")


@pytest.mark.parametrize(
    ("template", "shown"),
    [
        ("{% for x in [1, 2, 3] %}{{ x }}{% endfor %}", "123"),
        ("{{ contact.name|upper }} / {{ contact.first_name ~ '!' }}", "ANNA DE VRIES / Anna!"),
        ("{{ '%s, %-8s|' % (contact.first_name, 'hi') }}", "Anna, hi      |"),
        ("{{ '{:>6}|{}'.format(contact.first_name, relation.city) }}", "  Anna|Utrecht"),
        ("{{ relation.name|replace('BV', 'B.V.') }} {{ 'a,b'.split(',')|join(' & ') }}", "Voorbeeld B.V. a & b"),
        ("{{ ('-' * 20) }} {{ 2 ** 10 }} {{ [1] + [2] }} {{ 7 % 3 }}", "-------------------- 1024 [1, 2] 1"),
        ("{{ contact.name|center(21) }}|{{ 'x'|indent(4, true) }}", "    Anna de Vries    |    x"),
        ("{% macro hi(n) %}{{ n }}{% endmacro %}{% for i in 'abc' %}{{ hi(i) }}{% endfor %}", "abc"),
    ],
)
def test_ordinary_templates_render_as_before(template: str, shown: str) -> None:
    assert Templates.compile("Hi", "", template).render(sample_context())[2] == shown


def test_a_big_newsletter_is_not_too_big() -> None:
    # A long newsletter with an embedded image is far from the limits.
    html = (
        "<p>{{ contact.name }}</p>"
        + "<td>Aanbieding</td>" * 20_000
        + '<img src="data:image/png;base64,'
        + "A" * 700_000
        + '">'
    )
    loop = "{% for i in 'x' * 5000 %}<li>{{ contact.first_name }} {{ loop.index }}</li>{% endfor %}"
    subject, rendered, _text = check("Nieuws voor {{ contact.first_name }}", html + loop, "Hallo").render(
        sample_context()
    )
    assert subject == "Nieuws voor Anna" and rendered.count("Aanbieding") == 20_000 and "<li>Anna 5000</li>" in rendered


@pytest.mark.parametrize(
    ("declared", "served"),
    [
        ("application/pdf", "application/pdf"),
        ("IMAGE/PNG", "image/png"),
        ("text/plain; charset=iso-8859-1", "text/plain"),
        ("image/svg+xml", "image/svg+xml"),  # (the sandbox CSP keeps it from running: attachment_headers)
        ("text/html", "text/html"),
        ("application/javascript", DOWNLOAD_FALLBACK),
        ("text/javascript; charset=utf-8", DOWNLOAD_FALLBACK),
        ("text/x-javascript", DOWNLOAD_FALLBACK),
        ("application/x-ecmascript", DOWNLOAD_FALLBACK),
        ("text/jscript", DOWNLOAD_FALLBACK),
        ("text/livescript", DOWNLOAD_FALLBACK),
        ("text/css", DOWNLOAD_FALLBACK),
        ("text/\u202ehtml", DOWNLOAD_FALLBACK),
        ("text/h\u00e9ml", DOWNLOAD_FALLBACK),
        ("text/html\x7f", DOWNLOAD_FALLBACK),
        ("text/html\r\nSet-Cookie: a=b", DOWNLOAD_FALLBACK),
        ("text", DOWNLOAD_FALLBACK),
        ("", DOWNLOAD_FALLBACK),
        ("a/" + "b" * 200, DOWNLOAD_FALLBACK),
    ],
)
def test_attachments_are_served_with_a_type_that_is_a_header_and_never_a_script(declared: str, served: str) -> None:
    assert download_type(declared) == served
