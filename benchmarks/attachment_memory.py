"""Peak memory of `xoromail send --outbox` with one large attachment (default 100 MiB).

A message must hold its attachment once, base64-encoded (4/3 of the file): the issue saw a 100 MB
attachment peak at 640 MB, the file copied five times (read, encoded, line ends replaced, two joins).
Peak RSS is the child's own ru_maxrss (os.wait4), as in memory.py.

Target: peak RSS - `--help` baseline < 1.75 x the attachment's size (the encoded copy is 1.35 x).
Run: .venv/bin/python benchmarks/attachment_memory.py  [--mib 100]
Exits non-zero if the target is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from _common import XOROMAIL, environment, print_table, verdict, write_config
from memory import peak_rss

TARGET_RATIO = 1.75


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=100, help="attachment size in MiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xoromail-bench-") as name:
        folder = Path(name)
        env = environment(folder, write_config(folder / "config.toml", 587, None))
        attachment = folder / "archive.bin"
        with attachment.open("wb") as handle:
            for _ in range(args.mib):
                handle.write(os.urandom(1024 * 1024))
        command = [XOROMAIL, "send", "--outbox", str(folder / "outbox"), "--event", "overdue-invoice",
                   "--to", "customer@example.com", "--var", "customer_name=C", "--var", "invoice_number=INV-1",
                   "--var", "amount_due=10", "--var", "due_date=2026-10-31", "--attach", str(attachment)]
        peak_rss([XOROMAIL, "--help"], env)
        baseline, _, _ = peak_rss([XOROMAIL, "--help"], env)
        peak, seconds, code = peak_rss(command, env)
        if code != 0:
            print(f"xoromail send --outbox failed (exit {code})")
            return 1
        written = sum(path.stat().st_size for path in (folder / "outbox").iterdir())
    ratio = (peak - baseline) / args.mib
    print("memory: peak RSS of `send --outbox` with one attachment")
    print_table([["attachment MiB", ".eml MiB", "baseline MiB", "peak RSS MiB", "(peak - baseline) / size", "s"],
                 [str(args.mib), f"{written / 2**20:.1f}", f"{baseline:.1f}", f"{peak:.1f}", f"{ratio:.2f}",
                  f"{seconds:.2f}"]])
    ok = ratio < TARGET_RATIO
    print(f"\n{verdict(ok)}  (peak - baseline) / attachment size {ratio:.2f} (target < {TARGET_RATIO})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
