"""A real DNS server on 127.0.0.1 (dnslib, UDP and TCP on one port) that answers from test zones.

Names in a zone answer their records; a name the zones do not hold answers NXDOMAIN; a known name with no
record of the asked type answers NOERROR with no answer (NODATA), as an authoritative server does. UDP answers
over 512 bytes come back truncated, so dnspython retries them over TCP, as it does against real servers.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dnslib import QTYPE, RCODE, RR, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

ZONES = """
; Microsoft 365, the classic forms: MX at mail.protection.outlook.com, DKIM CNAMEs at onmicrosoft.com.
contoso.test.                 300 IN MX    0 contoso-test.mail.protection.outlook.com.
contoso.test.                 300 IN TXT   "v=spf1 include:spf.protection.outlook.com -all"
contoso.test.                 300 IN TXT   "MS=ms84927351"
contoso.test.                 300 IN TXT   "google-site-verification=Zq8m1fL0sP2yX7wT4vB9nC3dR6kE5hJ0aU1iO2pQwErTy"
contoso.test.                 300 IN TXT   "docusign=4c5a9b7e-2f1d-4e8a-9b3c-7d6e5f4a3b2c"
contoso.test.                 300 IN TXT   "atlassian-domain-verification=Kx9yZ2wV5uT8sR1qP4oN7mL0kJ3iH6gF9eD2cB5aXyZwVuTsRqPo"
contoso.test.                 300 IN TXT   "apple-domain-verification=AbCdEfGhIjKlMnOp"
contoso.test.                 300 IN TXT   "adobe-idp-site-verification=8f2e4c6a1b3d5f7e9a0c2e4f6a8b0d2c4e6f8a0b2d4c6e8f0a2b4c6d8e0f2a4b"
contoso.test.                 300 IN TXT   "facebook-domain-verification=q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5"
selector1._domainkey.contoso.test. 300 IN CNAME selector1-contoso-test._domainkey.contoso.onmicrosoft.com.
selector2._domainkey.contoso.test. 300 IN CNAME selector2-contoso-test._domainkey.contoso.onmicrosoft.com.
selector1-contoso-test._domainkey.contoso.onmicrosoft.com. 300 IN TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu7"
selector2-contoso-test._domainkey.contoso.onmicrosoft.com. 300 IN TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAw3"
_dmarc.contoso.test.          300 IN TXT   "v=DMARC1; p=reject; rua=mailto:dmarc-reports@contoso.test"
spf.protection.outlook.com.   300 IN TXT   "v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip4:52.100.0.0/15 ip4:104.47.0.0/17 ip6:2a01:111:f400::/48 -all"
contoso-test.mail.protection.outlook.com. 300 IN A 52.101.68.5

; Microsoft 365, the forms given to domains added since July 2026: *.mx.microsoft and …dkim.mail.microsoft.
fabrikam.test.                300 IN MX    0 fabrikam-test.o-v1.mx.microsoft.
fabrikam.test.                300 IN TXT   "v=spf1 include:spf.protection.outlook.com -all"
selector1._domainkey.fabrikam.test. 300 IN CNAME selector1-fabrikam-test._domainkey.fabrikam.n-v1.dkim.mail.microsoft.
selector2._domainkey.fabrikam.test. 300 IN CNAME selector2-fabrikam-test._domainkey.fabrikam.n-v1.dkim.mail.microsoft.
selector1-fabrikam-test._domainkey.fabrikam.n-v1.dkim.mail.microsoft. 300 IN TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx1"
selector2-fabrikam-test._domainkey.fabrikam.n-v1.dkim.mail.microsoft. 300 IN TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx2"
_dmarc.fabrikam.test.         300 IN TXT   "v=DMARC1; p=reject; rua=mailto:dmarc@fabrikam.test"

; Google Workspace, DMARC in monitoring mode only.
gardens.test.                 300 IN MX    1 smtp.google.com.
gardens.test.                 300 IN TXT   "v=spf1 include:_spf.google.com ~all"
google._domainkey.gardens.test. 300 IN TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAg9"
_dmarc.gardens.test.          300 IN TXT   "v=DMARC1; p=none; rua=mailto:dmarc@gardens.test"
_spf.google.com.              300 IN TXT   "v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 ip4:66.102.0.0/20 ip6:2001:4860:4000::/36 ~all"

; Google Workspace, the older aspmx set; no DKIM key published.
orchard.test.                 300 IN MX    1 aspmx.l.google.com.
orchard.test.                 300 IN MX    5 alt1.aspmx.l.google.com.
orchard.test.                 300 IN MX    10 aspmx2.googlemail.com.
orchard.test.                 300 IN TXT   "v=spf1 include:_spf.google.com ~all"
_dmarc.orchard.test.          300 IN TXT   "v=DMARC1; p=quarantine; rua=mailto:dmarc@orchard.test"

; A domain whose SPF leaves the sending relay out, and with no DMARC record.
acme.test.                    300 IN MX    10 mx1.acme.test.
acme.test.                    300 IN TXT   "v=spf1 mx ip4:198.51.100.16/28 ~all"
mx1.acme.test.                300 IN A     198.51.100.10
mail.relay.test.              300 IN A     192.0.2.77
mail.relay.test.              300 IN AAAA  2001:db8::77
out.acme.test.                300 IN A     198.51.100.25

; A domain with mail servers and nothing else: no SPF, no DKIM, no DMARC.
bare.test.                    300 IN MX    10 mx.bare.test.
mx.bare.test.                 300 IN A     192.0.2.10

; A subdomain that sends with the organisational domain's DMARC, and an SPF record with a deprecated ptr.
billing.contoso.test.         300 IN MX    0 contoso-test.mail.protection.outlook.com.
billing.contoso.test.         300 IN TXT   "v=spf1 include:spf.protection.outlook.com ptr -all"

; A domain whose SPF needs 11 DNS lookups, split over two strings of one TXT record.
sprawl.test.                  300 IN MX    10 mx.sprawl.test.
sprawl.test.                  300 IN TXT   "v=spf1 include:s1.sprawl.test include:s2.sprawl.test include:s3.sprawl.test include:s4.sprawl.test include:s5.sprawl.test include:s6.sprawl.test " "include:s7.sprawl.test include:s8.sprawl.test include:s9.sprawl.test include:s10.sprawl.test include:s11.sprawl.test -all"
_dmarc.sprawl.test.           300 IN TXT   "v=DMARC1; p=quarantine"
mx.sprawl.test.               300 IN A     203.0.113.1
"""
ZONES += "".join(f's{n}.sprawl.test. 300 IN TXT "v=spf1 ip4:203.0.113.{n} -all"\n' for n in range(1, 12))


class ZoneResolver(BaseResolver):  # type: ignore[misc]  # dnslib is untyped
    """Answers from the records above, following CNAMEs the way a recursive resolver would."""

    def __init__(self, zone_text: str) -> None:
        self.records: list[Any] = RR.fromZone(zone_text)
        self.names = {str(record.rname).lower() for record in self.records}
        self.queries: list[tuple[str, str, str]] = []
        """(name, type, "udp" or "tcp") of every question asked."""
        self.refuse = False
        """Answer REFUSED to everything, as a resolver that does not serve this client does."""

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((name, qtype, handler.protocol))
        if self.refuse:
            reply.header.rcode = RCODE.REFUSED
            return reply
        for _ in range(8):  # follow a CNAME chain, a few links at most
            found = [r for r in self.records if str(r.rname).lower() == name]
            cname = [r for r in found if QTYPE[r.rtype] == "CNAME"]
            if cname and qtype != "CNAME":
                reply.add_answer(*cname)
                name = str(cname[0].rdata.label).lower()
                continue
            for record in found:
                if QTYPE[record.rtype] == qtype:
                    reply.add_answer(record)
            break
        if name not in self.names:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class TruncatingHandler(DNSHandler):  # type: ignore[misc]  # dnslib is untyped
    """Truncates UDP answers over 512 bytes (RFC 1035 §4.2.1; no EDNS here), so the client must ask over TCP.

    Like a real server it keeps the question in the truncated answer (dnslib's own `truncate()` drops it, and
    a resolver rightly ignores an answer that does not repeat its question)."""

    def get_reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        packed: bytes = self.server.resolver.resolve(request, self).pack()
        if self.protocol == "udp" and len(packed) > 512:
            truncated = request.reply()
            truncated.header.tc = 1
            packed = truncated.pack()
        return packed


@dataclass
class DNSTestServer:
    host: str
    port: int
    resolver: ZoneResolver

    @property
    def address(self) -> str:
        """As `--dns-server` and XOROMAIL_DNS_SERVER take it."""
        return f"{self.host}:{self.port}"


def _free_udp_and_tcp_port() -> int:
    """A port free for UDP and TCP at once (tried a few times: another process may take the TCP side)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP")


@contextmanager
def dns_server(zone_text: str = ZONES) -> Iterator[DNSTestServer]:
    """Serve the zones over UDP and TCP on one free loopback port; both are stopped on exit."""
    resolver = ZoneResolver(zone_text)
    logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data")
    port = _free_udp_and_tcp_port()
    servers = [DNSServer(resolver, address="127.0.0.1", port=port, tcp=tcp, logger=logger,
                         handler=TruncatingHandler) for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    try:
        yield DNSTestServer("127.0.0.1", port, resolver)
    finally:
        for server in servers:
            server.stop()
            server.server.server_close()


@contextmanager
def silent_dns_server() -> Iterator[str]:
    """A bound UDP socket that never answers (and no TCP listener): a resolver that is unreachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{silent.getsockname()[1]}"


def ask(server: DNSTestServer, name: str, qtype: str, *, tcp: bool = False) -> DNSRecord:
    """A raw question to the test server, to prove what it answers."""
    packet = DNSRecord.question(name, qtype).send(server.host, server.port, tcp=tcp, timeout=5)
    return DNSRecord.parse(packet)
