"""The hint table: (stage, exception or server reply) → cause, hint and exit code, in one place.

Every known failure of a mail server, the network or TLS is explained here, so `validate`, `setup`
and `send` say the same thing about the same problem.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable

from xoromail_cli.errors import ExitCode, StageFailedError
from xoromail_cli.services.advisories import office365_smtp_auth
from xoromail_cli.services.deadline import DeadlineExceededError
from xoromail_cli.services.network import TEMPORARY_HINT, is_timeout, network_failure, os_text
from xoromail_cli.services.smtp.presets import is_gmail, is_office365

SERVER_PORT_HINT = "check the outgoing server and port: 587 with STARTTLS, or 465 with SSL"
SSL_MISMATCH_HINT = (
    "the SSL setting does not match the port: use port 587 with security starttls, "
    "or port 465 with security ssl"
)
CREDENTIALS_HINT = "re-check the username and password (the username is usually the full email address)"
GMAIL_APP_PASSWORD_HINT = (
    "Gmail needs an app password: turn on 2-Step Verification for the account, create a 16-character "  # noqa: S105  # advice, not a password
    "app password at myaccount.google.com/apppasswords, and use it as the password"
)
WEAK_MECHANISM_HINT = (
    "the server finds the sign-in mechanism too weak (RFC 4954: 534 5.7.9 Authentication mechanism is too weak): "
    "xoromail signs in with PLAIN or LOGIN, which servers accept only over an encrypted connection: use security "
    "starttls (port 587) or ssl (port 465); if the connection is already encrypted, the server wants another "
    "mechanism (the one its EHLO lists after AUTH): ask its administrator to allow PLAIN or LOGIN over TLS"
)
"""534 5.7.9 from any server but Gmail (RFC 4954 §6); Gmail uses the code for "Application-specific password
required" (provider facts), so its hint needs Gmail's words or a Gmail host."""
GMAIL_BLOCKED_HINT = (
    "Google blocked the sign-in: sign in to the account once in a web browser from this network, "
    "then use a 16-character app password (needs 2-Step Verification)"
)
def _o365_auth_disabled(host: str) -> str:
    return ("SMTP AUTH is disabled for the tenant or this mailbox: an admin must enable 'Authenticated SMTP' "
            "for the mailbox (Microsoft 365 admin center → user → Mail → Manage email apps), or use OAuth; "
            + office365_smtp_auth())


def _o365_basic_auth(host: str) -> str:
    return ("Microsoft no longer accepts a password sign-in for this account: OAuth is needed, or an admin "
            "must allow SMTP AUTH for the mailbox; " + office365_smtp_auth())
O365_POLICY_HINT = (
    "the organisation's security defaults or conditional access block password sign-in over SMTP: "
    "ask an admin to exclude this mailbox or move to OAuth"
)
SEND_AS_HINT = (
    "the server does not let this account send as the From address: the From address must be the "
    "mailbox you sign in with, or the mailbox needs Send As rights for it"
)
SENDER_DOMAIN_HINT = (
    "the server cannot find the From address's domain in DNS (no MX or A record): check the From address "
    "for typos; if it is right, the domain's DNS must publish an MX or A record (a 4xx reply may also be a "
    "passing DNS failure: try again later)"
)
THROTTLED_HINT = "the server is throttling sign-ins: wait a few minutes; send over one connection, not many"
SIZE_HINT = ("the message is larger than the server accepts (its SIZE limit): send smaller or fewer "
             "attachments, or links to the files")
QUOTA_HINT = "the account's daily sending limit is reached: wait up to 24 hours, or spread the batch"
DOWNGRADE_HINT = (
    "the server did not offer STARTTLS, so the password was not sent (it would travel unencrypted, "
    "and a missing STARTTLS can mean someone is stripping it): check the server and port, or use "
    "port 465 with security ssl"
)
TOO_LARGE_HINT = (
    "the message is larger than the server accepts: attach fewer or smaller files (compress them, or put a "
    "link in the message instead); re-sending will not help"
)
STARTTLS_FIRST_HINT = (
    "the server wants STARTTLS before sign-in: change the security setting from none to starttls "
    "(`xoromail setup --security starttls`); the port can stay"
)
RATE_HINT = (
    "the server limits how fast this account may send: pace the batch with --rate (e.g. --rate 20/min, or "
    "`rate` in the profile); a re-run sends the rows not sent"
)
NO_AUTH_HINT = (
    "the server does not offer sign-in (AUTH) on this connection: check the port (587 STARTTLS or "
    "465 SSL); some relays accept mail without a username"
)


class ProtocolViolationError(smtplib.SMTPException):
    """The server broke SMTP itself: an endless multi-line reply, an overlong line, data slipped in before TLS."""


SLOW_SERVER_HINT = ("the server answers too slowly or not at all (each reply must end within the profile's "
                    "timeout): try again later, or raise `timeout` in the profile if the server is just slow")
PROTOCOL_VIOLATION_HINT = ("the server does not speak SMTP properly (or something between here and it interferes): "
                           "check the server and port, and ask its administrator")


def stage_failure(stage: str, exc: BaseException, host: str, port: int, timeout: float) -> StageFailedError:
    """Turn what went wrong during `stage` into the error the user sees."""
    if isinstance(exc, StageFailedError):
        return exc
    answered = _reply_failure(stage, exc, host)
    if answered is not None:
        return answered
    bounded = _bound_failure(stage, exc, host, port)
    if bounded is not None:
        return bounded
    known = network_failure(stage, exc, host, port, timeout, where_hint=SERVER_PORT_HINT, tls_hint=SSL_MISMATCH_HINT,
                            name_hint=_name_hint(host))
    if known is not None:
        return known
    if stage == "ehlo" and (is_timeout(exc) or isinstance(exc, smtplib.SMTPServerDisconnected)):
        return StageFailedError(stage, f"{host}:{port} accepted the connection but sent no SMTP greeting "
                                f"within {timeout:g} s", SSL_MISMATCH_HINT + " (port 465 expects ssl)",
                                ExitCode.PROTOCOL)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        if "STARTTLS" in str(exc):
            return StageFailedError(stage, "the server did not offer STARTTLS", DOWNGRADE_HINT,
                                    ExitCode.PROTOCOL)
        return StageFailedError(stage, "the server did not offer AUTH", NO_AUTH_HINT, ExitCode.PROTOCOL)
    if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError | TimeoutError):
        return StageFailedError(stage, f"the connection to {host}:{port} was lost: {os_text(exc)}",
                                TEMPORARY_HINT, ExitCode.TEMPFAIL)
    if isinstance(exc, smtplib.SMTPException | OSError):
        return StageFailedError(stage, f"{type(exc).__name__}: {os_text(exc)}", SERVER_PORT_HINT,
                                ExitCode.UNAVAILABLE)
    raise exc


def _reply_failure(stage: str, exc: BaseException, host: str) -> StageFailedError | None:
    """The server answered, and the answer says what is wrong."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return reply_failure(stage, exc.smtp_code, reply_text(exc.smtp_error), host)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        return reply_failure(stage, code, reply_text(text), host)
    return None


def _bound_failure(stage: str, exc: BaseException, host: str, port: int) -> StageFailedError | None:
    """A server too slow to finish a reply or handshake (75), or one breaking SMTP itself (76)."""
    if isinstance(exc, ProtocolViolationError):
        return StageFailedError(stage, f"{host}:{port} broke the SMTP protocol: {exc}", PROTOCOL_VIOLATION_HINT,
                                ExitCode.PROTOCOL)
    if isinstance(exc, DeadlineExceededError) and (exc.started or stage != "ehlo"):
        return StageFailedError(stage, f"{host}:{port} is too slow: {exc}", SLOW_SERVER_HINT, ExitCode.TEMPFAIL)
    return None


def _name_hint(host: str) -> str:
    """A preset's own host does not have typos: then it is the network or DNS of this machine."""
    from xoromail_cli.services.smtp.presets import preset_for_host

    if preset_for_host(host) is not None:
        return f"{host} is the provider's own server: check this machine's network and DNS settings"
    return "check the outgoing server name (e.g. smtp.office365.com)"


_Rule = tuple[Callable[[int, str, str], bool], str | Callable[[str], str], ExitCode]


def _has(*needles: str) -> Callable[[int, str, str], bool]:
    lowered = [n.lower() for n in needles]
    return lambda code, text, stage: any(n in text.lower() for n in lowered)


def _unknown_sender_domain(text: str) -> bool:
    lowered = text.lower()
    return "sender address rejected" in lowered and "domain not found" in lowered


def _mechanism_too_weak(host: str) -> str:
    """A bare 534 5.7.9: Gmail's app-password answer on a Gmail host, RFC 4954's "too weak" anywhere else."""
    return GMAIL_APP_PASSWORD_HINT if is_gmail(host) else WEAK_MECHANISM_HINT


def _wrong_credentials(host: str) -> str:
    if is_gmail(host):
        return f"{CREDENTIALS_HINT}; for Gmail, the normal password is refused: {GMAIL_APP_PASSWORD_HINT}"
    if is_office365(host):
        return (f"{CREDENTIALS_HINT}; if they are right, SMTP AUTH may be disabled for the mailbox: "
                f"{office365_smtp_auth()}")
    return CREDENTIALS_HINT


_RULES: list[_Rule] = [
    (_has("application-specific password", "invalidsecondfactor"), GMAIL_APP_PASSWORD_HINT, ExitCode.NOPERM),
    (lambda code, text, stage: re.search(r"\b5\.7\.9\b", text) is not None, _mechanism_too_weak, ExitCode.NOPERM),
    (_has("5.7.14"), GMAIL_BLOCKED_HINT, ExitCode.NOPERM),
    (_has("smtpclientauthentication is disabled", "smtp_auth_disabled"), _o365_auth_disabled,
     ExitCode.NOPERM),
    (_has("basic authentication is disabled", "5.7.30"), _o365_basic_auth, ExitCode.NOPERM),
    (_has("security defaults", "did not meet the criteria"), O365_POLICY_HINT, ExitCode.NOPERM),
    (_has("5.7.60", "sendasdenied", "not owned by user"), SEND_AS_HINT, ExitCode.NOPERM),
    (lambda code, text, stage: _unknown_sender_domain(text) and code < 500, SENDER_DOMAIN_HINT,
     ExitCode.TEMPFAIL),  # Postfix reject_unknown_sender_domain: 450 4.1.8 by default (DNS may be down)
    (lambda code, text, stage: _unknown_sender_domain(text), SENDER_DOMAIN_HINT, ExitCode.DATAERR),
    (lambda code, text, stage: code == 530 and "starttls" in text.lower(), STARTTLS_FIRST_HINT,
     ExitCode.PROTOCOL),
    (_has("5.7.57"), "the server requires sign-in before sending: set the username and password",
     ExitCode.NOPERM),
    (lambda code, text, stage: stage == "mail from" and code >= 500 and "5.7." in text, SEND_AS_HINT,
     ExitCode.NOPERM),
    (lambda code, text, stage: "5.3.4" in text or "5.2.3" in text or (code == 552 and "size" in text.lower()),
     TOO_LARGE_HINT, ExitCode.DATAERR),  # RFC 3463 X.3.4 / X.2.3, RFC 1870 §6: the message is too large
    (_has("5.4.5", "sending quota", "sending limit", "submissionquotaexceeded"), QUOTA_HINT, ExitCode.TEMPFAIL),
    (lambda code, text, stage: "5.3.4" in text or (code == 552 and stage == "data")
     or any(n in text.lower() for n in ("message size exceeds", "too much mail data")), SIZE_HINT, ExitCode.DATAERR),
    (lambda code, text, stage: stage == "rcpt to" and code >= 500 and "5.7." in text,
     "the server will not deliver to this recipient for this account (relaying denied or policy): "
     "check the recipient, and that you signed in", ExitCode.NOPERM),
    (_has("too many login"), THROTTLED_HINT, ExitCode.TEMPFAIL),
    (lambda code, text, stage: 400 <= code < 500 and any(
        needle in text.lower() for needle in ("too much mail", "too many messages", "message rate")),
     RATE_HINT, ExitCode.TEMPFAIL),
    (lambda code, text, stage: stage == "auth" and code in (534, 535, 550, 554), _wrong_credentials,
     ExitCode.NOPERM),
    (lambda code, text, stage: 400 <= code < 500, TEMPORARY_HINT, ExitCode.TEMPFAIL),
    (lambda code, text, stage: stage == "rcpt to" or "5.1.1" in text,
     "the server refused the recipient address: check it for typos", ExitCode.DATAERR),
]


def reply_failure(stage: str, code: int, text: str, host: str) -> StageFailedError:
    """Explain a server's reply; the reply itself is quoted in the message."""
    report_stage = "send" if stage in ("mail from", "rcpt to", "data") else stage
    detail = f"server replied: {code} {text}".rstrip()
    for matches, hint, exit_code in _RULES:
        if matches(code, text, stage):
            return StageFailedError(report_stage, detail, hint(host) if callable(hint) else hint, exit_code)
    return StageFailedError(report_stage, detail, "the server refused the request; see its reply",
                            ExitCode.UNAVAILABLE)


def reply_text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())
