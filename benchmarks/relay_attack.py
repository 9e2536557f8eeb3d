"""The relay under attack, on loopback: a real `xoromail relay` process, the attacker on 127.0.0.2.

Prints (no targets; figures for docs/relay.md and the issue's closing note):
- password guesses per second, one connection, then reconnecting, with what the relay answered;
- the longest wait of a NOOP probe (127.0.0.1) while another client sends a message whose To header is
  folded over many lines (the event-loop stall);
- the relay's peak RSS (VmHWM) after the largest message.

    .venv/bin/python benchmarks/relay_attack.py [--seconds 5] [--folded-mb 7]
"""

from __future__ import annotations

import argparse
import base64
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SENDER, XOROMAIL, environment, sink, write_config  # after the path

RELAY_PASSWORD = "bench-relay-password-0123456789"  # noqa: S105  # a throwaway login on loopback


def start_relay(folder: Path, config: Path, extra: list[str]) -> tuple[subprocess.Popen[str], int]:
    env = environment(folder, config)
    env["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"
    process = subprocess.Popen([XOROMAIL, "relay", "--listen", "127.0.0.1:0", "--user", "erp", "--password-stdin",
                                *extra], stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdin is not None and process.stderr is not None
    process.stdin.write(RELAY_PASSWORD + "\n")
    process.stdin.close()
    for line in process.stderr:
        if line.startswith("listening "):
            port = int(line.split("address=", 1)[1].split()[0].rsplit(":", 1)[1])
            threading.Thread(target=lambda: [None for _ in process.stderr or ()], daemon=True).start()
            return process, port
    raise RuntimeError("the relay did not start")


def reply(stream: socket.socket, buffer: bytearray) -> bytes:
    """One (last line of a) reply."""
    while True:
        end = buffer.find(b"\r\n")
        while end >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            if line[3:4] != b"-":
                return line
            end = buffer.find(b"\r\n")
        chunk = stream.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk


def guesses(port: int, seconds: float) -> dict[str, int]:
    """Wrong AUTH PLAIN as fast as the relay answers, from 127.0.0.2, reconnecting when closed."""
    counts: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    wrong = base64.b64encode(b"\0erp\0wrong-guess").decode()
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0)) as sock:
                buffer = bytearray()
                reply(sock, buffer)
                sock.sendall(b"EHLO attacker\r\n")
                reply(sock, buffer)
                while time.monotonic() < deadline:
                    sock.sendall(f"AUTH PLAIN {wrong}\r\n".encode())
                    code = reply(sock, buffer)[:3].decode()
                    counts[code] = counts.get(code, 0) + 1
                    counts["guesses"] = counts.get("guesses", 0) + 1
        except (ConnectionError, TimeoutError, OSError):
            counts["connections closed"] = counts.get("connections closed", 0) + 1
    return counts


def folded_message(megabytes: float) -> bytes:
    lines = [f" user{n}@client.test,".encode() for n in range(int(megabytes * 1_000_000 / 22))]
    head = b"From: " + SENDER.encode() + b"\r\nTo: first@client.test,\r\n" + b"\r\n".join(lines)
    return head + b"\r\n last@client.test\r\nSubject: folded\r\n\r\nbody\r\n"


def big_message(megabytes: float, number: int) -> bytes:
    """A message of about `megabytes` MB: an attachment in base64 lines, as an ERP sends a large PDF."""
    line = base64.b64encode(bytes(range(57))) + b"\r\n"
    body = line * int(megabytes * 1_000_000 / len(line))
    return (f"From: {SENDER}\r\nTo: first@client.test\r\nSubject: big {number}\r\n"
            f"Message-ID: <big.{number}.{time.monotonic_ns()}@company.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode() + body


def stall(port: int, messages: list[bytes]) -> tuple[float, list[str]]:
    """The longest RSET round trip on 127.0.0.1 while 127.0.0.3 submits `messages`, each on its own connection
    (the probe's connection is renewed before the relay's per-message limit of 100 RSETs ends it)."""
    outcome: list[str] = []

    def submit(data: bytes) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=600, source_address=("127.0.0.3", 0)) as client:
                client.login("erp", RELAY_PASSWORD)
                client.sendmail(SENDER, ["first@client.test"], data)
                outcome.append("250")
        except smtplib.SMTPException as exc:
            outcome.append(str(exc)[:120])

    longest = 0.0
    threads = [threading.Thread(target=submit, args=(data,)) for data in messages]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        # a new probe connection every 90 round trips: the relay allows 100 RSETs per message and connection
        with smtplib.SMTP("127.0.0.1", port, timeout=600) as probe:
            probe.login("erp", RELAY_PASSWORD)
            for _ in range(90):
                if not any(thread.is_alive() for thread in threads):
                    break
                began = time.monotonic()
                probe.rset()
                longest = max(longest, time.monotonic() - began)
                time.sleep(0.05)
    return longest, outcome


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--folded-mb", type=float, default=7.0)
    parser.add_argument("--big-mb", type=float, default=30.0)
    parser.add_argument("--big-count", type=int, default=6)
    parser.add_argument("relay_args", nargs="*")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        with sink(folder) as server:
            config = write_config(folder / "config.toml", server.port, server.ca_file)
            process, port = start_relay(folder, config, args.relay_args)
            try:
                began = time.monotonic()
                counts = guesses(port, args.seconds)
                took = time.monotonic() - began
                print(f"guessing for {took:.1f} s from 127.0.0.2: {counts.get('guesses', 0) / took:,.1f} guesses/s; "
                      f"passwords checked (535) {counts.get('535', 0) / took:,.1f}/s; answers {counts}")
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as erp:
                    erp.login("erp", RELAY_PASSWORD)
                print("the ERP on 127.0.0.1 still logs in: yes")
                longest, answers = stall(port, [folded_message(args.folded_mb)])
                print(f"folded To of {args.folded_mb} MB from 127.0.0.3: answered {answers}; longest NOOP wait on "
                      f"127.0.0.1 {longest:.3f} s; relay peak RSS {peak_rss_kib(process.pid) / 1024:.1f} MiB")
                longest, answers = stall(port, [big_message(args.big_mb, 0)])
                print(f"one {args.big_mb} MB message: answered {answers}; longest NOOP wait {longest:.3f} s; "
                      f"relay peak RSS {peak_rss_kib(process.pid) / 1024:.1f} MiB")
                longest, answers = stall(port, [big_message(args.big_mb, n) for n in range(1, args.big_count + 1)])
                print(f"{args.big_count} x {args.big_mb} MB at once: answered {answers}; longest NOOP wait "
                      f"{longest:.3f} s; relay peak RSS {peak_rss_kib(process.pid) / 1024:.1f} MiB")
            finally:
                process.terminate()
                code = process.wait(60)
                print(f"SIGTERM exit code: {code}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
