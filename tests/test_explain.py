"""`xoromail explain`: every text the issue names is recognised, with the fix `validate` gives for the same failure;
an unknown text is "no match" (exit 1), never a guess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, failing_authenticator, profile_for, secrets
from tests.support.fakes.aadsts import AADSTS
from xoromail_cli import config, validate
from xoromail_cli.cli import app
from xoromail_cli.errors import ExitCode
from xoromail_cli.explain import Context, by_id, catalogue, explain
from xoromail_cli.services.microsoft365.hints import SIGN_IN_RULES, sign_in_error
from xoromail_cli.services.microsoft365.settings import Microsoft365Settings
from xoromail_cli.services.smtp.replies import reply_failure

ERP_TEXTS = {
    "The SMTP server requires a secure connection or the client was not authenticated. The server response was: "
    "5.7.1 Authentication Required": "dotnet-secure-connection",
    "System.Net.Mail.SmtpException: Failure sending mail. ---> System.Net.WebException: Unable to connect to the "
    "remote server": "dotnet-failure-sending",
    "System.Net.Mail.SmtpException: Server does not support secure connections.": "dotnet-no-secure-support",
    "System.Security.Authentication.AuthenticationException: Authentication failed because the remote party has "
    "closed the transport stream.": "dotnet-transport-stream-closed",
    "System.IO.IOException: Unable to read data from the transport connection: net_io_connectionclosed.":
        "dotnet-unable-to-read",
}

TEXTS = {
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit "
    "https://aka.ms/smtp_auth_disabled for more information.": "smtp-5.7.139-auth-disabled",
    "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.": "smtp-5.7.139-basic-disabled",
    "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy.":
        "smtp-5.7.139-security-defaults",
    "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated "
    "successfully. Contact your administrator.": "smtp-5.7.139-conditional-access",
    "535 5.7.3 Authentication unsuccessful": "smtp-5.7.3",
    "530 5.7.57 Client not authenticated to send mail. [AM0PR02CA0001.eurprd02.prod.outlook.com]": "smtp-5.7.57",
    "550 5.7.60 SMTP; Client does not have permissions to send as this sender": "smtp-send-as-denied",
    "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending": "smtp-4.3.2-concurrent",
    "550 5.7.30 Basic authentication is not supported for Client Submission.": "smtp-5.7.30",
    "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization": "smtp-5.7.68",
    "501 5.5.127 Invalid XOAUTH2 auth data - Token will expire soon": "smtp-5.5.127-token-expiring",
    "534-5.7.9 Application-specific password required. Learn more at https://support.google.com/mail/?p="
    "InvalidSecondFactor": "smtp-gmail-5.7.9",
    "535-5.7.8 Username and Password not accepted. For more information, go to https://support.google.com/mail/?p="
    "BadCredentials": "smtp-gmail-5.7.8",
    "454 4.7.0 Too many login attempts, please try again later.": "smtp-too-many-logins",
    "421 4.3.0 Temporary System Problem. Try again later (10).": "smtp-421",
    "530 5.7.0 Must issue a STARTTLS command first.": "smtp-starttls-first",
    "550 5.4.5 Daily user sending quota exceeded.": "smtp-quota",
    "Traceback (most recent call last):\n  File \"send.py\", line 9, in <module>\n    s.login(u, p)\n"
    "smtplib.SMTPNotSupportedError: SMTP AUTH extension not supported by server.": "python-no-auth",
    "smtplib.SMTPAuthenticationError: (535, b'5.7.8 Username and Password not accepted. For more information, go "
    "to\n5.7.8  https://support.google.com/mail/?p=BadCredentials')": "smtp-gmail-5.7.8",
    "smtplib.SMTPSenderRefused: (530, b'5.7.0 Authentication Required. For more information, go to', "
    "'billing@company.test')": "smtp-auth-required",
    "ssl.SSLError: [SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)": "python-wrong-version",
    "postfix/smtp[1234]: warning: SASL authentication failure: No worthy mechs found": "postfix-no-worthy-mechs",
    "AADSTS53003: Access has been blocked by Conditional Access policies.": "aadsts53003",
    "AADSTS53000: Device is not in required device state: compliant.": "aadsts53000",
    "AADSTS7000222: The provided client secret keys for app 'x' are expired.": "aadsts7000222",
    "AADSTS700016: Application with identifier 'x' was not found in the directory 'y'.": "aadsts700016",
    "AADSTS65001: The user or administrator has not consented to use the application": "aadsts65001",
    "AADSTS50076: Due to a configuration change made by your administrator, you must use MFA": "aadsts50076",
    "ErrorAccessDenied: Access to OData is disabled.": "graph-rbac-odata",
    "AADSTS50011: The redirect URI 'http://localhost:8765' specified in the request does not match":
        "aadsts50011",
    "Error 400: admin_policy_enforced": "google-admin-policy",
    "exchangelib.errors.ErrorSendAsDenied: The user account which was used to submit this request does not have "
    "the right to send mail on behalf of the specified sending account.": "graph-send-as",
    "google.auth.exceptions.RefreshError: ('unauthorized_client: Client is unauthorized to retrieve access tokens "
    "using this method, or client not authorized for any of the scopes requested.', {...})":
        "google-unauthorized-client",
    "google.auth.exceptions.RefreshError: ('invalid_grant: Invalid email or User ID', {...})":
        "google-invalid-subject",
    "google.auth.exceptions.RefreshError: ('invalid_grant: Invalid JWT Signature.', {...})": "google-key-deleted",
    "google.auth.exceptions.RefreshError: ('invalid_grant: Token has been expired or revoked.', {...})":
        "google-invalid-grant",
    "403 Gmail API has not been used in project 123 before or it is disabled. reason: accessNotConfigured":
        "gmail-api-disabled",
}


@pytest.mark.parametrize(("text", "entry"), [*ERP_TEXTS.items(), *TEXTS.items()])
def test_each_known_text_is_explained_first_by_its_own_entry(text: str, entry: str) -> None:
    found = explain(text)
    assert found and found[0].id == entry, [item.id for item in found]
    assert found[0].fix and found[0].cause and found[0].source


@pytest.mark.parametrize("text", [
    "The weather is fine and the coffee machine works.",
    "250 2.0.0 OK 1733560000 queued as 4F2A1",
    "AADSTS99999999: something nobody has documented",
])
def test_an_unknown_text_is_no_match_rather_than_a_guess(runner: CliRunner, text: str) -> None:
    assert explain(text) == []
    result = runner.invoke(app, ["explain", text])
    assert result.exit_code == 1
    assert "no match" in result.stderr and result.stdout == ""


def test_the_erp_text_wrapping_a_reply_shows_both_client_first() -> None:
    found = explain("Failure sending mail. The SMTP server requires a secure connection or the client was not "
                    "authenticated. The server response was: 5.7.139 Authentication unsuccessful, basic "
                    "authentication is disabled.")
    assert [item.id for item in found] == ["dotnet-secure-connection", "dotnet-failure-sending",
                                          "smtp-5.7.139-basic-disabled"]


def test_a_microsoft_oauth_error_is_not_read_as_google() -> None:
    text = "unauthorized_client: AADSTS700016: Application with identifier 'x' was not found in the directory"
    assert [item.id for item in explain(text)] == ["aadsts700016"]


def test_cli_prints_cause_switch_fix_and_exit_class(runner: CliRunner) -> None:
    result = runner.invoke(app, ["explain", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
                                            "disabled for the Tenant."])
    assert result.exit_code == 0, result.output
    assert "exit class 77" in result.stdout and "Set-CASMailbox -SmtpClientAuthenticationDisabled" in result.stdout
    assert "run:     xoromail setup --service microsoft365" in result.stdout


def test_json_for_scripts(runner: CliRunner) -> None:
    result = runner.invoke(app, ["explain", "--json", "AADSTS53003: Access has been blocked by Conditional Access"])
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["ok"] is True and data["schema"] == 1
    match = data["matches"][0]
    assert match["id"] == "aadsts53003" and match["exit_code"] == 77 and match["switch"] == "Conditional Access"
    assert "--sign-in browser" in match["fix"] and "--certificate" in match["fix"]
    unknown = runner.invoke(app, ["explain", "--json", "nothing to see"])
    assert unknown.exit_code == 1 and json.loads(unknown.stdout)["matches"] == []


def test_reads_stdin_with_dash_or_when_not_a_terminal(runner: CliRunner) -> None:
    text = "534-5.7.9 Application-specific password required."
    for args in (["explain", "-"], ["explain"]):
        result = runner.invoke(app, args, input=text)
        assert result.exit_code == 0 and "app password" in result.stdout


def test_an_empty_paste_is_a_data_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["explain", "-"], input="  \n")
    assert result.exit_code == 65 and "Traceback" not in result.output


def test_commands_carry_the_profiles_values(runner: CliRunner, config_path: Path, smtp_server: ServerFactory,
                                            tls: TLSFiles) -> None:
    profile = profile_for(smtp_server(), tls, name="erp", email="billing@company.test")
    config.save_profile(config_path, profile)
    result = runner.invoke(app, ["--config", str(config_path), "--profile", "erp", "explain", "--json",
                                 "535 5.7.57 Client not authenticated to send mail"])
    command = json.loads(result.stdout)["matches"][0]["command"]
    assert command == (f"xoromail --config {config_path} --profile erp setup --service smtp "
                       "--username billing@company.test")


# The catalogue and validate never disagree ----------------------------------------------------------------------

@pytest.mark.parametrize(("reply", "entry"), [
    ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
     "smtp-5.7.139-auth-disabled"),
    ("535 5.7.139 Authentication unsuccessful, basic authentication is disabled.", "smtp-5.7.139-basic-disabled"),
    ("534 5.7.9 Application-specific password required.", "smtp-gmail-5.7.9"),
    ("534 5.7.14 <https://accounts.google.com/signin/continue> Please log in via your web browser",
     "smtp-gmail-5.7.14"),
    ("535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy.",
     "smtp-5.7.139-security-defaults"),
])
def test_validate_against_a_real_server_and_explain_say_the_same(smtp_server: ServerFactory, tls: TLSFiles,
                                                                 reply: str, entry: str) -> None:
    server = smtp_server(authenticator=failing_authenticator(reply))
    report = validate.run(profile_for(server, tls), secrets(PASSWORD))
    assert report.failed is not None
    found = explain(report.failed.detail)
    assert found[0].id == entry
    assert found[0].fix == report.failed.hint and found[0].exit_code == report.exit_code


@pytest.mark.parametrize(("stage", "host", "reply"), [
    ("auth", "smtp.office365.com", "535 5.7.3 Authentication unsuccessful"),
    ("auth", "smtp.gmail.com", "535 5.7.8 Username and Password not accepted. ?p=BadCredentials"),
    ("mail from", "smtp.office365.com", "550 5.7.60 SMTP; Client does not have permissions to send as this sender"),
    ("auth", "smtp.gmail.com", "454 4.7.0 Too many login attempts, please try again later."),
    ("data", "smtp.gmail.com", "550 5.4.5 Daily user sending quota exceeded."),
    ("mail from", "mail.company.test", "530 5.7.0 Must issue a STARTTLS command first."),
    ("auth", "smtp.office365.com", "550 5.7.30 Basic authentication is not supported for Client Submission"),
    ("data", "mail.company.test", "552 5.3.4 Message size exceeds fixed maximum message size"),
])
def test_every_reply_entry_gives_the_hint_validate_gives(stage: str, host: str, reply: str) -> None:
    code, text = int(reply[:3]), reply[4:]
    failure = reply_failure(stage, code, text, host)
    found = explain(reply)[0]
    assert (found.fix, found.exit_code) == (failure.hint, failure.exit_code), found.id


@pytest.mark.parametrize("code", sorted(SIGN_IN_RULES))
def test_every_sign_in_code_gives_the_hint_setup_gives(code: int) -> None:
    settings = Microsoft365Settings(tenant="company.test", client_id="5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f")
    description = AADSTS.get(code, ("invalid_grant", 400, f"AADSTS{code}: refused"))[2]
    error = sign_in_error({"error": "invalid_grant", "error_codes": [code], "error_description": description},
                          settings)
    found = explain(description, Context(settings=settings, tenant=settings.tenant, client_id=settings.client_id))
    assert found[0].id == f"aadsts{code}"
    assert (found[0].fix, found[0].exit_code) == (error.hint, error.exit_code)


def test_the_catalogue_is_well_formed() -> None:
    entries = catalogue()
    assert len({entry.id for entry in entries}) == len(entries)
    for entry in entries:
        assert entry.source and entry.title and isinstance(entry.exit_code, ExitCode)
        assert not entry.regex.search(""), entry.id  # an empty pattern would match everything
    assert by_id("aadsts53003").switch == "Conditional Access"


def test_explain_loads_no_service_library() -> None:
    code = ("import sys, xoromail_cli.explain as e; "
            "e.explain('AADSTS53003 5.7.139 invalid_grant Failure sending mail'); "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'requests', 'msal', 'google', 'exchangelib', "
            "'jinja2', 'aiosmtpd', 'urllib3', 'cryptography', 'typer', 'rich', 'dns', 'psycopg'}); print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_docs_explain_lists_the_whole_catalogue() -> None:
    script = Path(__file__).resolve().parent.parent / "scripts" / "gen_explain_doc.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
