"""The Exchange transport against a local EWS server answering like Exchange 2016/2019, with the real
exchangelib, requests, requests-ntlm and pyspnego: what arrives, every hint, and what a lost answer means."""

from __future__ import annotations

import base64
import socket
import ssl
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme

from tests.support.common import PASSWORD, EwsFactory, TLSFiles
from tests.support.fakes.ews_server import EwsServer
from tests.support.keyring_store import KeyringStore
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.credentials import read_secret, write_secret
from xoromail_cli.errors import ExitCode, StageFailedError
from xoromail_cli.services.base import ConnectionLostError
from xoromail_cli.services.exchange.settings import AuthType, ExchangeSettings
from xoromail_cli.services.exchange.transport import ExchangeTransport

SENDER = "billing@company.test"
UPN = "billing@company.test"


def transport(url: str, tls: TLSFiles, *, auth: AuthType = "basic", username: str = "billing",
              ca_file: str | None = "default", trace: list[str] | None = None) -> ExchangeTransport:
    write_secret("default", "password", PASSWORD)
    settings = ExchangeSettings(url=url, domain="company.test", username=username, auth=auth)
    return ExchangeTransport(settings, SENDER, KeyringStore(deletes=False), timeout=5.0,
                             ca_file=str(tls.ca_file) if ca_file == "default" else ca_file,
                             trace=(lambda direction, text: trace.append(f"{direction} {text}"))
                             if trace is not None else None)


def invoice(subject: str = "Invoice INV-1001", **extra: tuple[str, ...]) -> Envelope:
    message = EmailMessage()
    message["From"] = f"Company Billing <{SENDER}>"
    message["To"] = "alice@example.com"
    message["Cc"] = "carol@example.com"
    message["Subject"] = subject
    message["Message-ID"] = "<inv-1001@company.test>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content("Please find your invoice attached.")
    message.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="INV-1001.pdf")
    return Envelope(sender=SENDER, to=extra.get("to", ("alice@example.com",)),
                    data=message.as_bytes(policy=message.policy.clone(
        linesep="\r\n")), message_id="<inv-1001@company.test>", cc=extra.get("cc", ("carol@example.com",)),
        bcc=extra.get("bcc", ("auditor@example.com",)))


def test_message_goes_as_its_mime_with_bcc_only_in_the_ews_recipients(ews: EwsFactory, tls: TLSFiles) -> None:
    server = ews()
    stages: list[str] = []
    sender = transport(server.url, tls)
    sender.open(lambda stage, detail: stages.append(stage))
    delivery = sender.send(invoice())
    sender.close()
    assert delivery.ok
    assert stages == ["dns", "connect", "tls", "auth"]
    created = [r for r in server.received if r.operation == "CreateItem"]
    assert len(created) == 1
    item = created[0]
    assert item.disposition == "SendAndSaveCopy"
    assert (item.to, item.cc, item.bcc) == (["alice@example.com"], ["carol@example.com"], ["auditor@example.com"])
    delivered = item.message
    assert delivered["Subject"] == "Invoice INV-1001"
    assert delivered["Message-ID"] == "<inv-1001@company.test>"
    assert delivered["Auto-Submitted"] == "auto-generated"
    assert delivered["Bcc"] is None and b"auditor@example.com" not in (item.mime or b"")
    body = delivered.get_body(("plain",))
    assert body is not None and "invoice attached" in body.get_content()
    attachments = list(delivered.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["INV-1001.pdf"]
    assert attachments[0].get_content() == b"%PDF-1.4 invoice"


def test_a_batch_signs_in_once(ews: EwsFactory, tls: TLSFiles) -> None:
    server = ews()
    sender = transport(server.url, tls)
    sender.open()
    sign_ins = len(server.received)
    for number in range(3):
        assert sender.send(invoice(f"Invoice {number}")).ok
    sender.close()
    operations = [r.operation for r in server.received]
    assert operations[sign_ins:] == ["CreateItem"] * 3
    assert "CreateItem" not in operations[:sign_ins]


@pytest.mark.parametrize(("username", "expected"), [("billing", "company.test\\billing"),
                                                    ("COMPANY.TEST\\billing", "COMPANY.TEST\\billing")])
def test_ntlm_signs_in_through_exchangelibs_stack(ews: EwsFactory, tls: TLSFiles, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, username: str,
                                                  expected: str) -> None:
    """pyspnego's own MD4 makes NTLM work where OpenSSL 3 has none; its acceptor checks the real hashes."""
    users = tmp_path / "ntlm-users"
    users.write_text(f"COMPANY.TEST:billing:{PASSWORD}\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    server = ews(auth="ntlm")
    trace: list[str] = []
    sender = transport(server.url, tls, auth="ntlm", username=username, trace=trace)
    sender.open()
    assert sender.send(invoice()).ok
    sender.close()
    shown = "\n".join(trace)
    assert "Authorization: NTLM <redacted>" in shown and "WWW-Authenticate: NTLM <redacted>" in shown
    assert "TlRMTVNT" not in shown  # base64 of "NTLMSSP": no NTLM message leaves the trace
    assert {str(r.user).lower() for r in server.received} == {expected.lower()}


def test_ntlm_with_a_wrong_password_is_a_sign_in_failure(ews: EwsFactory, tls: TLSFiles, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    users = tmp_path / "ntlm-users"
    users.write_text("COMPANY.TEST:billing:another password\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    sender = transport(ews(auth="ntlm").url, tls, auth="ntlm")
    with pytest.raises(StageFailedError) as caught:
        sender.open()
    assert (caught.value.stage, caught.value.exit_code) == ("auth", ExitCode.NOPERM)


def test_wrong_password_fails_at_once_with_the_credentials_hint(ews: EwsFactory, tls: TLSFiles) -> None:
    server = ews(users={UPN: "something else"})
    with pytest.raises(StageFailedError) as caught:
        transport(server.url, tls).open()
    error = caught.value
    assert (error.stage, error.exit_code) == ("auth", ExitCode.NOPERM)
    assert "domain, username and password" in (error.hint or "")
    assert "October 2022" not in (error.hint or "")
    assert len(server.received) == 0 and len(server.log) == 1


def test_locked_account_says_so(ews: EwsFactory, tls: TLSFiles) -> None:
    with pytest.raises(StageFailedError) as caught:
        transport(ews(locked=True).url, tls).open()
    assert caught.value.exit_code == ExitCode.NOPERM and "locked out" in caught.value.message
    assert "unlock" in (caught.value.hint or "")


def test_wrong_path_points_at_the_exchange_uri(ews: EwsFactory, tls: TLSFiles) -> None:
    server = ews()
    with pytest.raises(StageFailedError) as caught:
        transport(server.url.replace("/EWS/Exchange.asmx", "/owa/"), tls).open()
    assert (caught.value.stage, caught.value.exit_code) == ("auth", ExitCode.CONFIG)
    assert "404" in caught.value.message and "check the Exchange URI" in (caught.value.hint or "")


def test_unknown_host_fails_at_dns(tls: TLSFiles) -> None:
    with pytest.raises(StageFailedError) as caught:
        transport("https://ews.nonexistent.invalid/EWS/Exchange.asmx", tls).open()
    assert (caught.value.stage, caught.value.exit_code) == ("dns", ExitCode.UNAVAILABLE)


def test_closed_port_fails_at_connect(tls: TLSFiles) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StageFailedError) as caught:
        transport(f"https://127.0.0.1:{port}/EWS/Exchange.asmx", tls).open()
    assert (caught.value.stage, caught.value.exit_code) == ("connect", ExitCode.UNAVAILABLE)


def test_untrusted_certificate_fails_at_tls(ews: EwsFactory, tls: TLSFiles) -> None:
    server = ews()
    with pytest.raises(StageFailedError) as caught:
        transport(server.url, tls, ca_file=None).open()
    assert (caught.value.stage, caught.value.exit_code) == ("tls", ExitCode.PROTOCOL)
    assert "--ca-file" in (caught.value.hint or "")
    assert server.received == []


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_ca_file_is_trusted_even_when_the_environment_names_a_bundle(ews: EwsFactory, tls: TLSFiles,
                                                                     tmp_path: Path, variable: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets these variables replace a session's verify (psf/requests#3829); ours must still hold."""
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv(variable, str(other))
    server = ews()
    sender = transport(server.url, tls)
    sender.open()
    assert sender.send(invoice()).ok
    sender.close()
    assert [r.operation for r in server.received][-1] == "CreateItem"


def test_an_environment_bundle_does_not_switch_verification_off_or_on(ews: EwsFactory, tls: TLSFiles,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Trusting our CA through REQUESTS_CA_BUNDLE alone is not how a profile trusts it: the check stays ours."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_file))
    with pytest.raises(StageFailedError) as caught:
        transport(ews().url, tls, ca_file=None).open()
    assert caught.value.stage == "tls"


def _signed_in(server: EwsServer, tls: TLSFiles) -> ExchangeTransport:
    sender = transport(server.url, tls)
    sender.open()
    return sender


@pytest.mark.parametrize(("code", "text", "exit_code", "stops", "hint"), [
    ("ErrorSendAsDenied", "The user account which was used to submit this request does not have the right to "
     "send mail on behalf of the specified sending account.", ExitCode.NOPERM, True, "Send As"),
    ("ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it.", ExitCode.CONFIG, True,
     "--email"),
    ("ErrorQuotaExceeded", "The mailbox quota has been exceeded.", ExitCode.DATAERR, True, "quota"),
    ("ErrorMessageSizeExceeded", "The message exceeds the maximum supported size.", ExitCode.DATAERR, False,
     "smaller"),
])
def test_exchange_refusals_are_classified(ews: EwsFactory, tls: TLSFiles, code: str, text: str,
                                          exit_code: ExitCode, stops: bool, hint: str) -> None:
    server = ews(create_error=(code, text))
    sender = _signed_in(server, tls)
    delivery = sender.send(invoice())
    sender.close()
    assert delivery.status == "failed"
    assert delivery.exit_code == exit_code and delivery.stops_batch is stops
    assert code in delivery.reply and text in delivery.reply
    assert hint in (delivery.hint or "")


def test_non_existent_mailbox_at_sign_in_names_the_email(ews: EwsFactory, tls: TLSFiles) -> None:
    server = ews(folder_error=("ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it."))
    with pytest.raises(StageFailedError) as caught:
        transport(server.url, tls).open()
    assert (caught.value.stage, caught.value.exit_code) == ("auth", ExitCode.CONFIG)
    assert "--email" in (caught.value.hint or "")


def test_server_busy_is_temporary_with_its_back_off(ews: EwsFactory, tls: TLSFiles) -> None:
    server = ews(busy_ms=30000)
    sender = _signed_in(server, tls)
    delivery = sender.send(invoice())
    sender.close()
    assert delivery.status == "temporary" and delivery.exit_code == ExitCode.TEMPFAIL
    assert delivery.retry_after == pytest.approx(30.0)
    assert [r.operation for r in server.received].count("CreateItem") == 1  # FailFast: exchangelib did not retry


def test_connection_lost_after_the_request_went_out_is_in_doubt(ews: EwsFactory, tls: TLSFiles) -> None:
    server = ews(drop_create=True)
    sender = _signed_in(server, tls)
    handed_over: list[bool] = []
    with pytest.raises(ConnectionLostError) as caught:
        sender.send(invoice(), before_data=lambda: handed_over.append(True))
    sender.close()
    assert caught.value.committed is True and handed_over == [True]
    assert server.received[-1].operation == "CreateItem"


def test_server_gone_before_sending_is_not_committed(ews: EwsFactory, tls: TLSFiles) -> None:
    server = ews()
    sender = _signed_in(server, tls)
    server.stop()
    with pytest.raises(ConnectionLostError) as caught:
        sender.send(invoice())
    sender.close()
    assert caught.value.committed is False


def test_send_without_open_is_not_committed() -> None:
    sender = ExchangeTransport(ExchangeSettings(domain="company.test", username="billing"), SENDER,
                               KeyringStore(deletes=False))
    with pytest.raises(ConnectionLostError) as caught:
        sender.send(invoice())
    assert caught.value.committed is False


def test_the_password_appears_nowhere_but_its_keyring_entry(ews: EwsFactory, tls: TLSFiles,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from keyrings.alt.file import PlaintextKeyring

    good, bad = ews(), ews(users={UPN: "not it"})
    trace: list[str] = []
    sender = transport(good.url, tls, trace=trace)
    sender.open()
    sender.send(invoice())
    sender.close()
    with pytest.raises(StageFailedError) as caught:
        transport(bad.url, tls, trace=trace).open()
    for server in (good, bad):
        print("\n".join(server.log), *map(repr, server.received))
    print(*trace, caught.value, caught.value.hint)
    shown = capsys.readouterr().out
    assert "<m:CreateItem" in shown and "<m:GetFolder" in shown and "Authorization: Basic <redacted>" in shown
    assert PASSWORD not in shown
    assert base64.b64encode(f"{UPN}:{PASSWORD}".encode()).decode() not in shown
    keyring_file = Path(PlaintextKeyring().file_path).read_text()
    assert keyring_file.count("[xoromail]") == 1 and keyring_file.count("\ndefault = ") == 1
    assert read_secret("default", "password") == PASSWORD


def test_tls_context_always_verifies(tls: TLSFiles) -> None:
    from xoromail_cli.services.network import tls_context

    context = tls_context(str(tls.ca_file))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_exchange_online_401_names_the_dates_and_the_microsoft365_service() -> None:
    from exchangelib.errors import UnauthorizedError

    from xoromail_cli.services.exchange.hints import sign_in_failure

    url = "https://outlook.office365.com/EWS/Exchange.asmx"
    error = sign_in_failure(UnauthorizedError(f"Invalid credentials for {url}"), url)
    assert error.exit_code == ExitCode.NOPERM
    assert "October 2022" in (error.hint or "") and "1 April 2027" in (error.hint or "")
    assert "xoromail setup --service microsoft365" in (error.hint or "")


def test_exchangelibs_error_dumps_stay_out_of_stderr(ews: EwsFactory, tls: TLSFiles) -> None:
    import logging

    server = ews()
    with pytest.raises(StageFailedError):
        transport(server.url.replace("/EWS/", "/ews2/"), tls).open()
    library = logging.getLogger("exchangelib")
    assert library.propagate is False and any(isinstance(h, logging.NullHandler) for h in library.handlers)


def test_message_size_limit_is_stated_per_deployment(tls: TLSFiles) -> None:
    on_premises = transport("https://mail.company.test/EWS/Exchange.asmx", tls)
    online = transport("https://outlook.office365.com/EWS/Exchange.asmx", tls)
    assert on_premises.max_message_size == 10 * 1024 * 1024
    assert online.max_message_size == 35 * 1024 * 1024


def test_a_closed_transport_opens_again_with_a_fresh_session(ews: EwsFactory, tls: TLSFiles) -> None:
    """Reconnecting (after a lost connection or `reconnect`) must not reuse a closed exchangelib session."""
    server = ews()
    sender = transport(server.url, tls)
    sender.open()
    assert sender.send(invoice("first")).ok
    sender.close()
    sender.open()
    assert sender.send(invoice("second")).ok
    sender.close()
    assert [r.message["Subject"] for r in server.received if r.operation == "CreateItem"] == ["first", "second"]
