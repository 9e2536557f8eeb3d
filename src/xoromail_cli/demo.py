"""`xoromail demo`: the whole path against an embedded server, with nothing real touched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xoromail_cli import validate
from xoromail_cli.config import Profile
from xoromail_cli.errors import ExitCode
from xoromail_cli.sink import Received, SinkServer, password_authenticator, throwaway_tls

DEMO_ADDRESS = "billing@demo.xoromail.test"
DEMO_PASSWORD = "demo-password"  # noqa: S105  # a throwaway login for a server that lives for one run


@dataclass
class DemoResult:
    report: validate.ValidationReport
    received: list[Received]

    @property
    def exit_code(self) -> ExitCode:
        return self.report.exit_code

    @property
    def ok(self) -> bool:
        return self.report.ok

    def to_json(self) -> dict[str, Any]:
        return {**self.report.to_json(),
                "received": [{"from": r.sender, "to": r.recipients, "subject": r.parsed().get("Subject")}
                             for r in self.received]}


def demo_profile(port: int, ca_file: Path) -> Profile:
    return Profile(name="demo", email=DEMO_ADDRESS, host="127.0.0.1", port=port, security="starttls",
                   display_name="Demo Company Billing", ca_file=str(ca_file), company_name="Demo Company",
                   timeout=10.0)


def run(folder: Path) -> DemoResult:
    tls = throwaway_tls(folder)
    server = SinkServer(security="starttls", tls_context=tls.server_context,
                        authenticator=password_authenticator({DEMO_ADDRESS: DEMO_PASSWORD}), auth_required=True)
    with server:
        profile = demo_profile(server.port, tls.ca_file)
        report = validate.run(profile, lambda: DEMO_PASSWORD)
    return DemoResult(report, list(server.messages))
