"""Render an event's templates (Jinja2, StrictUndefined, autoescaped HTML) into a ready Envelope.

Templates are compiled once per Renderer and reused for every message of a batch. A user's templates
folder overrides the built-ins file by file (`<event>/subject.txt`, `body.txt`, `body.html`). Templates that
only substitute variables (every built-in one) are rendered by `compose.substitution`, the same output without
loading Jinja2; any other template is compiled by Jinja2 in its sandbox.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union

from xoromail_cli.addresses import check_header_value
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.compose.events import PROFILE_VARIABLES, Event
from xoromail_cli.compose.limits import MAX_TEMPLATE_BYTES, TemplateLimitExceeded
from xoromail_cli.compose.mime import Attachment, build_message, make_message_id
from xoromail_cli.compose.substitution import MissingVariable, SimpleTemplate, parse
from xoromail_cli.errors import ConfigError, DataError, XoromailError

if TYPE_CHECKING:
    from jinja2 import Environment, Template

    from xoromail_cli.profile import Profile

BUILTIN_TEMPLATES = Path(__file__).with_name("templates")
TEMPLATE_FILES = ("subject.txt", "body.txt", "body.html")
_URL_VARIABLE = re.compile(r"(_link|_url)$")


def templates_dir_of(profile: Profile | None) -> Path:
    """Where the user's own templates are looked for: the profile's `templates_dir`, else the config folder's."""
    from xoromail_cli import paths

    if profile is not None and profile.templates_dir:
        return Path(profile.templates_dir).expanduser()
    return paths.default_templates_dir()
_T = TypeVar("_T")
Compiled = Union["Template", SimpleTemplate]
"""A compiled template: Jinja2's, or a plain substitution."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class TemplateFile:
    name: str
    path: Path
    custom: bool
    source: str


@dataclass(frozen=True)
class Recipients:
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()

    @property
    def envelope(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.to, *self.cc, *self.bcc)))

    def groups(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """To, Cc and Bcc with each address once, in the first group that names it."""
        seen: set[str] = set()

        def fresh(group: tuple[str, ...]) -> tuple[str, ...]:
            kept = tuple(a for a in dict.fromkeys(group) if a.lower() not in seen)
            seen.update(a.lower() for a in kept)
            return kept

        return fresh(self.to), fresh(self.cc), fresh(self.bcc)


@dataclass
class Renderer:
    """Compiled templates for one profile; cheap to call once per message."""

    profile: Profile
    templates_dir: Path | None = None
    _compiled: dict[str, tuple[Compiled, Compiled, Compiled]] = field(default_factory=dict)
    _environments: dict[bool, Environment] = field(default_factory=dict)

    def template_source(self, event: str, filename: str) -> Path:
        """Which file a template comes from: the user's folder first, then the built-in one."""
        if self.templates_dir is not None:
            custom = self.templates_dir / event / filename
            if custom.is_symlink() or custom.exists():
                _check_inside(custom, self.templates_dir)
                return custom
        return BUILTIN_TEMPLATES / event / filename

    def render(self, event: Event, variables: Mapping[str, Any], subject: str | None = None,
               extra: Mapping[str, Any] | None = None) -> Rendered:
        subject_template, text_template, html_template = self._templates(event)
        context = {**dict.fromkeys(event.optional, ""), **self._profile_context, **variables, **(extra or {})}
        try:
            with _budget(subject_template, text_template, html_template):
                rendered_subject = subject if subject is not None else _render(subject_template, context)
                text = _render(text_template, context)
                html = _render(html_template, context)
        except XoromailError:
            raise
        except Exception as exc:  # noqa: BLE001  # a user's template can fail in any way; name it, don't crash
            raise _template_failure(event, exc) from None
        rendered_subject = rendered_subject.strip()
        check_header_value("subject", rendered_subject)
        return Rendered(rendered_subject, text, html)

    def template_files(self, event: Event) -> list[TemplateFile]:
        """What `templates show` displays: each file in use, whether it is the user's, and its text."""
        files = []
        for name in TEMPLATE_FILES:
            path = self.template_source(event.name, name)
            files.append(TemplateFile(name, path, path.parent.parent != BUILTIN_TEMPLATES,
                                      self._guarded(path, lambda text: text)))
        return files

    def subject_variables(self, event: Event) -> frozenset[str]:
        """Variables that end up in the Subject header: they must never hold a line break."""
        source = self.template_source(event.name, TEMPLATE_FILES[0])
        simple = self._guarded(source, lambda text: self._simple(text, html=False))
        if simple is not None:
            return simple.names()
        from jinja2 import meta

        environment = self._environment(html=False)
        return self._guarded(source, lambda text: frozenset(meta.find_undeclared_variables(environment.parse(text))))

    @cached_property
    def _profile_context(self) -> dict[str, Any]:
        p = self.profile
        return {"company_name": p.company_name or p.display_name, "sender_name": p.display_name,
                "sender_email": p.email, "reply_to": p.reply_to or "", "signature": p.signature or "",
                "currency": p.currency or ""}

    def _templates(self, event: Event) -> tuple[Compiled, Compiled, Compiled]:
        if event.name not in self._compiled:
            subject, text, html = (self._compile(self.template_source(event.name, name), name.endswith(".html"))
                                   for name in TEMPLATE_FILES)
            self._compiled[event.name] = (subject, text, html)
        return self._compiled[event.name]

    def _compile(self, source: Path, html: bool) -> Compiled:
        def build(text: str) -> Compiled:
            simple = self._simple(text, html)
            if simple is not None:
                return simple
            environment = self._environment(html)
            code = environment.compile(text, name=source.name, filename=str(source))
            return environment.template_class.from_code(environment, code, environment.globals)

        return self._guarded(source, build)

    def _simple(self, text: str, html: bool) -> SimpleTemplate | None:
        currency = self.profile.currency
        return parse(text, autoescape=html, money=lambda value: format_money(value, currency))

    @staticmethod
    def _guarded(source: Path, build: Callable[[str], _T]) -> _T:
        """Read a template file and build from it; every failure names the file (and line)."""
        try:
            text = _read_regular(source)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read template {source}: {exc}",
                              "save it as UTF-8 text, or delete it to use the built-in one") from None
        try:
            return build(text)
        except Exception as exc:
            import sys

            jinja2 = sys.modules.get("jinja2")  # a syntax error can only come from Jinja2, once it is loaded
            if jinja2 is not None and isinstance(exc, jinja2.TemplateSyntaxError):
                raise ConfigError(f"{source}:{exc.lineno}: template syntax error: {exc.message}",
                                  "fix the template, or delete it to use the built-in one") from None
            if isinstance(exc, RecursionError | SyntaxError | MemoryError):  # Python's limits on what it compiles
                raise ConfigError(f"{source}: the template is nested too deeply to compile ({type(exc).__name__}: "
                                  f"{str(exc)[:80]})", "fix the template, or delete it to use the built-in one"
                                  ) from None
            raise

    def _environment(self, html: bool) -> Environment:
        if html not in self._environments:
            from jinja2 import StrictUndefined

            from xoromail_cli.compose.sandbox import LimitedSandbox

            # Templates are edited by finance staff and may come from a shared folder: the sandbox refuses
            # internals (`cycler.__init__.__globals__`) and changing data, and keeps each value, loop and output
            # within `compose.limits`. Plain-text parts must not be HTML-escaped; only the HTML part is.
            environment = LimitedSandbox(undefined=StrictUndefined, autoescape=html, keep_trailing_newline=True)
            currency = self.profile.currency
            environment.add_filter("money", lambda value: format_money(value, currency))
            self._environments[html] = environment
        return self._environments[html]


def _check_inside(template: Path, folder: Path) -> None:
    """A template file of the user's folder must be a regular file inside it: the folder may be shared, and a
    symlink to /proc/self/environ or a key file would put that file's text into every customer's email."""
    try:
        target, base = template.resolve(), folder.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise ConfigError(f"template {template} cannot be resolved (a symlink loop?)",
                          "delete it to use the built-in one") from None
    if not target.is_relative_to(base):
        raise ConfigError(f"template {template} leads out of the templates folder {base} (a symlink)",
                          "copy the file into the templates folder instead of linking to it, or delete it to use "
                          "the built-in one")
    if not target.is_file():  # a pipe or a device would make the read wait for ever, or never end
        raise ConfigError(f"template {template} is not a regular file",
                          "save the template as an ordinary text file, or delete it to use the built-in one")


def _read_regular(path: Path) -> str:
    """The file's text, opened without waiting and only if it is (still) a regular file."""
    import os
    import stat

    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"{path} is not a regular file")
        if status.st_size > MAX_TEMPLATE_BYTES:
            raise ConfigError(f"template {path} is {status.st_size:,} bytes, more than the {MAX_TEMPLATE_BYTES:,} "
                              "a template may be", "a template holds wording: put data into variables")
        return handle.read(MAX_TEMPLATE_BYTES + 1).decode("utf-8")


def _budget(*templates: Compiled) -> AbstractContextManager[None]:
    """Steps and time for one message's Jinja2 templates together (`compose.limits`); none for substitutions."""
    if all(isinstance(template, SimpleTemplate) for template in templates):
        return nullcontext()
    from xoromail_cli.compose.sandbox import message_budget

    return message_budget()


def _render(template: Compiled, context: Mapping[str, Any]) -> str:
    """A plain substitution as it is; a Jinja2 template within the limits of `compose.limits`."""
    if isinstance(template, SimpleTemplate):
        return template.render(context)
    from xoromail_cli.compose.sandbox import render_limited

    return render_limited(template, context)


def _template_failure(event: Event, exc: Exception) -> ConfigError:
    """What a template's failure at render time means: a variable the event lacks, a reach outside the sandbox
    (Jinja2 templates only), or anything else, named. Jinja2's exceptions are looked at only once it is loaded."""
    import sys

    jinja2 = sys.modules.get("jinja2")
    missing = exc.message if isinstance(exc, MissingVariable) else (
        exc.message if jinja2 is not None and isinstance(exc, jinja2.UndefinedError) else None)
    if missing is not None:
        return ConfigError(f"a template of {event.name} uses a variable the event does not have: {missing}",
                           f"{event.name} provides: {', '.join((*event.variables, *PROFILE_VARIABLES))}; "
                           "fix the custom template")
    if jinja2 is not None and isinstance(exc, jinja2.exceptions.SecurityError):
        return ConfigError(f"{_template_place(exc)}: a template of {event.name} reaches for something "
                           f"templates may not use: {exc}",
                           "templates can show variables and use filters, nothing more: fix the custom "
                           "template, or delete it to use the built-in one")
    if isinstance(exc, TemplateLimitExceeded):
        return ConfigError(f"{exc.place or _template_place(exc)}: a template of {event.name} {exc.message}",
                           "templates are for wording, not computing: see the limits in docs/events.md "
                           "(what a template may cost); fix the custom template, or delete it to use the built-in one")
    if isinstance(exc, TypeError) and "no loader" in str(exc):
        return ConfigError(f"{_template_place(exc)}: a template of {event.name} includes, imports or extends "
                           "another template, which templates may not do",
                           "put the text into the template itself: only the event's own files are read")
    return ConfigError(f"{_template_place(exc)}: a template of {event.name} failed: {type(exc).__name__}: {exc}",
                       "fix the custom template, or delete it to use the built-in one")


def _template_place(exc: BaseException) -> str:
    """`file:line` of the template where `exc` was raised (Jinja2 maps its frames to template lines)."""
    import traceback

    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if not frame.filename.endswith(".py")]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "a template"


_AMBIGUOUS = re.compile(r"^-?\d{1,3}[.,]\d{3}$")
_GROUPED = re.compile(r"^-?\d{1,3}([.,])\d{3}(\1\d{3})+$")


def format_money(value: Any, currency: str | None) -> str:
    """`1234.5` → `USD 1,234.50`, also from `1.234,50` or `12,5`.

    `1.234` or `1,234` could be a thousand or one and a bit: such values are shown as given after the
    currency, never guessed. Anything that is not a number is shown exactly as given.
    """
    original = str(value).strip()
    text = original.replace(" ", "").replace("\u00a0", "")
    if _AMBIGUOUS.match(text):
        return f"{currency} {original}" if currency else original
    grouped = _GROUPED.match(text)
    if grouped:
        text = text.replace(grouped.group(1), "")
    elif "," in text and "." in text:
        text = text.replace(",", "") if text.rfind(".") > text.rfind(",") else text.replace(".", "").replace(",", ".")
    elif "," in text:
        text = text.replace(",", ".")
    try:
        amount = Decimal(text)
        if not amount.is_finite():
            return str(value)
        amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return str(value)
    formatted = f"{amount:,.2f}"
    return f"{currency} {formatted}" if currency else formatted


def check_variables(event: Event, variables: Mapping[str, Any], where: str = "",
                    header_variables: Collection[str] = ()) -> None:
    """Missing or unknown variables, unsafe links and header injection are errors before anything is sent."""
    missing = [name for name in event.required if variables.get(name) in (None, "")]
    unknown = sorted(set(variables) - set(event.variables))
    place = f" ({where})" if where else ""
    if missing:
        raise DataError(f"{event.name}: missing variable(s) {', '.join(missing)}{place}",
                        f"required: {', '.join(event.required)}; pass --var NAME=VALUE or a --data/--batch column")
    if unknown:
        shadowed = [name for name in unknown if name in PROFILE_VARIABLES]
        hint = (f"{', '.join(shadowed)} come(s) from the profile" if shadowed
                else f"{event.name} takes: {', '.join(event.variables)}")
        raise DataError(f"{event.name}: unknown variable(s) {', '.join(unknown)}{place}", hint)
    for name in header_variables:
        if isinstance(variables.get(name), str):
            check_header_value(f"{event.name}: variable {name} (used in the subject)", variables[name])
    for name, value in variables.items():
        if _URL_VARIABLE.search(name) and value not in (None, "") and not str(value).startswith(
                ("https://", "http://")):
            raise DataError(f"{event.name}: {name} must be an http(s) link, not {str(value)[:60]!r}{place}",
                            "links in customer emails must start with https://")


def compose(profile: Profile, renderer: Renderer, event: Event, recipients: Recipients,
            variables: Mapping[str, Any], *, attachments: Sequence[Attachment] = (),
            reply_to: str | None = None, subject: str | None = None, row: int | None = None,
            ) -> tuple[Envelope, Rendered]:
    """One event email, ready for any transport."""
    effective_reply_to = reply_to or profile.reply_to
    rendered = renderer.render(event, variables, subject, {"reply_to": effective_reply_to or ""})
    message_id = make_message_id(profile.email)
    data = build_message(display_name=profile.display_name, sender=profile.email, to=recipients.to,
                         cc=recipients.cc, reply_to=effective_reply_to, subject=rendered.subject,
                         text=rendered.text, html=rendered.html, attachments=attachments, message_id=message_id)
    to, cc, bcc = recipients.groups()
    label = f"{event.name}-row{row}" if row else event.name
    return Envelope(sender=profile.email, to=to, data=data, message_id=message_id, cc=cc, bcc=bcc,
                    label=label), rendered
