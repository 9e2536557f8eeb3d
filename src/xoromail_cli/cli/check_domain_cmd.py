"""`xoromail check-domain`: what the sender's domain says in DNS, as a table or JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from xoromail_cli.cli.state import state_of


def check_domain(
    ctx: typer.Context,
    domain: Annotated[str | None, typer.Argument(
        metavar="DOMAIN", help="Domain to check (default: the domain of the profile's From address).",
        show_default=False)] = None,
    dns_server: Annotated[str | None, typer.Option(
        "--dns-server", metavar="HOST[:PORT]", envvar="XOROMAIL_DNS_SERVER", show_envvar=True,
        help="Ask this resolver for every lookup (default: the system's).")] = None,
    dkim_selector: Annotated[list[str] | None, typer.Option(
        "--dkim-selector", metavar="S", help="Also look up the DKIM key of this selector (repeatable).")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", metavar="SECONDS", min=0.1, max=60.0, help="Give up on a DNS lookup after this long.")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")] = False,
) -> None:
    """Check the sender's domain: the provider its MX implies, SPF, DKIM and DMARC."""
    from xoromail_cli.cli.console import print_json
    from xoromail_cli.cli.render import print_domain_report
    from xoromail_cli.domain.report import SendingPath
    from xoromail_cli.domain.report import check_domain as run_checks

    sending: SendingPath | None = None
    if domain is None:
        from xoromail_cli import config
        from xoromail_cli.addresses import domain_of

        state = state_of(ctx)
        profile = config.load_profile(state.config_path, state.profile_name)
        domain = domain_of(profile.email)
        sending = SendingPath.of(profile)
    report = run_checks(domain, sending=sending, dkim_selectors=tuple(dkim_selector or ()), dns_server=dns_server,
                        timeout=timeout)
    if as_json:
        print_json(report.to_json())
    else:
        print_domain_report(report)
    raise typer.Exit(int(report.exit_code))

