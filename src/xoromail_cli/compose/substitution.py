"""Templates that need no Jinja2: plain text with `{{ name }}`, `{{ name | money }}` and
`{% if name %}…{% else %}…{% endif %}`, rendered exactly as Jinja2 renders them (StrictUndefined, autoescaped
HTML, `keep_trailing_newline`).

Every built-in template is of this kind, and so are most users' own; importing and compiling Jinja2 for them
cost more than the rest of composing a message (docs/performance.md). `parse` accepts only text whose every
`{{`, `{%` and `{#` is one of the tags above, spelled as they are here (one space inside the braces, or none);
anything else (whitespace control, comments, `elif`, other filters, expressions, names Jinja2 gives a meaning
of its own) returns None and the caller compiles the text with Jinja2, which also reports its syntax errors.
tests/test_substitution.py renders every built-in template and many odd ones both ways and compares.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_OPENING = re.compile(r"\{[{%#]")
_TAG = re.compile(r"\{\{ ?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<money> ?\| ?money)? ?\}\}"
                  r"|\{% (?:if (?P<test>[A-Za-z_][A-Za-z0-9_]*)|(?P<word>else|endif)) %\}")
_NEWLINES = re.compile(r"\r\n|\r")

RESERVED = frozenset({
    # constants and operators of Jinja2's expression language
    "true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else", "elif",
    # statement words, and names the template runtime defines itself
    "endif", "for", "endfor", "block", "endblock", "extends", "include", "import", "from", "macro", "call",
    "filter", "set", "with", "raw", "recursive", "loop", "self", "varargs", "kwargs", "caller", "super",
    # Environment globals (jinja2.defaults.DEFAULT_NAMESPACE): a template may name them without a variable
    "range", "dict", "lipsum", "cycler", "joiner", "namespace",
})
"""Names left to Jinja2: it resolves them (or refuses them) on its own terms."""


class MissingVariable(Exception):  # named as what the template lacks, like Jinja2's UndefinedError
    """A template names a variable the context does not have (Jinja2's StrictUndefined, same wording)."""

    def __init__(self, name: str) -> None:
        self.message = f"{name!r} is undefined"
        super().__init__(self.message)


@dataclass(frozen=True)
class Value:
    name: str
    money: bool


@dataclass(frozen=True)
class Branch:
    test: str
    then: tuple[Part, ...]
    otherwise: tuple[Part, ...]


Part = str | Value | Branch


@dataclass(frozen=True)
class SimpleTemplate:
    """A parsed template: `render(context)` as `jinja2.Template.render` would give it."""

    parts: tuple[Part, ...]
    autoescape: bool
    money: Callable[[Any], str]

    def render(self, context: Mapping[str, Any]) -> str:
        out: list[str] = []
        self._render(self.parts, context, out)
        return "".join(out)

    def names(self) -> frozenset[str]:
        """Every variable the template reads (Jinja2's `meta.find_undeclared_variables`)."""
        found: set[str] = set()
        pending = list(self.parts)
        while pending:
            part = pending.pop()
            if isinstance(part, Value):
                found.add(part.name)
            elif isinstance(part, Branch):
                found.add(part.test)
                pending.extend((*part.then, *part.otherwise))
        return frozenset(found)

    def _render(self, parts: tuple[Part, ...], context: Mapping[str, Any], out: list[str]) -> None:
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Value):
                value = _lookup(context, part.name)
                out.append(self._text(self.money(value) if part.money else value))
            else:
                self._render(part.then if _lookup(context, part.test) else part.otherwise, context, out)

    def _text(self, value: Any) -> str:
        if not self.autoescape:
            return str(value)
        from markupsafe import escape  # Jinja2's own escaping (a dependency of Jinja2), light to import

        return str(escape(value))


def _lookup(context: Mapping[str, Any], name: str) -> Any:
    try:
        return context[name]
    except KeyError:
        raise MissingVariable(name) from None


def parse(text: str, *, autoescape: bool, money: Callable[[Any], str]) -> SimpleTemplate | None:
    """The template, or None when it needs Jinja2 (anything beyond the tags in the module's docstring)."""
    stack: list[tuple[str, list[Part], list[Part] | None]] = []  # open ifs: test, then-parts, else-parts
    parts: list[Part] = []
    position = 0
    for opening in _OPENING.finditer(text):
        if opening.start() < position:  # inside the tag just read (`{{ a }}` holds no other opening)
            continue
        tag = _TAG.match(text, opening.start())
        if tag is None:
            return None
        _data(parts, text[position:tag.start()])
        position = tag.end()
        following = _apply(tag, parts, stack)
        if following is None:
            return None
        parts = following
    _data(parts, text[position:])
    if stack:
        return None
    return SimpleTemplate(tuple(parts), autoescape, money)


def _apply(tag: re.Match[str], parts: list[Part],
           stack: list[tuple[str, list[Part], list[Part] | None]]) -> list[Part] | None:
    """Add one tag; the list the next text goes to, or None when the tag is not simple."""
    name, test, word = tag["name"], tag["test"], tag["word"]
    if name is not None:
        if name in RESERVED:
            return None
        parts.append(Value(name, tag["money"] is not None))
        return parts
    if test is not None:
        if test in RESERVED:
            return None
        stack.append((test, parts, None))
        return []
    if not stack:
        return None
    test, outer, then = stack.pop()
    if word == "else":
        if then is not None:  # a second else
            return None
        stack.append((test, outer, parts))
        return []
    outer.append(Branch(test, tuple(then if then is not None else parts),
                        tuple(parts) if then is not None else ()))
    return outer


def _data(parts: list[Part], data: str) -> None:
    """Literal text, its line ends made `\\n` as Jinja2's lexer makes them."""
    if data:
        parts.append(_NEWLINES.sub("\n", data))
