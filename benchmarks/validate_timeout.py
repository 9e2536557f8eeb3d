"""`xoromail validate --timeout 5` against a port that never answers must give up within 6 seconds.

The black hole: a socket on 127.0.0.1 that listens with a backlog of 0 and never accepts; a few
non-blocking connects fill its accept queue, after which the kernel drops every new SYN, so a new
connect hangs exactly like one to a firewalled server. The script checks that it really hangs first.

Target: exit within 6.0 s (timeout 5 s + 1 s), with a non-zero exit code naming the connect stage.
An extra check does the same against a server that accepts the connection but never sends its greeting.
Run: .venv/bin/python benchmarks/validate_timeout.py
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _common import XOROMAIL, environment, verdict, write_config

TIMEOUT = 5.0
LIMIT = 6.0


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A loopback port whose accept queue is full: new connections get no answer at all."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        for _ in range(4):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.2)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def hangs(port: int, seconds: float = 0.5) -> bool:
    """True if a fresh connect to `port` gets no answer within `seconds`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=seconds):
            return False
    except TimeoutError:
        return True
    except OSError:
        return False


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A loopback port that completes the TCP handshake but never sends the SMTP greeting."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


def run_validate(folder: Path, port: int) -> tuple[float, int, str]:
    """(seconds, exit code, failed stage and error) of `xoromail validate --timeout 5` against `port`."""
    env = environment(folder, write_config(folder / "config.toml", port, None))
    started = time.perf_counter()
    try:
        done = subprocess.run([XOROMAIL, "validate", "--timeout", f"{TIMEOUT:g}", "--json"], env=env,
                              capture_output=True, text=True, timeout=LIMIT * 5, check=False)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - started, -1, f"still running after {LIMIT * 5:.0f} s (killed)"
    elapsed = time.perf_counter() - started
    try:
        report = json.loads(done.stdout)
        detail = f"failed stage: {report.get('stage')}; {report.get('error')}"
    except json.JSONDecodeError:
        detail = done.stdout.strip() or done.stderr.strip()
    return elapsed, done.returncode, detail


def main() -> int:
    print(f"validate_timeout: xoromail validate --timeout {TIMEOUT:g} must return within {LIMIT:.1f} s")
    results: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="xoromail-bench-") as name:
        folder = Path(name)
        with silent_server() as port:  # a closed port: connect is refused at once
            pass
        run_validate(folder, port)  # fills the bytecode cache
        elapsed, code, _ = run_validate(folder, port)
        print(f"  baseline: a refused connection takes {elapsed:.2f} s (exit {code}): start-up and reporting")
        with black_hole() as port:
            if not hangs(port):
                print(f"  could not make a black hole on 127.0.0.1:{port}; nothing measured")
                return 1
            elapsed, code, detail = run_validate(folder, port)
        ok = elapsed <= LIMIT and code > 0
        results.append(ok)
        print(f"{verdict(ok)}  black-holed port (connect gets no answer): {elapsed:.2f} s, exit {code}; {detail}")
        with silent_server() as port:
            elapsed, code, detail = run_validate(folder, port)
        ok = elapsed <= LIMIT and code > 0
        results.append(ok)
        print(f"{verdict(ok)}  silent server (connects, never greets; extra check): {elapsed:.2f} s, exit {code}; "
              f"{detail}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
