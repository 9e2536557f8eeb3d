"""`xoromail relay`: an SMTP submission port for software that can only send with a password.

Accepted means durable: `spool` keeps each message in its own fsynced file before the relay answers 250;
`server` is the listener (its own accept loop: `--allow-ip`, connection limits, the descriptor limit) in front
of aiosmtpd sessions (`session`: login deadline, AUTH throttle from `auth_limits`, DATA read within `limits`,
TLS from `tls`); `handler` checks addresses and keeps messages, read and mended by `message` and `mending`;
`upstream` learns the service's maximum size; `delivery` hands spooled messages to the profile's service
through the shared `sending.Sender` (ledger, retries, pacing, quota stops).
"""
