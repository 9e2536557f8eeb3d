"""services/http.py: one trust policy, one failure classifier and one trace hook for every HTTPS service, tested
with the real requests stack against a local HTTPS server on 127.0.0.1 (trustme certificates)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from tests.support.common import TLSFiles
from tests.support.fakes.http_server import HangingUpServer
from xoromail_cli.errors import ExitCode, StageFailedError
from xoromail_cli.services import http

HINTS = http.Hints(where="check the address", tls="check the port", name="check the name")


class Handler(BaseHTTPRequestHandler):
    delay = 0.0
    seen: list[tuple[str, dict[str, str], bytes]] = []  # noqa: RUF012  # one list per server, reset by the fixture

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _answer(self, body: bytes) -> None:
        type(self).seen.append((self.path, dict(self.headers), body))
        time.sleep(type(self).delay)
        payload = json.dumps({"access_token": "ya29.SECRET-ACCESS"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "session=SECRET-COOKIE")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server(tls: TLSFiles) -> Iterator[str]:
    """A local HTTPS server with a certificate from the test CA; its base URL."""
    Handler.delay, Handler.seen = 0.0, []
    httpd = HangingUpServer(("127.0.0.1", 0), Handler)
    httpd.socket = tls.server_context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.hang_up()
    thread.join(5)


@pytest.fixture
def other_ca(tmp_path: Path) -> Path:
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def untrusted(call: Any, url: str) -> StageFailedError:
    with pytest.raises(requests.RequestException) as caught:
        call()
    return http.failure("send", caught.value, url, 5.0, HINTS)


# The trust policy --------------------------------------------------------------------------------------------

def test_the_profiles_ca_file_is_trusted_besides_the_system_store(server: str, tls: TLSFiles) -> None:
    assert http.session(str(tls.ca_file), timeout=5.0).get(server + "/ok").status_code == 200


def test_without_the_ca_file_the_test_ca_is_not_trusted_and_nothing_is_sent(server: str) -> None:
    failure = untrusted(lambda: http.session(None, timeout=5.0).post(server + "/token", data="secret"), server)
    assert failure.exit_code == ExitCode.PROTOCOL and "certificate of 127.0.0.1 not trusted" in failure.message
    assert Handler.seen == []


@pytest.mark.parametrize("variable", http.IGNORED_CA_VARIABLES)
def test_a_ca_bundle_in_the_environment_adds_no_trust(server: str, tls: TLSFiles, variable: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, str(tls.ca_file))
    failure = untrusted(lambda: http.session(None, timeout=5.0).get(server + "/ok"), server)
    assert failure.exit_code == ExitCode.PROTOCOL and Handler.seen == []


@pytest.mark.parametrize("variable", http.IGNORED_CA_VARIABLES)
def test_a_ca_bundle_in_the_environment_replaces_nothing(server: str, tls: TLSFiles, other_ca: Path, variable: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, str(other_ca))
    assert http.session(str(tls.ca_file), timeout=5.0).get(server + "/ok").status_code == 200


def test_a_caller_cannot_turn_verification_off_or_name_its_own_bundle(server: str, tls: TLSFiles) -> None:
    session = http.session(None, timeout=5.0)
    for verify in (False, str(tls.ca_file)):
        failure = untrusted(lambda verify=verify: session.get(server + "/ok", verify=verify), server)
        assert failure.exit_code == ExitCode.PROTOCOL
    assert Handler.seen == []


def test_a_library_that_builds_its_own_sessions_gets_the_registered_endpoint(server: str, tls: TLSFiles) -> None:
    """exchangelib's way: it instantiates `adapter_class()` itself; the endpoint is found by host and port."""
    own = requests.Session()
    own.mount("https://", http.adapter_class()())
    with pytest.raises(requests.exceptions.SSLError):
        own.get(server + "/before", timeout=5.0)  # nothing registered: the system store alone
    http.register(server + "/EWS/Exchange.asmx", http.endpoint(str(tls.ca_file)))
    try:
        assert own.get(server + "/registered", timeout=5.0).status_code == 200
    finally:
        http.unregister(server)
    assert http.registered(server) is None


def test_plain_http_is_refused_before_a_byte_is_sent(server: str) -> None:
    plain = server.replace("https://", "http://")
    with pytest.raises(requests.exceptions.InvalidSchema) as caught:
        http.session(None, timeout=5.0).post(plain + "/token", data="refresh_token=x")
    failure = http.failure("token", caught.value, plain, 5.0, HINTS)
    assert failure.exit_code == ExitCode.CONFIG and http.before_request(caught.value)


def test_the_endpoints_timeout_applies_whatever_the_library_asks(server: str, tls: TLSFiles) -> None:
    Handler.delay = 1.0
    with pytest.raises(requests.exceptions.ReadTimeout) as caught:
        http.session(str(tls.ca_file), timeout=0.2).get(server + "/slow", timeout=120)  # google-auth asks 120 s
    failure = http.failure("send", caught.value, server, 0.2, HINTS)
    assert (failure.exit_code, failure.message) == (ExitCode.TEMPFAIL, "127.0.0.1 did not reply within 0.2 s")
    assert not http.before_request(caught.value)  # the request went out: a message would be in doubt


# The failure classifier --------------------------------------------------------------------------------------

def test_a_refused_connection_is_unavailable_and_certainly_not_sent(tls: TLSFiles) -> None:
    with socket.socket() as idle:
        idle.bind(("127.0.0.1", 0))  # bound, never listening
        url = f"https://127.0.0.1:{idle.getsockname()[1]}"
        with pytest.raises(requests.RequestException) as caught:
            http.session(str(tls.ca_file), timeout=5.0).get(url)
    failure = http.failure("sign-in", caught.value, url, 5.0, HINTS)
    assert failure.exit_code == ExitCode.UNAVAILABLE and failure.message.endswith("refused the connection")
    assert failure.hint == "check the address" and http.before_request(caught.value)


def test_a_name_that_does_not_resolve_is_unavailable_with_the_name_hint(tls: TLSFiles) -> None:
    url = "https://login.nowhere.invalid/token"
    with pytest.raises(requests.RequestException) as caught:
        http.session(str(tls.ca_file), timeout=5.0).get(url)
    failure = http.failure("token", caught.value, url, 5.0, HINTS)
    assert failure.exit_code == ExitCode.UNAVAILABLE and "cannot resolve 'login.nowhere.invalid'" in failure.message
    assert failure.hint == "check the name" and http.before_request(caught.value)


def test_the_classifier_finds_the_socket_error_under_requests_and_urllib3(server: str) -> None:
    with pytest.raises(requests.RequestException) as caught:
        http.session(None, timeout=5.0).get(server)
    assert isinstance(http.root_cause(caught.value), ssl.SSLCertVerificationError)
    assert http.root_cause(ValueError("not a network error")) is None


# The trace hook ----------------------------------------------------------------------------------------------

def test_the_trace_shows_each_round_trip_but_no_credential_cookie_or_oauth_body(server: str, tls: TLSFiles) -> None:
    lines: list[str] = []
    session = http.session(str(tls.ca_file), timeout=5.0, trace=lambda way, text: lines.append(f"{way} {text}"))
    form = "refresh_token=SECRET-REFRESH&client_secret=SECRET-CS"
    session.post(server + "/token?code=SECRET-CODE", data=form, headers={"Authorization": "Bearer SECRET-BEARER"})
    shown = "\n".join(lines)
    assert lines[0].startswith(f"→ POST {server}/token\n") and lines[1].startswith("← 200 OK\n")
    assert "Authorization: Bearer <redacted>" in shown and "Set-Cookie: <redacted>" in shown
    assert f"(body of {len(form)} characters not shown)" in shown and "(body of 38 bytes not shown)" in shown
    assert "SECRET" not in shown


def test_bodies_are_shown_only_where_the_endpoint_allows_and_cut_short(server: str, tls: TLSFiles) -> None:
    lines: list[str] = []
    where = http.Endpoint(http.endpoint(str(tls.ca_file)).context, 5.0, lambda way, text: lines.append(text), True)
    session = http.mount(requests.Session(), where)
    session.post(server + "/EWS/Exchange.asmx", data="<m:CreateItem/>" + "x" * 5000)
    assert "<m:CreateItem/>" in lines[0] and "… (5015 characters)" in lines[0]
    assert '{"access_token"' in lines[1]
