"""SMTP replies (Microsoft 365, Gmail, any server), Python smtplib failures and Postfix/SASL log lines.

The fixes are `services.smtp.replies`' hint texts: what `validate` says about the same reply.
"""

from __future__ import annotations

from collections.abc import Callable

from xoromail_cli.errors import ExitCode
from xoromail_cli.explain.entry import Context, Entry
from xoromail_cli.services.network import TEMPORARY_HINT, UNTRUSTED_HINT
from xoromail_cli.services.smtp import replies
from xoromail_cli.services.smtp.presets import is_gmail

O365 = "smtp.office365.com"
GMAIL = "smtp.gmail.com"
FACTS = "shared provider facts"
SETUP_SMTP = "{xoromail} setup --service smtp"
SETUP_M365 = "{xoromail} setup --service microsoft365 --tenant {tenant} --client-id {client_id} --email {email}"


def _o365_disabled(context: Context) -> str:
    return replies._o365_auth_disabled(O365)


def _o365_basic(context: Context) -> str:
    return replies._o365_basic_auth(O365)


def _credentials(host: str) -> Callable[[Context], str]:
    """What `validate` says about a refused password on `host` (Gmail and Microsoft have their own advice)."""
    return lambda context: replies._wrong_credentials(host)


OWN_SIGN_IN = {"microsoft365": SETUP_M365, "google": "{xoromail} setup --service google",
               "exchange": "{xoromail} setup --service exchange"}
"""A profile of another service signs in its own way: setting it up again is its fix, never a switch to an SMTP
password (`setup --service smtp` would replace the profile's service)."""
SIGN_IN_NEEDED = "the server requires sign-in before sending: set the username and password"
OAUTH_SIGN_IN_NEEDED = (
    "the server requires sign-in before sending; this profile signs in with {how}, never with a password: sign in "
    "again (the command below keeps the profile's service); if the ERP sent this, let it send to `xoromail relay` "
    "on this machine, which signs in for it")


def _smtp_sign_in(command: str) -> Callable[[Context], str]:
    """`command` (an SMTP password setup) for an SMTP profile or none; the profile's own sign-in otherwise."""
    return lambda context: (command if context.service in (None, "smtp")
                            else OWN_SIGN_IN.get(context.service, f"{{xoromail}} setup --service {context.service}"))


def _smtp_setting(command: str) -> Callable[[Context], str]:
    """A setup that changes an SMTP profile's server, port or TLS (`--host`, `--port`, `--security`: options of the
    SMTP service only): for a profile of another service, which has no such settings, the check of its own
    connection instead (the text came from another client, such as the ERP)."""
    return lambda context: command if context.service in (None, "smtp") else "{xoromail} validate --no-send"


def _sign_in_needed(context: Context) -> str:
    """Set a username and password, unless the profile signs in with OAuth (Microsoft 365, Google)."""
    how = {"microsoft365": "Microsoft 365 OAuth", "google": "Google (OAuth or a service account)"}
    if context.service not in how:
        return SIGN_IN_NEEDED
    return OAUTH_SIGN_IN_NEEDED.format(how=how[context.service])


def _weak_mechanism_cause(context: Context) -> str:
    if is_gmail(context.host):
        return "from Gmail, 5.7.9 means 2-Step Verification is on: the normal password is refused over SMTP"
    return ("the server refuses the sign-in mechanism on this connection (RFC 4954): it accepts PLAIN or LOGIN "
            "only over TLS, or wants another mechanism")


def _weak_mechanism_fix(context: Context) -> str:
    """What `validate` says about a bare 534 5.7.9 from the profile's server (Gmail's app password on Gmail)."""
    return replies._mechanism_too_weak(context.host)


def _o365_refused(context: Context) -> str:
    """A refused sign-in at Microsoft: for a Microsoft 365 profile, the OAuth side of it, not a password."""
    if context.service != "microsoft365":
        return replies._wrong_credentials(O365)
    return ("Microsoft refused the sign-in over SMTP: this profile signs in with OAuth, never a password; "
            "Authenticated SMTP must be on for the mailbox (Microsoft 365 admin center → user → Mail → Manage email "
            "apps) and the app must have SMTP.Send, or send through Graph, which needs neither (--send-via graph)")


def _o365_refused_command(context: Context) -> str:
    if context.service != "microsoft365":
        return "{xoromail} validate --no-send"
    return SETUP_M365 + " --send-via graph"


ENTRIES: tuple[Entry, ...] = (
    # Microsoft 365 ------------------------------------------------------------------------------------------
    Entry(id="smtp-5.7.139-auth-disabled", pattern=r"SmtpClientAuthentication is disabled|smtp_auth_disabled",
          title="Microsoft 365: SMTP AUTH is disabled for the tenant or the mailbox",
          cause="the tenant (or this mailbox) has Authenticated SMTP turned off, so no sign-in over SMTP is accepted",
          fix=_o365_disabled, exit_code=ExitCode.NOPERM,
          switch="tenant / mailbox: Authenticated SMTP (Set-TransportConfig -SmtpClientAuthenticationDisabled "
                 "$false, or per mailbox Set-CASMailbox -SmtpClientAuthenticationDisabled $false)",
          command=SETUP_M365, source="simonrob/email-oauth2-proxy#193; " + FACTS),
    Entry(id="smtp-5.7.139-basic-disabled", pattern=r"basic authentication is disabled",
          title="Microsoft 365: password sign-in (Basic auth) is not accepted",
          cause="the mailbox may not sign in with a password over SMTP: OAuth is needed",
          fix=_o365_basic, exit_code=ExitCode.NOPERM,
          switch="tenant: SMTP AUTH Basic authentication (off by default from the end of December 2026)",
          command=SETUP_M365, source="nodemailer/nodemailer#1714; MC786329"),
    Entry(id="smtp-5.7.139-security-defaults", pattern=r"security defaults",
          title="Microsoft 365: blocked by the tenant's security defaults",
          cause="security defaults block password sign-in over SMTP (legacy authentication)",
          fix=replies.O365_POLICY_HINT, exit_code=ExitCode.NOPERM, switch="security defaults",
          command=SETUP_M365, source=FACTS),
    Entry(id="smtp-5.7.139-conditional-access", pattern=r"did not meet the criteria to be authenticated",
          title="Microsoft 365: blocked by a Conditional Access policy",
          cause="a Conditional Access policy refused this sign-in (location, legacy authentication, device)",
          fix=replies.O365_POLICY_HINT, exit_code=ExitCode.NOPERM, switch="Conditional Access",
          command=SETUP_M365, source=FACTS),
    Entry(id="smtp-5.7.139-credentials", pattern=r"the user credentials were incorrect",
          title="Microsoft 365: the user name or password is wrong",
          cause="Microsoft refused the password (or the mailbox may not sign in with one)",
          fix=_o365_refused, exit_code=ExitCode.NOPERM, switch="mailbox: Authenticated SMTP",
          command=_o365_refused_command, source=FACTS),
    Entry(id="smtp-5.7.139", pattern=None, loose=r"5\.7\.139", fallback=True,
          title="Microsoft 365: authentication unsuccessful",
          cause="Microsoft refused the sign-in: wrong credentials, or SMTP AUTH / Basic auth is off for the mailbox",
          fix=_o365_refused, exit_code=ExitCode.NOPERM, switch="mailbox: Authenticated SMTP",
          command=_o365_refused_command, source=FACTS),
    Entry(id="smtp-5.7.3", pattern=None, loose=r"\b5\.7\.3\b",
          title="Authentication unsuccessful (5.7.3)",
          cause="the server refused the user name or password",
          fix=_o365_refused, exit_code=ExitCode.NOPERM, command=_o365_refused_command, source="MS-SMTPNTLM"),
    Entry(id="smtp-5.7.57", pattern=r"Client not authenticated to send mail", loose=r"\b5\.7\.57\b",
          title="Client not authenticated to send mail",
          cause="the client sent MAIL FROM without signing in (no AUTH, or AUTH failed unnoticed)",
          fix=_sign_in_needed, exit_code=ExitCode.NOPERM, command=_smtp_sign_in(SETUP_SMTP + " --username {email}"),
          source="simonrob/email-oauth2-proxy#315"),
    Entry(id="smtp-send-as-denied",
          pattern=r"(?<!Error)SendAsDenied|does not have permissions to send as",
          loose=r"\b5\.7\.60\b|not owned by user",
          title="Not allowed to send as this From address",
          cause="the signed-in account is not the From address and has no Send As right for it",
          fix=replies.SEND_AS_HINT, exit_code=ExitCode.NOPERM, switch="mailbox: Send As permission",
          command="{xoromail} validate", source="swiftmailer/swiftmailer#1030; OfficeDocs-Support#1187"),
    Entry(id="smtp-5.7.30", pattern=r"Basic authentication is not supported for Client Submission",
          loose=r"\b5\.7\.30\b",
          title="Microsoft 365: Basic authentication retired for client submission",
          cause="password SMTP AUTH has been removed for this tenant", fix=_o365_basic,
          exit_code=ExitCode.NOPERM, command=SETUP_M365, source="Exchange Team Blog 4114750"),
    Entry(id="smtp-5.7.68", pattern=r"Direct Send not allowed|TenantInboundAttribution", loose=r"\b5\.7\.68\b",
          title="Microsoft 365: Direct Send is switched off for the tenant",
          cause="mail sent to the tenant's MX without signing in (Direct Send) is refused: the tenant set "
                "RejectDirectSend",
          fix="sign in to send: use smtp.office365.com:587 with OAuth (`{xoromail} setup --service microsoft365`) "
              "instead of the MX host, or an admin allows Direct Send again",
          exit_code=ExitCode.NOPERM, switch="Direct Send (Set-OrganizationConfig -RejectDirectSend $false)",
          command=SETUP_M365, source="Exchange Team Blog 4408790"),
    Entry(id="smtp-4.3.2-concurrent", pattern=r"4\.3\.2 Concurrent connections|Concurrent connections limit",
          title="Microsoft 365: more than 3 connections for one mailbox",
          cause="Exchange Online accepts at most 3 concurrent SMTP connections per mailbox; the 4th is refused",
          fix="send over fewer connections: `--connections 1` (or at most 3), and let one `xoromail relay` carry "
              "the ERP's mail instead of several senders",
          exit_code=ExitCode.TEMPFAIL, command="{xoromail} send --connections 1 …",
          source="learn.microsoft.com, SMTP submission improvements"),
    Entry(id="smtp-4.3.2", pattern=None, loose=r"\b4\.3\.2\b", fallback=True,
          title="Service not available (4.3.2)", cause="the server is temporarily not accepting mail",
          fix=TEMPORARY_HINT, exit_code=ExitCode.TEMPFAIL, source="RFC 3463"),
    Entry(id="smtp-5.5.127-token-expiring", pattern=r"XOAUTH2 auth data - Token will expire soon",
          loose=r"\b5\.5\.127\b|Token will expire soon",
          title="High Volume Email: the OAuth token expires too soon",
          cause="HVE refuses an XOAUTH2 token that expires within 600 seconds",
          fix="xoromail renews the token at least 600 s before it expires: run `{xoromail} validate`; other "
              "clients (sasl-xoauth2) must refresh earlier",
          exit_code=ExitCode.NOPERM, command="{xoromail} validate", source="tarickb/sasl-xoauth2; MC1243552"),
    # Gmail ---------------------------------------------------------------------------------------------------
    # 534 5.7.9 is Gmail's app-password answer only with Gmail's words or host; from other servers it is RFC 4954's
    # "Authentication mechanism is too weak" (`smtp-5.7.9-weak-mechanism`, what validate says for that server).
    Entry(id="smtp-gmail-5.7.9", pattern=r"Application-specific password required|InvalidSecondFactor",
          loose=r"\b5\.7\.9\b.*(?:gsmtp|gmail)|(?:gsmtp|gmail).*\b5\.7\.9\b",
          title="Gmail: an app password is required",
          cause="2-Step Verification is on for the account: the normal password is refused over SMTP",
          fix=replies.GMAIL_APP_PASSWORD_HINT, exit_code=ExitCode.NOPERM,
          command=_smtp_sign_in(SETUP_SMTP + " --preset gmail --username {email}"), source="Der-Henning/tgtg#517"),
    # A 5.7.8 is Gmail's only with Gmail's words: Postfix and Dovecot refuse a password with "535 5.7.8 Error:
    # authentication failed", which is `smtp-auth-failed` (what validate says for that server).
    Entry(id="smtp-gmail-5.7.8", pattern=r"p=BadCredentials|Username and Password not accepted",
          loose=r"BadCredentials|\b5\.7\.8\b.*(?:gsmtp|gmail)|(?:gsmtp|gmail).*\b5\.7\.8\b",
          title="Gmail: user name and password not accepted",
          cause="wrong password, or the normal password where an app password is needed",
          fix=_credentials(GMAIL), exit_code=ExitCode.NOPERM,
          command=_smtp_sign_in(SETUP_SMTP + " --preset gmail --username {email}"),
          source="nodemailer/nodemailer#1656"),
    Entry(id="smtp-gmail-5.7.14", pattern=r"Please log in via your web browser", loose=r"\b5\.7\.14\b",
          title="Gmail: Google blocked the sign-in", cause="Google considered the sign-in suspicious",
          fix=replies.GMAIL_BLOCKED_HINT, exit_code=ExitCode.NOPERM, source="node-red/node-red-nodes#284"),
    Entry(id="smtp-quota", pattern=r"sending quota|SubmissionQuotaExceeded", loose=r"\b5\.4\.5\b",
          title="Daily sending limit reached", cause="the account sent its daily allowance",
          fix=replies.QUOTA_HINT, exit_code=ExitCode.TEMPFAIL,
          source="gophish/gophish#1604; OfficeDocs-Support PR #1488"),
    Entry(id="smtp-too-many-logins", pattern=r"Too many login attempts",
          title="Too many sign-ins", cause="the server throttles sign-ins from this account or address",
          fix=replies.THROTTLED_HINT, exit_code=ExitCode.TEMPFAIL, source="nodemailer/nodemailer#1388"),
    # Any server ----------------------------------------------------------------------------------------------
    Entry(id="smtp-starttls-first", pattern=r"Must issue a STARTTLS command first|530 5\.7\.0 (?!Authentication)",
          title="STARTTLS needed before sign-in", cause="the client signed in or sent before starting TLS",
          fix=replies.STARTTLS_FIRST_HINT, exit_code=ExitCode.PROTOCOL,
          command=_smtp_setting("{xoromail} setup --security starttls"), source=FACTS + " (reproduced locally)"),
    Entry(id="smtp-auth-required", pattern=r"5\.7\.0 Authentication Required|5\.7\.1 Client was not authenticated",
          loose=r"Authentication required",
          title="Sign-in required before sending",
          cause="the client sent mail without signing in (no AUTH, or no username set)",
          fix=_sign_in_needed, exit_code=ExitCode.NOPERM, command=_smtp_sign_in(SETUP_SMTP + " --username {email}"),
          source="RFC 4954 §6"),
    Entry(id="smtp-5.7.9-weak-mechanism", pattern=r"mechanism (?:is )?too weak", loose=r"\b5\.7\.9\b",
          unless=r"Application-specific password|InvalidSecondFactor|gsmtp|gmail",
          title="Authentication mechanism too weak (534 5.7.9)",
          cause=_weak_mechanism_cause, fix=_weak_mechanism_fix, exit_code=ExitCode.NOPERM,
          command=_smtp_setting("{xoromail} setup --security starttls"), source="RFC 4954 §6"),
    Entry(id="smtp-too-large", pattern=r"message size exceeds|552 5\.2\.3", loose=r"\b5\.3\.4\b",
          title="Message too large", cause="the message is larger than the server's SIZE limit",
          fix=replies.TOO_LARGE_HINT, exit_code=ExitCode.DATAERR, source="RFC 3463, RFC 1870"),
    Entry(id="smtp-relay-denied", pattern=r"Relay(ing)? access denied|relaying denied|Unable to relay",
          title="Relaying denied", cause="the server does not accept mail for other domains from this client "
                                         "(not signed in, or not allowed to relay)",
          fix="sign in (set a username and password) or send through the server that accepts this sender",
          exit_code=ExitCode.NOPERM, command=_smtp_sign_in(SETUP_SMTP + " --username {email}"),
          source="RFC 5321 §3.6"),
    Entry(id="smtp-unknown-user", pattern=r"recipient address rejected", loose=r"\b5\.1\.1\b|user unknown",
          title="Unknown recipient", cause="the receiving server has no such mailbox",
          fix="the server refused the recipient address: check it for typos", exit_code=ExitCode.DATAERR,
          source="RFC 3463"),
    Entry(id="smtp-421", pattern=None, loose=r"\b421[ -]", fallback=True,
          title="Service not available (421)", cause="the server closed the session for now",
          fix=TEMPORARY_HINT, exit_code=ExitCode.TEMPFAIL, source="RFC 5321; corecode/dma#72"),
    Entry(id="smtp-auth-failed", pattern=None, loose=r"\b535[ -]|authentication (failed|unsuccessful)", fallback=True,
          title="Sign-in refused", cause="the server refused the user name or password",
          fix=replies.CREDENTIALS_HINT, exit_code=ExitCode.NOPERM, command="{xoromail} validate --no-send",
          source="RFC 4954"),
    # Python smtplib / ssl --------------------------------------------------------------------------------------
    Entry(id="python-wrong-version", pattern=None, loose=r"WRONG_VERSION_NUMBER|record layer failure",
          title="TLS mode does not match the port",
          cause="implicit TLS (SMTP_SSL) was tried on a STARTTLS port such as 587", fix=replies.SSL_MISMATCH_HINT,
          exit_code=ExitCode.PROTOCOL, command=_smtp_setting("{xoromail} setup --port 587 --security starttls"),
          source=FACTS + " (reproduced locally)"),
    Entry(id="python-unexpectedly-closed", pattern=r"Connection unexpectedly closed",
          title="The server closed the connection",
          cause="often a plain connection to an implicit-TLS port (465), which waits silently, or a firewall",
          fix=replies.SSL_MISMATCH_HINT + " (port 465 expects ssl)", exit_code=ExitCode.PROTOCOL,
          command=_smtp_setting("{xoromail} setup --port 465 --security ssl"), source=FACTS + " (reproduced locally)"),
    Entry(id="python-no-auth", pattern=r"SMTP AUTH extension not supported",
          title="The server offers no sign-in here",
          cause="AUTH is offered only after STARTTLS, or not on this port", fix=replies.NO_AUTH_HINT,
          exit_code=ExitCode.PROTOCOL, command=_smtp_setting("{xoromail} setup --security starttls"), source=FACTS),
    Entry(id="python-no-starttls", pattern=r"STARTTLS extension not supported",
          title="The server did not offer STARTTLS", cause="wrong port, or someone strips STARTTLS",
          fix=replies.DOWNGRADE_HINT, exit_code=ExitCode.PROTOCOL, source=FACTS),
    Entry(id="tls-untrusted", pattern=None, loose=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|"
                                                   r"remote certificate is invalid",
          title="The server's certificate is not trusted",
          cause="the certificate does not match the host name, has expired, or is signed by an unknown CA "
                "(a TLS-inspecting proxy)",
          fix=UNTRUSTED_HINT, exit_code=ExitCode.PROTOCOL, command="{xoromail} setup --ca-file CA.pem",
          source="CPython ssl"),
    Entry(id="net-refused", pattern=None, loose=r"Connection refused|actively refused|Errno 111|ECONNREFUSED",
          title="Connection refused", cause="nothing listens on that host and port, or a firewall rejects it",
          fix=replies.SERVER_PORT_HINT, exit_code=ExitCode.UNAVAILABLE, command="{xoromail} validate --no-send",
          source="POSIX ECONNREFUSED"),
    Entry(id="net-name", pattern=None, loose=r"Name or service not known|getaddrinfo failed|nodename nor servname|"
                                              r"No such host is known|Temporary failure in name resolution",
          title="Server name not found", cause="DNS does not know the server name (typo, or no DNS)",
          fix="check the outgoing server name (e.g. smtp.office365.com), and this machine's DNS",
          exit_code=ExitCode.UNAVAILABLE, command=_smtp_setting("{xoromail} setup --host SERVER"),
          source="getaddrinfo(3)"),
    Entry(id="net-timeout", pattern=None, loose=r"timed out", fallback=True,
          title="Timed out", cause="no answer in time: a firewall dropping the port, or a TLS mode mismatch",
          fix=replies.SERVER_PORT_HINT, exit_code=ExitCode.TEMPFAIL, source="POSIX ETIMEDOUT"),
    # Postfix / Cyrus SASL ----------------------------------------------------------------------------------------
    Entry(id="postfix-no-worthy-mechs", pattern=r"No worthy mechs found",
          title="Postfix: no usable SASL mechanism",
          cause="Cyrus SASL has no plugin for the mechanisms the server offers (libsasl2-modules missing, or "
                "smtp_sasl_security_options forbids plaintext over TLS)",
          fix="install libsasl2-modules (and sasl-xoauth2 for XOAUTH2) and set smtp_sasl_security_options = "
              "noanonymous; or let `xoromail relay` carry the mail with its own sign-in",
          exit_code=ExitCode.CONFIG, command="{xoromail} relay", source="Postfix SASL_README"),
    Entry(id="postfix-tls-not-offered", pattern=r"TLS is required, but was not offered",
          title="Postfix: TLS required but not offered", cause="the next hop did not offer STARTTLS",
          fix=replies.DOWNGRADE_HINT, exit_code=ExitCode.PROTOCOL, source="Postfix TLS_README"),
    Entry(id="postfix-sasl-failed", pattern=r"SASL authentication failed", fallback=True,
          title="Postfix: SASL sign-in failed", cause="the relay host refused Postfix's sign-in (see its reply)",
          fix=replies.CREDENTIALS_HINT + "; in Postfix: smtp_sasl_password_maps (postmap it after editing)",
          exit_code=ExitCode.NOPERM, source="Postfix SASL_README"),
)
