"""The relay end to end: an ERP submits messages to `xoromail relay`, which spools and delivers them upstream.

A real `xoromail relay` process (as systemd runs it) listens on 127.0.0.1 and delivers through a profile whose
server is the STARTTLS + AUTH sink of sink_server.py (its own process). The ERP side submits `--messages`
messages, each on its own connection with AUTH, as an ERP's Web Mail does; a second run submits them all on one
connection. The clock starts at the first submission and stops when the upstream server has accepted the last
message, so the figure includes accepting, spooling (fsync), delivering and removing each spool entry.

Target: at least 150 messages a second end to end (issue 24).
Run: .venv/bin/python benchmarks/relay_throughput.py  [--messages 500]
"""

from __future__ import annotations

import argparse
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from _common import XOROMAIL, Sink, environment, print_table, sink, verdict, write_config

TARGET = 150.0
RELAY_USER, RELAY_PASSWORD = "erp", "relay-bench-pass-7Qx"


def erp_message(number: int) -> EmailMessage:
    """What an ERP's Web Mail submits: its own headers and a short text body."""
    message = EmailMessage()
    message["From"] = "Company Billing <billing@company.test>"
    message["To"] = f"customer{number}@example.com"
    message["Subject"] = f"Invoice INV-{number}"
    message["Message-ID"] = f"<erp.{number}.{os.getpid()}.{time.monotonic_ns()}@company.test>"
    message.set_content(f"Dear customer,\n\nplease find the details of invoice INV-{number} below.\n" * 3)
    return message


class Relay:
    """A `xoromail relay` process; its log lines on stderr are read by a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [XOROMAIL, "relay", "--listen", "127.0.0.1:0", "--user", RELAY_USER, "--password-stdin",
             "--retry-delay", "0.2"], env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        assert self.process.stdin is not None
        self.process.stdin.write(RELAY_PASSWORD + "\n")
        self.process.stdin.close()
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 30
        while not any(line.startswith("listening ") for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the relay did not start:\n" + "\n".join(self.lines))
            time.sleep(0.02)
        listening = next(line for line in self.lines if line.startswith("listening "))
        self.port = int(listening.split("address=", 1)[1].split()[0].rsplit(":", 1)[1])

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def submit(port: int, messages: list[EmailMessage], *, one_connection: bool) -> None:
    def connect() -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", port, timeout=30)
        client.login(RELAY_USER, RELAY_PASSWORD)
        return client

    if one_connection:
        with connect() as client:
            for message in messages:
                client.send_message(message)
        return
    for message in messages:
        with connect() as client:
            client.send_message(message)


def end_to_end(relay: Relay, server: Sink, count: int, start: int, *, one_connection: bool) -> tuple[float, float]:
    """(seconds until every message was submitted, seconds until the upstream server had them all)."""
    messages = [erp_message(start + number) for number in range(count)]
    before = server.count()
    started = time.perf_counter()
    submit(relay.port, messages, one_connection=one_connection)
    submitted = time.perf_counter() - started
    deadline = time.monotonic() + 300
    while server.count() - before < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {server.count() - before} of {count} messages arrived upstream")
        time.sleep(0.005)
    return submitted, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=500, help="messages per run (default 500)")
    args = parser.parse_args()
    count: int = args.messages
    rows = [("ERP submits", "submitted msg/s", "delivered upstream msg/s", "seconds")]
    rates: list[float] = []
    with tempfile.TemporaryDirectory(prefix="xoromail-relay-") as name:
        folder = Path(name)
        (folder / "sink").mkdir()
        with sink(folder / "sink") as server:
            env = environment(folder, write_config(folder / "config.toml", server.port, server.ca_file))
            env["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"  # the relay's own login
            relay = Relay(env)
            try:
                end_to_end(relay, server, 20, 10**6, one_connection=False)  # warm: first connection, spool dir
                for label, one_connection, start in (("a connection per message", False, 0),
                                                     ("one connection", True, count)):
                    submitted, delivered = end_to_end(relay, server, count, start, one_connection=one_connection)
                    rates.append(count / delivered)
                    rows.append((label, f"{count / submitted:.0f}", f"{count / delivered:.0f}", f"{delivered:.2f}"))
            finally:
                relay.stop()
            failed = [line for line in relay.lines if line.startswith(("failed", "deferred", "error"))]
    print(f"relay end to end: {count} messages, ERP → xoromail relay → STARTTLS + AUTH server, all on 127.0.0.1")
    print_table(rows)
    if failed:
        print(f"relay log lines about failures: {len(failed)}, first: {failed[0]}")
    ok = min(rates) >= TARGET and not failed
    print(f"target >= {TARGET:.0f} msg/s delivered end to end: {verdict(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
