from __future__ import annotations

from pathlib import Path

from tests.support.common import PASSWORD, USER, EwsFactory, ServerFactory, TLSFiles, profile_for, secrets
from xoromail_cli import validate
from xoromail_cli.errors import ExitCode


def names(report: validate.ValidationReport) -> list[str]:
    return [stage.name for stage in report.stages]


def test_starttls_stages_run_in_wire_order_and_the_test_message_arrives(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    server = smtp_server("starttls")
    report = validate.run(profile_for(server, tls), secrets(PASSWORD), to="check@company.test")
    assert report.ok and report.exit_code == ExitCode.OK
    assert names(report) == ["config", "dns", "connect", "ehlo", "tls", "auth", "send"]
    received = server.messages[0]
    message = received.parsed()
    assert received.recipients == ["check@company.test"]
    assert received.login == USER
    assert message["From"] == f"Company Billing <{USER}>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@company.test>")


def test_implicit_tls_negotiates_before_the_greeting(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    report = validate.run(profile_for(smtp_server("ssl"), tls), secrets(PASSWORD))
    assert report.ok
    assert names(report) == ["config", "dns", "connect", "tls", "ehlo", "auth", "send"]
    assert "certificate verified" in report.stages[3].detail


def test_no_send_stops_after_sign_in(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    server = smtp_server()
    report = validate.run(profile_for(server, tls), secrets(PASSWORD), send=False)
    assert report.ok and names(report)[-1] == "auth"
    assert server.messages == []


def test_missing_password_fails_the_config_stage(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    report = validate.run(profile_for(smtp_server(), tls), secrets(None))
    assert names(report) == ["config"]
    assert report.exit_code == ExitCode.CONFIG
    assert report.skipped == ["dns", "connect", "ehlo", "tls", "auth", "send"]


def test_plaintext_password_to_a_remote_host_is_refused_before_connecting(tls: TLSFiles) -> None:
    from tests.support.samples import smtp_profile

    profile = smtp_profile(name="p", email=USER, host="mail.company.test", port=25, security="none", username=USER)
    report = validate.run(profile, secrets(PASSWORD))
    assert report.failed is not None and report.failed.name == "config"
    assert "unencrypted" in report.failed.detail
    assert report.exit_code == ExitCode.CONFIG


def test_local_relay_without_tls_or_login_sends(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    server = smtp_server("none", authenticator=None)
    report = validate.run(profile_for(server, tls, security="none"), secrets(None))
    assert report.ok, report.to_json()
    assert "auth" not in names(report)


def test_invalid_recipient_is_a_config_stage_data_error(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    report = validate.run(profile_for(smtp_server(), tls), secrets(PASSWORD), to="not-an-address")
    assert report.exit_code == ExitCode.DATAERR


def test_json_shape_has_ok_stage_hint_and_stages(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    data = validate.run(profile_for(smtp_server(), tls), secrets("wrong")).to_json()
    assert data["ok"] is False and data["stage"] == "auth" and data["hint"]
    assert {"name", "ok", "detail"} <= set(data["stages"][0])
    assert data["exit_code"] == 77


def test_a_missing_ca_file_fails_once_at_the_config_stage(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    report = validate.run(profile_for(smtp_server(), tls, ca_file="/nonexistent/ca.pem"), secrets(PASSWORD))
    assert names(report) == ["config"] and report.exit_code == ExitCode.NOINPUT


def test_the_ca_file_adds_to_the_system_store_rather_than_replacing_it(tls: TLSFiles) -> None:
    import ssl

    from xoromail_cli.services.network import tls_context

    system = len(ssl.create_default_context().get_ca_certs())
    assert len(tls_context(str(tls.ca_file)).get_ca_certs()) == system + 1


def test_a_non_ascii_password_signs_in_as_utf8(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    from tests.support.common import accepting_authenticator

    server = smtp_server(authenticator=accepting_authenticator(password="pässwörd-€"))
    report = validate.run(profile_for(server, tls), secrets("pässwörd-€"))
    assert report.ok, report.to_json()
    wrong = validate.run(profile_for(server, tls), secrets("wröng"))
    assert wrong.exit_code == ExitCode.NOPERM
    assert "wröng" not in str(wrong.to_json())


def test_a_ca_file_without_certificates_is_a_config_error(smtp_server: ServerFactory, tls: TLSFiles,
                                                          tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    report = validate.run(profile_for(smtp_server(), tls, ca_file=str(bogus)), secrets(PASSWORD))
    assert report.exit_code == ExitCode.CONFIG and "no usable PEM" in (report.failed.detail if report.failed else "")


def test_a_passing_office365_check_still_warns_about_smtp_auth(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    report = validate.run(profile_for(smtp_server(), tls, preset="office365"), secrets(PASSWORD))
    assert report.ok
    [note] = report.notes
    assert "SMTP AUTH" in note and "December 2026" in note
    assert report.to_json()["notes"] == [note]


def test_an_unencrypted_remote_relay_gets_a_note() -> None:
    from tests.support.samples import smtp_profile
    from xoromail_cli import services

    relay = smtp_profile(name="r", email=USER, host="relay.company.test", port=25, security="none")
    assert "unencrypted" in services.for_profile(relay).notes(relay)[0]
    local = smtp_profile(name="r", email=USER, host="127.0.0.1", port=25, security="none")
    assert services.for_profile(local).notes(local) == []


def test_a_certificate_that_expires_within_30_days_is_noted_with_its_date(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    import datetime as dt

    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=4)
    context = tls.context_for("127.0.0.1", "localhost", not_after=expires)
    report = validate.run(profile_for(smtp_server(tls_context=context), tls), secrets(PASSWORD))
    assert report.ok
    assert any(f"{expires:%Y-%m-%d}" in note for note in report.notes), report.notes


def test_a_passing_check_notes_what_the_senders_domain_lacks(ews: EwsFactory, tls: TLSFiles) -> None:
    """The From domain's DNS (the suite's local DNS server): acme.test has no DMARC record."""
    from xoromail_cli.profile import Profile
    from xoromail_cli.services.exchange.settings import ExchangeSettings

    server = ews(users={"billing@acme.test": PASSWORD})
    profile = Profile(name="p", email="billing@acme.test", service="exchange", display_name="Acme",
                      settings=ExchangeSettings(url=server.url, domain="acme.test", username="billing", auth="basic"),
                      ca_file=str(tls.ca_file), timeout=5.0)
    report = validate.run(profile, secrets(PASSWORD))
    assert report.ok, report.to_json()
    assert any("DMARC" in note for note in report.notes), report.notes


def test_a_wrong_password_costs_one_sign_in_attempt_and_the_session_ends_with_quit(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    """smtplib's login() tries PLAIN, then LOGIN: two failures per run against lockout and fail2ban counters."""
    from typing import Any

    from aiosmtpd.smtp import AuthResult

    from xoromail_cli.local.sink import CaptureHandler

    attempts: list[str] = []

    class QuitCounting(CaptureHandler):
        quits = 0

        async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
            QuitCounting.quits += 1
            return "221 Bye"

    def refuse(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        attempts.append(mechanism)
        return AuthResult(success=False, handled=False, message="535 5.7.3 Authentication unsuccessful")

    server = smtp_server(handler=QuitCounting(), authenticator=refuse)
    report = validate.run(profile_for(server, tls), secrets("wrong"))
    assert report.exit_code == ExitCode.NOPERM and report.failed is not None and report.failed.name == "auth"
    assert attempts == ["PLAIN"]
    assert QuitCounting.quits == 1
