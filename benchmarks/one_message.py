"""One message end to end: `xoromail send` (one process, one message) against swaks, side by side.

Both submit one message to the same local STARTTLS + AUTH server (sink_server.py): EHLO, STARTTLS, EHLO,
AUTH, MAIL, RCPT, DATA, QUIT. xoromail also renders the event's templates, checks the certificate (swaks
does not by default) and records the message in its sent-ledger; every run uses a new invoice number, so
each one really sends. Runs alternate (xoromail, swaks, xoromail, …) so that a busy machine slows both
alike; the verdict is the ratio of the medians of wall time.

Targets: median xoromail / median swaks <= 3.0 (moonshot 2.0).

Run: .venv/bin/python benchmarks/one_message.py  [--pairs 15]  [--importtime]
Needs swaks (apt-get install swaks). Exits non-zero when the target is missed.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import PASSWORD, SENDER, XOROMAIL, environment, median, print_table, sink, verdict, write_config

TARGET = 3.0
MOONSHOT = 2.0


def xoromail_command(number: int) -> list[str]:
    return [XOROMAIL, "send", "--event", "overdue-invoice", "--to", f"customer{number}@example.com",
            "--var", "customer_name=Northwind", "--var", f"invoice_number=INV-{number}",
            "--var", "amount_due=1249.50", "--var", "due_date=2026-11-15", "--quiet"]


def swaks_command(port: int, number: int) -> list[str]:
    return ["swaks", "--silent", "2", "--server", f"127.0.0.1:{port}", "--tls", "--auth", "LOGIN",
            "--auth-user", SENDER, "--auth-password", PASSWORD, "--from", SENDER,
            "--to", f"customer{number}@example.com", "--header", f"Subject: Invoice INV-{number} is overdue",
            "--body", "Dear Northwind, invoice INV-{number} of 1249.50 was due on 2026-11-15."]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system of the child) seconds of one run; a failed run stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({completed.returncode}): {completed.stderr.strip()[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def import_breakdown(env: dict[str, str], number: int, top: int = 25) -> None:
    """The modules one send imports, by cumulative time (`python -X importtime`), largest first."""
    command = [sys.executable, "-X", "importtime", "-c", "from xoromail_cli.cli import main; main()",
               *xoromail_command(number)[1:]]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    rows = []
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, own, cumulative, name = (part.strip() for part in line.split("|", 1)[0].split(":") + line.split("|")[1:])
        rows.append((int(cumulative), int(own), name))
    print(f"\nimports of one send: {len(rows)} modules, top {top} by cumulative µs")
    for cumulative, own, name in sorted(rows, reverse=True)[:top]:
        print(f"  {cumulative:>8} {own:>8}  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=15, help="alternated runs of each (default 15)")
    parser.add_argument("--importtime", action="store_true", help="also show what one send imports")
    args = parser.parse_args()
    if shutil.which("swaks") is None:
        print("swaks is missing: apt-get install swaks", file=sys.stderr)
        return 69
    with tempfile.TemporaryDirectory(prefix="xoromail-one-") as name:
        folder = Path(name)
        (folder / "sink").mkdir()
        with sink(folder / "sink") as server:
            env = environment(folder, write_config(folder / "config.toml", server.port, server.ca_file))
            timed(xoromail_command(0), env)  # the first run compiles bytecode and creates the ledger
            timed(swaks_command(server.port, 0), env)
            ours: list[tuple[float, float]] = []
            theirs: list[tuple[float, float]] = []
            for number in range(1, args.pairs + 1):
                ours.append(timed(xoromail_command(number), env))
                theirs.append(timed(swaks_command(server.port, number), env))
            if args.importtime:
                import_breakdown(env, args.pairs + 1)
            sent = server.count()
    expected = 2 * (args.pairs + 1) + (1 if args.importtime else 0)
    ours_wall, theirs_wall = median([w for w, _ in ours]), median([w for w, _ in theirs])
    ours_cpu, theirs_cpu = median([c for _, c in ours]), median([c for _, c in theirs])
    ratio = ours_wall / theirs_wall
    print(f"\none message, STARTTLS + AUTH to 127.0.0.1, medians of {args.pairs} alternated pairs")
    print_table([("", "wall ms", "CPU ms"),
                 ("xoromail send", f"{ours_wall * 1000:.0f}", f"{ours_cpu * 1000:.0f}"),
                 ("swaks", f"{theirs_wall * 1000:.0f}", f"{theirs_cpu * 1000:.0f}"),
                 ("ratio", f"{ratio:.2f}", f"{ours_cpu / theirs_cpu:.2f}")])
    print(f"messages the server accepted: {sent} (expected {expected})")
    ok = ratio <= TARGET and sent == expected
    print(f"target ratio <= {TARGET} (moonshot {MOONSHOT}): {verdict(ok)}"
          + (" (moonshot reached)" if ratio <= MOONSHOT else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
