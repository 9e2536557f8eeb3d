"""`xoromail relay`: an SMTP submission port for software that can only send with a password.

Accepted means durable: `spool` keeps each message in its own fsynced file before the relay answers 250;
`server` is the aiosmtpd front; `delivery` hands spooled messages to the profile's service through the
shared `sending.Sender` (ledger, retries, pacing, quota stops).
"""
