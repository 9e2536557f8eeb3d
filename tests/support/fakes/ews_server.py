"""A local Exchange Web Services endpoint that answers like Exchange 2016/2019, for the real exchangelib.

It serves HTTPS (a trustme certificate) on 127.0.0.1, port 0, signs in with Basic or NTLM (pyspnego's NTLM
acceptor, reading the `NTLM_USER_FILE` credential file), answers GetFolder and CreateItem with the SOAP
responses Exchange sends (including its error codes and the ErrorServerBusy fault with BackOffMilliseconds),
and records what arrived: the operation, the explicit recipients and the decoded MimeContent.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import socket
import ssl
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EWS_PATH = "/EWS/Exchange.asmx"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
LOCKED_OUT = "The referenced account is currently locked out and may not be logged on to."
SIZE_EXCEEDED = ("ErrorMessageSizeExceeded", "The message exceeds the maximum supported size.")
_VERSION = (f'<h:ServerVersionInfo MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" '
            f'MinorBuildNumber="6" Version="V2017_07_11" xmlns:h="{T}" xmlns="{T}"/>')
_NOT_FOUND = ("<!DOCTYPE html><html><head><title>404 - File or directory not found.</title></head><body>"
              "<h2>404 - File or directory not found.</h2></body></html>")


@dataclass(kw_only=True)
class Received:
    """One SOAP request as the server understood it (never its Authorization header)."""

    operation: str
    user: str | None
    disposition: str | None = None
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    mime: bytes | None = None
    answer: str | None = None
    """The ResponseCode (or fault code) the server answered; None when it hung up instead."""

    @property
    def message(self) -> EmailMessage:
        assert self.mime is not None
        parsed = email.message_from_bytes(self.mime, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass(kw_only=True)
class Behaviour:
    """How the server misbehaves; tests set one field each."""

    auth: str = "basic"
    """"basic" or "ntlm": what the 401 challenge offers and what is accepted."""
    users: dict[str, str] = field(default_factory=dict)
    """Basic sign-in names (as sent) and passwords."""
    locked: bool = False
    create_error: tuple[str, str] | None = None
    """(ResponseCode, MessageText) for every CreateItem."""
    folder_error: tuple[str, str] | None = None
    busy_ms: int | None = None
    """Answer CreateItem with the ErrorServerBusy fault carrying this BackOffMilliseconds."""
    drop_create: bool = False
    """Read the whole CreateItem request, then close the connection without answering."""
    max_mime_bytes: int | None = None
    """The organisation's MaxSendSize: a larger MimeContent is answered with ErrorMessageSizeExceeded."""


def _envelope(body: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Header>{_VERSION}'
            f"</s:Header><s:Body>{body}</s:Body></s:Envelope>").encode()


def _message(operation: str, error: tuple[str, str] | None, success: str) -> bytes:
    name = f"{operation}ResponseMessage"
    if error is None:
        inner = f'<m:{name} ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>{success}</m:{name}>'
    else:
        code, text = error
        inner = (f'<m:{name} ResponseClass="Error"><m:MessageText>{text}</m:MessageText>'
                 f"<m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>"
                 f"</m:{name}>")
    return _envelope(f'<m:{operation}Response xmlns:m="{M}" xmlns:t="{T}"><m:ResponseMessages>{inner}'
                     f"</m:ResponseMessages></m:{operation}Response>")


def _busy_fault(milliseconds: int) -> bytes:
    text = "The server cannot service this request right now. Try again later."
    errors = "http://schemas.microsoft.com/exchange/services/2006/errors"
    return _envelope(
        f'<s:Fault><faultcode xmlns:a="{T}">a:ErrorServerBusy</faultcode><faultstring xml:lang="en-US">{text}'
        f'</faultstring><detail><e:ResponseCode xmlns:e="{errors}">ErrorServerBusy</e:ResponseCode>'
        f'<e:Message xmlns:e="{errors}">{text}</e:Message><t:MessageXml xmlns:t="{T}">'
        f'<t:Value Name="BackOffMilliseconds">{milliseconds}</t:Value></t:MessageXml></detail></s:Fault>')


_FOLDER = ('<m:Folders><t:Folder><t:FolderId Id="AAMkADk0Sent" ChangeKey="AQAAABYAAAA"/>'
           "<t:FolderClass>IPF.Note</t:FolderClass><t:DisplayName>Sent Items</t:DisplayName>"
           "<t:TotalCount>0</t:TotalCount><t:ChildFolderCount>0</t:ChildFolderCount>"
           "<t:UnreadCount>0</t:UnreadCount></t:Folder></m:Folders>")


def _addresses(item: ET.Element, tag: str) -> list[str]:
    return [node.text or "" for node in item.iterfind(f"t:{tag}/t:Mailbox/t:EmailAddress", {"t": T})]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EwsServer
    _ntlm: Any = None
    """The NTLM acceptor of this connection while a handshake is under way (NTLM is per connection)."""

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log.append(f"{self.command} {self.path} → {args[1] if len(args) > 1 else ''}")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?")[0].lower() != EWS_PATH.lower():
            self._reply(404, _NOT_FOUND.encode(), "text/html")
            return
        user = self._authenticate()
        if user is None:
            return
        self._answer(ET.fromstring(body), user)  # noqa: S314  # our own client's requests, on loopback

    def _authenticate(self) -> str | None:
        """The signed-in user, or None once a 401 (challenge or refusal) was sent."""
        behaviour = self.server.behaviour
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if behaviour.auth == "basic" and scheme.lower() == "basic":
            login, _, password = base64.b64decode(token).decode().partition(":")
            if behaviour.users.get(login) == password:
                return self._locked_or(login)
        elif behaviour.auth == "ntlm" and scheme.upper() == "NTLM":
            return self._ntlm_step(base64.b64decode(token))
        self._challenge()
        return None

    def _ntlm_step(self, token: bytes) -> str | None:
        import spnego

        context: Any = getattr(self, "_ntlm", None)
        if context is None:
            context = self._ntlm = spnego.server(protocol="ntlm")
        try:
            answer = context.step(token)
        except Exception:  # noqa: BLE001  # any refusal of the acceptor is a failed sign-in
            self._ntlm = None
            self._challenge()
            return None
        if not context.complete:
            self._reply(401, b"", "text/html", {"WWW-Authenticate": "NTLM " + base64.b64encode(answer or b"").decode()})
            return None
        self._ntlm = None
        return self._locked_or(str(context.client_principal))

    def _locked_or(self, user: str) -> str | None:
        if not self.server.behaviour.locked:
            return user
        self._reply(401, LOCKED_OUT.encode(), "text/html", {"WWW-Authenticate": self._offer()})
        return None

    def _offer(self) -> str:
        return "NTLM" if self.server.behaviour.auth == "ntlm" else 'Basic realm="mail.company.test"'

    def _challenge(self) -> None:
        self._reply(401, b"", "text/html", {"WWW-Authenticate": self._offer()})

    def _answer(self, soap: ET.Element, user: str) -> None:
        behaviour = self.server.behaviour
        request = soap.find(f"{{{SOAP}}}Body/*")
        operation = (request.tag.split("}")[1] if request is not None else "")
        received = Received(operation=operation, user=user)
        self.server.received.append(received)
        if operation == "GetFolder":
            self._reply(200, _message("GetFolder", behaviour.folder_error, _FOLDER))
        elif operation == "CreateItem" and request is not None:
            self._create_item(request, received)
        else:
            self._reply(500, _message(operation or "Unknown", ("ErrorInvalidRequest", "Not supported here"), ""))

    def _create_item(self, request: ET.Element, received: Received) -> None:
        behaviour = self.server.behaviour
        received.disposition = request.get("MessageDisposition")
        item = request.find("m:Items/t:Message", {"m": M, "t": T})
        if item is not None:
            mime = item.findtext("t:MimeContent", namespaces={"t": T})
            received.mime = base64.b64decode(mime) if mime else None
            received.to = _addresses(item, "ToRecipients")
            received.cc = _addresses(item, "CcRecipients")
            received.bcc = _addresses(item, "BccRecipients")
        if behaviour.drop_create:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if behaviour.busy_ms is not None:
            received.answer = "ErrorServerBusy"
            self._reply(500, _busy_fault(behaviour.busy_ms))
            return
        error = behaviour.create_error
        if behaviour.max_mime_bytes is not None and len(received.mime or b"") > behaviour.max_mime_bytes:
            error = SIZE_EXCEEDED
        received.answer = error[0] if error else "NoError"
        self._reply(200, _message("CreateItem", error, "<m:Items/>"))

    def _reply(self, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8",
               headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class EwsServer(ThreadingHTTPServer):
    """Start with `start()`, stop with `stop()`; `url` is the EWS endpoint to configure."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, behaviour: Behaviour | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        # The handshake runs in the handler's thread, so a client that never speaks TLS blocks no one else.
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.behaviour = behaviour or Behaviour()
        self.received: list[Received] = []
        self.log: list[str] = []
        self.connections: set[Any] = set()
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (refused certificates, dropped connections) are part of the tests."""

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{EWS_PATH}"

    def start(self) -> EwsServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and hang up on every open (keep-alive) connection, as a restarted server would."""
        self.shutdown()
        self.server_close()
        with self.lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
