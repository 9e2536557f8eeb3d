"""Every row of the hint table, provoked for real against aiosmtpd on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, failing_authenticator, profile_for, secrets
from tests.support.servers import DataReply, MailFromReply
from xoromail_cli import validate
from xoromail_cli.errors import ExitCode
from xoromail_cli.local.sink import CaptureHandler, free_port
from xoromail_cli.services.smtp.replies import reply_failure, stage_failure


def check(profile_server: Any, tls: TLSFiles, **overrides: Any) -> validate.ValidationReport:
    report = validate.run(profile_for(profile_server, tls, **overrides), secrets(PASSWORD))
    assert PASSWORD not in json.dumps(report.to_json())
    return report


@pytest.mark.parametrize("reply", [
    "535 5.7.8 Username and Password not accepted. Learn more at https://support.google.com/mail/?p=BadCredentials",
    "535 5.7.3 Authentication unsuccessful",
    "535 5.7.1 Authentication failed",
])
def test_wrong_credentials_fail_at_auth_with_exit_77(smtp_server: ServerFactory, tls: TLSFiles, reply: str) -> None:
    report = check(smtp_server(authenticator=failing_authenticator(reply)), tls)
    assert (report.failed and report.failed.name) == "auth"
    assert report.exit_code == ExitCode.NOPERM
    assert report.failed is not None and reply.split(" ")[1] in report.failed.detail
    assert "username and password" in (report.failed.hint or "")
    assert report.skipped == ["send"]


def test_gmail_app_password_required_explains_two_step_verification(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    reply = "534 5.7.9 Application-specific password required. Learn more at https://support.google.com/mail/?p=InvalidSecondFactor"
    report = check(smtp_server(authenticator=failing_authenticator(reply)), tls)
    assert report.exit_code == ExitCode.NOPERM
    hint = report.failed.hint if report.failed else ""
    assert hint and "2-Step Verification" in hint and "16-character app password" in hint


@pytest.mark.parametrize("reply", ["534 5.7.9 Authentication mechanism is too weak",
                                   "534 5.7.9 Please use a stronger authentication mechanism or STARTTLS"])
def test_another_servers_534_5_7_9_is_rfc_4954s_weak_mechanism_not_gmails_app_password(
        smtp_server: ServerFactory, tls: TLSFiles, reply: str) -> None:
    """RFC 4954 §6: from any server but Gmail, 534 5.7.9 means the mechanism is too weak (TLS first, or another)."""
    report = check(smtp_server(authenticator=failing_authenticator(reply)), tls)
    assert report.exit_code == ExitCode.NOPERM
    assert report.failed is not None and report.failed.name == "auth"
    assert report.failed.detail == f"server replied: {reply}"
    hint = report.failed.hint or ""
    assert "too weak" in hint and "starttls" in hint and "ssl" in hint and "PLAIN or LOGIN" in hint
    assert "app password" not in hint and "2-Step" not in hint


def test_a_bare_534_5_7_9_from_a_gmail_host_is_still_the_app_password() -> None:
    for host in ("smtp.gmail.com", "smtp.googlemail.com"):
        failure = reply_failure("auth", 534, "5.7.9 Please try again", host)
        assert "Gmail needs an app password" in (failure.hint or "") and failure.exit_code == ExitCode.NOPERM
    other = reply_failure("auth", 534, "5.7.9 Please try again", "mail.company.test")
    assert "too weak" in (other.hint or "") and "app password" not in (other.hint or "")


def test_gmail_blocked_sign_in_says_sign_in_via_the_web(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    reply = "534 5.7.14 <https://accounts.google.com/signin/continue?sarp=1> Please log in via your web browser"
    report = check(smtp_server(authenticator=failing_authenticator(reply)), tls)
    assert report.exit_code == ExitCode.NOPERM
    assert report.failed is not None and "web browser" in (report.failed.hint or "")


def test_office365_smtp_auth_disabled_names_the_setting_and_the_retirement(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    reply = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. "
             "Visit https://aka.ms/smtp_auth_disabled for more information.")
    report = check(smtp_server(authenticator=failing_authenticator(reply)), tls)
    assert report.exit_code == ExitCode.NOPERM
    hint = report.failed.hint if report.failed else ""
    assert hint and "SMTP AUTH is disabled" in hint and "December 2026" in hint


def test_office365_basic_auth_disabled_asks_for_oauth(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    reply = "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."
    report = check(smtp_server(authenticator=failing_authenticator(reply)), tls)
    assert report.exit_code == ExitCode.NOPERM
    assert report.failed is not None and "OAuth" in (report.failed.hint or "")


@pytest.mark.parametrize("handler", [
    MailFromReply("550 5.7.60 SMTP; Client does not have permissions to send as this sender"),
    MailFromReply("550 5.7.1 Sender address rejected: not owned by user"),
    DataReply("554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied"),
])
def test_sender_not_allowed_says_from_must_be_the_mailbox(
        smtp_server: ServerFactory, tls: TLSFiles, handler: CaptureHandler) -> None:
    report = check(smtp_server(handler=handler), tls)
    assert report.failed is not None and report.failed.name == "send"
    assert report.exit_code == ExitCode.NOPERM
    assert "From address must be the mailbox" in (report.failed.hint or "")


def test_unknown_host_fails_at_dns_with_exit_69(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    report = check(smtp_server(), tls, host="smtp.does-not-exist.invalid")
    assert report.failed is not None and report.failed.name == "dns"
    assert report.exit_code == ExitCode.UNAVAILABLE
    assert "server name" in (report.failed.hint or "")


def test_closed_port_is_refused_with_exit_69(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    report = check(smtp_server(), tls, port=free_port())
    assert report.failed is not None and report.failed.name == "connect"
    assert "refused" in report.failed.detail
    assert report.exit_code == ExitCode.UNAVAILABLE


@pytest.fixture
def blackholed_port() -> Iterator[int]:
    """A port whose accept queue is full, so a new connection gets no answer at all."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


def test_no_answer_within_the_timeout_is_exit_69(
        smtp_server: ServerFactory, tls: TLSFiles, blackholed_port: int) -> None:
    report = check(smtp_server(), tls, port=blackholed_port, timeout=0.5)
    assert report.failed is not None and report.failed.name == "connect"
    assert "no answer" in report.failed.detail
    assert report.exit_code == ExitCode.UNAVAILABLE


def test_implicit_tls_against_a_starttls_port_is_a_ssl_mismatch(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    report = check(smtp_server("starttls"), tls, security="ssl")
    assert report.failed is not None and report.failed.name == "tls"
    assert report.exit_code == ExitCode.PROTOCOL
    assert "587" in (report.failed.hint or "") and "465" in (report.failed.hint or "")


def test_plain_connection_to_an_implicit_tls_port_times_out_as_ssl_mismatch(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    report = check(smtp_server("ssl"), tls, security="starttls", timeout=0.5)
    assert report.failed is not None and report.failed.name == "ehlo"
    assert "no SMTP greeting" in report.failed.detail
    assert report.exit_code == ExitCode.PROTOCOL


def test_must_issue_starttls_reply_names_the_security_setting_not_the_port(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    report = check(smtp_server("starttls"), tls, security="none", host="127.0.0.1")
    assert report.failed is not None and "530" in report.failed.detail
    assert report.exit_code == ExitCode.PROTOCOL
    hint = report.failed.hint or ""
    assert "security setting from none to starttls" in hint and "port can stay" in hint


def test_security_none_with_a_login_where_auth_comes_after_starttls_names_the_security_setting(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    server = smtp_server("starttls")
    report = check(server, tls, security="none", host="127.0.0.1", username="billing")
    assert report.failed is not None and report.failed.name == "auth"
    assert "only after STARTTLS" in report.failed.detail
    assert report.exit_code == ExitCode.PROTOCOL
    assert "security setting from none to starttls" in (report.failed.hint or "")
    assert "check the port" not in (report.failed.hint or "")


def test_too_much_mail_points_at_the_rate_option(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    report = check(smtp_server(handler=DataReply("450 4.7.1 Error: too much mail from 127.0.0.1")), tls)
    assert report.exit_code == ExitCode.TEMPFAIL
    assert report.failed is not None and "--rate" in (report.failed.hint or "")


def test_a_dns_failure_on_a_presets_own_host_says_network_or_dns() -> None:
    own = stage_failure("dns", socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
                        "smtp.gmail.com", 587, 5.0)
    assert own.exit_code == ExitCode.UNAVAILABLE
    assert "network and DNS" in (own.hint or "") and "server name" not in (own.hint or "")
    typo = stage_failure("dns", socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
                         "smtp.gmial.com", 587, 5.0)
    assert "check the outgoing server name" in (typo.hint or "")


def test_missing_starttls_is_refused_before_the_password_is_sent(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    attempts: list[str] = []

    def counting(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        attempts.append(mechanism)
        return failing_authenticator("535 5.7.8 no")(server, session, envelope, mechanism, auth_data)

    server = smtp_server("none", authenticator=counting)
    report = check(server, tls, security="starttls")
    assert report.failed is not None and report.failed.name == "tls"
    assert "did not offer STARTTLS" in report.failed.detail
    assert "unencrypted" in (report.failed.hint or "")
    assert report.exit_code == ExitCode.PROTOCOL
    assert attempts == []


def test_untrusted_certificate_fails_at_tls_with_ca_file_hint(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    report = check(smtp_server("ssl"), tls, ca_file=None)
    assert report.failed is not None and report.failed.name == "tls"
    assert report.exit_code == ExitCode.PROTOCOL
    assert "--ca-file" in (report.failed.hint or "")


def test_certificate_for_another_host_name_is_not_trusted(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    server = smtp_server("starttls", tls_context=tls.context_for("mail.elsewhere.test"))
    report = check(server, tls)
    assert report.failed is not None and report.failed.name == "tls"
    assert "not trusted" in report.failed.detail
    assert report.exit_code == ExitCode.PROTOCOL


@pytest.mark.parametrize("handler", [
    DataReply("451 4.3.0 Temporary System Problem. Try again later."),
    MailFromReply("421 4.3.0 Temporary System Problem"),
])
def test_temporary_server_replies_are_exit_75(smtp_server: ServerFactory, tls: TLSFiles,
                                              handler: CaptureHandler) -> None:
    report = check(smtp_server(handler=handler), tls)
    assert report.exit_code == ExitCode.TEMPFAIL
    assert report.failed is not None and "try again later" in (report.failed.hint or "")


def test_throttled_sign_in_is_temporary(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    reply = "454 4.7.0 Too many login attempts, please try again later."
    report = check(smtp_server(authenticator=failing_authenticator(reply)), tls)
    assert report.exit_code == ExitCode.TEMPFAIL
    assert report.failed is not None and "one connection" in (report.failed.hint or "")


def test_daily_quota_is_temporary_with_a_wait_hint(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    report = check(smtp_server(handler=DataReply("550 5.4.5 Daily user sending quota exceeded.")), tls)
    assert report.exit_code == ExitCode.TEMPFAIL
    assert report.failed is not None and "24 hours" in (report.failed.hint or "")


@pytest.mark.parametrize(("stage", "code", "text", "expected"), [
    ("auth", 535, "5.7.139 Authentication unsuccessful, the user credentials were incorrect.", ExitCode.NOPERM),
    ("auth", 535, "5.7.139 Authentication unsuccessful, user is locked by your organization's security "
                  "defaults policy", ExitCode.NOPERM),
    ("mail from", 530, "5.7.57 Client not authenticated to send mail", ExitCode.NOPERM),
    ("data", 554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException", ExitCode.TEMPFAIL),
    ("rcpt to", 550, "5.1.1 User unknown", ExitCode.DATAERR),
    ("data", 552, "5.3.4 Message size exceeds fixed limit", ExitCode.DATAERR),
    ("data", 552, "5.3.4 Your message exceeded Google's message size limits.", ExitCode.DATAERR),
    ("data", 552, "Message size exceeds maximum permitted", ExitCode.DATAERR),
])
def test_reply_table_maps_other_provider_replies(stage: str, code: int, text: str, expected: ExitCode) -> None:
    failure = reply_failure(stage, code, text, "smtp.office365.com")
    assert failure.exit_code == expected
    assert f"{code} {text}" in failure.message
    assert failure.hint


def test_wrong_password_for_gmail_mentions_the_app_password() -> None:
    failure = reply_failure("auth", 535, "5.7.8 Username and Password not accepted", "smtp.gmail.com")
    assert "app password" in (failure.hint or "")


def test_starttls_required_at_mail_from_is_a_tls_mismatch_not_a_send_as_problem() -> None:
    failure = reply_failure("mail from", 530, "5.7.0 Must issue a STARTTLS command first", "mail.company.test")
    assert failure.exit_code == ExitCode.PROTOCOL
    not_signed_in = reply_failure("mail from", 530, "5.7.57 Client not authenticated to send mail", "h")
    assert "requires sign-in" in (not_signed_in.hint or "")


def test_a_full_recipient_mailbox_is_not_our_daily_quota() -> None:
    failure = reply_failure("rcpt to", 552, "5.2.2 Mailbox full, over quota", "h")
    assert "daily sending limit" not in (failure.hint or "")


def test_relay_denied_for_a_recipient_is_a_permission_problem() -> None:
    failure = reply_failure("rcpt to", 554, "5.7.1 <x@elsewhere.test>: Relay access denied", "h")
    assert failure.exit_code == ExitCode.NOPERM


def test_a_refused_sender_is_send_as_only_when_the_server_says_so() -> None:
    owned = reply_failure("mail from", 553, "5.7.1 <billing@company.test>: Sender address rejected: "
                          "not owned by user erp@company.test", "mail.company.test")
    assert owned.exit_code == ExitCode.NOPERM and "From address must be the mailbox" in (owned.hint or "")
    for code, text in ((450, "4.1.8 <billing@company.test>: Sender address rejected: Domain not found"),
                       (550, "5.1.8 <billing@company.test>: Sender address rejected: Domain not found")):
        failure = reply_failure("mail from", code, text, "mail.company.test")
        assert "Send As" not in (failure.hint or "")
        assert "domain" in (failure.hint or "") and "DNS" in (failure.hint or "")
        assert failure.exit_code == (ExitCode.TEMPFAIL if code == 450 else ExitCode.DATAERR)
