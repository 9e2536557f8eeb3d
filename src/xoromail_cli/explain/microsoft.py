"""Microsoft's sign-in (AADSTS codes), Graph and EWS errors.

AADSTS entries take their fix and exit class from `services.microsoft365.hints.SIGN_IN_RULES` (what setup and
validate say); the others quote the Graph and Exchange hint texts.
"""

from __future__ import annotations

from collections.abc import Callable

from xoromail_cli.errors import ExitCode
from xoromail_cli.explain.entry import Context, Entry, Text
from xoromail_cli.services.exchange import hints as ews
from xoromail_cli.services.microsoft365 import hints

SETUP = "{xoromail} setup --service microsoft365 --tenant {tenant} --client-id {client_id} --email {email}"
ERRORS = "learn.microsoft.com, Microsoft Entra authentication and authorization error codes"
FACTS = "shared provider facts"


def _rule(code: int) -> Callable[[Context], str]:
    return lambda context: hints.SIGN_IN_RULES[code][1](context.microsoft365())


def _other_flow(code: int) -> Callable[[Context], str]:
    """Setup with the sign-in flow a Conditional Access block leaves open (the one its fix names)."""
    return lambda context: f"{SETUP} {hints.other_flow(code, context.microsoft365())}"


def _aadsts(code: int, title: str, cause: str, *, switch: str | None = None,
            command: Text | None = SETUP) -> Entry:
    kind = hints.SIGN_IN_RULES[code][0]
    return Entry(id=f"aadsts{code}", pattern=rf"AADSTS{code}\b", title=f"AADSTS{code}: {title}", cause=cause,
                 fix=_rule(code), exit_code=kind.exit_code, switch=switch, command=command,
                 source=f"{ERRORS}; {FACTS}")


def _own(code: int, title: str, cause: str, fix: str, exit_code: ExitCode, *, switch: str | None = None,
         command: str | None = SETUP) -> Entry:
    """An AADSTS code setup does not meet itself (the user's account, a password flow of another tool)."""
    return Entry(id=f"aadsts{code}", pattern=rf"AADSTS{code}\b", title=f"AADSTS{code}: {title}", cause=cause,
                 fix=fix, exit_code=exit_code, switch=switch, command=command, source=ERRORS)


def _ews_credentials(context: Context) -> str:
    return ews.credentials_hint("https://outlook.office365.com/EWS/Exchange.asmx")


ENTRIES: tuple[Entry, ...] = (
    _aadsts(53003, "blocked by Conditional Access", "a Conditional Access policy refused this sign-in flow "
            "(Microsoft recommends blocking the device-code flow)", switch="Conditional Access",
            command=_other_flow(53003)),
    _aadsts(53000, "device not compliant", "a Conditional Access policy requires a compliant (managed) device for "
            "this sign-in, and this machine is not one", switch="Conditional Access (device compliance)",
            command=_other_flow(53000)),
    _aadsts(53001, "device not domain-joined", "a Conditional Access policy requires a hybrid-joined device",
            switch="Conditional Access (device state)", command=_other_flow(53001)),
    _aadsts(65001, "consent required", "nobody consented to the app's permissions in this tenant",
            switch="tenant: admin consent (Entra admin center → Enterprise applications → consent)"),
    _aadsts(50076, "multi-factor authentication required", "the tenant requires MFA for this sign-in",
            switch="Conditional Access / security defaults (MFA)"),
    _aadsts(50079, "MFA registration required", "the user must register for multi-factor authentication",
            switch="security defaults (MFA registration)"),
    _aadsts(700016, "application not found in the tenant", "the client ID is not an app registration of this "
            "tenant (often an email or an object ID typed as client ID, or the wrong tenant)"),
    _aadsts(90002, "tenant not found", "no such tenant in this cloud"),
    _aadsts(7000215, "invalid client secret", "the secret's ID was given instead of its Value, or it is wrong",
            command="{xoromail} setup --service microsoft365 --client-secret-stdin --client-secret-expires YYYY-MM-DD"),
    _aadsts(7000222, "client secret expired", "the app registration's client secret has passed its end date",
            command="{xoromail} setup --service microsoft365 --client-secret-stdin --client-secret-expires YYYY-MM-DD"),
    _aadsts(70008, "refresh token expired", "the sign-in was not used for too long, or was revoked"),
    _aadsts(700082, "refresh token expired (90 days unused)", "Microsoft refresh tokens expire after 90 days "
            "unused"),
    _own(50126, "invalid user name or password", "the password (or user name) is wrong",
         "re-check the account's password; xoromail's Microsoft 365 service signs in in the browser or with a device "
         "code and never needs it", ExitCode.NOPERM),
    _own(50034, "user does not exist", "no such account in this tenant",
         "check the address for typos, and that it belongs to this tenant (--tenant)", ExitCode.CONFIG),
    _own(50057, "account disabled", "the user account is disabled in Entra ID",
         "an admin must enable the account (Entra admin center → Users → the user → Account enabled)",
         ExitCode.NOPERM, switch="tenant: the user's 'Account enabled'"),
    _own(50053, "account locked", "too many wrong sign-ins, or sign-in from a blocked IP address",
         "wait for the lock to end (Smart Lockout) or ask an admin to unblock; then sign in again", ExitCode.NOPERM),
    _own(50105, "user not assigned to the app", "the enterprise application requires assignment and this user "
         "is not assigned", "an admin assigns the user (Enterprise applications → the app → Users and groups)",
         ExitCode.NOPERM, switch="tenant: 'Assignment required' of the enterprise application"),
    _own(7000218, "public client flows are off", "the app registration does not allow public client flows, so "
         "a device-code or browser sign-in without a secret is refused",
         "turn on 'Allow public client flows' (App registrations → the app → Authentication), or use app-only "
         "sign-in with --certificate", ExitCode.CONFIG, switch="app registration: Allow public client flows"),
    _own(700027, "client assertion signature invalid", "the certificate's public half is not uploaded to the app "
         "registration, or another key signed the assertion",
         "upload the certificate (its .cer/.pem public part) under Certificates & secrets of the app registration, "
         "then `{xoromail} setup --service microsoft365 --certificate APP.pem`", ExitCode.NOPERM),
    _own(50173, "grant expired after a password change", "the password changed or sessions were revoked",
         hints.SETUP_AGAIN, ExitCode.NOPERM),
    _own(50011, "redirect URI not registered", "the browser flow's loopback address is not a redirect URI of the "
         "app registration",
         "add the platform 'Mobile and desktop applications' with the redirect URI http://localhost (Authentication "
         "→ Add a platform); any --redirect-port then works", ExitCode.CONFIG,
         switch="app registration: redirect URIs",
         command="{xoromail} setup --service microsoft365 --sign-in browser --redirect-port 8765"),
    _own(50020, "account from another tenant", "the account that signed in is not a member (or guest) of this "
         "tenant", "sign in with an account of tenant {tenant}, or set --tenant to the account's own tenant",
         ExitCode.CONFIG),
    _own(500011, "resource not found in the tenant", "the API (Exchange Online / Microsoft Graph) has no service "
         "principal in this tenant: often a tenant without Exchange Online, or a national cloud mix-up",
         "check that the tenant has Exchange Online mailboxes, and --cloud", ExitCode.CONFIG),
    _own(65004, "consent declined", "the user declined the permissions at sign-in",
         "sign in again and accept, or have an admin grant consent for the tenant", ExitCode.NOPERM),
    # Graph ---------------------------------------------------------------------------------------------------
    Entry(id="graph-rbac-odata", pattern=r"Access to OData is disabled",
          title="Graph: the app may not send as this mailbox (RBAC for Applications)",
          cause="application Mail.Send is scoped by RBAC for Applications or an application access policy that "
                "excludes this mailbox",
          fix="add the mailbox to the management scope of the app's 'Application Mail.Send' role (New-"
              "ManagementRoleAssignment -App … -CustomResourceScope …), or to the application access policy",
          exit_code=ExitCode.NOPERM, switch="tenant: RBAC for Applications / application access policy",
          command="{xoromail} validate", source="learn.microsoft.com exchange/permissions-exo/application-rbac"),
    Entry(id="graph-send-as", pattern=r"ErrorSendAsDenied",
          title="Graph/EWS: not allowed to send as this address",
          cause="the signed-in account has no Send As right for the From mailbox", fix=ews.SEND_AS_HINT,
          exit_code=ExitCode.NOPERM, switch="mailbox: Send As permission", source="Graph and EWS error codes"),
    Entry(id="graph-no-mailbox", pattern=r"MailboxNotEnabledForRESTAPI|ErrorNonExistentMailbox|ErrorInvalidUser",
          title="No Exchange Online mailbox for this address",
          cause="the address has no licensed Exchange Online mailbox (or it is on-premises, or a typo)",
          fix=ews.NO_MAILBOX_HINT, exit_code=ExitCode.UNAVAILABLE, command="{xoromail} setup --email ADDRESS",
          source="Graph and EWS error codes"),
    Entry(id="graph-mime", pattern=r"ErrorMimeContent|ErrorMessageSizeExceeded",
          title="Graph/EWS: the message was not accepted (MIME or size)",
          cause="bad MIME, or larger than the request limit (about 4 MB through Graph)",
          fix="Microsoft Graph did not accept this message (size or MIME): check its attachments",
          exit_code=ExitCode.DATAERR, source="microsoft-graph-docs user-sendmail.md"),
    Entry(id="graph-throttled", pattern=r"ApplicationThrottled|MailboxConcurrency",
          loose=r"TooManyRequests|Too Many Requests|\b429\b",
          title="Throttled (429)", cause="too many requests for the app or the mailbox",
          fix="wait for the Retry-After time and send more slowly (Exchange Online allows 30 messages a minute)",
          exit_code=ExitCode.TEMPFAIL, command="{xoromail} send --rate 20/min …", source="throttling-limits.md"),
    Entry(id="graph-token", pattern=r"InvalidAuthenticationToken", loose=r"Access token has expired",
          title="Graph: access token refused", cause="the token expired or was meant for another API",
          fix="the access token was refused: it is renewed before the next try; if this repeats, "
              + hints.SETUP_AGAIN, exit_code=ExitCode.NOPERM, command="{xoromail} validate",
          source="Graph error codes"),
    Entry(id="graph-access-denied", pattern=r"ErrorAccessDenied|Authorization_RequestDenied", fallback=True,
          title="Graph/EWS: access denied", cause="the app lacks Mail.Send (with consent) for this kind of sign-in",
          fix="grant Mail.Send to the app registration (delegated for a signed-in user, application with admin "
              "consent for app-only), then " + hints.SETUP_AGAIN,
          exit_code=ExitCode.NOPERM, switch="tenant: API permissions and admin consent", command=SETUP,
          source="Graph error codes"),
    # EWS -----------------------------------------------------------------------------------------------------
    Entry(id="ews-quota", pattern=r"ErrorQuotaExceeded", title="EWS: mailbox over its storage quota",
          cause="Exchange cannot save the copy in Sent Items", fix=ews.QUOTA_HINT, exit_code=ExitCode.TEMPFAIL,
          source="EWS response codes"),
    Entry(id="ews-busy", pattern=r"ErrorServerBusy", title="EWS: throttled", cause="Exchange is throttling",
          fix=ews.BUSY_HINT, exit_code=ExitCode.TEMPFAIL, source="EWS response codes"),
    Entry(id="ews-locked", pattern=None, loose=r"locked out", title="The account is locked out",
          cause="too many wrong passwords", fix=ews.LOCKED_HINT, exit_code=ExitCode.NOPERM,
          source="exchangelib UnauthorizedError"),
    Entry(id="ews-no-auth-type", pattern=r"Failed to get auth type from service",
          title="EWS: no usable sign-in at this URL",
          cause="the URL is not an EWS endpoint (404), or the server offers no authentication xoromail can use",
          fix=ews.url_hint("THE-URL-YOU-GAVE"), exit_code=ExitCode.UNAVAILABLE,
          command="{xoromail} setup --service exchange --ews-url https://SERVER/EWS/Exchange.asmx",
          source="exchangelib TransportError"),
    Entry(id="ews-401", pattern=None, loose=r"\(401\) Unauthorized|401:? Unauthorized|UnauthorizedError", fallback=True,
          title="401 Unauthorized", cause="the credentials were refused (on Exchange Online: Basic auth is off)",
          fix=_ews_credentials, exit_code=ExitCode.NOPERM, command="{xoromail} validate --no-send",
          source="exchangelib UnauthorizedError; " + FACTS),
)
