"""Jinja2's immutable sandbox with a budget: templates may not run code (the sandbox) nor exhaust memory or CPU.

Imported only when a template needs Jinja2 (`compose.render`). Each limit is in `compose.limits`:

- **Size**: every value an operator (`*`, `**`, `%`, `+`, `~`), a call (method, macro) or a filter makes, and
  every value written out, is measured (characters, items, integer bits) and refused over the limit; the
  operations that multiply (`'a' * n`, `2 ** n`, widths, `replace`, `expandtabs`) are refused before they run.
- **Steps**: every loop iteration (a `{% for %}` over anything, a recursive `loop(…)`, the items a filter such as
  `map` yields), call, filter and intercepted operator counts against `MAX_STEPS`, and checks the wall-clock
  deadline `RENDER_SECONDS`. Every step is bounded in size, so the deadline bounds CPU with no thread left behind.
- **Output**: `render_limited` stops reading Jinja2's `generate()` stream once it exceeds `MAX_OUTPUT`.
"""

from __future__ import annotations

import functools
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from xoromail_cli.compose import limits
from xoromail_cli.compose.limits import TemplateLimitExceeded


@dataclass
class _Budget:
    steps: int
    deadline: float
    seconds: float


_BUDGET: ContextVar[_Budget | None] = ContextVar("xoromail_template_budget", default=None)


def step() -> None:
    """One unit of a render's work: over the step budget or past the deadline, the render stops."""
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.steps -= 1
    if budget.steps < 0:
        raise TemplateLimitExceeded(f"takes more than {limits.MAX_STEPS:,} steps (loop iterations and calls)")
    if time.monotonic() >= budget.deadline:
        raise TemplateLimitExceeded(f"takes longer than {budget.seconds:g} seconds to render")


def size_of(value: Any, limit: int) -> int:
    """Characters and items in `value` (nested parts counted each time they appear), counted to just past `limit`."""
    total = 0
    pending = [value]
    while pending and total <= limit:
        item = pending.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 3 + 1  # about its decimal digits
        elif isinstance(item, list | tuple | set | frozenset | dict):
            total += len(item) + 1
            if total <= limit:
                pending.extend(item.items() if isinstance(item, dict) else item)
        else:
            total += 1
    return total


def checked(value: Any) -> Any:
    """`value` if it is within the size limits."""
    kind = type(value)
    if kind is str or kind is float or value is None or kind is bool:  # the usual values, at once
        if kind is str and len(value) > limits.MAX_SIZE:
            raise TemplateLimitExceeded(f"makes a value of more than {limits.MAX_SIZE:,} characters or items")
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > limits.MAX_INT_BITS:
        raise TemplateLimitExceeded(f"makes a number of more than {limits.MAX_INT_BITS} bits")
    if size_of(value, limits.MAX_SIZE) > limits.MAX_SIZE:
        raise TemplateLimitExceeded(f"makes a value of more than {limits.MAX_SIZE:,} characters or items")
    return value


def _refuse_over(what: str, amount: int, limit: int) -> None:
    if amount > limit:
        raise TemplateLimitExceeded(f"asks for {what} {amount:,}, more than the {limit:,} templates may use")


def _width(what: str, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        _refuse_over(what, value, limits.MAX_WIDTH)
    elif isinstance(value, str):
        _refuse_over(what, len(value), limits.MAX_WIDTH)


_PERCENT = re.compile(r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?[hlL]?"
                      r"(?P<kind>.)", re.DOTALL)


def check_percent(template: str, arguments: Any) -> None:
    """`'%10s' % x`, `'%*s' % (n, x)`, `'%.5f'`: no width or precision over the limit, before formatting."""
    values = arguments if isinstance(arguments, tuple) else (arguments,)
    index = 0
    for match in _PERCENT.finditer(template):
        if match["kind"] == "%":
            continue
        for part in (match["width"], match["precision"]):
            if part == "*":
                _width("a width of", values[index] if index < len(values) else 0)
                index += 1
            elif part:
                _width("a width of", int(part) if len(part) < 10 else limits.MAX_WIDTH + 1)
        index += match["key"] is None


def check_format(template: str) -> None:
    """`'{:>10}'.format(x)`: no width over the limit, and none taken from an argument (`{:{n}}`)."""
    for _, _, spec, _ in string.Formatter().parse(template):
        if spec and "{" in spec:
            raise TemplateLimitExceeded("takes a format width from an argument ('{:{n}}'), which templates may not")
        for number in re.findall(r"\d+", spec or ""):
            _width("a width of", int(number) if len(number) < 10 else limits.MAX_WIDTH + 1)


def _replaced_size(text: str, old: str, new: str, count: int = -1) -> int:
    found = len(text) + 1 if old == "" else text.count(old)
    if count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def _check_method(method: Any, args: tuple[Any, ...]) -> None:
    """Before a string method runs: the ones whose result can be far larger than their inputs."""
    target = getattr(getattr(method, "__wrapped__", method), "__self__", None)
    if not isinstance(target, str):
        return
    name = getattr(method, "__name__", "")
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _width(f"str.{name} width", args[0])
    elif name == "expandtabs":
        _width("a tab size of", args[0] if args else 8)
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        _refuse_over("a replaced text of", _replaced_size(target, *args[:3]), limits.MAX_SIZE)
    elif name == "join" and args:
        _refuse_over("a joined text of", size_of(args[0], limits.MAX_SIZE), limits.MAX_SIZE)
    elif name in ("format", "format_map"):
        check_format(target)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Before `*`, `**` and `%` run: the size of their result, from their operands."""
    if operator == "*":
        for sequence, times in ((left, right), (right, left)):
            if isinstance(sequence, str | list | tuple) and isinstance(times, int):
                _refuse_over("a repeated value of", len(sequence) * max(times, 0), limits.MAX_SIZE)
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        _refuse_over("a power of", left.bit_length() * right, limits.MAX_INT_BITS)
    elif operator == "%" and isinstance(left, str):
        check_percent(left, right)


def _counted(items: Iterable[Any], measure: bool) -> Iterator[Any]:
    """The items, each a step; with `measure`, all of them together within the size limit (a filter's output)."""
    total = 0
    for item in items:
        step()
        if measure:
            total += size_of(item, limits.MAX_SIZE)
            _refuse_over("values that add up to", total, limits.MAX_SIZE)
        yield item


def _limited_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that counts as a step, takes only values within the limits, and makes only such values."""

    @functools.wraps(function)  # keeps Jinja2's pass_context/pass_eval_context marks
    def run(*args: Any, **kwargs: Any) -> Any:
        step()
        for value in (*args, *kwargs.values()):
            if not isinstance(value, Context | Iterator):
                checked(value)
        result = function(*args, **kwargs)
        if isinstance(result, Iterator):
            return _counted(result, measure=True)
        return checked(result)

    return run


def _check_filter_arguments(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """The filters whose result can be far larger than their value, checked before they run."""
    value = str(args[0]) if args else ""
    if name == "center":
        _width("a center width of", args[1] if len(args) > 1 else kwargs.get("width", 80))
    elif name == "indent":
        width = args[1] if len(args) > 1 else kwargs.get("width", 4)
        _width("an indent of", width)
        size = width if isinstance(width, int) else len(str(width))
        _refuse_over("an indented text of", len(value) + (value.count("\n") + 1) * size, limits.MAX_SIZE)
    elif name == "wordwrap":
        width = args[1] if len(args) > 1 else kwargs.get("width", 79)
        wrap = args[3] if len(args) > 3 else kwargs.get("wrapstring") or "\n"
        _width("a wrap string of", wrap)
        lines = 2 * len(value) // max(width, 1) + value.count("\n") + 2 if isinstance(width, int) else 0
        _refuse_over("a wrapped text of", len(value) + lines * len(str(wrap)), limits.MAX_SIZE)
    elif name == "batch":
        _width("a batch of", args[1] if len(args) > 1 else kwargs.get("linecount", 0))
    elif name == "format":
        check_percent(value, tuple(args[1:]) if not kwargs else dict(kwargs))
    elif name == "replace" and len(args) >= 3:
        count = args[3] if len(args) > 3 else kwargs.get("count")
        size = _replaced_size(value, str(args[1]), str(args[2]), count if isinstance(count, int) else -1)
        _refuse_over("a replaced text of", size, limits.MAX_SIZE)


def _widened(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    passed = getattr(function, "jinja_pass_arg", None) is not None  # the context or environment comes first

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        _check_filter_arguments(name, args[1:] if passed else args, kwargs)
        return function(*args, **kwargs)

    return run


def _lipsum(n: Any = 5, html: Any = True, min: Any = 20, max: Any = 100) -> Any:  # Jinja2's names
    """Jinja2's `lipsum` global, for at most a tenth of `MAX_SIZE` words."""
    from jinja2.utils import generate_lorem_ipsum

    if isinstance(n, int) and isinstance(min, int) and isinstance(max, int):
        _refuse_over("placeholder words", n * (min if min > max else max), limits.MAX_SIZE // 10)
    return generate_lorem_ipsum(n, html, min, max)


class _Generator(CodeGenerator):
    """Jinja2's code generator with two hooks: every loop counts its iterations, every `~` checks its result.

    (Jinja2 allows no node types of one's own, so a loop's iterable is marked by its id while it is visited.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop_iterables: set[int] = set()

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if id(node) not in self._loop_iterables:
            return super().visit(node, *args, **kwargs)
        self.write("environment.counted(")
        super().visit(node, *args, **kwargs)
        self.write(")")
        return None

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        self._loop_iterables.add(id(node.iter))
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        """`a ~ b`: each operand measured before it is made text, and the result after (Jinja2's own code,
        with the checks around it)."""
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        else:
            join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"environment.checked({join}((")
        for operand in node.nodes:
            self.write("environment.checked(")
            self.visit(operand, frame)
            self.write("), ")
        self.write(")))")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._checked(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._checked(super().visit_Dict, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # a target (`{% for a, b in … %}`) is written to, not made
            super().visit_Tuple(node, frame)
        else:
            self._checked(super().visit_Tuple, node, frame)

    def _checked(self, visit: Callable[[Any, Frame], None], node: nodes.Node, frame: Frame) -> None:
        """A literal list, tuple or dict is measured as it is made: literals of literals multiply."""
        self.write("environment.checked(")
        visit(node, frame)
        self.write(")")


def _joined(parts: Iterable[str]) -> str:
    """Jinja2's `concat` for macro bodies and `{% set %}` blocks: measured before it is joined."""
    kept = list(parts)
    _refuse_over("a text block of", sum(len(part) for part in kept), limits.MAX_OUTPUT)
    return "".join(kept)


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every operator, call, filter, loop and output within `compose.limits`."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    concat = staticmethod(_joined)

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=checked, **options)
        for name, function in list(self.filters.items()):
            if name in ("center", "indent", "wordwrap", "format", "replace", "batch"):
                function = _widened(name, function)
            self.filters[name] = _limited_filter(function)

        self.globals["lipsum"] = _lipsum

    def add_filter(self, name: str, function: Callable[..., Any]) -> None:
        self.filters[name] = _limited_filter(function)

    @staticmethod
    def counted(items: Iterable[Any]) -> Iterator[Any]:
        return _counted(items, measure=False)

    @staticmethod
    def checked(value: Any) -> Any:
        return checked(value)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        step()
        checked(left)
        checked(right)
        _check_binop(operator, left, right)
        return checked(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # Jinja2's signature
        step()
        for value in (*args, *kwargs.values()):
            checked(value)
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's next level: its iterations are steps
            args = (_counted(args[0], measure=False), *args[1:])
        _check_method(__obj, args)
        return checked(super().call(__context, __obj, *args, **kwargs))


@contextmanager
def message_budget() -> Iterator[None]:
    """One budget (steps and deadline) for every template of one message, the subject and both bodies together."""
    seconds = limits.RENDER_SECONDS
    token = _BUDGET.set(_Budget(limits.MAX_STEPS, time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def render_limited(template: Template, context: Mapping[str, Any]) -> str:
    """The template rendered within the output limit, and the message's budget (its own if none is running)."""
    if _BUDGET.get() is None:
        with message_budget():
            return render_limited(template, context)
    parts: list[str] = []
    size = 0
    for part in template.generate(context):
        size += len(part)
        if size > limits.MAX_OUTPUT:
            raise TemplateLimitExceeded(f"writes more than {limits.MAX_OUTPUT:,} characters",
                                        template.filename or "a template")
        parts.append(part)
    return "".join(parts)
