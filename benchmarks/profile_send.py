"""Where the time of a 2,000-message batch goes: cProfile of the in-process send path, plus each stage
timed on its own without the profiler (the profiler inflates pure-Python code relative to waiting).

The send path is the CLI's: BatchSource (check pass + streaming pass) → Sender → Renderer (substitution) →
build_message (MIME) → Ledger (SQLite WAL, synchronous=NORMAL) → SmtpTransport, to aiosmtpd with STARTTLS
+ AUTH in its own process.

Run: .venv/bin/python benchmarks/profile_send.py  [--rows 2000] [--top 25] [--save FILE.pstats]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import PASSWORD, Sink, print_table, sink, write_config, write_csv
from throughput import naive_message

from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.compose.events import Event, get_event
from xoromail_cli.compose.mime import build_message, make_message_id
from xoromail_cli.compose.render import Rendered, Renderer, compose
from xoromail_cli.config import load_profile
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.pacing import RateLimiter
from xoromail_cli.profile import Profile
from xoromail_cli.sending.batch import SendJob, check_batch, jobs_from_file
from xoromail_cli.sending.deliverer import Deliverer
from xoromail_cli.sending.plan import BatchSource
from xoromail_cli.sending.sender import Sender, idempotency_key
from xoromail_cli.services.smtp.transport import SmtpEndpoint, SmtpTransport

EVENT = "overdue-invoice"

# (label, file suffix, function name): the stages of one message, found in the profile by name.
STAGES = (
    ("whole batch (check pass + Sender.run)", "profile_send.py", "send_batch"),
    ("check pass over the file (check_batch)", "batch.py", "check_batch"),
    ("CSV reading + row checks (jobs_from_file, both passes)", "batch.py", "jobs_from_file"),
    ("  address parsing (parse_address)", "addresses.py", "parse_address"),
    ("  variable checks (check_variables)", "render.py", "check_variables"),
    ("compose: render + MIME (compose)", "render.py", "compose"),
    ("  template rendering (Renderer.render)", "render.py", "render"),
    ("  MIME building (build_message)", "mime.py", "build_message"),
    ("  Message-ID (make_message_id)", "mime.py", "make_message_id"),
    ("  Date header (email.utils.formatdate)", "utils.py", "formatdate"),
    ("idempotency key (idempotency_key)", "keys.py", "idempotency_key"),
    ("ledger: already sent? (Ledger.last_sent)", "sqlite.py", "last_sent"),
    ("ledger: in-flight commit (Ledger.begin)", "sqlite.py", "begin"),
    ("ledger: sent commit (Ledger.finish)", "sqlite.py", "finish"),
    ("SMTP exchange (SmtpTransport.send)", "smtp/transport.py", "send"),
    ("  MAIL FROM (_Client.mail)", "smtp/session.py", "mail"),
    ("  RCPT TO (_Client.rcpt)", "smtp/session.py", "rcpt"),
    ("  DATA + message (SMTP.data)", "smtplib.py", "data"),
    ("  waiting for the server's replies (SSLSocket.recv_into)", "ssl.py", "recv_into"),
    ("connection: connect + STARTTLS + AUTH (SmtpTransport.open)", "smtp/transport.py", "open"),
)


def send_batch(profile: Profile, spec: Event, batch: Path, ledger: Ledger) -> int:
    source = BatchSource(event=spec, path=batch, defaults={}, skip_invalid=False)
    source.check()
    transport = SmtpTransport(SmtpEndpoint.from_profile(profile), PASSWORD)
    deliverer = Deliverer(profile=profile, event=spec.name, transport=transport, ledger=ledger,
                          rate=RateLimiter(per_second=None))
    sender = Sender(event=spec, renderer=Renderer(profile, None), deliverer=deliverer)
    return sender.run(source).count("sent")


def cumulative(stats: pstats.Stats, suffix: str, name: str) -> tuple[float, int]:
    """Cumulative seconds and calls of every function called `name` in a file ending with `suffix`."""
    seconds, calls = 0.0, 0
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]  # pstats keeps its table untyped
    for (filename, _, function), (_, primitive_calls, _, cum, _) in table.items():
        if function == name and filename.endswith(suffix):
            seconds += cum
            calls += primitive_calls
    return seconds, calls


def profiled(folder: Path, server: Sink, profile: Profile, spec: Event, batch: Path, rows: int, top: int,
             save: Path | None) -> float:
    with Ledger(folder / "profiled.sqlite3") as ledger:
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        sent = send_batch(profile, spec, batch, ledger)
        profiler.disable()
        seconds = time.perf_counter() - started
    if sent != rows:
        raise RuntimeError(f"only {sent} of {rows} messages were sent")
    if save is not None:
        profiler.dump_stats(save)
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = cumulative(stats, "profile_send.py", "send_batch")[0]
    print(f"\ncProfile: {rows} messages in {seconds:.2f} s under the profiler ({rows / seconds:,.0f} msg/s)")
    table = [["stage (cumulative, profiled)", "seconds", "share", "ms/msg", "calls"]]
    for label, suffix, name in STAGES:
        spent, calls = cumulative(stats, suffix, name)
        table.append([label, f"{spent:.3f}", f"{spent / total:.0%}", f"{spent / rows * 1000:.3f}", f"{calls:,}"])
    print_table(table)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    print(f"\ntop {top} functions by cumulative time:")
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("\n".join(line for line in lines[start:] if line.strip()))
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    print("\ntop 12 functions by own time:")
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("\n".join(line for line in lines[start:] if line.strip()))
    return seconds


def clock(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


class IsolatedStages:
    """Each stage of the send path as its own piece of work over all rows, for `clock`."""

    def __init__(self, folder: Path, profile: Profile, spec: Event, batch: Path, rows: int) -> None:
        self.folder, self.profile, self.spec, self.batch, self.rows = folder, profile, spec, batch, rows
        self.jobs: list[SendJob] = [job for job in jobs_from_file(spec, batch, {}) if isinstance(job, SendJob)]
        self.renderer = Renderer(profile, None)
        self.renderer.render(spec, self.jobs[0].variables)  # compile the templates outside the timings
        self.rendered: list[Rendered] = []
        self.envelopes: list[Envelope] = []

    def render_all(self) -> None:
        self.rendered.extend(self.renderer.render(self.spec, job.variables) for job in self.jobs)

    def build_all(self) -> None:
        profile = self.profile
        for job, parts in zip(self.jobs, self.rendered, strict=True):
            message_id = make_message_id(profile.email)
            data = build_message(display_name=profile.display_name, sender=profile.email, to=job.recipients.to,
                                 subject=parts.subject, text=parts.text, html=parts.html, message_id=message_id)
            self.envelopes.append(Envelope(sender=profile.email, to=job.recipients.envelope, data=data,
                                           message_id=message_id))

    def compose_all(self) -> None:
        for job in self.jobs:
            compose(self.profile, self.renderer, self.spec, job.recipients, job.variables)

    def ledger_all(self, synchronous: str) -> Callable[[], None]:
        def work() -> None:
            with Ledger(self.folder / f"isolated-{synchronous}.sqlite3", synchronous=synchronous) as ledger:
                for job, envelope in zip(self.jobs, self.envelopes, strict=True):
                    key = idempotency_key(self.spec, job)
                    ledger.last_sent(self.profile.name, key)
                    entry = ledger.begin(self.profile.name, self.spec.name, key, envelope.recipients,
                                         envelope.message_id, job.row)
                    ledger.finish(entry, "sent", "250 2.0.0 OK")
        return work

    def smtp_all(self) -> None:
        transport = SmtpTransport(SmtpEndpoint.from_profile(self.profile), PASSWORD)
        transport.open()
        try:
            for envelope in self.envelopes:
                if not transport.send(envelope).ok:
                    raise RuntimeError("the server refused a message")
        finally:
            transport.close()

    def whole(self) -> None:
        with Ledger(self.folder / "whole.sqlite3") as ledger:
            if send_batch(self.profile, self.spec, self.batch, ledger) != self.rows:
                raise RuntimeError("not every message was sent")

    def naive_all(self) -> None:
        for job in self.jobs:
            values = {"to": job.recipients.to[0], **{k: str(v) for k, v in job.variables.items()}}
            naive_message(values).as_bytes()


def isolated(folder: Path, server: Sink, profile: Profile, spec: Event, batch: Path, rows: int) -> None:
    """Each stage alone, for all rows, without the profiler."""
    stages = IsolatedStages(folder, profile, spec, batch, rows)
    timings = [
        ("read + check the CSV once (check_batch)", clock(lambda: check_batch(spec, batch, {}))),
        ("render subject, text, HTML (Renderer.render)", clock(stages.render_all)),
        ("build MIME bytes (make_message_id + build_message)", clock(stages.build_all)),
        ("compose() end to end (render + MIME)", clock(stages.compose_all)),
        ("for comparison: EmailMessage build + flatten (naive client)", clock(stages.naive_all)),
        ("ledger: last_sent + begin + finish, synchronous=NORMAL", clock(stages.ledger_all("NORMAL"))),
        ("ledger: last_sent + begin + finish, synchronous=FULL", clock(stages.ledger_all("FULL"))),
        ("SMTP: open + send pre-built envelopes + QUIT", clock(stages.smtp_all)),
    ]
    before = server.count()
    timings.append(("whole in-process batch (all of it together, as the CLI does it)", clock(stages.whole)))
    if server.count() - before != rows:
        raise RuntimeError("the whole batch did not arrive")
    print(f"\nisolated stages, no profiler, {rows} messages each (wall clock):")
    table = [["stage", "seconds", "ms/msg"]]
    table += [[label, f"{seconds:.3f}", f"{seconds / rows * 1000:.3f}"] for label, seconds in timings]
    print_table(table)
    parts = timings[0][1] * 2 + timings[3][1] + timings[5][1] + timings[7][1]
    print(f"  stages alone: two file passes + compose + ledger (NORMAL) + SMTP = {parts:.3f} s; "
          f"whole batch = {timings[-1][1]:.3f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000, help="messages in the batch (default 2000)")
    parser.add_argument("--top", type=int, default=25, help="functions to list by cumulative time")
    parser.add_argument("--save", type=Path, help="also write the raw profile here (pstats format)")
    args = parser.parse_args()
    rows: int = args.rows
    with tempfile.TemporaryDirectory(prefix="xoromail-bench-") as name:
        folder = Path(name)
        with sink(folder) as server:
            profile = load_profile(write_config(folder / "config.toml", server.port, server.ca_file), "default")
            spec = get_event(EVENT)
            batch = write_csv(folder / "rows.csv", rows)
            warm = write_csv(folder / "warm.csv", 50, start=10**6)
            with Ledger(folder / "warm.sqlite3") as ledger:
                send_batch(profile, spec, warm, ledger)
            profiled(folder, server, profile, spec, batch, rows, args.top, args.save)
            isolated(folder, server, profile, spec, batch, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
