"""What the relay's long-line mending costs for a 30 MiB message: time, the longest pause of another thread
(the event loop's stand-in: a worker thread holds the interpreter's lock through each C call), and the
growth of peak RSS as a multiple of the message, per kind of long line.

Each kind is written to a file and taken in and kept (`RelayHandler._keep`, as the relay's worker thread calls
it: read, mended, written to a spool file, fsynced) by a fresh process that reads only that file, so the peak
before is the message itself (the spool file is read back for the line check after the peak is taken): 200 KiB
lines of base64, of quoted-printable without soft line breaks, of 7bit HTML; and short base64 lines (passed
byte for byte) as the floor. Target: peak RSS growth at most 2.5x the message, every delivered line 998 octets at most.
Run: .venv/bin/python benchmarks/relay_long_lines.py   (~10 s). Exits non-zero if a target is missed.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SIZE = 30 * 1024 * 1024
LINE = 200 * 1024
GROWTH_TARGET = 2.5
"""The message's mended parts and their join: one copy each at most (the email package took about 8)."""
KINDS = ("base64", "quoted-printable", "7bit", "short")
HEAD = (b"From: billing@company.test\r\nTo: customer@client.test\r\nSubject: x\r\nMessage-ID: <m@company.test>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        b"Content-Type: text/plain\r\n\r\nhi\r\n--B\r\n")


def message(kind: str) -> bytearray:
    if kind in ("base64", "short"):
        blob = base64.b64encode(os.urandom(SIZE * 3 // 4))
        width = LINE if kind == "base64" else 76
        body = b"\r\n".join(blob[at:at + width] for at in range(0, len(blob), width))
        part = b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body
    else:
        words = b"Rechnung f=C3=BCr Ihr Projekt. " if kind == "quoted-printable" else b"Rechnung fuer Ihr Projekt. "
        text = (words * (LINE // len(words) + 1))[:LINE].rstrip(b"=C3B")
        part = (f"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: {kind}\r\n\r\n".encode()
                + b"\r\n".join([text] * (SIZE // LINE)))
    return bytearray(HEAD + part + b"\r\n--B--\r\n")


def high_water_kib() -> int:
    """This process's peak RSS (VmHWM: ru_maxrss would carry the parent's peak over the exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def one(kind: str, path: str) -> None:
    from xoromail_cli.relay.handler import RelayHandler, Route
    from xoromail_cli.relay.message import SenderPolicy
    from xoromail_cli.relay.spool import Spool

    data = bytearray(os.path.getsize(path))
    with open(path, "rb") as source:
        source.readinto(data)
    base = high_water_kib()
    pauses: list[float] = []
    done = threading.Event()

    def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            pauses.append(now - last)
            last = now

    ticker = threading.Thread(target=tick)
    ticker.start()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        spool = Spool(Path(folder))
        kept = RelayHandler._keep(Route(SenderPolicy(mailbox="billing@company.test"), spool, lambda: None), data,
                                  "billing@company.test", ("customer@client.test",), "bench", 512 * 1024)
        took = time.perf_counter() - start
        peak = high_water_kib()
        written = spool.load(kept[-1]).envelope.data
    done.set()
    ticker.join()
    longest = max(len(line) for line in written.split(b"\r\n"))
    print(f"{kind:17} {len(data) / 2**20:6.1f} MiB  {took:5.2f} s  longest pause {max(pauses) * 1000:4.0f} ms  "
          f"peak RSS growth {(peak - base) * 1024 / len(data):4.1f}x  longest line {longest}")
    sys.exit(0 if longest <= 998 and (peak - base) * 1024 <= GROWTH_TARGET * len(data) else 1)


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        one(sys.argv[2], sys.argv[3])
    failed = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in KINDS:
            path = os.path.join(folder, kind)
            with open(path, "wb") as target:
                target.write(message(kind))
            if subprocess.run([sys.executable, __file__, "--one", kind, path], check=False).returncode:
                failed.append(kind)
            os.unlink(path)
    print("OK" if not failed else f"target missed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
