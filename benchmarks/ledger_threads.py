"""The ledger under --connections: one SQLite connection per worker thread (WAL, one writer at a time).

Each worker does what the Sender does per message (last_sent, begin, finish: one SELECT and two commits) on
its own connection to the same file, as sending_parallel does. Measured side by side: 1, 3 and 5 threads,
total messages per second and any write that failed because the file was locked (the busy timeout should
make writers queue instead). Run: .venv/bin/python benchmarks/ledger_threads.py [--messages 3000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import print_table

from xoromail_cli.errors import XoromailError
from xoromail_cli.ledger.sqlite import Ledger


def run(path: Path, threads: int, messages: int) -> tuple[float, int]:
    """Seconds for `messages` messages spread over `threads` workers, and how many writes failed."""
    failures = [0]
    lock = threading.Lock()
    each = messages // threads

    def worker(index: int) -> None:
        with Ledger(path) as ledger:
            for number in range(each):
                key = f"bench:{threads}:{index}:{number}"
                try:
                    ledger.last_sent("default", key)
                    entry = ledger.begin("default", "overdue-invoice", key, ("a@example.com",), f"<{key}>", number)
                    ledger.finish(entry, "sent", "250 2.0.0 OK")
                except XoromailError:
                    with lock:
                        failures[0] += 1

    workers = [threading.Thread(target=worker, args=(index,)) for index in range(threads)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return time.perf_counter() - started, failures[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    table = [["threads", "messages", "msg/s", "ms/msg", "failed writes"]]
    with tempfile.TemporaryDirectory(prefix="xoromail-ledger-") as name:
        path = Path(name) / "ledger.sqlite3"
        Ledger(path).close()
        for threads in (1, 3, 5):
            seconds, failed = run(path, threads, args.messages)
            done = args.messages // threads * threads
            table.append([str(threads), str(done), f"{done / seconds:,.0f}", f"{seconds / done * 1000:.3f}",
                          str(failed)])
    print("ledger: last_sent + begin + finish per message, synchronous=NORMAL, one connection per thread")
    print_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
