"""Turn `--to/--var/--data` or a CSV / JSON Lines file into validated send jobs, streamed row by row.

Files are never loaded whole: a 100,000-row batch costs the memory of one row. Rows are checked
(recipients, variables, attachments) as they are read, so the caller can check a whole batch in one
pass before it sends anything, then read it again to send.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from xoromail_cli.addresses import check_header_value, check_text, parse_address, parse_address_list
from xoromail_cli.compose.events import Event
from xoromail_cli.compose.mime import Attachment
from xoromail_cli.compose.render import Recipients, check_variables
from xoromail_cli.errors import DataError, NoInputError, UsageError, XoromailError

RESERVED_COLUMNS = ("to", "cc", "bcc", "attach", "reply_to")


@dataclass(frozen=True, kw_only=True)
class SendJob:
    """One message to compose: a batch row (0 for a single message), its recipients and variables."""

    row: int
    recipients: Recipients
    variables: dict[str, Any]
    attachments: tuple[Attachment, ...] = ()
    reply_to: str | None = None


@dataclass(frozen=True)
class InvalidRow:
    row: int
    error: XoromailError


def parse_var(assignment: str) -> tuple[str, str]:
    name, sep, value = assignment.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"--var {assignment!r} is not NAME=VALUE", "e.g. --var invoice_number=INV-1001")
    return name.strip(), value


def load_data(source: str, stdin: TextIO) -> dict[str, Any]:
    """`--data FILE.json` or `--data -` (`stdin`): one JSON object of variables."""
    try:
        text = stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NoInputError(f"--data file {source} does not exist", "check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NoInputError(f"cannot read --data {source}: {exc}", "check the file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"--data {source}: invalid JSON at line {exc.lineno}: {exc.msg}",
                        "it must be one JSON object of variables") from None
    except ValueError as exc:
        raise DataError(f"--data {source}: {exc}", "quote very long numbers as strings") from None
    if not isinstance(data, dict):
        raise DataError(f"--data {source} must hold a JSON object, not {type(data).__name__}",
                        'e.g. {"customer_name": "ACME", "invoice_number": "INV-1"}')
    return data


def make_job(event: Event, row: int, *, to: Sequence[str], cc: Sequence[str] = (), bcc: Sequence[str] = (),
             variables: Mapping[str, Any], attach: Sequence[str] = (), reply_to: str | None = None,
             base_dir: Path | None = None, header_variables: Collection[str] = (),
             absolute_attachments: bool = False) -> SendJob:
    """Check one message completely, so nothing fails halfway; raises DataError / NoInputError.

    With `base_dir` (a batch), `attach` paths are data and must stay inside it; absolute ones only with
    `absolute_attachments` (an explicit --attach-dir). Without it they are the user's own (--attach)."""
    recipients = Recipients(
        to=tuple(a for value in to for a in parse_address_list(value, "to")),
        cc=tuple(a for value in cc for a in parse_address_list(value, "cc")),
        bcc=tuple(a for value in bcc for a in parse_address_list(value, "bcc")))
    if not recipients.to:
        raise DataError("no recipient", "give --to ADDR (or a 'to' column)")
    clean = {name: _variable(name, value) for name, value in variables.items()}
    check_variables(event, clean, header_variables=header_variables)
    attachments = tuple(Attachment.from_path(_resolve(path, base_dir, absolute_attachments))
                        for path in attach if path.strip())
    if event.needs_attachment and not attachments:
        raise DataError(f"{event.name} needs at least one attachment", "pass --attach FILE or an attach column")
    reply = parse_address(reply_to, "reply_to") if reply_to else None
    return SendJob(row=row, recipients=recipients, variables=clean, attachments=attachments, reply_to=reply)


def _variable(name: str, value: Any) -> Any:
    check_header_value(f"variable name {name!r}", name)
    if isinstance(value, str):
        return check_text(f"variable {name}", value)
    if isinstance(value, bool):
        raise DataError(f"variable {name} must be text or a number, not true/false",
                        "write what the email should show, as text (e.g. \"yes\"), or leave the key out")
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, float):
        raise DataError(f"variable {name} must be text or a number, not {value}", "write a finite number")
    raise DataError(f"variable {name} must be text or a number, not {type(value).__name__}",
                    "flatten nested JSON into plain values")


def _resolve(path: str, base_dir: Path | None, absolute_ok: bool) -> Path:
    if base_dir is not None:
        from xoromail_cli.sending.attachments import confined

        return confined(path, base_dir, absolute_ok=absolute_ok)
    return Path(check_text("attach", path).strip()).expanduser()


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (row number, values) from a CSV with a header row or a JSON Lines file."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise NoInputError(f"batch file {path} does not exist", "check the path") from None
    except OSError as exc:
        raise NoInputError(f"cannot read batch file {path}: {exc.strerror}", "check its permissions") from None
    with handle:
        try:
            if _is_json_lines(path, handle):
                yield from _json_lines(path, handle)
            else:
                yield from _csv_rows(path, handle)
        except UnicodeDecodeError:
            raise DataError(f"batch file {path} is not UTF-8 text", "save it as UTF-8 (CSV UTF-8 in Excel)") from None


def _is_json_lines(path: Path, handle: TextIO) -> bool:
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return True
    if path.suffix.lower() == ".csv":
        return False
    start = handle.read(64)
    handle.seek(0)
    return start.lstrip().startswith("{")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Python keeps the last of repeated keys; an ERP export with two `to` keys is a mistake to stop on."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"key(s) {', '.join(repeated)} appear more than once")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number an email can show")


def _json_lines(path: Path, handle: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    rows_seen = False
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("[") and not rows_seen:
            raise DataError(f"{path} is a JSON array, not JSON Lines",
                            "use JSON Lines: one JSON object per line, with no [ ] around them")
        try:
            value = json.loads(line, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {number}: invalid JSON: {exc.msg}", "one JSON object per line") from None
        except RecursionError:  # `[[[[…` a hundred thousand deep: the parser's stack, not a traceback
            raise DataError(f"{path} line {number}: values nested too deeply",
                            "one JSON object per line, with plain text or number values") from None
        except ValueError as exc:  # repeated keys, NaN/Infinity, an integer longer than Python converts
            raise DataError(f"{path} line {number}: {exc}",
                            "one JSON object per line, each key once; quote very long numbers") from None
        if not isinstance(value, dict):
            raise DataError(f"{path} line {number}: expected a JSON object", "one JSON object per line")
        rows_seen = True
        yield number, value


def _csv_rows(path: Path, handle: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(handle, strict=True)
    done = [0]  # the last line of the last record read whole: the next record starts on the line after it
    try:
        yield from _csv_records(path, reader, done)
    except csv.Error as exc:  # strict: an unclosed quote runs to the end of the file, so name where it opened
        text = str(exc)
        if "field limit" in text:
            raise DataError(f"{path} line {done[0] + 1}: a value is longer than {csv.field_size_limit():,} "
                            "characters",
                            "no email's value is this long: check the export (a quote left open makes the rest "
                            "of the file one value)") from None
        if "end of data" in text or "quote" in text:
            raise DataError(f"{path} line {done[0] + 1}: a quoted value opened on this line is not closed (it "
                            "runs to the end of the file)",
                            'close the quote; a quote inside a quoted value is written twice ("")') from None
        raise DataError(f"{path} line {reader.line_num}: {text}",
                        'close the quote; a quote inside a quoted value is written twice ("")') from None


def _csv_records(path: Path, reader: csv.DictReader[str], done: list[int]) -> Iterator[tuple[int, dict[str, Any]]]:
    if reader.fieldnames is None:
        raise DataError(f"{path} is empty", "the first row names the columns: to, cc, bcc, attach, then the "
                        "event's variables; one row per email below it")
    if reader.fieldnames and len(reader.fieldnames) == 1 and ";" in reader.fieldnames[0]:
        raise DataError(f"{path}: the columns are separated by ';', not ','",
                        "save it as \"CSV UTF-8 (comma delimited)\", or use JSON Lines")
    if not reader.fieldnames or "to" not in reader.fieldnames:
        raise DataError(f"{path}: the header row has no 'to' column",
                        "the first row names the columns: to, cc, bcc, attach, then the event's variables")
    done[0] = reader.line_num
    repeated = sorted({name for name in reader.fieldnames if reader.fieldnames.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: column(s) {', '.join(repeated)} appear more than once in the header row",
                        "several addresses go in one 'to' cell, separated by ';'")
    for record in reader:
        if None in record:
            raise DataError(f"{path} line {reader.line_num}: more values than columns",
                            "quote values that contain commas")
        done[0] = reader.line_num
        yield reader.line_num, {key: value for key, value in record.items() if value not in ("", None)}


def jobs_from_file(event: Event, path: Path, defaults: Mapping[str, Any],
                   header_variables: Collection[str] = (), reply_to: str | None = None,
                   attach_dir: Path | None = None) -> Iterator[SendJob | InvalidRow]:
    """Each row becomes a job or an InvalidRow; `defaults` (from --var/--data) fill missing columns.
    Attachments come from the batch file's folder, or `attach_dir`."""
    base_dir = attach_dir or path.parent
    for number, values in read_rows(path):
        row = dict(values)
        fields = {name: row.pop(name, None) for name in RESERVED_COLUMNS}
        variables = {**defaults, **row}
        try:
            if fields["reply_to"] is not None and not isinstance(fields["reply_to"], str):
                raise DataError("reply_to must be one address", 'e.g. "reply_to": "desk@company.com"')
            yield make_job(event, number, to=_list(fields["to"]), cc=_list(fields["cc"]), bcc=_list(fields["bcc"]),
                           variables=variables, attach=_paths(fields["attach"]),
                           reply_to=fields["reply_to"] or reply_to, base_dir=base_dir,
                           header_variables=header_variables, absolute_attachments=attach_dir is not None)
        except XoromailError as error:
            yield InvalidRow(number, error)


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _paths(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [part for part in str(value).split(";")] if value else []


@dataclass
class BatchCheck:
    """What the first pass over a batch found: how much to send, and the rows that cannot be sent."""

    valid: int = 0
    recipients: int = 0
    invalid: list[InvalidRow] = field(default_factory=list)
    invalid_count: int = 0


def check_batch(event: Event, path: Path, defaults: Mapping[str, Any], header_variables: Collection[str] = (),
                reply_to: str | None = None, keep_invalid: int = 1000, attach_dir: Path | None = None) -> BatchCheck:
    """Read the whole batch once, keeping only counts and (at most `keep_invalid`) bad rows."""
    result = BatchCheck()
    for item in jobs_from_file(event, path, defaults, header_variables, reply_to, attach_dir):
        if isinstance(item, InvalidRow):
            result.invalid_count += 1
            if len(result.invalid) < keep_invalid:
                result.invalid.append(item)
        else:
            result.valid += 1
            result.recipients += len(item.recipients.envelope)
    return result
