"""Sending through a 20 ms round trip: the naive smtplib loop against xoromail, pipelined and in parallel.

A latency proxy (latency_proxy.py, its own process) delays each direction by 10 ms in front of the STARTTLS +
AUTH aiosmtpd server of sink_server.py, which here announces PIPELINING (RFC 2920) as Postfix, Exchange Online
and Gmail do. Measured side by side in one run, each a whole process (start-up included), same rows:

  naive smtplib        one connection, EmailMessage + send_message per row: MAIL, RCPT, DATA and the message
                       each wait a round trip (throughput.py's worker)
  xoromail, lock-step  `xoromail send --batch` to a second server that does not announce PIPELINING
  xoromail, 1 conn.    `xoromail send --batch` (pipelined: about one round trip per message)
  xoromail, 3 conn.    `xoromail send --batch --connections 3`

Each xoromail run starts with a fresh ledger; every run checks that exactly its rows arrived once and that the
ledger says `sent` for each (0 duplicates). Targets: 1 connection >= 1.8 x naive, 3 connections >= 4 x naive.
Run: .venv/bin/python benchmarks/latency.py  [--rows 150] [--delay-ms 10] [--repeats 1]
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import (
    PYTHON,
    XOROMAIL,
    Sink,
    environment,
    median,
    print_table,
    sink,
    stop_helper,
    verdict,
    write_config,
    write_csv,
)
from throughput import run_worker

HERE = Path(__file__).resolve().parent
EVENT = "overdue-invoice"


@contextmanager
def latency_proxy(target_port: int, one_way_ms: float) -> Iterator[int]:
    """Start latency_proxy.py in front of `target_port`; yields its port; always stops it."""
    process = subprocess.Popen([PYTHON, str(HERE / "latency_proxy.py"), str(target_port), str(one_way_ms)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        stop_helper(process)


def run_cli(folder: Path, server: Sink, port: int, batch: Path, rows: int, tag: str, connections: int) -> float:
    """Wall time of one `xoromail send --batch` process through `port`; checks arrivals and the ledger."""
    run_dir = folder / f"cli-{tag}"
    run_dir.mkdir()
    config = write_config(run_dir / "config.toml", port, server.ca_file)
    env = environment(run_dir, config, pycache=folder / "pycache")
    before = server.count()
    command = [XOROMAIL, "send", "--event", EVENT, "--batch", str(batch), "--connections", str(connections)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"xoromail send failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    arrived = server.count() - before
    with sqlite3.connect(run_dir / "state" / "xoromail" / "ledger.sqlite3") as db:
        recorded = db.execute("SELECT count(*), count(DISTINCT idem_key) FROM messages WHERE status = 'sent'"
                              ).fetchone()
    if arrived != rows or tuple(recorded) != (rows, rows):
        raise RuntimeError(f"{tag}: {arrived} arrived, ledger {recorded}, not {rows} once each")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=150, help="messages per run (default 150)")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="one-way delay (default 10: a 20 ms RTT)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs of each client (median)")
    args = parser.parse_args()
    rows: int = args.rows
    print(f"latency: {rows} messages over STARTTLS + AUTH through a {2 * args.delay_ms:g} ms round trip "
          "(latency proxy on 127.0.0.1; servers and proxies in their own processes)")
    with tempfile.TemporaryDirectory(prefix="xoromail-latency-") as name:
        folder = Path(name)
        (folder / "pipelining").mkdir()
        (folder / "lockstep").mkdir()
        with sink(folder / "pipelining", pipelining=True) as server, sink(folder / "lockstep") as plain, \
                latency_proxy(server.port, args.delay_ms) as port, latency_proxy(plain.port, args.delay_ms) as slow:
            batch = write_csv(folder / "rows.csv", rows)
            warm = write_csv(folder / "warm.csv", 5, start=10**6)
            run_cli(folder, server, port, warm, 5, "warm", 1)
            times: dict[str, list[float]] = {"naive": [], "lockstep": [], "one": [], "three": []}
            for repeat in range(args.repeats):
                before = server.count()
                times["naive"].append(run_worker(folder, _Through(server, port), batch, None, False)[0])
                if server.count() - before != rows:
                    raise RuntimeError("the naive loop's messages did not all arrive")
                times["lockstep"].append(run_cli(folder, plain, slow, batch, rows, f"lockstep-{repeat}", 1))
                times["one"].append(run_cli(folder, server, port, batch, rows, f"one-{repeat}", 1))
                times["three"].append(run_cli(folder, server, port, batch, rows, f"three-{repeat}", 3))
    seconds = {key: median(values) for key, values in times.items()}
    labels = {"naive": "naive smtplib loop (one connection)",
              "lockstep": "xoromail, server without PIPELINING (lock-step)",
              "one": "xoromail, PIPELINING, 1 connection", "three": "xoromail, PIPELINING, --connections 3"}
    table = [["client", "msg/s", "seconds", "x naive"]]
    table += [[labels[key], f"{rows / value:.1f}", f"{value:.2f}", f"{seconds['naive'] / value:.2f}"]
              for key, value in seconds.items()]
    print_table(table)
    one, three = seconds["naive"] / seconds["one"], seconds["naive"] / seconds["three"]
    ok_one, ok_three = one >= 1.8, three >= 4.0
    print(f"\nratio 1 connection / naive = {one:.2f} (target >= 1.8): {verdict(ok_one)}")
    print(f"ratio --connections 3 / naive = {three:.2f} (target >= 4.0): {verdict(ok_three)}")
    print("duplicates: 0 (every run checked: rows arrived once, one `sent` ledger row per key)")
    return 0 if ok_one and ok_three else 1


class _Through:
    """The sink as seen through the proxy: the naive worker connects to the proxy's port."""

    def __init__(self, server: Sink, port: int) -> None:
        self._server, self.port, self.ca_file = server, port, server.ca_file

    def count(self) -> int:
        return self._server.count()


if __name__ == "__main__":
    sys.exit(main())
