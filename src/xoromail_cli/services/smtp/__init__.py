"""Web Mail: SMTP submission with STARTTLS or implicit TLS, password or XOAUTH2 sign-in."""
