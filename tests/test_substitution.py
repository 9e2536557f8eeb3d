"""Templates rendered without Jinja2 (`compose.substitution`) come out exactly as Jinja2 renders them.

Every comparison renders the same text both ways: with `substitution.parse` and with a Jinja2 Environment set up
as `Renderer` sets it up (sandboxed within `compose.limits`, StrictUndefined, autoescape for HTML only,
keep_trailing_newline, `money`), and compares the output, or the missing-variable message. Text `parse` declines
must be left to Jinja2.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import pytest
from jinja2 import meta
from jinja2.defaults import DEFAULT_NAMESPACE

from tests.support.samples import smtp_profile
from xoromail_cli.compose import substitution
from xoromail_cli.compose.events import EVENTS, PROFILE_VARIABLES
from xoromail_cli.compose.render import BUILTIN_TEMPLATES, TEMPLATE_FILES, Renderer, format_money
from xoromail_cli.compose.sandbox import LimitedSandbox
from xoromail_cli.errors import ConfigError


def money(value: Any) -> str:
    return format_money(value, "EUR")


def environment(html: bool) -> jinja2.Environment:  # the sandboxed one Renderer uses
    made = LimitedSandbox(undefined=jinja2.StrictUndefined, autoescape=html,  # as Renderer
                          keep_trailing_newline=True)
    made.add_filter("money", money)
    return made


def outcome(render: Any, context: Mapping[str, Any]) -> tuple[str, str]:
    """("ok", text) or ("undefined", message): what a render gives, comparable across both engines."""
    try:
        return "ok", render(context)
    except (jinja2.UndefinedError, substitution.MissingVariable) as exc:
        return "undefined", str(exc.message)


def both(text: str, html: bool, context: Mapping[str, Any]) -> tuple[tuple[str, str], tuple[str, str]]:
    simple = substitution.parse(text, autoescape=html, money=money)
    assert simple is not None, f"not taken as simple: {text!r}"
    return outcome(simple.render, context), outcome(environment(html).from_string(text).render, context)


TRICKY_VALUES: list[Any] = ["Müller & Söhne <b>\"O'Brien\"</b>", "1249.50", "1.234,5", "", "0", 0, 1, 12.5, None,
                            True, False, ["a", "<b>"], {"k": "v"}, "line one\r\nline two\rthree", "{{ not_a_tag }}"]


def builtin_files() -> list[tuple[str, str]]:
    return [(event, name) for event in EVENTS for name in TEMPLATE_FILES]


@pytest.mark.parametrize(("event", "name"), builtin_files())
def test_every_builtin_template_is_simple_and_renders_as_jinja2_does(event: str, name: str) -> None:
    text = (BUILTIN_TEMPLATES / event / name).read_text(encoding="utf-8")
    html = name.endswith(".html")
    spec = EVENTS[event]
    rng = random.Random(f"{event}/{name}")
    for _ in range(40):
        context = {variable: rng.choice(TRICKY_VALUES) for variable in (*spec.variables, *PROFILE_VARIABLES)}
        ours, theirs = both(text, html, context)
        assert ours == theirs
    simple = substitution.parse(text, autoescape=html, money=money)
    assert simple is not None
    assert simple.names() == meta.find_undeclared_variables(environment(html).parse(text))


SIMPLE = [
    "", "plain text", "{{ a }}", "{{a}}", "{{ a}}", "{{a }}", "{{ a|money }}", "{{ a | money }}", "{{a|money}}",
    "x{{ a }}y{{ b }}z", "{% if a %}yes{% endif %}", "{% if a %}yes{% else %}no{% endif %}",
    "{% if a %}{% if b %}ab{% else %}a{% endif %}{% else %}{{ b }}{% endif %}!",
    "} }} %} #} {", "a}}b", "{{ a }}}", "{{ a }}}}", "100% {{ a }}", "50%} done", "line\r\nnext\rlast\n",
    "{% if a %}\r\n{{ a }}\r\n{% endif %}\r\n", "trailing newline\n", "\n\n", "é {{ a }} ünïcode ✓",
    "{{ signature }}{{ _private }}{{ x1 }}", "{% if a %}{% endif %}", "{% if a %}{% else %}{% endif %}",
]


@pytest.mark.parametrize("text", SIMPLE)
@pytest.mark.parametrize("html", [False, True])
def test_simple_templates_render_as_jinja2_does(text: str, html: bool) -> None:
    rng = random.Random(text)
    for _ in range(30):
        context = {name: rng.choice(TRICKY_VALUES) for name in ("a", "b", "signature", "_private", "x1")
                   if rng.random() < 0.85}
        ours, theirs = both(text, html, context)
        assert ours == theirs, context


NOT_SIMPLE = [
    "{{ a.b }}", "{{ a['b'] }}", "{{ a ~ b }}", "{{ a + 1 }}", "{{ a | upper }}", "{{ a | money(2) }}",
    "{{  a  }}", "{{- a }}", "{{ a -}}", "{%- if a %}x{% endif %}", "{% if a -%}x{% endif %}", "{# note #}",
    "{% if a %}x{% elif b %}y{% endif %}", "{% if not a %}x{% endif %}", "{% if a and b %}x{% endif %}",
    "{% for a in b %}x{% endfor %}", "{% set a = 1 %}", "{% raw %}{{ a }}{% endraw %}", "{{ true }}",
    "{{ none }}", "{{ range }}", "{{ loop }}", "{{ lipsum }}", "{{ namespace }}", "{% if range %}x{% endif %}",
    "{% if a %}x", "{% endif %}", "{% else %}", "{% if a %}x{% else %}y{% else %}z{% endif %}", "{{ a }",
    "{{{ a }}", "{% if a %}{% if b %}x{% endif %}", "{{ 'text' }}", "{{ 1 }}", "{%if a%}x{%endif%}",
    "{{ a | money | money }}", "{{ ä }}",
]


@pytest.mark.parametrize("text", NOT_SIMPLE)
def test_anything_else_is_left_to_jinja2(text: str) -> None:
    assert substitution.parse(text, autoescape=False, money=money) is None
    assert substitution.parse(text, autoescape=True, money=money) is None


def test_the_names_jinja2_defines_itself_are_left_to_it() -> None:
    assert set(DEFAULT_NAMESPACE) <= substitution.RESERVED


def random_template(rng: random.Random, depth: int = 0) -> str:
    """Text from the simple tags and awkward literal pieces, ifs nested up to three deep."""
    literals = ["x", " ", "\n", "\r\n", "\r", "}", "}}", "%}", "#}", "{ ", "% ", "<&>", "'\"", "é", "{}"]
    pieces = []
    for _ in range(rng.randint(0, 6)):
        kind = rng.random()
        name = rng.choice(["a", "b", "c"])
        if kind < 0.4:
            pieces.append(rng.choice(literals))
        elif kind < 0.7:
            pieces.append(rng.choice(["{{ %s }}", "{{%s}}", "{{ %s | money }}", "{{%s|money}}"]) % name)
        elif depth < 3:
            otherwise = f"{{% else %}}{random_template(rng, depth + 1)}" if rng.random() < 0.5 else ""
            pieces.append(f"{{% if {name} %}}{random_template(rng, depth + 1)}{otherwise}{{% endif %}}")
    return "".join(pieces)


def test_random_simple_templates_render_as_jinja2_does() -> None:
    rng = random.Random(24)
    for _ in range(400):
        text = random_template(rng)
        html = rng.random() < 0.5
        context = {name: rng.choice(TRICKY_VALUES) for name in ("a", "b", "c") if rng.random() < 0.8}
        ours, theirs = both(text, html, context)
        assert ours == theirs, (text, html, context)


def test_the_renderer_uses_jinja2_only_for_a_template_that_needs_it(tmp_path: Path) -> None:
    """A custom template beyond plain substitution still works (Jinja2), and the built-in ones beside it."""
    custom = tmp_path / "overdue-invoice"
    custom.mkdir()
    (custom / "body.txt").write_text("{% for word in ['Dear', customer_name] %}{{ word }} {% endfor %}\n",
                                     encoding="utf-8")
    profile = smtp_profile(name="default", email="billing@company.test", host="smtp.company.test", port=587,
                           currency="USD")
    renderer = Renderer(profile, tmp_path)
    variables = {"customer_name": "Ann & Co", "invoice_number": "INV-1", "amount_due": "12.5",
                 "due_date": "2026-11-15"}
    rendered = renderer.render(EVENTS["overdue-invoice"], variables)
    assert rendered.text == "Dear Ann & Co \n"
    assert "Ann &amp; Co" in rendered.html and "USD 12.50" in rendered.html
    assert rendered.subject == "Payment reminder: invoice INV-1 is overdue"


def test_a_missing_variable_is_reported_as_before(tmp_path: Path) -> None:
    custom = tmp_path / "overdue-invoice"
    custom.mkdir()
    (custom / "subject.txt").write_text("Invoice {{ invoice_numbr }}\n", encoding="utf-8")
    profile = smtp_profile(name="default", email="billing@company.test", host="smtp.company.test", port=587)
    renderer = Renderer(profile, tmp_path)
    variables = {"customer_name": "Ann", "invoice_number": "INV-1", "amount_due": "12.5", "due_date": "2026-11-15"}
    with pytest.raises(ConfigError, match=r"uses a variable the event does not have: 'invoice_numbr' is undefined"):
        renderer.render(EVENTS["overdue-invoice"], variables)
