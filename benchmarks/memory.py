"""Peak memory of `xoromail send --dry-run --batch` for 2,000, 20,000 and 100,000 rows.

Batches are streamed (checked in one pass, then read again to render), so memory must not grow with
the file. Peak RSS is the child's own ru_maxrss (os.wait4), stdout goes to /dev/null.

Targets: peak < 40 MiB at every size; growth 2k → 20k < 10 %; 20k → 100k < 5 % (flat).
Run: .venv/bin/python benchmarks/memory.py  [--sizes 2000 20000 100000]
Exits non-zero if a target is missed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import XOROMAIL, environment, print_table, verdict, write_config, write_csv

PEAK_TARGET_MIB = 40.0
GROWTH_TARGET = 0.10  # 2k → 20k
FLAT_TARGET = 0.05  # 20k → 100k


def peak_rss(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(peak RSS in MiB, wall seconds, exit code) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.stderr is not None:
        process.stderr.close()
    return usage.ru_maxrss / 1024, seconds, process.returncode  # ru_maxrss is in KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 100000], help="batch sizes (rows)")
    args = parser.parse_args()
    sizes: list[int] = sorted(args.sizes)
    peaks: dict[int, float] = {}
    table = [["command", "rows", "peak RSS MiB", "seconds", "rows/s"]]
    with tempfile.TemporaryDirectory(prefix="xoromail-bench-") as name:
        folder = Path(name)
        env = environment(folder, write_config(folder / "config.toml", 587, None))
        warm = write_csv(folder / "warm.csv", 10, start=10**6)  # fills the bytecode cache first
        peak_rss([XOROMAIL, "send", "--dry-run", "--event", "overdue-invoice", "--batch", str(warm)], env)
        peak_rss([XOROMAIL, "--help"], env)
        baseline, seconds, _ = peak_rss([XOROMAIL, "--help"], env)
        table.append(["xoromail --help (baseline)", "-", f"{baseline:.1f}", f"{seconds:.2f}", "-"])
        for size in sizes:
            batch = write_csv(folder / f"rows-{size}.csv", size)
            peak, seconds, code = peak_rss([XOROMAIL, "send", "--dry-run", "--event", "overdue-invoice",
                                            "--batch", str(batch)], env)
            if code != 0:
                print(f"xoromail send --dry-run failed on {size} rows (exit {code})")
                return 1
            peaks[size] = peak
            table.append(["send --dry-run --batch", f"{size:,}", f"{peak:.1f}", f"{seconds:.2f}",
                          f"{size / seconds:,.0f}"])
            batch.unlink()
    print("memory: peak RSS of the xoromail process (stdout to /dev/null)")
    print_table(table)

    results: list[tuple[str, bool]] = []
    highest = max(peaks.values())
    results.append((f"peak < {PEAK_TARGET_MIB:.0f} MiB at every size (highest {highest:.1f} MiB)",
                    highest < PEAK_TARGET_MIB))
    for small, large in itertools.pairwise(sizes):
        growth = peaks[large] / peaks[small] - 1
        limit = GROWTH_TARGET if small < 20000 else FLAT_TARGET
        results.append((f"growth {small:,} → {large:,} rows {growth:+.1%} (target < {limit:.0%})", growth < limit))
    print()
    for label, ok in results:
        print(f"{verdict(ok)}  {label}")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
