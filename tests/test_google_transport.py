"""Sending through the Gmail API of a fake Google: raw kept exactly, tokens reused or refreshed once, every
error Google answers classified the way the sender needs it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import trustme

from tests.support.common import TLSFiles
from tests.support.fakes import google_server as fake
from tests.support.fakes.google_server import GoogleServer
from tests.support.google_helpers import (
    SENDER,
    envelope,
    expire_stored_token,
    google,
    signed_in,
    transport,
)
from tests.support.keyring_store import KeyringStore
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.errors import ExitCode, StageFailedError
from xoromail_cli.services.base import ConnectionLostError
from xoromail_cli.services.google import oauth
from xoromail_cli.services.google.settings import GoogleSettings
from xoromail_cli.services.google.transport import MAX_MESSAGE_SIZE, UPLOAD_LIMIT, GmailTransport

__all__ = ["google"]


def test_send_posts_the_whole_message_in_raw_with_bcc_for_gmail_to_strip(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    gmail = transport(signed_in(google, tls, tmp_path), tls)
    gmail.open()
    sent = envelope(bcc=("auditor@company.test",))
    delivery = gmail.send(sent)
    gmail.close()
    assert delivery.ok and "message id" in delivery.reply
    assert google.state.sent == [sent.data_with_bcc()]
    received = google.state.messages()[0]
    assert received["Bcc"] == "auditor@company.test" and received["Message-ID"] == "<invoice-1@company.test>"
    assert b"Bcc" not in sent.data
    assert gmail.subset_retries is False
    assert MAX_MESSAGE_SIZE * 4 // 3 < UPLOAD_LIMIT


def test_a_batch_reuses_the_stored_token_and_refreshes_an_expired_one_once_writing_it_back(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    settings = signed_in(google, tls, tmp_path)
    first = transport(settings, tls)
    first.open()
    assert all(first.send(envelope(n)).ok for n in range(3))
    first.close()
    assert first.refreshes == 0 and google.state.grants == ["authorization_code"]
    expire_stored_token()
    second = transport(settings, tls)
    before = google.state.connections
    second.open()
    assert all(second.send(envelope(n)).ok for n in range(3))
    second.close()
    assert google.state.connections == before + 1, "one HTTPS connection for the refresh and the whole batch"
    assert second.refreshes == 1 and google.state.grants == ["authorization_code", "refresh_token"]
    third = transport(settings, tls)
    third.open()
    third.close()
    assert third.refreshes == 0, "the refreshed token was written back and is reused while valid"


def test_validate_forces_a_refresh_and_names_the_token_stage(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    stages: list[tuple[str, str]] = []
    gmail = transport(signed_in(google, tls, tmp_path), tls, force_refresh=True)
    gmail.open(lambda stage, detail: stages.append((stage, detail)))
    gmail.close()
    assert [stage for stage, _ in stages] == ["token"] and "refreshed" in stages[0][1]


def test_an_expired_or_revoked_sign_in_fails_the_token_stage_with_77_and_says_how_to_avoid_it(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    settings = signed_in(google, tls, tmp_path)
    google.state.refresh_tokens.clear()  # Google forgot it: 7 days of Testing, a password change, access removed
    with pytest.raises(StageFailedError) as failure:
        transport(settings, tls, force_refresh=True).open()
    assert failure.value.stage == "token" and failure.value.exit_code == ExitCode.NOPERM
    assert "invalid_grant: Token has been expired or revoked." in failure.value.message
    assert "7 days" in (failure.value.hint or "") and "In production" in (failure.value.hint or "")


def test_a_revoked_stored_token_is_refreshed_once_and_the_message_still_goes(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    gmail = transport(signed_in(google, tls, tmp_path), tls)
    gmail.open()
    google.state.access_tokens.clear()  # Google no longer knows the stored access token
    delivery = gmail.send(envelope())
    assert delivery.ok and gmail.refreshes == 1 and len(google.state.sent) == 1


def test_a_401_after_a_refresh_stops_the_batch_with_77(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    settings = signed_in(google, tls, tmp_path)
    google.state.access_lifetime = 0  # every token Google hands out from now on is already dead
    gmail = transport(settings, tls, force_refresh=True)
    gmail.open()
    delivery = gmail.send(envelope())
    assert delivery.status == "failed" and delivery.exit_code == ExitCode.NOPERM and delivery.stops_batch
    assert "401" in delivery.reply and "after a fresh token" in delivery.reply
    assert gmail.refreshes == 1 and google.state.sent == []


def test_gmail_api_not_enabled_says_to_enable_it_with_the_projects_link(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    gmail = transport(signed_in(google, tls, tmp_path), tls)
    gmail.open()
    google.state.send_replies.append(fake.ACCESS_NOT_CONFIGURED)
    delivery = gmail.send(envelope())
    assert delivery.exit_code == ExitCode.CONFIG and delivery.stops_batch
    assert fake.ENABLE_URL in (delivery.hint or "") and "Gmail API has not been used" in delivery.reply


def test_a_token_without_the_send_scope_gets_insufficient_scope_and_77(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    settings = signed_in(google, tls, tmp_path)
    google.state.granted = "openid https://www.googleapis.com/auth/userinfo.email"
    gmail = transport(settings, tls, force_refresh=True)
    gmail.open()
    delivery = gmail.send(envelope())
    assert delivery.exit_code == ExitCode.NOPERM and "insufficient authentication scopes" in delivery.reply
    assert "Send email on your behalf" in (delivery.hint or "")


@pytest.mark.parametrize(("canned", "wait"), [(fake.TOO_MANY_REQUESTS, 7.0), (fake.BACKEND_ERROR, None)])
def test_429_and_5xx_are_temporary_and_honour_retry_after(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path, canned: fake.Canned, wait: float | None) -> None:
    gmail = transport(signed_in(google, tls, tmp_path), tls)
    gmail.open()
    google.state.send_replies.append(canned)
    delivery = gmail.send(envelope())
    assert delivery.status == "temporary" and not delivery.stops_batch and delivery.retry_after == wait
    assert delivery.exit_code == ExitCode.TEMPFAIL
    assert gmail.send(envelope()).ok


def test_the_daily_sending_limit_stops_the_batch_like_an_smtp_quota(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    gmail = transport(signed_in(google, tls, tmp_path), tls)
    gmail.open()
    google.state.send_replies.append(fake.DAILY_QUOTA)
    delivery = gmail.send(envelope())
    assert delivery.status == "temporary" and delivery.stops_batch and delivery.retry_after == 3600.0
    assert "2,000 messages a day" in (delivery.hint or "")


def test_a_message_gmail_finds_no_recipient_in_is_a_data_error(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    gmail = transport(signed_in(google, tls, tmp_path), tls)
    gmail.open()
    bare = Envelope(sender=SENDER, to=("x@example.test",),
                    data=b"From: billing@company.test\r\nSubject: x\r\n\r\nbody\r\n", message_id="<m@x>")
    delivery = gmail.send(bare)
    assert delivery.status == "failed" and delivery.exit_code == ExitCode.DATAERR and not delivery.stops_batch
    assert "Recipient address required" in delivery.reply


def test_the_ca_file_is_trusted_even_when_requests_ca_bundle_points_elsewhere(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = signed_in(google, tls, tmp_path)
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other))
    gmail = transport(settings, tls, force_refresh=True)
    gmail.open()
    assert gmail.send(envelope()).ok


def test_an_untrusted_certificate_fails_with_76_and_points_at_ca_file(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = signed_in(google, tls, tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_file))  # the environment trusts it; we still verify ours
    gmail = GmailTransport(settings, SENDER, KeyringStore("google-test"), ca_file=None, timeout=5.0, force_refresh=True)
    with pytest.raises(StageFailedError) as failure:
        gmail.open()
    assert failure.value.exit_code == ExitCode.PROTOCOL and "not trusted" in failure.value.message
    assert "--ca-file" in (failure.value.hint or "")


def test_an_unreachable_api_loses_the_message_before_it_was_sent(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = signed_in(google, tls, tmp_path, api_url=f"https://127.0.0.1:{port}")
    gmail = transport(settings, tls)
    gmail.open()
    with pytest.raises(ConnectionLostError) as lost:
        gmail.send(envelope())
    assert lost.value.committed is False and "refused" in lost.value.message


def test_no_answer_after_the_request_went_out_leaves_the_message_in_doubt(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    settings = signed_in(google, tls, tmp_path)
    gmail = GmailTransport(settings, SENDER, KeyringStore("google-test"), ca_file=str(tls.ca_file), timeout=0.3)
    gmail.open()
    google.state.send_delay = 1.0
    handed_over: list[bool] = []
    with pytest.raises(ConnectionLostError) as lost:
        gmail.send(envelope(), before_data=lambda: handed_over.append(True))
    gmail.close()
    assert handed_over == [True] and lost.value.committed is True
    assert "did not reply within 0.3 s" in lost.value.message


def test_a_host_that_does_not_resolve_fails_the_token_stage_with_69(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    settings = signed_in(google, tls, tmp_path)
    broken = GoogleSettings(client_id=settings.client_id, auth_uri=settings.auth_uri, token_uri="https://oauth2.nowhere.invalid/token",
                            api_url=settings.api_url)
    with pytest.raises(StageFailedError) as failure:
        transport(broken, tls, force_refresh=True).open()
    assert failure.value.exit_code == ExitCode.UNAVAILABLE and "cannot resolve" in failure.value.message


def test_trace_shows_the_exchange_but_never_a_token_or_secret(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    lines: list[str] = []
    gmail = transport(signed_in(google, tls, tmp_path), tls, force_refresh=True,
                      trace=lambda direction, text: lines.append(f"{direction} {text}"))
    gmail.open()
    gmail.send(envelope())
    text = "\n".join(lines)
    store = KeyringStore("google-test")
    assert "POST" in text and "200" in text
    access = oauth.AccessToken.from_secret(store.get("access_token"))
    assert access is not None
    for secret in (store.get("refresh_token"), store.get("client_secret"), access.token):
        assert secret and secret not in text
    assert base64.urlsafe_b64encode(envelope().data).decode()[:40] not in text


def test_disconnect_revokes_at_google_then_forgets_every_secret(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    settings = signed_in(google, tls, tmp_path)
    store = KeyringStore("google-test")
    refresh_token = store.get("refresh_token")
    result = oauth.disconnect(settings, store, ca_file=str(tls.ca_file), timeout=5.0)
    assert result.revoked and google.state.revoked == [refresh_token]
    assert all(store.get(kind) is None for kind in oauth.SECRET_KINDS)
    with pytest.raises(StageFailedError) as failure:
        transport(settings, tls).open()
    assert failure.value.exit_code == ExitCode.CONFIG and "setup" in (failure.value.hint or "")


def test_disconnect_still_forgets_the_secrets_when_google_cannot_be_reached(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    settings = signed_in(google, tls, tmp_path)
    store = KeyringStore("google-test")
    result = oauth.disconnect(settings, store, ca_file=None, timeout=5.0)  # certificate not trusted: no revoke
    assert not result.revoked and "myaccount.google.com/permissions" in result.detail
    assert all(store.get(kind) is None for kind in oauth.SECRET_KINDS)


def test_debug_logging_of_the_libraries_never_shows_a_token_or_the_client_secret(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    gmail = transport(signed_in(google, tls, tmp_path), tls, force_refresh=True)
    gmail.open()
    assert gmail.send(envelope()).ok
    store = KeyringStore("google-test")
    access = oauth.AccessToken.from_secret(store.get("access_token"))
    assert access is not None and caplog.records, "urllib3 still logs its connections"
    for secret in (store.get("refresh_token"), fake.CLIENT_SECRET, access.token, "4/fake-code-"):
        assert secret and secret not in caplog.text


def test_a_reset_client_secret_fails_the_refresh_with_78_and_says_to_download_the_json_again(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    settings = signed_in(google, tls, tmp_path)
    KeyringStore("google-test").set(oauth.CLIENT_SECRET, "GOCSPX-old-secret")
    with pytest.raises(StageFailedError) as failure:
        transport(settings, tls, force_refresh=True).open()
    assert failure.value.exit_code == ExitCode.CONFIG and "invalid_client" in failure.value.message
    assert "download the client's JSON again" in (failure.value.hint or "")
    assert "GOCSPX-old-secret" not in f"{failure.value.message} {failure.value.hint}"


def test_a_wrong_api_url_stops_the_batch_and_points_at_the_flag(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    gmail = transport(signed_in(google, tls, tmp_path, api_url=google.url + "/wrong"), tls)
    gmail.open()
    delivery = gmail.send(envelope())
    assert delivery.exit_code == ExitCode.UNAVAILABLE and delivery.stops_batch and "--api-url" in (delivery.hint or "")
