"""What the sent-ledger costs per message: SQLite against PostgreSQL on loopback, and a whole batch.

Measured side by side in one run:

  ledger alone      the three statements a clean delivery makes (look up the key, record in flight,
                    record sent; each write its own commit) for N messages, in this process:
                    SQLite at synchronous=NORMAL (the default), at FULL, and PostgreSQL on 127.0.0.1
                    (a real server from Debian's binaries, fsync on, started and removed here) with the
                    session's synchronous_commit=off (the default, like SQLite's NORMAL) and =on
  batch             `xoromail send --batch` of 2,000 rows over one STARTTLS + AUTH connection with the
                    PostgreSQL ledger ($XOROMAIL_LEDGER), with the default SQLite ledger, and the naive
                    smtplib + EmailMessage loop of throughput.py (no ledger at all): the floor

Target: xoromail CLI with a PostgreSQL ledger / naive smtplib >= 1.0 (wall time, start-up included).
Run: .venv/bin/python benchmarks/ledger_cost.py  [--rows 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from _common import ROOT, XOROMAIL, Sink, environment, median, print_table, sink, verdict, write_config, write_csv
from throughput import EVENT, run_cli, run_worker

sys.path.insert(0, str(ROOT))
from tests.support.pg_server import APP_PASSWORD, APP_USER, PostgresServer  # found once ROOT is on the path

if TYPE_CHECKING:
    from xoromail_cli.ledger.sqlite import SentLedger

ACCOUNT = "smtp:billing@company.test"
FLUSHED = "?options=-c%20synchronous_commit%3Don"
"""A URL that keeps every commit flushed to disk before it returns."""


def ledger_alone(ledger: SentLedger, messages: int) -> float:
    """Milliseconds per message for the statements of one clean delivery."""
    started = time.perf_counter()
    for number in range(messages):
        key = f"overdue-invoice:INV-{number}:c{number}@example.com"
        ledger.last_sent(ACCOUNT, key)
        entry = ledger.begin(ACCOUNT, "overdue-invoice", key, (f"c{number}@example.com",),
                             f"<{number}@company.test>", number, profile="default")
        ledger.finish(entry, "sent", "250 2.0.0 OK")
    return (time.perf_counter() - started) / messages * 1000


def run_cli_postgres(folder: Path, server: Sink, batch: Path, rows: int, url: str, tag: str) -> float:
    """Wall time of one `xoromail send --batch` recording into PostgreSQL; checks what arrived and was recorded."""
    import psycopg

    run_dir = folder / f"pg-{tag}"
    run_dir.mkdir()
    env = environment(run_dir, write_config(run_dir / "config.toml", server.port, server.ca_file),
                      pycache=folder / "pycache")
    env.update(XOROMAIL_LEDGER=url, PGPASSWORD=APP_PASSWORD)
    before = server.count()
    started = time.perf_counter()
    done = subprocess.run([XOROMAIL, "send", "--event", EVENT, "--batch", str(batch)], env=env,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"xoromail send failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    with psycopg.connect(url, password=APP_PASSWORD) as db:
        row = db.execute("SELECT count(*) FROM xoromail_messages WHERE status = 'sent'").fetchone()
    recorded = row[0] if row else 0
    if server.count() - before != rows or recorded != rows:
        raise RuntimeError(f"{server.count() - before} arrived and {recorded} were recorded, not {rows}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000, help="messages per batch run (default 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each batch kind (median)")
    parser.add_argument("--ledger-messages", type=int, default=2000, help="messages for the ledger-alone rows")
    args = parser.parse_args()
    rows: int = args.rows
    from xoromail_cli.ledger.postgres import PostgresLedger
    from xoromail_cli.ledger.sqlite import Ledger

    postgres = PostgresServer(durable=True).init().start()
    try:
        postgres.sql(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}'")
        with tempfile.TemporaryDirectory(prefix="xoromail-bench-") as name:
            folder = Path(name)
            costs = []
            for label, make in (
                    ("SQLite, synchronous=NORMAL", lambda: Ledger(folder / "normal.sqlite3")),
                    ("SQLite, synchronous=FULL", lambda: Ledger(folder / "full.sqlite3", synchronous="FULL")),
                    ("PostgreSQL 127.0.0.1, synchronous_commit=off (default)",
                     lambda: PostgresLedger(postgres.create_database("relaxed"), password=APP_PASSWORD)),
                    ("PostgreSQL 127.0.0.1, synchronous_commit=on",
                     lambda: PostgresLedger(postgres.create_database("flushed") + FLUSHED, password=APP_PASSWORD))):
                ledger = make()
                try:
                    costs.append((label, ledger_alone(ledger, args.ledger_messages)))
                finally:
                    ledger.close()
            print(f"ledger alone: lookup + in flight + sent, {args.ledger_messages} messages")
            print_table([("ledger", "ms/message")] + [(label, f"{ms:.3f}") for label, ms in costs])

            with sink(folder) as server:
                batch = write_csv(folder / "rows.csv", rows)
                warm = write_csv(folder / "warm.csv", 50, start=10**6)
                run_cli(folder, server, warm, 50, "warm")
                run_worker(folder, server, warm, None, per_message=False)
                times: dict[str, list[float]] = {"pg": [], "sqlite": [], "naive": []}
                for repeat in range(args.repeats):
                    url = postgres.create_database(f"batch{repeat}")
                    times["pg"].append(run_cli_postgres(folder, server, batch, rows, url, str(repeat)))
                    times["sqlite"].append(run_cli(folder, server, batch, rows, str(repeat))[0])
                    times["naive"].append(run_worker(folder, server, batch, None, per_message=False)[0])
            rates = {kind: rows / median(values) for kind, values in times.items()}
            print(f"\nbatch: {rows} messages, one STARTTLS + AUTH connection, median of {args.repeats}")
            print_table([("client", "msg/s", "ms/msg")] + [
                (label, f"{rates[kind]:.0f}", f"{1000 / rates[kind]:.2f}") for kind, label in (
                    ("pg", "xoromail CLI, PostgreSQL ledger"), ("sqlite", "xoromail CLI, SQLite ledger"),
                    ("naive", "naive smtplib + EmailMessage (no ledger)"))])
            ratio = rates["pg"] / rates["naive"]
            print(f"\nCLI with PostgreSQL ledger / naive smtplib = {ratio:.2f} (target >= 1.0): "
                  f"{verdict(ratio >= 1.0)}")
            print(f"PostgreSQL ledger costs {1000 / rates['pg'] - 1000 / rates['sqlite']:+.2f} ms/msg against SQLite")
            return 0 if ratio >= 1.0 else 1
    finally:
        postgres.remove()


if __name__ == "__main__":
    sys.exit(main())
