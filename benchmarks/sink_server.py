"""A STARTTLS + AUTH capture server in its own process, for the benchmarks.

Run by the benchmarks (never by hand): `python sink_server.py FOLDER [--pipelining]`. It writes a throwaway CA into
FOLDER, listens on a free port of 127.0.0.1, and prints one line `PORT CA_FILE`. Then it reads commands
from stdin: `count` prints how many messages were accepted so far, `cpu` the server's CPU seconds so
far; end of input stops the server.
Messages are counted, not kept, so the server's own cost stays small and the same for every client.
With `--pipelining` it announces PIPELINING (RFC 2920) in its EHLO reply, as Postfix and the big providers do;
aiosmtpd already reads pipelined commands in order, it only does not say so.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xoromail_cli.local.sink import CaptureHandler, SinkServer, password_authenticator, throwaway_tls

USER = "billing@company.test"
PASSWORD = "bench-password"  # noqa: S105  # a throwaway login for a server that lives for one benchmark


@dataclass
class CountingHandler(CaptureHandler):
    accepted: int = 0
    pipelining: bool = False

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.accepted += 1
        return f"250 2.0.0 OK: queued as XM{self.accepted:06d}"


def main(folder: Path, pipelining: bool = False) -> int:
    tls = throwaway_tls(folder)
    handler = CountingHandler(pipelining=pipelining)
    server = SinkServer(handler=handler, security="starttls", tls_context=tls.server_context,
                        authenticator=password_authenticator({USER: PASSWORD}), auth_required=True)
    with server:
        print(server.port, tls.ca_file, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "count":
                print(handler.accepted, flush=True)
            elif command == "cpu":
                print(f"{time.process_time():.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), "--pipelining" in sys.argv[2:]))
