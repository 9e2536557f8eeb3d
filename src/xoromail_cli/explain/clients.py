""".NET's `System.Net.Mail.SmtpClient` texts: what the ERP shows (shared provider facts, "The ERP's own client"),
in English and as a German Windows shows them.

SmtpClient wraps the server's reply ("The server response was: 5.7.…"), so a pasted text usually matches one
of these and one SMTP reply entry too; both are shown, the client's first.
"""

from __future__ import annotations

from xoromail_cli.errors import ExitCode
from xoromail_cli.explain.entry import Entry

SOURCE = "learn.microsoft.com, System.Net.Mail.SmtpClient (EnableSsl remarks); shared provider facts"
RELAY = ("or let the ERP send to `xoromail relay` on this machine (localhost, no TLS needed) and have xoromail "
         "sign in to the provider")
ERP_STARTTLS = ("in the ERP's mail settings: port 587 with SSL/TLS (EnableSsl) on — SmtpClient speaks STARTTLS "
                "only and cannot use port 465")

ENTRIES: tuple[Entry, ...] = (
    Entry(id="dotnet-secure-connection",
          pattern=r"The SMTP server requires a secure connection or the client was not authenticated|"
                  r"SMTP-Server erfordert eine sichere Verbindung",
          title=".NET SmtpClient: secure connection required, or not authenticated",
          cause="the server answered 530/5.7.0 or 5.7.1: either the ERP did not start TLS (EnableSsl off), or the "
                "user name and password were refused (or not sent: UseDefaultCredentials)",
          fix=f"{ERP_STARTTLS}; user name = the full mailbox address and its password (for Microsoft 365 and Gmail "
              f"a password may not be accepted at all: see the server's reply below); {RELAY}",
          exit_code=ExitCode.NOPERM, command="{xoromail} relay", source=SOURCE),
    Entry(id="dotnet-failure-sending", pattern=r"Failure sending mail|Fehler beim Senden von Mail",
          title=".NET SmtpClient: failure sending mail",
          cause="any transport failure under the message: wrong host or port, connection refused, a firewall, a "
                "TLS failure, or port 465 (implicit TLS, which SmtpClient cannot speak); the inner exception says "
                "which",
          fix=f"{ERP_STARTTLS}; check the host name and that this machine may reach it on 587 "
              "(`{xoromail} validate --no-send` tests the same from here); " + RELAY,
          exit_code=ExitCode.UNAVAILABLE, command="{xoromail} validate --no-send", source=SOURCE),
    Entry(id="dotnet-no-secure-support", pattern=r"Server does not support secure connections|"
                                                    r"Server unterstützt keine sicheren Verbindungen",
          title=".NET SmtpClient: the server does not support secure connections",
          cause="EnableSsl is on but the server did not offer STARTTLS: a port that expects implicit TLS (465), "
                "a plain relay port (25), or something stripping STARTTLS",
          fix="use port 587 with EnableSsl; to send to `xoromail relay` on localhost, turn EnableSsl off (or give "
              "the relay a certificate: `xoromail relay --tls-cert CERT.pem --tls-key KEY.pem`)",
          exit_code=ExitCode.PROTOCOL, command="{xoromail} relay", source=SOURCE),
    Entry(id="dotnet-transport-stream-closed",
          pattern=r"Authentication failed because the remote party has closed the transport stream|"
                  r"Gegenseite den Transportstream geschlossen",
          title=".NET SmtpClient: TLS handshake closed by the server",
          cause="the TLS handshake failed: an old .NET Framework offering only TLS 1.0/1.1 (Microsoft 365 and Gmail "
                "require TLS 1.2), or a port/TLS mode mismatch",
          fix="enable TLS 1.2 for .NET on the ERP's machine (registry SchUseStrongCrypto = 1 and "
              "SystemDefaultTlsVersions = 1 under .NETFramework v4.0.30319, then restart the ERP) and use port "
              "587; " + RELAY,
          exit_code=ExitCode.PROTOCOL, command="{xoromail} relay", source=SOURCE),
    Entry(id="dotnet-unable-to-read", pattern=r"Unable to read data from the transport connection|"
                                                 r"Übertragungsverbindung können keine Daten gelesen werden",
          title=".NET SmtpClient: the connection was closed mid-conversation",
          cause="the server or a firewall closed or reset the connection (net_io_connectionclosed): a blocked "
                "port 587/25, an antivirus scanning SMTP, a timeout, or port 465 with STARTTLS",
          fix="check that this machine may reach the server on 587 (`{xoromail} validate --no-send` from the "
              "same machine), look for an antivirus or firewall intercepting SMTP; " + RELAY,
          exit_code=ExitCode.TEMPFAIL, command="{xoromail} validate --no-send", source=SOURCE),
    Entry(id="dotnet-unable-to-connect", pattern=None, loose=r"Unable to connect to the remote server",
          title=".NET: unable to connect to the remote server",
          cause="nothing answered on that host and port (wrong host or port, firewall, no network)",
          fix="check the host and port in the ERP (587 for STARTTLS); `{xoromail} validate --no-send` tests the "
              "same path from here",
          exit_code=ExitCode.UNAVAILABLE, command="{xoromail} validate --no-send", source=SOURCE),
    Entry(id="dotnet-mailbox-unavailable", pattern=r"Mailbox unavailable\. The server response was", fallback=True,
          title=".NET SmtpClient: mailbox unavailable",
          cause="the server refused the sender or a recipient (550): see the server's reply",
          fix="check the From address (the signed-in mailbox, or one it may send as) and the recipients",
          exit_code=ExitCode.DATAERR, source=SOURCE),
)
