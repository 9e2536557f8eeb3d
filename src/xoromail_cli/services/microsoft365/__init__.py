"""Microsoft 365: OAuth sign-in with msal, sending through Microsoft Graph (or SMTP with XOAUTH2).

Nothing here imports msal or requests at module level: they load only when a Microsoft 365 profile signs in
or sends (pinned by a test).
"""
