"""`xoromail check-domain` end to end: the real command against the test DNS server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.dnsserver import DNSTestServer, dns_server, silent_dns_server
from tests.support.samples import smtp_profile
from xoromail_cli import config
from xoromail_cli.cli import app
from xoromail_cli.domain.report import SendingPath
from xoromail_cli.profile import Profile
from xoromail_cli.services.exchange.settings import ExchangeSettings


@pytest.fixture(scope="module")
def dns() -> Iterator[DNSTestServer]:
    with dns_server() as server:
        yield server


def test_a_given_domain_needs_no_profile_and_a_healthy_one_exits_0(runner: CliRunner, dns: DNSTestServer,
                                                                   config_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_path), "check-domain", "contoso.test",
                                 "--dns-server", dns.address])
    assert result.exit_code == 0, result.output
    assert "Microsoft 365" in result.output and "DKIM selector2" in result.output
    assert "Nothing in DNS stands in the way of delivery." in result.output
    assert not config_path.exists()


def test_json_lists_every_check_with_status_and_hint(runner: CliRunner, dns: DNSTestServer) -> None:
    result = runner.invoke(app, ["check-domain", "gardens.test", "--dns-server", dns.address, "--json"])
    data = json.loads(result.output)
    assert result.exit_code == 0 and data["exit_code"] == 0 and data["provider"] == "google"
    dmarc = next(check for check in data["checks"] if check["name"] == "DMARC")
    assert dmarc["status"] == "warn" and "monitoring only" in dmarc["detail"] and dmarc["hint"]


def test_what_hurts_delivery_exits_65_and_is_named(runner: CliRunner, dns: DNSTestServer) -> None:
    result = runner.invoke(app, ["check-domain", "sprawl.test", "--dns-server", dns.address])
    assert result.exit_code == 65
    assert "Will hurt delivery: SPF" in result.output


def test_dkim_selector_option_looks_up_that_key(runner: CliRunner, dns: DNSTestServer) -> None:
    result = runner.invoke(app, ["check-domain", "gardens.test", "--dns-server", dns.address, "--json",
                                 "--dkim-selector", "s2026"])
    names = {check["name"]: check["status"] for check in json.loads(result.output)["checks"]}
    assert names["DKIM s2026"] == "warn" and names["DKIM google"] == "ok"


def test_without_a_domain_the_profiles_address_and_smtp_host_are_checked(
        runner: CliRunner, dns: DNSTestServer, config_path: Path) -> None:
    config.save_profile(config_path, smtp_profile(name="default", email="billing@acme.test", host="mail.relay.test",
                                                  port=587))
    result = runner.invoke(app, ["--config", str(config_path), "check-domain", "--json"],
                           env={"XOROMAIL_DNS_SERVER": dns.address})
    data = json.loads(result.output)
    authorised = next(check for check in data["checks"] if check["name"] == "SPF authorises sender")
    assert result.exit_code == 65 and data["domain"] == "acme.test" and data["sender"] == "mail.relay.test"
    assert authorised["status"] == "fail" and "ip4:192.0.2.77" in authorised["hint"]


def test_without_a_domain_or_profile_the_missing_settings_are_reported(runner: CliRunner, config_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_path), "check-domain"])
    assert result.exit_code == 78 and "setup" in result.output


def test_a_domain_that_does_not_exist_exits_65_naming_it(runner: CliRunner, dns: DNSTestServer) -> None:
    result = runner.invoke(app, ["check-domain", "missing.test", "--dns-server", dns.address])
    assert result.exit_code == 65 and "missing.test does not exist" in result.output


def test_an_unreachable_resolver_exits_75_with_a_hint(runner: CliRunner) -> None:
    with silent_dns_server() as address:
        result = runner.invoke(app, ["check-domain", "contoso.test", "--dns-server", address, "--timeout", "1"])
    assert result.exit_code == 75 and "did not answer within 1 s" in result.output and "hint:" in result.output


def test_a_bad_dns_server_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check-domain", "contoso.test", "--dns-server", "dns.example"])
    assert result.exit_code == 2 and "HOST[:PORT]" in result.output


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587


def test_the_sender_checked_is_the_smtp_host_or_none() -> None:
    assert SendingPath.of(smtp_profile(name="d", email="a@acme.test", host="mail.relay.test", port=587)) \
        == SendingPath("smtp", None, "mail.relay.test")
    on_premises = ExchangeSettings(url="https://mail.acme.test/EWS/Exchange.asmx")
    exchange = Profile(name="d", email="a@acme.test", service="exchange", settings=on_premises)
    assert SendingPath.of(exchange) == SendingPath("exchange", None, None)


@pytest.mark.parametrize(("domain", "why"), [("a" * 64 + ".test", "longer than 63 characters"),
                                             ("a..b.test", "empty part")])
def test_a_name_dns_cannot_carry_is_a_usage_error_not_a_network_failure(runner: CliRunner, domain: str,
                                                                         why: str) -> None:
    result = runner.invoke(app, ["check-domain", domain, "--dns-server", "127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    assert why in " ".join(result.output.split()) and "network" not in result.output
