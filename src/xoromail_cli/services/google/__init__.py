"""Google "Email services": sign in with OAuth (Connect and Allow), send through the Gmail API.

Nothing heavy is imported here: google-auth, google-auth-oauthlib and requests load only inside the functions
that sign in, refresh or send, so `xoromail --help` and SMTP profiles never pay for them.
"""
