"""`xoromail demo`: the whole path against an embedded server, with nothing real touched.

It starts a local server with STARTTLS, AUTH and a throwaway certificate, validates a temporary
profile against it, then sends one email of every event, so a newcomer sees real messages arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xoromail_cli import validate
from xoromail_cli.compose.events import EVENTS
from xoromail_cli.compose.render import Renderer
from xoromail_cli.credentials import MemorySecrets
from xoromail_cli.errors import ExitCode
from xoromail_cli.local.sink import Received, SinkServer, password_authenticator, throwaway_tls
from xoromail_cli.profile import Profile
from xoromail_cli.sending.batch import make_job
from xoromail_cli.sending.deliverer import Deliverer
from xoromail_cli.sending.results import MessageResult
from xoromail_cli.sending.sender import Sender
from xoromail_cli.services.smtp.settings import SmtpSettings
from xoromail_cli.services.smtp.transport import SmtpTransport

DEMO_PROFILE = "demo"
DEMO_ADDRESS = "billing@demo.xoromail.test"
DEMO_CUSTOMER = "accounts@customer.example"
DEMO_PASSWORD = "demo-password"  # noqa: S105  # a throwaway login for a server that lives for one run

SAMPLE_VALUES: dict[str, str] = {
    "customer_name": "Northwind Traders", "vendor_name": "Contoso Supplies", "invoice_number": "INV-1042",
    "order_number": "SO-2231", "bill_number": "BILL-877", "po_number": "PO-5531", "amount_due": "1249.50",
    "amount_paid": "830.00", "amount": "300.00", "due_date": "2026-11-15", "payment_date": "2026-11-24",
    "received_date": "2026-11-23", "carrier": "DHL Express", "tracking_number": "JD014600003828",
    "tracking_url": "https://tracking.example/JD014600003828", "payment_link": "https://pay.example/INV-1042",
    "days_overdue": "10",
}


@dataclass
class DemoResult:
    report: validate.ValidationReport
    received: list[Received]
    events: list[MessageResult] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        if not self.report.ok:
            return self.report.exit_code
        failed = [r for r in self.events if r.status != "sent"]
        return ExitCode(failed[0].exit_code or ExitCode.FAILURE) if failed else ExitCode.OK

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {**self.report.to_json(), "ok": self.ok, "exit_code": int(self.exit_code),
                "events": [r.to_json() for r in self.events],
                "received": [{"from": r.sender, "to": r.recipients, "subject": r.parsed().get("Subject")}
                             for r in self.received]}


def demo_profile(port: int, ca_file: Path) -> Profile:
    return Profile(name=DEMO_PROFILE, email=DEMO_ADDRESS,
                   settings=SmtpSettings(host="127.0.0.1", port=port, security="starttls"),
                   display_name="Demo Company Billing", ca_file=str(ca_file), company_name="Demo Company",
                   currency="USD", timeout=10.0)


def run(folder: Path, on_stage: validate.StageCallback | None = None) -> DemoResult:
    """Validate the demo profile (each stage told to `on_stage` as it starts and ends), then send every event."""
    tls = throwaway_tls(folder)
    slip = folder / "packing-slip-SO-2231.pdf"
    slip.write_bytes(b"%PDF-1.4\n% demo packing slip\n")
    server = SinkServer(security="starttls", tls_context=tls.server_context,
                        authenticator=password_authenticator({DEMO_ADDRESS: DEMO_PASSWORD}), auth_required=True)
    with server:
        profile = demo_profile(server.port, tls.ca_file)
        report = validate.run(profile, MemorySecrets({"password": DEMO_PASSWORD}), check_domain=False,  # no network
                              on_stage=on_stage)
        results: list[MessageResult] = []
        if report.ok:
            renderer = Renderer(profile)
            transport = SmtpTransport.for_profile(profile, DEMO_PASSWORD)
            for event in EVENTS.values():
                variables = {name: SAMPLE_VALUES[name] for name in event.variables if name in SAMPLE_VALUES}
                job = make_job(event, 0, to=[DEMO_CUSTOMER], variables=variables,
                               attach=[str(slip)] if event.needs_attachment else [])
                deliverer = Deliverer(profile=profile, event=event.name, transport=transport)
                Sender(event=event, renderer=renderer, deliverer=deliverer, on_result=results.append).run([job])
    return DemoResult(report, list(server.messages), results)
