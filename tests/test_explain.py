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
    "Dec  7 10:05:01 erp postfix/smtp[4312]: 3F1A22C0B1: SASL authentication failed; server smtp.office365.com"
    "[52.98.1.2] said: 535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.":
        "smtp-5.7.139-credentials",
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
    "534 5.7.9 Authentication mechanism is too weak": "smtp-5.7.9-weak-mechanism",
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
    "  File \"/usr/lib/python3.12/smtplib.py\", line 1022, in __init__\nssl.SSLError: [SSL: WRONG_VERSION_NUMBER] "
    "wrong version number (_ssl.c:1006)": "python-wrong-version",
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


OTHER_SOFTWARE = [  # what databases, web APIs and other tools print: words an SMTP entry also uses, no mail in sight
    'psql: error: connection to server at "db.internal" (10.0.0.7), port 5432 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?",
    'psycopg.OperationalError: connection failed: connection to server at "127.0.0.1", port 5432 failed: '
    "Connection refused",
    'FATAL:  password authentication failed for user "erp"',
    "System.Data.SqlClient.SqlException (0x80131904): Login failed for user 'erp'. Authentication failed.",
    "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='api.stripe.com', port=443): Read timed out.",
    "ssh: connect to host build.internal port 22: Connection refused",
    "redis.exceptions.ConnectionError: Error 111 connecting to localhost:6379. Connection refused.",
    "curl: (22) The requested URL returned error: 401 Unauthorized (https://erp.internal/api/invoices)",
    "GitHub API: 429 Too Many Requests, secondary rate limit",
    "NameResolutionError: Failed to resolve 'pypi.org' ([Errno -3] Temporary failure in name resolution)",
    '{"error":"invalid_grant","error_description":"The provided authorization grant is invalid"} (Keycloak)',
    "ERROR 2003 (HY000): Can't connect to MySQL server on '10.0.0.9:3306' (111 \"Connection refused\")",
    "java.net.ConnectException: Connection timed out: connect",
    "Version 5.7.30 of MySQL server is end of life",
    "Invoice 429 could not be printed: printer offline",
    "Order 421-7734 could not be saved",
    "npm WARN deprecated left-pad@4.3.2: use String.prototype.padStart()",
    "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed (pypi.org:443)",
    "System.Net.WebException: Unable to connect to the remote server (https://api.bank.test/rates)",
    "407 Proxy Authentication Required",
    "The referenced account is currently locked out and may not be logged on to.",
    "Dec  7 10:25:01 db01 postgres[1234]: could not connect to the primary: Connection refused",  # :25 of a time
    "2026-12-07 09:465 worker 587: timed out",
    "ExchangeRateService: Connection refused (rates.ecb.test:443)",  # an ERP fetches exchange rates
    "GraphQL error: 429 Too Many Requests",
    "Microsoft SQL Server: Login failed for user 'erp'. Authentication failed.",
    "Google Maps API: 429 rateLimitExceeded",
    "Cloud Translation API has not been used in project 123 before or it is disabled. reason: SERVICE_DISABLED",
    "org.springframework.security.authentication.BadCredentialsException: Bad credentials",
    "HTTP 401 from the shop API: Invalid JWT Signature",
    "vault: warning: Token will expire soon, renew it",
    "403 Request had insufficient authentication scopes. (Google Drive API)",
]


@pytest.mark.parametrize("text", OTHER_SOFTWARE)
def test_another_programs_error_is_not_explained_as_mail(text: str) -> None:
    assert [item.id for item in explain(text)] == []


@pytest.mark.parametrize(("text", "entry"), [
    ("smtplib.SMTPConnectError: [Errno 111] Connection refused (smtp.company.test:587)", "net-refused"),
    ("No connection could be made because the target machine actively refused it 10.0.0.5:25", "net-refused"),
    ("dial tcp [::1]:587: connect: connection refused", "net-refused"),
    ("connect to relay.company.test port 465: Connection timed out", "net-timeout"),
    ("socket.gaierror: [Errno -2] Name or service not known: smtp.office365.cmo", "net-name"),
    ("550 5.1.1 <ap@fabrikam.test>: Recipient address rejected: User unknown", "smtp-unknown-user"),
    ("Remote Server returned '550 5.7.30'", "smtp-5.7.30"),
    ("421 4.7.0 Try again later, closing connection. (EHLO) - gsmtp", "smtp-421"),
    ("HTTP/1.1 429 Too Many Requests from graph.microsoft.com", "graph-throttled"),
])
def test_a_generic_text_is_explained_when_it_is_about_mail(text: str, entry: str) -> None:
    assert explain(text)[0].id == entry


def test_a_refused_sender_is_send_as_only_when_the_server_says_so() -> None:
    assert explain("553 5.7.1 <a@b.test>: Sender address rejected: not owned by user erp@company.test")[0].id == \
        "smtp-send-as-denied"
    assert "smtp-send-as-denied" not in [item.id for item in explain(
        "450 4.1.8 <billing@company.test>: Sender address rejected: Domain not found")]


def test_a_bare_5_7_8_is_any_servers_refused_password_not_gmails() -> None:
    """Postfix and Dovecot refuse a password with 535 5.7.8 too: Gmail's entry (and its app-password fix) needs
    Gmail's own words."""
    postfix = explain("535 5.7.8 Error: authentication failed: authentication failure")
    assert [item.id for item in postfix] == ["smtp-auth-failed"]
    assert explain("535 5.7.8 Username and Password not accepted - gsmtp")[0].id == "smtp-gmail-5.7.8"
    assert explain("smtp.gmail.com refused the password: 535 5.7.8")[0].id == "smtp-gmail-5.7.8"


def test_a_534_5_7_9_is_gmails_app_password_only_with_gmails_words() -> None:
    """RFC 4954's 534 5.7.9 is "Authentication mechanism is too weak"; Gmail alone means "use an app password"."""
    gmail = explain("534-5.7.9 Application-specific password required. Learn more at "
                    "https://support.google.com/mail/?p=InvalidSecondFactor")
    assert [item.id for item in gmail] == ["smtp-gmail-5.7.9"] and "app password" in gmail[0].fix
    assert explain("534 5.7.9 Please retry - gsmtp")[0].id == "smtp-gmail-5.7.9"
    for text in ("534 5.7.9 Authentication mechanism is too weak", "534 5.7.9 Please use a stronger mechanism"):
        other = explain(text)
        assert [item.id for item in other] == ["smtp-5.7.9-weak-mechanism"], text
        assert "too weak" in other[0].fix and "starttls" in other[0].fix and "app password" not in other[0].fix
        assert other[0].exit_code == ExitCode.NOPERM
    on_gmail = explain("534 5.7.9 Please retry", Context(host="smtp.gmail.com"))[0]
    assert on_gmail.fix == reply_failure("auth", 534, "5.7.9 Please retry", "smtp.gmail.com").hint


def test_an_exchange_submission_quota_is_not_also_gmails() -> None:
    text = "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message"
    assert [item.id for item in explain(text)] == ["smtp-quota"]


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


def test_no_text_at_a_terminal_is_a_usage_error_not_a_wait_for_stdin() -> None:
    """At a keyboard, `xoromail explain` alone says how to give the text (exit 2) instead of waiting on stdin."""
    import os

    from tests.support.terminal import Terminal

    terminal = Terminal(["explain"], dict(os.environ))
    assert terminal.wait(timeout=30) == 2, terminal.text
    assert "no error text given" in terminal.text and "hint:" in terminal.text


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
    ("534 5.7.9 Authentication mechanism is too weak", "smtp-5.7.9-weak-mechanism"),
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
    ("auth", "mail.company.test", "535 5.7.8 Error: authentication failed: authentication failure"),  # Postfix
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
        assert not entry.search(""), entry.id  # an empty pattern would match everything
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


def test_the_delegation_fix_quotes_the_profiles_service_account_client_id() -> None:
    from xoromail_cli.profile import Profile
    from xoromail_cli.services.google.settings import GoogleSettings

    robot = Profile(name="g", email="billing@company.test", service="google", settings=GoogleSettings(
        client_id="113456789012345678901", service_account="sender@p.iam.gserviceaccount.com"))
    text = "google.auth.exceptions.RefreshError: ('unauthorized_client: Client is unauthorized to retrieve access"
    [found] = explain(text, Context.from_profile(robot))
    assert "client ID 113456789012345678901 and exactly the scope" in found.fix
    assert "client ID CLIENT_ID" in explain(text)[0].fix  # no profile: the placeholder to replace


@pytest.mark.parametrize(("sign_in", "code", "option"), [
    ("device-code", 53003, "--sign-in browser --redirect-port 8765"),
    ("browser", 53003, "--sign-in device-code"),
    ("browser", 53000, "--sign-in device-code"),
])
def test_a_conditional_access_block_runs_the_other_flow(sign_in: str, code: int, option: str) -> None:
    settings = Microsoft365Settings(tenant="company.test", client_id="5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f",
                                    sign_in=sign_in)  # type: ignore[arg-type]  # the parametrised flow name
    context = Context(settings=settings, tenant=settings.tenant, client_id=settings.client_id, email="b@company.test")
    [found] = explain(f"AADSTS{code}: Access has been blocked by Conditional Access policies.", context)
    assert found.command is not None and found.command.endswith(option) and option in found.fix
    assert found.command.startswith("xoromail setup --service microsoft365 --tenant company.test --client-id 5f6e")


def test_the_usage_line_reads_plainly(runner: CliRunner) -> None:
    assert "Usage: xoromail explain [OPTIONS] [TEXT]..." in runner.invoke(app, ["explain", "--help"]).stdout


@pytest.mark.parametrize(("text", "entry"), [  # the ERP on a German Windows shows .NET's German texts
    ("System.Net.Mail.SmtpException: Fehler beim Senden von Mail. ---> System.IO.IOException",
     "dotnet-failure-sending"),
    ("Der SMTP-Server erfordert eine sichere Verbindung, oder der Client war nicht authentifiziert. Die "
     "Serverantwort war: 5.7.57 Client not authenticated to send mail.", "dotnet-secure-connection"),
    ("System.Net.Mail.SmtpException: Der Server unterstützt keine sicheren Verbindungen.", "dotnet-no-secure-support"),
    ("Fehler bei der Authentifizierung, da die Gegenseite den Transportstream geschlossen hat.",
     "dotnet-transport-stream-closed"),
    ("Von der Übertragungsverbindung können keine Daten gelesen werden: net_io_connectionclosed.",
     "dotnet-unable-to-read"),
])
def test_the_erps_texts_in_german(text: str, entry: str) -> None:
    assert explain(text)[0].id == entry


def test_an_expired_secrets_command_is_the_one_the_expiry_note_gives() -> None:
    from xoromail_cli.profile import Profile
    from xoromail_cli.services import expiry

    [found] = explain("AADSTS7000222: The provided client secret keys for app 'x' are expired.")
    app_only = Profile(name="default", email="b@company.test", service="microsoft365", settings=Microsoft365Settings(
        tenant="company.test", client_id="5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f", mode="app",
        client_secret_expires="2026-12-08"))
    [note] = expiry.notes_for(app_only)
    assert found.command == note.command
