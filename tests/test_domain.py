"""Domain checks against a real DNS server on 127.0.0.1 (dnslib, UDP and TCP) serving the test zones."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.support.dnsserver import DNSTestServer, ask, dns_server, silent_dns_server
from xoromail_cli import services
from xoromail_cli.domain.checks import Check, DomainReport
from xoromail_cli.domain.notes import deliverability_notes
from xoromail_cli.domain.providers import provider_for_email
from xoromail_cli.domain.report import SendingPath, check_domain
from xoromail_cli.domain.resolver import DNS_SERVER_ENV, make_resolver, parse_dns_server, query_texts
from xoromail_cli.errors import DataError, ExitCode, TemporaryError, UnavailableError, UsageError
from xoromail_cli.profile import Profile

TABLES = {
    "google": {"client_id": "1-billing.apps.googleusercontent.com"},
    "microsoft365": {"tenant": "contoso.onmicrosoft.com", "client_id": "00000000-0000-0000-0000-000000000001"},
    "exchange": {"username": "billing"},
}


def profile(service: str, email: str = "billing@acme.test", host: str | None = None, **table: str) -> Profile:
    """A profile of `service` as the config file would give it (the SMTP service takes its server as `host`)."""
    values = {"host": host, "port": 587, "security": "starttls"} if service == "smtp" else TABLES[service]
    settings = services.get(service).settings_from_table({**values, **table})
    return Profile(name="dns", email=email, settings=settings, service=service)


def sending(service: str, host: str | None = None, **table: str) -> SendingPath:
    """What the profile's service tells the domain checks about where its messages leave from."""
    return SendingPath.of(profile(service, host=host, **table))


@pytest.fixture(scope="module")
def dns() -> Iterator[DNSTestServer]:
    with dns_server() as server:
        yield server


def by_name(report: DomainReport) -> dict[str, Check]:
    return {check.name: check for check in report.checks}


def test_the_test_server_truncates_large_udp_answers_and_the_resolver_asks_again_over_tcp(dns: DNSTestServer) -> None:
    assert ask(dns, "contoso.test", "TXT").header.tc == 1
    before = len(dns.resolver.queries)
    texts = query_texts(make_resolver(dns.address), "contoso.test", "TXT")
    assert texts is not None and "v=spf1 include:spf.protection.outlook.com -all" in texts
    assert ("contoso.test.", "TXT", "tcp") in dns.resolver.queries[before:]


@pytest.mark.parametrize(("email", "service", "preset"), [
    ("billing@contoso.test", "microsoft365", "office365"),
    ("billing@fabrikam.test", "microsoft365", "office365"),
    ("billing@gardens.test", "google", "gmail"),
    ("billing@orchard.test", "google", "gmail"),
])
def test_the_mx_names_the_service_that_fits(dns: DNSTestServer, email: str, service: str, preset: str) -> None:
    guess = provider_for_email(email, dns_server=dns.address)
    assert guess is not None and guess.service == service and guess.preset == preset
    assert service in guess.note and guess.mx[0] in guess.note


@pytest.mark.parametrize("email", ["billing@acme.test", "billing@missing.test", "no-domain"])
def test_no_provider_is_guessed_for_other_or_missing_domains(dns: DNSTestServer, email: str) -> None:
    assert provider_for_email(email, dns_server=dns.address) is None


def test_provider_guess_gives_up_quietly_and_quickly_when_dns_does_not_answer() -> None:
    with silent_dns_server() as address:
        started = time.monotonic()
        assert provider_for_email("billing@contoso.test", dns_server=address, timeout=1.0) is None
        assert time.monotonic() - started < 3


def test_microsoft_365_domain_with_spf_dkim_and_dmarc_reject_passes(dns: DNSTestServer) -> None:
    report = check_domain("contoso.test", dns_server=dns.address)
    checks = by_name(report)
    assert report.provider == "microsoft365" and report.exit_code == ExitCode.OK
    assert all(check.status == "ok" for check in report.checks), report.checks
    assert "include:spf.protection.outlook.com" in checks["SPF authorises sender"].detail
    assert {"DKIM selector1", "DKIM selector2"} <= set(checks)
    assert "policy reject" in checks["DMARC"].detail and "dmarc-reports@contoso.test" in checks["DMARC"].detail


def test_newer_microsoft_365_forms_mx_microsoft_and_dkim_mail_microsoft_are_recognised(dns: DNSTestServer) -> None:
    report = check_domain("fabrikam.test", sending=sending("microsoft365"), dns_server=dns.address)
    checks = by_name(report)
    assert report.provider == "microsoft365" and report.exit_code == ExitCode.OK
    assert "mx.microsoft" in checks["MX"].detail
    assert checks["DKIM selector1"].status == "ok" and checks["DKIM selector2"].status == "ok"


def test_google_workspace_with_dmarc_p_none_warns_that_it_only_monitors_but_passes(dns: DNSTestServer) -> None:
    report = check_domain("gardens.test", sending=sending("google"), dns_server=dns.address)
    dmarc = by_name(report)["DMARC"]
    assert report.exit_code == ExitCode.OK
    assert dmarc.status == "warn" and "monitoring only" in dmarc.detail and dmarc.hint
    assert by_name(report)["DKIM google"].status == "ok"


def test_google_domain_without_dkim_key_warns_with_how_to_turn_signing_on(dns: DNSTestServer) -> None:
    report = check_domain("orchard.test", sending=sending("smtp", "smtp.gmail.com"), dns_server=dns.address)
    dkim = by_name(report)["DKIM google"]
    assert report.exit_code == ExitCode.OK and report.provider == "google"
    assert dkim.status == "warn" and dkim.hint and "Authenticate email" in dkim.hint


def test_spf_leaving_the_relay_out_fails_with_the_exact_mechanisms_to_add(dns: DNSTestServer) -> None:
    report = check_domain("acme.test", sending=sending("smtp", "mail.relay.test"), dns_server=dns.address)
    authorised = by_name(report)["SPF authorises sender"]
    assert report.exit_code == ExitCode.DATAERR
    assert authorised.status == "fail" and authorised.hint is not None
    assert "`ip4:192.0.2.77 ip6:2001:db8::77`" in authorised.hint


def test_no_dmarc_record_fails_and_says_what_the_big_receivers_require(dns: DNSTestServer) -> None:
    dmarc = by_name(check_domain("acme.test", dns_server=dns.address))["DMARC"]
    assert dmarc.status == "fail" and "Gmail and Yahoo" in dmarc.detail
    assert dmarc.hint and "v=DMARC1; p=none" in dmarc.hint


@pytest.mark.parametrize("host", ["out.acme.test", "mx1.acme.test"])
def test_a_relay_inside_the_records_ip4_range_or_mx_is_authorised(dns: DNSTestServer, host: str) -> None:
    report = check_domain("acme.test", sending=sending("smtp", host), dns_server=dns.address)
    assert by_name(report)["SPF authorises sender"].status == "ok"


def test_a_microsoft_365_sender_left_out_of_spf_is_told_the_include_to_add(dns: DNSTestServer) -> None:
    report = check_domain("acme.test", sending=sending("microsoft365"), dns_server=dns.address)
    authorised = by_name(report)["SPF authorises sender"]
    assert authorised.status == "fail" and authorised.hint and "`include:spf.protection.outlook.com`" in authorised.hint


def test_a_profile_whose_service_does_not_fit_the_mx_gets_a_warning_naming_the_fitting_one(
        dns: DNSTestServer) -> None:
    report = check_domain("gardens.test", sending=sending("microsoft365"), dns_server=dns.address)
    checks = by_name(report)
    assert checks["MX"].status == "warn" and checks["MX"].hint and "'google'" in checks["MX"].hint
    assert checks["SPF authorises sender"].status == "fail"


def test_spf_needing_11_lookups_split_over_two_strings_fails_as_permerror(dns: DNSTestServer) -> None:
    spf = by_name(check_domain("sprawl.test", dns_server=dns.address))["SPF"]
    assert spf.status == "fail" and "11 DNS lookups" in spf.detail and "permerror" in spf.detail
    assert "s6.sprawl.test include:s7.sprawl.test" in spf.detail  # the two strings were joined


def test_a_domain_without_spf_fails_and_is_told_the_record_to_publish(dns: DNSTestServer) -> None:
    spf = by_name(check_domain("bare.test", sending=sending("google"), dns_server=dns.address))["SPF"]
    assert spf.status == "fail"
    assert spf.hint == 'publish a TXT record at bare.test: "v=spf1 include:_spf.google.com -all"'


def test_a_domain_that_does_not_exist_is_named_as_such(dns: DNSTestServer) -> None:
    with pytest.raises(DataError, match=r"missing\.test does not exist") as caught:
        check_domain("missing.test", dns_server=dns.address)
    assert caught.value.exit_code == ExitCode.DATAERR


def test_an_unreachable_resolver_fails_within_seconds_as_temporary() -> None:
    with silent_dns_server() as address:
        started = time.monotonic()
        with pytest.raises(TemporaryError) as caught:
            check_domain("contoso.test", dns_server=address, timeout=2.0)
        elapsed = time.monotonic() - started
    assert caught.value.exit_code in (ExitCode.TEMPFAIL, ExitCode.UNAVAILABLE)
    assert elapsed < 4 and address in caught.value.message and caught.value.hint


def test_the_environment_variable_points_every_lookup_at_one_resolver(dns: DNSTestServer,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DNS_SERVER_ENV, dns.address)
    before = len(dns.resolver.queries)
    assert check_domain("contoso.test").provider == "microsoft365"
    guess = provider_for_email("a@gardens.test")
    assert guess is not None and guess.service == "google"
    assert len(dns.resolver.queries) > before


@pytest.mark.parametrize(("text", "expected"), [
    ("192.0.2.53", ("192.0.2.53", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    ("[::1]:5353", ("::1", 5353)), ("2001:db8::53", ("2001:db8::53", 53)),
])
def test_dns_server_is_host_and_optional_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_dns_server(text) == expected


@pytest.mark.parametrize("text", ["dns.example", "127.0.0.1:0", "127.0.0.1:http", "[::1]:99999"])
def test_a_bad_dns_server_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse_dns_server(text)


def test_deliverability_notes_name_each_problem_and_nothing_for_a_healthy_domain(dns: DNSTestServer) -> None:
    notes = deliverability_notes(profile("smtp", host="mail.relay.test"), dns_server=dns.address)
    assert any(note.startswith("SPF authorises sender:") and "ip4:192.0.2.77" in note for note in notes)
    assert any(note.startswith("DMARC:") for note in notes)
    assert deliverability_notes(profile("microsoft365", "billing@contoso.test"), dns_server=dns.address) == []


def test_deliverability_notes_never_raise_when_dns_is_unreachable() -> None:
    with silent_dns_server() as address:
        notes = deliverability_notes(profile("smtp", "billing@contoso.test", "smtp.office365.com"), dns_server=address,
                                     timeout=1.0)
    assert len(notes) == 1 and "was not checked" in notes[0] and "did not answer" in notes[0]


def test_a_resolver_that_refuses_every_query_is_unavailable() -> None:
    with dns_server() as server:
        server.resolver.refuse = True
        with pytest.raises(UnavailableError) as caught:
            check_domain("contoso.test", dns_server=server.address, timeout=2.0)
    assert caught.value.exit_code == ExitCode.UNAVAILABLE and "REFUSED" in caught.value.message


def test_importing_the_domain_modules_and_the_command_loads_no_dns_library() -> None:
    code = ("import sys\n"
            "import xoromail_cli.domain.report, xoromail_cli.domain.notes, xoromail_cli.domain.certs\n"
            "import xoromail_cli.domain.providers, xoromail_cli.cli.check_domain_cmd\n"
            "heavy = {'dns', 'checkdmarc', 'requests', 'httpx', 'cryptography', 'pyleri'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


def test_the_setup_guess_loads_dnspython_only(dns: DNSTestServer) -> None:
    code = ("import sys\nfrom xoromail_cli.domain.providers import provider_for_email\n"
            f"guess = provider_for_email('a@contoso.test', dns_server={dns.address!r})\n"
            "assert guess is not None and guess.service == 'microsoft365', guess\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'dns', 'checkdmarc', 'requests', 'httpx'}))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "['dns']"


def test_a_subdomain_is_covered_by_the_organisational_domains_dmarc_record(dns: DNSTestServer) -> None:
    report = check_domain("billing.contoso.test", sending=sending("microsoft365"), dns_server=dns.address)
    dmarc = by_name(report)["DMARC"]
    assert dmarc.status == "ok" and "_dmarc.contoso.test" in dmarc.detail


def test_what_checkdmarc_finds_wrong_in_a_parsing_record_is_a_warning(dns: DNSTestServer) -> None:
    report = check_domain("billing.contoso.test", sending=sending("microsoft365"), dns_server=dns.address)
    spf = by_name(report)["SPF"]
    assert spf.status == "warn" and "ptr" in spf.detail and report.exit_code == ExitCode.OK


def test_validate_notes_leave_out_dkim_when_no_selector_was_looked_up(dns: DNSTestServer) -> None:
    notes = deliverability_notes(profile("smtp", host="out.acme.test"), dns_server=dns.address)
    assert [note.split(":")[0] for note in notes] == ["DMARC"]


@pytest.mark.parametrize(("service", "table", "provider", "host"), [
    ("smtp", {"host": "smtp.office365.com"}, "microsoft365", "smtp.office365.com"),
    ("smtp", {"host": "smtp.gmail.com"}, "google", "smtp.gmail.com"),
    ("smtp", {"host": "mail.relay.test"}, None, "mail.relay.test"),
    ("exchange", {"url": "https://outlook.office365.com/EWS/Exchange.asmx"}, "microsoft365", None),
    ("exchange", {"url": "https://mail.acme.test/EWS/Exchange.asmx"}, None, None),
    ("google", {}, "google", None),
    ("microsoft365", {}, "microsoft365", None),
    ("microsoft365", {"send_via": "smtp"}, "microsoft365", None),
])
def test_each_service_says_whose_dns_records_its_messages_need(service: str, table: dict[str, str],
                                                               provider: str | None, host: str | None) -> None:
    """The domain checks ask the profile's service; nothing in domain/ knows a service by its name."""
    found = SendingPath.of(profile(service, **table))
    assert (found.service, found.provider, found.host) == (service, provider, host)


def test_the_domain_package_never_branches_on_a_service_name() -> None:
    import ast
    from pathlib import Path

    import xoromail_cli.domain

    names = set(services.REGISTRY) - {"microsoft365", "google"}  # those two are also providers, DNS facts
    for path in Path(xoromail_cli.domain.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                constants = {c.value for c in ast.walk(node) if isinstance(c, ast.Constant)}
                assert not constants & names, f"{path.name}:{node.lineno} compares with a service name"


def test_a_profile_sending_to_a_relay_on_this_machine_gets_no_dns_notes() -> None:
    with silent_dns_server() as address:  # never asked: what the relay relays to decides
        assert deliverability_notes(profile("smtp", host="127.0.0.1"), dns_server=address, timeout=1.0) == []
