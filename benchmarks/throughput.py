"""Messages per second over one STARTTLS + AUTH connection: xoromail against plain smtplib, and more.

Every client talks to the same aiosmtpd server (sink_server.py), which runs in its own process so it
does not share the client's GIL. Measured side by side in one run:

  xoromail CLI        `xoromail send --event overdue-invoice --batch FILE` as a process (start-up, the
                      checking pass over the file, rendering, MIME, ledger: everything)
  naive smtplib       a process that reads the same CSV and, over one connection (STARTTLS with a
                      verifying context + login), builds each message with EmailMessage (text + HTML)
                      and send_message()s it: the floor a hand-written script reaches
  xoromail Sender     the same work as the CLI in this process (no start-up), with the ledger at
                      synchronous=NORMAL (the default), at FULL, and without a ledger
  mailmerge-style     a new connection (STARTTLS + login) per message, like mailmerge
  msmtp               one msmtp process per message, if msmtp is installed

The CLI and the naive loop run against two servers at once, alternated: aiosmtpd as it ships (lock-step: it
reads pipelined commands but does not announce PIPELINING) and the same server announcing PIPELINING, as Postfix,
Exim, Exchange Online and Gmail do. Besides wall time, each process's CPU time (user + system, from the kernel's
accounting of the child) and the server's CPU time are reported: they barely move with the machine's load, so the
client-against-client CPU ratio is the repeatable figure on a shared machine.

Target: xoromail CLI / naive smtplib >= 2.0, moonshot 2.5 (wall time of each process, start-up included;
issue 24 raised it from 1.0), against the server announcing PIPELINING; the lock-step ratio is printed with it.
Run: .venv/bin/python benchmarks/throughput.py  [--rows 2000] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import os
import resource
import shutil
import smtplib
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path

from _common import (
    PASSWORD,
    PYTHON,
    SENDER,
    XOROMAIL,
    Sink,
    environment,
    median,
    print_table,
    row,
    sink,
    verdict,
    write_config,
    write_csv,
)

EVENT = "overdue-invoice"
TARGET = 2.0
MOONSHOT = 2.5
TEXT = """Dear {customer_name},

Our records show that invoice {invoice_number} for {amount} was due on {due_date}.

If you have already paid, please disregard this reminder. If you have any questions, just reply to this email.

Kind regards,
Company Ltd
"""
HTML = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Invoice {invoice_number} overdue</title></head>
<body style="font-family: Arial, Helvetica, sans-serif; line-height: 1.5; color: #222;">
<p>Dear {customer_name},</p>
<p>Our records show that invoice <strong>{invoice_number}</strong> for <strong>{amount}</strong> was due on \
{due_date}.</p>
<p>If you have already paid, please disregard this reminder. If you have any questions, just reply to this email.</p>
<p>Kind regards,<br>Company Ltd</p>
</body>
</html>
"""


# ---- the comparison clients (run as worker processes) ---------------------------------------------

def naive_message(values: dict[str, str]) -> EmailMessage:
    """What a careful hand-written script does: EmailMessage with a text part and an HTML alternative."""
    amount = f"USD {Decimal(values['amount_due']):,.2f}"
    plain = {key: value for key, value in values.items()}
    escaped = {key: html.escape(value) for key, value in values.items()}
    message = EmailMessage()
    message["From"] = formataddr(("Company Billing", SENDER))
    message["To"] = values["to"]
    message["Subject"] = f"Payment reminder: invoice {values['invoice_number']} is overdue"
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="company.test")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(TEXT.format(amount=amount, **plain))
    message.add_alternative(HTML.format(amount=html.escape(amount), **escaped), subtype="html")
    return message


def open_client(port: int, ca_file: str) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, local_hostname="[127.0.0.1]", timeout=30)
    client.starttls(context=ssl.create_default_context(cafile=ca_file))
    client.login(SENDER, PASSWORD)
    return client


def worker_naive(port: int, ca_file: str, batch: Path, limit: int | None, per_message: bool) -> None:
    """One connection for the whole file (or, with `per_message`, a new connection per message)."""
    started = time.perf_counter()
    sent = size = 0
    client = None if per_message else open_client(port, ca_file)
    with batch.open(encoding="utf-8", newline="") as handle:
        for values in csv.DictReader(handle):
            if limit is not None and sent >= limit:
                break
            message = naive_message(values)
            if per_message:
                with open_client(port, ca_file) as one:
                    one.send_message(message)
            else:
                assert client is not None
                client.send_message(message)
            sent += 1
            if sent == 1:
                size = len(message.as_bytes())
    if client is not None:
        client.quit()
    print(json.dumps({"messages": sent, "seconds": time.perf_counter() - started, "bytes": size}))


# ---- measurements ----------------------------------------------------------------------------------

@dataclass
class Result:
    label: str
    messages: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def timed(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run a process; (its result, wall seconds, CPU seconds: user + system of that child alone)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return done, seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_cli(folder: Path, server: Sink, batch: Path, rows: int, tag: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one `xoromail send --batch` process, with a fresh ledger; checks what arrived."""
    run_dir = folder / f"cli-{tag}"
    run_dir.mkdir()
    config = write_config(run_dir / "config.toml", server.port, server.ca_file)
    env = environment(run_dir, config, pycache=folder / "pycache")
    before = server.count()
    done, seconds, cpu = timed([XOROMAIL, "send", "--event", EVENT, "--batch", str(batch)], env)
    if done.returncode != 0:
        raise RuntimeError(f"xoromail send failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    arrived = server.count() - before
    with sqlite3.connect(run_dir / "state" / "xoromail" / "ledger.sqlite3") as db:
        recorded = db.execute("SELECT count(*) FROM messages WHERE status = 'sent'").fetchone()[0]
    if arrived != rows or recorded != rows:
        raise RuntimeError(f"xoromail: {arrived} messages arrived and {recorded} were recorded, not {rows}")
    return seconds, cpu


def run_worker(folder: Path, server: Sink, batch: Path, limit: int | None,
               per_message: bool) -> tuple[float, int, int, float]:
    """(process wall time, messages, message size, process CPU time) of a naive smtplib worker process."""
    before = server.count()
    args = [PYTHON, __file__, "--worker", "per-message" if per_message else "naive", "--port", str(server.port),
            "--ca-file", str(server.ca_file), "--batch", str(batch)]
    if limit is not None:
        args += ["--limit", str(limit)]
    env = environment(folder / "workers", folder / "workers" / "unused.toml", pycache=folder / "pycache")
    done, seconds, cpu = timed(args, env)
    if done.returncode != 0:
        raise RuntimeError(f"smtplib worker failed: {done.stderr.strip()[-500:]}")
    report = json.loads(done.stdout)
    if server.count() - before != report["messages"]:
        raise RuntimeError("the smtplib worker's messages did not all arrive")
    return seconds, int(report["messages"]), int(report["bytes"]), cpu


def run_sender(folder: Path, server: Sink, batch: Path, rows: int, synchronous: str | None, tag: str) -> float:
    """The CLI's work in this process: BatchSource (check + stream) → Sender → SmtpTransport + Ledger."""
    from xoromail_cli.compose.events import get_event
    from xoromail_cli.compose.render import Renderer
    from xoromail_cli.config import load_profile
    from xoromail_cli.ledger.sqlite import Ledger
    from xoromail_cli.pacing import RateLimiter
    from xoromail_cli.sending.deliverer import Deliverer
    from xoromail_cli.sending.plan import BatchSource
    from xoromail_cli.sending.sender import Sender
    from xoromail_cli.services.smtp.transport import SmtpEndpoint, SmtpTransport

    run_dir = folder / f"sender-{tag}"
    run_dir.mkdir()
    profile = load_profile(write_config(run_dir / "config.toml", server.port, server.ca_file), "default")
    spec = get_event(EVENT)
    before = server.count()
    started = time.perf_counter()
    ledger = Ledger(run_dir / "ledger.sqlite3", synchronous=synchronous) if synchronous else None
    try:
        source = BatchSource(event=spec, path=batch, defaults={}, skip_invalid=False)
        source.check()
        transport = SmtpTransport(SmtpEndpoint.from_profile(profile), PASSWORD)
        deliverer = Deliverer(profile=profile, event=spec.name, transport=transport, ledger=ledger,
                              rate=RateLimiter(per_second=None))
        sender = Sender(event=spec, renderer=Renderer(profile, None), deliverer=deliverer)
        summary = sender.run(source)
    finally:
        if ledger is not None:
            ledger.close()
    seconds = time.perf_counter() - started
    if summary.count("sent") != rows or server.count() - before != rows:
        raise RuntimeError(f"Sender: {summary.line()}; {server.count() - before} arrived")
    return seconds


def xoromail_message_size(folder: Path, port: int, ca_file: Path) -> int:
    from xoromail_cli.compose.events import get_event
    from xoromail_cli.compose.render import Renderer, compose
    from xoromail_cli.config import load_profile
    from xoromail_cli.sending.batch import make_job

    profile = load_profile(write_config(folder / "size.toml", port, ca_file), "default")
    spec = get_event(EVENT)
    to, *values = row(0)
    job = make_job(spec, 1, to=[to], variables=dict(zip(spec.required, values, strict=True)))
    envelope, _ = compose(profile, Renderer(profile, None), spec, job.recipients, job.variables)
    return len(envelope.data)


def run_msmtp(folder: Path, server: Sink, count: int) -> float:
    """`count` msmtp processes, one per message, each with STARTTLS + AUTH."""
    config = folder / "msmtprc"
    config.write_text(f"defaults\nlogfile /dev/null\naccount bench\nhost 127.0.0.1\nport {server.port}\n"
                      f"domain 127.0.0.1\ntls on\ntls_starttls on\ntls_trust_file {server.ca_file}\nauth on\n"
                      f"user {SENDER}\npassword {PASSWORD}\nfrom {SENDER}\naccount default : bench\n",
                      encoding="utf-8")
    config.chmod(0o600)
    messages = []
    for number in range(count):
        to, name, invoice, amount, due = row(number)
        messages.append((to, naive_message({"to": to, "customer_name": name, "invoice_number": invoice,
                                            "amount_due": amount, "due_date": due}).as_bytes()))
    before = server.count()
    started = time.perf_counter()
    for to, data in messages:
        subprocess.run(["msmtp", "-C", str(config), to], input=data, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    if server.count() - before != count:
        raise RuntimeError("msmtp's messages did not all arrive")
    return seconds


@dataclass(kw_only=True)
class Pair:
    """The CLI and the naive loop against one server: wall and CPU seconds of each run, the server's CPU."""

    server: Sink
    label: str
    cli: list[tuple[float, float]]
    naive: list[tuple[float, float]]
    server_cpu: dict[str, float]

    def ratio(self) -> float:
        return median([w for w, _ in self.naive]) / median([w for w, _ in self.cli])

    def cpu_ratio(self) -> float:
        return median([c for _, c in self.naive]) / median([c for _, c in self.cli])


def measure(folder: Path, pairs: list[Pair], batch: Path, rows: int, repeats: int) -> int:
    """Alternate CLI and naive runs over every server (so all see the same load); returns the naive size."""
    naive_size = 0
    for repeat in range(repeats):
        for pair in pairs:
            order = ("cli", "naive") if repeat % 2 == 0 else ("naive", "cli")
            for who in order:
                cpu = pair.server.cpu()
                if who == "cli":
                    pair.cli.append(run_cli(folder, pair.server, batch, rows, f"{pair.label}-{repeat}"))
                else:
                    seconds, _, naive_size, used = run_worker(folder, pair.server, batch, None, per_message=False)
                    pair.naive.append((seconds, used))
                pair.server_cpu[who] = pair.server_cpu.get(who, 0.0) + pair.server.cpu() - cpu
    return naive_size


def pair_results(pair: Pair, rows: int, repeats: int, sizes: tuple[int, int]) -> list[Result]:
    per_message = {key: value / (repeats * rows) * 1000 for key, value in pair.server_cpu.items()}
    results = []
    for who, runs, size, label in (("cli", pair.cli, sizes[0], "xoromail CLI (send --batch, one connection)"),
                                   ("naive", pair.naive, sizes[1], "naive smtplib + EmailMessage (one connection)")):
        cpu = median([c for _, c in runs]) / rows * 1000
        results.append(Result(f"{label}, {pair.label}", rows, median([w for w, _ in runs]),
                              f"median of {repeats}; {size} bytes/msg; CPU {cpu:.2f} ms/msg (start-up included), "
                              f"server CPU {per_message[who]:.2f} ms/msg"))
    return results


def report_pairs(pairs: list[Pair]) -> bool:
    """Each server's ratios; the verdict is the PIPELINING server's wall-time ratio (see the module's text)."""
    ok = True
    for pair in pairs:
        ratio, judged = pair.ratio(), pair.label.startswith("PIPELINING")
        ok = ok and (ratio >= TARGET or not judged)
        print(f"\nratio xoromail CLI / naive smtplib, {pair.label}: wall {ratio:.2f} (target >= {TARGET}, moonshot "
              f"{MOONSHOT}): {verdict(ratio >= TARGET)}{'' if judged else ' (information)'}; "
              f"client CPU {pair.cpu_ratio():.2f} (information)")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000, help="messages per batch run (default 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of CLI and naive (median)")
    parser.add_argument("--per-message", type=int, default=300, help="messages for the mailmerge-style client")
    parser.add_argument("--msmtp", type=int, default=100, help="messages for the msmtp loop (0 skips)")
    parser.add_argument("--quick", action="store_true", help="only the CLI against the naive loop (~25 s)")
    parser.add_argument("--worker", choices=("naive", "per-message"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ca-file", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_naive(args.port, args.ca_file, args.batch, args.limit, args.worker == "per-message")
        return 0

    rows: int = args.rows
    print(f"throughput: {rows} messages over STARTTLS + AUTH to aiosmtpd on 127.0.0.1 (servers in their own "
          f"processes); load average {os.getloadavg()[0]:.1f}")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="xoromail-bench-") as name, ExitStack() as stack:
        folder = Path(name)
        for sub in ("lock-step", "pipelining"):
            (folder / sub).mkdir()
        server = stack.enter_context(sink(folder / "lock-step"))
        announcing = stack.enter_context(sink(folder / "pipelining", pipelining=True))
        pairs = [Pair(server=announcing, label="PIPELINING server", cli=[], naive=[], server_cpu={}),
                 Pair(server=server, label="lock-step server", cli=[], naive=[], server_cpu={})]
        batch = write_csv(folder / "rows.csv", rows)
        warm = write_csv(folder / "warm.csv", 50, start=10**6)
        for pair in pairs:
            run_cli(folder, pair.server, warm, 50, f"warm-{pair.label}")
            run_worker(folder, pair.server, warm, None, per_message=False)
        naive_size = measure(folder, pairs, batch, rows, args.repeats)
        sizes = (xoromail_message_size(folder, server.port, server.ca_file), naive_size)
        for pair in pairs:
            results += pair_results(pair, rows, args.repeats, sizes)
        if args.quick:
            print_table([["client", "msg/s", "seconds", "note"],
                         *([r.label, f"{r.rate:,.0f}", f"{r.seconds:.2f}", r.note] for r in results)])
            print(f"load average now {os.getloadavg()[0]:.1f}")
            return 0 if report_pairs(pairs) else 1
        naive = results[3]  # the in-process runs below use the lock-step server

        variants: dict[str, list[float]] = {"NORMAL": [], "FULL": [], "none": []}
        for repeat in range(2):
            for synchronous in variants:
                variants[synchronous].append(run_sender(folder, server, batch, rows,
                                                        None if synchronous == "none" else synchronous,
                                                        f"{synchronous}-{repeat}"))
        normal = Result("xoromail Sender in-process, ledger synchronous=NORMAL (default)", rows,
                        median(variants["NORMAL"]), "median of 2")
        full = Result("xoromail Sender in-process, ledger synchronous=FULL", rows, median(variants["FULL"]),
                      "median of 2")
        no_ledger = Result("xoromail Sender in-process, no ledger (reference only)", rows,
                           median(variants["none"]), "median of 2")
        results += [normal, full, no_ledger]

        seconds, sent, _, _ = run_worker(folder, server, batch, args.per_message, per_message=True)
        results.append(Result("mailmerge-style: new connection per message", sent, seconds,
                              f"{sent} messages, process wall time"))
        if args.msmtp and shutil.which("msmtp"):
            results.append(Result("msmtp: one process per message", args.msmtp,
                                  run_msmtp(folder, server, args.msmtp), f"{args.msmtp} messages"))
        elif args.msmtp:
            print("  (msmtp is not installed: apt-get install -y msmtp; skipped)")

    table = [["client", "msg/s", "seconds", "note"]]
    table += [[r.label, f"{r.rate:,.0f}", f"{r.seconds:.2f}", r.note] for r in results]
    print_table(table)
    print(f"load average now {os.getloadavg()[0]:.1f}")
    ok = report_pairs(pairs)
    print(f"ratio in-process Sender (NORMAL) / naive smtplib = {normal.rate / naive.rate:.2f} (information)")
    cost = (full.seconds - normal.seconds) / rows * 1000
    print(f"ledger durability: FULL runs at {full.rate / normal.rate:.2f}x the rate of NORMAL "
          f"({cost:+.3f} ms per message, 2 commits each); the ledger itself costs "
          f"{(normal.seconds - no_ledger.seconds) / rows * 1000:+.3f} ms per message at NORMAL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
