"""The real msal against a local Microsoft identity platform: sign-in flows, the token cache, AADSTS hints."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.support.common import TLSFiles
from tests.support.fakes.microsoft_server import (
    ADMIN,
    CLIENT_ID,
    CLIENT_SECRET,
    TENANT,
    TENANT_ID,
    USER,
    MicrosoftServer,
)
from tests.support.keyring_store import KeyringStore
from tests.support.m365_helpers import approving, browsing, settings_for
from xoromail_cli.credentials import KEYRING_SERVICE
from xoromail_cli.errors import AuthError, ConfigError, ExitCode, StageFailedError, XoromailError
from xoromail_cli.services.microsoft365.auth import CLIENT_SECRET as SECRET_KIND
from xoromail_cli.services.microsoft365.auth import TOKEN_CACHE, TokenSource, certificate_warning
from xoromail_cli.services.microsoft365.settings import Microsoft365Settings


@pytest.fixture
def server(tls: TLSFiles) -> Iterator[MicrosoftServer]:
    with MicrosoftServer(tls.server_context) as fake:
        yield fake


def signed_in_source(server: MicrosoftServer, tls: TLSFiles, store: KeyringStore | None = None,
                     user: str | None = None, **settings: object) -> TokenSource:
    source = TokenSource(settings_for(server, **settings), store or KeyringStore("m365"), mailbox=USER,
                         ca_file=str(tls.ca_file), timeout=10)
    source.sign_in(approving(server, user))
    return source


def test_device_code_sign_in_shows_the_code_at_once_and_keeps_the_cache_in_the_keyring(
        server: MicrosoftServer, tls: TLSFiles) -> None:
    import keyring

    store, seen = KeyringStore("m365"), list[str]()
    source = TokenSource(settings_for(server), store, mailbox=USER, ca_file=str(tls.ca_file), timeout=10)
    who = source.sign_in(approving(server, seen=seen))
    assert who.account == USER and not who.other_account
    assert "https://microsoft.com/devicelogin" in seen[0]
    assert "xoromail waits 20 seconds for it" in seen[0]  # the test settings' sign_in_timeout; the code lasts 15 min
    assert server.token_requests.count("urn:ietf:params:oauth:grant-type:device_code") >= 1
    cache = json.loads(store.get(TOKEN_CACHE) or "{}")
    assert cache["RefreshToken"] and cache["AccessToken"]
    head = keyring.get_password(KEYRING_SERVICE, "m365:token_cache") or ""
    assert head.startswith("xoromail-chunks:")  # a token cache is larger than one keyring entry holds


def test_a_valid_access_token_is_reused_without_any_network_call(server: MicrosoftServer, tls: TLSFiles) -> None:
    store = KeyringStore("m365")
    first = signed_in_source(server, tls, store)
    token = first.token()
    seen_before, writes_before = list(server.requests_seen), list(store.writes)
    later = TokenSource(settings_for(server), store, mailbox=USER, ca_file=str(tls.ca_file), timeout=10)
    assert later.token() == token
    assert server.requests_seen == seen_before
    assert store.writes == writes_before  # nothing changed, nothing written back


def test_an_expiring_token_is_refreshed_silently_and_the_cache_written_back(tls: TLSFiles) -> None:
    with MicrosoftServer(tls.server_context, token_lifetime=120) as server:  # < msal's 5-minute margin
        store = KeyringStore("m365")
        first = signed_in_source(server, tls, store)
        old = first.token()
        writes = len(store.writes)
        later = TokenSource(settings_for(server), store, mailbox=USER, ca_file=str(tls.ca_file), timeout=10)
        new = later.token()
        assert new != old
        assert server.token_requests[-1] == "refresh_token"
        assert len(store.writes) == writes + 1
        assert later.last_refreshed() is not None
        assert abs(later.last_refreshed().timestamp() - time.time()) < 60  # type: ignore[union-attr]  # checked above


def test_browser_sign_in_prints_the_address_and_completes_on_the_loopback_port(
        server: MicrosoftServer, tls: TLSFiles) -> None:
    seen: list[str] = []
    source = TokenSource(settings_for(server, sign_in="browser"), KeyringStore("m365"), mailbox=USER,
                         ca_file=str(tls.ca_file), timeout=10)
    who = source.sign_in(browsing(str(tls.ca_file), seen), open_browser=False)
    assert who.account == USER
    assert "ssh -L" in seen[0] and "/oauth2/v2.0/authorize?" in seen[0]
    assert "authorization_code" in server.token_requests


def test_an_admin_signing_in_instead_of_the_mailbox_is_named(server: MicrosoftServer, tls: TLSFiles) -> None:
    source = TokenSource(settings_for(server), KeyringStore("m365"), mailbox=USER, ca_file=str(tls.ca_file), timeout=10)
    who = source.sign_in(approving(server, ADMIN))
    assert who.other_account
    warning = who.warning() or ""
    assert ADMIN in warning and USER in warning
    assert source.signed_in().account == ADMIN  # also known later, from the cache


def test_app_only_with_the_client_secret_value_gets_a_token(server: MicrosoftServer, tls: TLSFiles) -> None:
    store = KeyringStore("m365")
    store.set(SECRET_KIND, CLIENT_SECRET)
    source = TokenSource(settings_for(server, mode="app"), store, mailbox=USER, ca_file=str(tls.ca_file),
                         timeout=10)
    assert source.sign_in(print).account is None
    assert server.token_requests == ["client_credentials"]
    assert source.token()  # cached now: no second request
    assert server.token_requests == ["client_credentials"]


def test_app_only_with_a_certificate_signs_an_assertion_the_server_verifies(tls: TLSFiles, tmp_path: Path) -> None:
    leaf = trustme.CA().issue_cert("xoromail-app", key_type=trustme.KeyType.RSA)  # app credentials are RSA
    pem = tmp_path / "app.pem"
    pem.write_bytes(leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes())
    pem.chmod(0o644)
    assert "chmod 600" in (certificate_warning(str(pem)) or "")
    pem.chmod(0o600)
    assert certificate_warning(str(pem)) is None
    with MicrosoftServer(tls.server_context, certificate_pem=leaf.cert_chain_pems[0].bytes()) as server:
        source = TokenSource(settings_for(server, mode="app", certificate=str(pem)), KeyringStore("m365"), mailbox=USER,
                             ca_file=str(tls.ca_file), timeout=10)
        assert source.token()
        other = trustme.CA().issue_cert("someone-else", key_type=trustme.KeyType.RSA)
        with MicrosoftServer(tls.server_context, certificate_pem=other.cert_chain_pems[0].bytes()) as stranger:
            refused = TokenSource(settings_for(stranger, mode="app", certificate=str(pem)), KeyringStore("other"),
                                  mailbox=USER, ca_file=str(tls.ca_file), timeout=10)
            with pytest.raises(AuthError):
                refused.token()


@pytest.mark.parametrize(("secret", "expired", "code", "says"), [
    ("the-secret-id-not-the-value", False, "AADSTS7000215", "Value"),
    (CLIENT_SECRET, True, "AADSTS7000222", "expired"),
])
def test_app_only_secret_problems_say_what_to_do(server: MicrosoftServer, tls: TLSFiles, secret: str,
                                                 expired: bool, code: str, says: str) -> None:
    server.secret_expired = expired
    store = KeyringStore("m365")
    store.set(SECRET_KIND, secret)
    source = TokenSource(settings_for(server, mode="app"), store, mailbox=USER, ca_file=str(tls.ca_file),
                         timeout=10)
    with pytest.raises(AuthError) as caught:
        source.token()
    assert code in caught.value.message and says in (caught.value.hint or "")
    assert secret not in caught.value.message + (caught.value.hint or "")
    assert "Trace ID" not in caught.value.message


@pytest.mark.parametrize(("code", "grant", "exit_code", "says"), [
    (65001, "urn:ietf:params:oauth:grant-type:device_code", ExitCode.NOPERM, "/adminconsent?client_id="),
    (50076, None, ExitCode.NOPERM, "multi-factor"),
    (53003, None, ExitCode.NOPERM, "--sign-in browser --redirect-port 8765"),
    (53000, None, ExitCode.NOPERM, "--sign-in device-code"),
])
def test_sign_in_refusals_have_their_hint(server: MicrosoftServer, tls: TLSFiles, code: int, grant: str | None,
                                          exit_code: ExitCode, says: str) -> None:
    server.fail(code, grant)
    source = TokenSource(settings_for(server), KeyringStore("m365"), mailbox=USER, ca_file=str(tls.ca_file), timeout=10)
    with pytest.raises(XoromailError) as caught:
        source.sign_in(approving(server))
    assert f"AADSTS{code}" in caught.value.message
    assert caught.value.exit_code == exit_code and says in (caught.value.hint or "")
    if code in (53003, 53000):  # the block is named, and app-only is offered with the exact option to type
        hint = caught.value.hint or ""
        assert "Conditional Access" in hint and "--certificate APP.pem" in hint
    if code == 65001:
        assert f"{server.authority_host}/company.test/adminconsent?client_id=" in (caught.value.hint or "")


@pytest.mark.parametrize("code", [70008, 700082])
def test_an_expired_refresh_token_asks_to_run_setup_again(tls: TLSFiles, code: int) -> None:
    with MicrosoftServer(tls.server_context, token_lifetime=120) as server:
        store = KeyringStore("m365")
        signed_in_source(server, tls, store)
        server.fail(code, "refresh_token")
        later = TokenSource(settings_for(server), store, mailbox=USER, ca_file=str(tls.ca_file), timeout=10)
        with pytest.raises(AuthError) as caught:
            later.token()
        assert f"AADSTS{code}" in caught.value.message and "setup" in (caught.value.hint or "")
        assert "90 days" in (caught.value.hint or "")


def test_an_unknown_client_id_is_a_config_error_naming_the_tenant(server: MicrosoftServer, tls: TLSFiles) -> None:
    source = TokenSource(settings_for(server, client_id="00000000-0000-4000-8000-000000000000"), KeyringStore("m365"),
                         mailbox=USER, ca_file=str(tls.ca_file), timeout=10)
    with pytest.raises(ConfigError) as caught:
        source.sign_in(approving(server))
    assert "AADSTS700016" in caught.value.message and "Application (client) ID" in (caught.value.hint or "")


def test_an_unknown_tenant_is_a_config_error(server: MicrosoftServer, tls: TLSFiles) -> None:
    source = TokenSource(settings_for(server, tenant="nosuch.example"), KeyringStore("m365"), mailbox=USER,
                         ca_file=str(tls.ca_file), timeout=10)
    with pytest.raises(ConfigError) as caught:
        source.sign_in(approving(server))
    assert "AADSTS90002" in caught.value.message and caught.value.exit_code == ExitCode.CONFIG
    assert TENANT_ID not in caught.value.message


def test_an_untrusted_certificate_stops_before_any_credential_is_sent(server: MicrosoftServer, tls: TLSFiles,
                                                                      tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    store = KeyringStore("m365")
    store.set(SECRET_KIND, CLIENT_SECRET)
    for ca_file in (None, str(other)):
        source = TokenSource(settings_for(server, mode="app"), store, mailbox=USER, ca_file=ca_file, timeout=10)
        with pytest.raises(StageFailedError) as caught:
            source.token()
        assert caught.value.exit_code == ExitCode.PROTOCOL and "not trusted" in caught.value.message
    assert server.requests_seen == []


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_ca_bundle_in_the_environment_adds_no_trust(server: MicrosoftServer, tls: TLSFiles,
                                                      monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """As for every service (docs/settings.md): only the profile's ca_file adds to the system store."""
    monkeypatch.setenv(variable, str(tls.ca_file))
    store = KeyringStore("m365")
    store.set(SECRET_KIND, CLIENT_SECRET)
    source = TokenSource(settings_for(server, mode="app"), store, mailbox=USER, ca_file=None, timeout=10)
    with pytest.raises(StageFailedError) as caught:
        source.token()
    assert caught.value.exit_code == ExitCode.PROTOCOL and server.requests_seen == []


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_the_profile_ca_file_still_applies_when_the_environment_names_another_bundle(
        server: MicrosoftServer, tls: TLSFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        variable: str) -> None:
    other = tmp_path / "corporate-proxy-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv(variable, str(other))
    store = KeyringStore("m365")
    store.set(SECRET_KIND, CLIENT_SECRET)
    source = TokenSource(settings_for(server, mode="app"), store, mailbox=USER, ca_file=str(tls.ca_file),
                         timeout=10)
    assert source.token()


def test_a_refused_connection_is_unavailable(tls: TLSFiles) -> None:
    import socket

    with socket.socket() as idle:
        idle.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        host = f"https://127.0.0.1:{idle.getsockname()[1]}"
        source = TokenSource(settings_for_host(host), KeyringStore("m365"), mailbox=USER, ca_file=str(tls.ca_file),
                             timeout=5)
        with pytest.raises(StageFailedError) as caught:
            source.sign_in(print)
    assert caught.value.exit_code == ExitCode.UNAVAILABLE and caught.value.stage == "sign-in"


def settings_for_host(host: str) -> Microsoft365Settings:
    return Microsoft365Settings(tenant=TENANT, client_id=CLIENT_ID, authority_host=host, graph_url=host + "/v1.0")


def test_a_device_code_nobody_enters_ends_at_the_sign_in_timeout(server: MicrosoftServer, tls: TLSFiles) -> None:
    source = TokenSource(settings_for(server, sign_in_timeout=1.0), KeyringStore("m365"), mailbox=USER,
                         ca_file=str(tls.ca_file), timeout=10)
    started = time.monotonic()
    with pytest.raises(XoromailError) as caught:
        source.sign_in(lambda message: None)
    assert caught.value.exit_code == ExitCode.TEMPFAIL and "in time" in caught.value.message
    assert time.monotonic() - started < 10


def test_the_cache_is_written_back_only_under_the_lock(server: MicrosoftServer, tls: TLSFiles,
                                                       tmp_path: Path) -> None:
    import fcntl
    import threading

    class TimedStore(KeyringStore):
        written_at: float = 0.0

        def set(self, kind: str, value: str) -> None:
            self.written_at = time.monotonic()
            super().set(kind, value)

    lock = tmp_path / "state" / "m365.token-cache.lock"
    lock.parent.mkdir()
    store = TimedStore("m365")
    source = TokenSource(settings_for(server), store, mailbox=USER, ca_file=str(tls.ca_file), timeout=10,
                         lock_path=lock)
    released: list[float] = []

    def release(handle: Any) -> None:
        released.append(time.monotonic())
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    with lock.open("a") as other_run:
        fcntl.flock(other_run.fileno(), fcntl.LOCK_EX)  # another cron run is writing the cache
        threading.Timer(2.5, release, args=(other_run,)).start()  # after the sign-in itself is done (~1 s)
        source.sign_in(approving(server))
    assert store.writes == [TOKEN_CACHE] and store.written_at >= released[0]


def test_the_waiting_time_reads_as_a_person_says_it() -> None:
    from xoromail_cli.services.microsoft365.auth import waiting_time

    assert (waiting_time(300), waiting_time(900), waiting_time(90), waiting_time(20)) == (
        "5 minutes", "15 minutes", "90 seconds", "20 seconds")
