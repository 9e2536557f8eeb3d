"""What makes a message "the same message": the event's natural key (or the user's template) plus recipients."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xoromail_cli.errors import UsageError

if TYPE_CHECKING:
    from xoromail_cli.compose.events import Event
    from xoromail_cli.sending.batch import SendJob


def check_key_template(event: Event, template: str) -> None:
    """Refuse a --idempotency-key whose fields are not the event's variables, before anything is sent."""
    from string import Formatter

    try:
        parsed = [(name, spec, conversion) for _, name, spec, conversion in Formatter().parse(template)
                  if name is not None]
    except ValueError as exc:
        raise UsageError(f"--idempotency-key {template!r}: {exc}", "write fields as {invoice_number}") from None
    if any(spec or conversion for _, spec, conversion in parsed):
        raise UsageError(f"--idempotency-key {template!r}: formats and conversions are not allowed",
                         "write plain fields such as {invoice_number}-{due_date}")
    fields = [name for name, _, _ in parsed]
    unknown = [name for name in fields if name not in event.variables]
    if unknown or not fields:
        raise UsageError(f"--idempotency-key {template!r} must use the event's variables"
                         + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
                         f"{event.name} has: {', '.join(event.variables)}")


def idempotency_key(event: Event, job: SendJob, template: str | None = None) -> str:
    """The event's natural key (or the user's template) combined with the recipients."""
    if template:
        values = {name: job.variables.get(name) for name in event.variables}
        natural = template.format_map({name: "" if value is None else value for name, value in values.items()})
    else:
        natural = "/".join(str(job.variables.get(name, "")) for name in event.natural_key)
    return f"{event.name}:{natural}:{','.join(sorted(a.lower() for a in job.recipients.envelope))}"
