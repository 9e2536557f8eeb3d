"""A TCP proxy on 127.0.0.1 that delays each direction by a fixed time, keeping byte order (no netem here).

Run by the benchmarks: `python latency_proxy.py TARGET_PORT ONE_WAY_MS`. It prints its own port, forwards
every connection to 127.0.0.1:TARGET_PORT, and stops at the end of its stdin. Each direction has a reader that
stamps every chunk with `now + delay` and a writer that sends the chunks in order once their time has come, so
a round trip costs twice the delay however the bytes are split, and nothing is reordered. TLS passes through
untouched (the server's certificate is for 127.0.0.1, where the client connects).
"""

from __future__ import annotations

import queue
import socket
import sys
import threading
import time


def pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
    """Copy `source` to `sink`, each chunk `delay` seconds late, in order; pass the end of stream on too."""
    chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

    def write() -> None:
        while True:
            due, chunk = chunks.get()
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            try:
                if not chunk:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(chunk)
            except OSError:
                return

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    while True:
        try:
            chunk = source.recv(65536)
        except OSError:
            chunk = b""
        chunks.put((time.monotonic() + delay, chunk))
        if not chunk:
            break
    writer.join()


def serve(listener: socket.socket, target_port: int, delay: float) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        upstream = socket.create_connection(("127.0.0.1", target_port))
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def relay(a: socket.socket = client, b: socket.socket = upstream) -> None:
            there = threading.Thread(target=pump, args=(a, b, delay), daemon=True)
            there.start()
            pump(b, a, delay)
            there.join()
            a.close()
            b.close()

        threading.Thread(target=relay, daemon=True).start()


def main(target_port: int, one_way_ms: float) -> int:
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=serve, args=(listener, target_port, one_way_ms / 1000.0), daemon=True).start()
    print(listener.getsockname()[1], flush=True)
    sys.stdin.read()
    listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), float(sys.argv[2])))
