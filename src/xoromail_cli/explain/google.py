"""Google's OAuth errors (user sign-in and service accounts) and Gmail API errors: `services.google.hints`' texts."""

from __future__ import annotations

import dataclasses

from xoromail_cli.errors import ExitCode
from xoromail_cli.explain.entry import Context, Entry
from xoromail_cli.services.google import hints

SETUP = "{xoromail} setup --service google --email {email}"
SERVICE_ACCOUNT = "{xoromail} setup --service google --service-account KEY.json --email {email}"
MICROSOFT = r"AADSTS\d+"
SOURCE = "developers.google.com identity/protocols/oauth2; google-auth service_account.py"


def _delegation(context: Context) -> str:
    """The profile's own client ID when it signs in with a service account (else a placeholder to replace)."""
    robot = getattr(context.settings, "service_account", None)
    return hints.delegation_hint(context.client_id if robot else "CLIENT_ID")


_ENTRIES: tuple[Entry, ...] = (
    Entry(id="google-unauthorized-client", pattern=r"Client is unauthorized to retrieve access",
          loose=r"unauthorized_client",
          title="Google: the service account may not act for this mailbox (domain-wide delegation)",
          cause="domain-wide delegation is not granted to the service account's client ID, or not for the scope "
                "gmail.send",
          fix=_delegation, exit_code=ExitCode.NOPERM,
          switch="Workspace Admin console: Security → API controls → Domain-wide delegation",
          command=SERVICE_ACCOUNT, source="support.google.com/a/answer/162106; " + SOURCE),
    Entry(id="google-invalid-subject", pattern=r"Invalid email or User ID|Not a valid email or user ID",
          title="Google: the mailbox is not a user of the Workspace domain",
          cause="the subject (--email) is outside the domain, a typo, an alias, or a suspended or deleted user",
          fix=hints.SUBJECT_HINT, exit_code=ExitCode.NOPERM, switch="Workspace Admin console: the user's status",
          command=SERVICE_ACCOUNT, source=SOURCE),
    Entry(id="google-key-deleted", pattern=r"invalid_grant: Invalid JWT", loose=r"Invalid JWT Signature",
          title="Google: the service account key is not valid any more",
          cause="the key was deleted or disabled in the Cloud console (or the service account was deleted)",
          fix=hints.KEY_DELETED_HINT, exit_code=ExitCode.NOPERM, command=SERVICE_ACCOUNT, source=SOURCE),
    Entry(id="google-invalid-grant", pattern=r"Token has been expired or revoked",
          loose=r"invalid_grant", fallback=True,
          title="Google: the sign-in expired or was revoked",
          cause="a consent screen in Testing ends refresh tokens after 7 days; a password change or removed access "
                "ends them too",
          fix=hints.EXPIRED_HINT, exit_code=ExitCode.NOPERM, command=SETUP,
          source="support.google.com/cloud/answer/15549945"),
    Entry(id="google-invalid-client", pattern=r"deleted_client|OAuth client was not found", loose=r"invalid_client",
          title="Google: the OAuth client is not accepted", cause="the OAuth client was deleted or its secret reset",
          fix=hints.CLIENT_HINT, exit_code=ExitCode.CONFIG,
          command="{xoromail} setup --service google --client-secrets CLIENT.json", source=SOURCE),
    Entry(id="google-access-denied", pattern=r"has not completed the Google verification", loose=r"access_denied",
          title="Google: sign-in not allowed",
          cause="the user clicked Cancel, or is not a test user of an app in Testing status",
          fix=hints.SETUP_AGAIN + " and click Allow (an app in Testing lists its test users on the OAuth consent "
                                  "screen)", exit_code=ExitCode.NOPERM, command=SETUP, source=SOURCE),
    Entry(id="google-org-internal", pattern=r"org_internal|can only be used within its organization",
          title="Google: the app is Internal to another organisation",
          cause="the consent screen is Internal, and the account signing in belongs to another Workspace",
          fix="sign in with an account of the organisation that owns the Cloud project, or make the consent screen "
              "External (and publish it)", exit_code=ExitCode.NOPERM, command=SETUP, source=SOURCE),
    Entry(id="google-admin-policy", pattern=r"admin_policy_enforced",
          title="Google: blocked by the Workspace admin's API access policy",
          cause="the Workspace admin restricts which third-party apps may access Google data",
          fix="an admin trusts the OAuth client (Admin console → Security → API controls → App access control → "
              "Manage third-party app access → add the client ID, Trusted)", exit_code=ExitCode.NOPERM,
          switch="Workspace Admin console: API controls → App access control", command=SETUP, source=SOURCE),
    Entry(id="gmail-api-disabled", pattern=r"Gmail API has not been used",
          loose=r"accessNotConfigured|SERVICE_DISABLED",
          title="Gmail API disabled for the project", cause="the Gmail API is not enabled in the Cloud project",
          fix=hints.ENABLE_API_HINT + ": https://console.cloud.google.com/apis/library/gmail.googleapis.com, wait a "
                                      "few minutes, then try again",
          exit_code=ExitCode.CONFIG, switch="Cloud console: APIs & Services → Gmail API → Enable",
          command="{xoromail} validate", source="developers.google.com workspace/gmail/api"),
    Entry(id="gmail-scope", pattern=None, loose=r"insufficientPermissions|ACCESS_TOKEN_SCOPE_INSUFFICIENT|"
                                                 r"insufficient authentication scopes",
          title="Gmail API: the token may not send", cause="the sign-in did not grant gmail.send",
          fix=hints.SCOPE_HINT, exit_code=ExitCode.NOPERM, command=SETUP, source="developers.google.com"),
    Entry(id="gmail-quota", pattern=None, loose=r"dailyLimitExceeded|\b(user)?RateLimitExceeded|\bquotaExceeded|"
                                                 r"User-rate limit exceeded",
          title="Gmail API: sending limit reached", cause="the daily or per-minute limit of the account or project",
          fix=hints.QUOTA_HINT, exit_code=ExitCode.TEMPFAIL, source="developers.google.com gmail/api quota"),
    Entry(id="gmail-precondition", pattern=None, loose=r"Precondition check failed|failedPrecondition",
          title="Gmail API: precondition failed",
          cause="a service account called the Gmail API without acting for a Workspace user (no delegation "
                "subject), or the mailbox has no Gmail service",
          fix="use domain-wide delegation with --email set to a Workspace user who has Gmail: "
              + hints.SERVICE_ACCOUNT_SETUP, exit_code=ExitCode.CONFIG, command=SERVICE_ACCOUNT,
          source="developers.google.com gmail/api (service accounts)"),
    Entry(id="gmail-mail-service-disabled", pattern=r"Mail service not enabled",
          title="Gmail is not enabled for this user", cause="the user has no Gmail licence or Gmail is off for "
                                                            "their organisational unit",
          fix="an admin turns Gmail on for the user (Admin console → Apps → Google Workspace → Gmail → Service "
              "status)", exit_code=ExitCode.UNAVAILABLE, switch="Workspace Admin console: Gmail service status",
          source="developers.google.com gmail/api"),
)

ENTRIES = tuple(dataclasses.replace(entry, unless=MICROSOFT) for entry in _ENTRIES)
"""OAuth error names are shared with Microsoft's sign-in: a text quoting an AADSTS code is Microsoft's."""
