"""One relay for the whole office: logins managed with `relay users`, each delivering through its own profile
to its own upstream (two real aiosmtpd servers), the From each may use refused at MAIL FROM otherwise."""

from __future__ import annotations

import json
import os
import smtplib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, accepting_authenticator, profile_for
from tests.support.relay_helpers import RelayProcess, erp_message, submit, wait_for
from xoromail_cli import config, credentials
from xoromail_cli.cli import app
from xoromail_cli.local.sink import SinkServer
from xoromail_cli.relay.delivery import DeliveryOptions
from xoromail_cli.relay.office import Office, open_office
from xoromail_cli.relay.server import RelayHandler, RelayServer
from xoromail_cli.relay.users import load_logins

SHIPPING, SHIPPING_PASSWORD = "shipping@company.test", "shipping mailbox secret"
BILLING_LOGIN_PASSWORD = "billing-erp-pass-8Kd"
ERP_A, ERP_B = "first-pass-of-the-erp", "printer-pass-long-enough"  # a login's needs 16 characters


def two_mailboxes(config_path: Path, smtp_server: ServerFactory, tls: TLSFiles) -> tuple[SinkServer, SinkServer]:
    """Profile `billing` on one upstream, profile `shipping` on another, each with its own mailbox password."""
    billing = smtp_server()
    shipping = smtp_server(authenticator=accepting_authenticator(SHIPPING, SHIPPING_PASSWORD))
    config.save_profile(config_path, profile_for(billing, tls, name="billing"))
    config.save_profile(config_path, profile_for(shipping, tls, name="shipping", email=SHIPPING,
                                                 display_name="Shipping"))
    credentials.store_password("billing", PASSWORD)
    credentials.store_password("shipping", SHIPPING_PASSWORD)
    return billing, shipping


def users(runner: CliRunner, config_path: Path, *args: str, stdin: str | None = None) -> list[str]:
    result = runner.invoke(app, ["--config", str(config_path), "relay", "users", *args], input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


class Running:
    """An office relay in this process: the server and one worker per mailbox, every log line kept."""

    def __init__(self, config_path: Path, spool_base: Path) -> None:
        self.lines: list[str] = []
        options = DeliveryOptions(retry_delay=0.2, idle=0.2, timeout=5.0, linger=0.2)
        self.office: Office = open_office(config_path, load_logins(config_path), options, self.lines.append,
                                          spool_base=spool_base)
        first = self.office.mailboxes[0]
        handler = RelayHandler(first.spool, next(iter(self.office.routes.values())).policy, self.lines.append,
                               first.worker.wake, routes=self.office.routes)
        self.server = RelayServer(handler, self.office.logins, "127.0.0.1", 0, tls=None).start()
        for mailbox in self.office.mailboxes:
            mailbox.worker.start()

    def stop(self) -> None:
        self.server.stop()
        for mailbox in self.office.mailboxes:
            mailbox.worker.stop(30)


OfficeFactory = Callable[[], "Running"]


@pytest.fixture
def office(config_path: Path, tmp_path: Path) -> Iterator[OfficeFactory]:
    started: list[Running] = []

    def start() -> Running:
        started.append(Running(config_path, tmp_path / "spools"))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def test_two_logins_deliver_through_their_own_profiles_and_may_send_only_as_theirs(
        runner: CliRunner, config_path: Path, smtp_server: ServerFactory, tls: TLSFiles, office: OfficeFactory) -> None:
    billing, shipping = two_mailboxes(config_path, smtp_server, tls)
    users(runner, config_path, "add", "billing-erp", "--profile", "billing", "--from", "sales@company.test",
          "--password-stdin", stdin=BILLING_LOGIN_PASSWORD + "\n")
    shown = users(runner, config_path, "add", "shipping-erp", "--profile", "shipping", "--json")
    generated = json.loads(shown[0])["password"]
    assert generated and len(generated) >= 20
    listed = [json.loads(line) for line in users(runner, config_path, "list", "--json")]
    assert all(row.pop("schema") == 1 for row in listed)
    assert listed == [
        {"name": "billing-erp", "profile": "billing", "from": ["sales@company.test"], "mailbox": USER},
        {"name": "shipping-erp", "profile": "shipping", "from": [], "mailbox": SHIPPING}]
    settings = config_path.read_text()
    assert "[relay.users.billing-erp]" in settings
    assert BILLING_LOGIN_PASSWORD not in settings and generated not in settings
    running = office()
    assert len(running.office.mailboxes) == 2
    submit(running.server.port, erp_message(1), user="billing-erp", password=BILLING_LOGIN_PASSWORD)
    submit(running.server.port, erp_message(2, sender="sales@company.test"), user="billing-erp",
           password=BILLING_LOGIN_PASSWORD)
    submit(running.server.port, erp_message(3, sender=SHIPPING), user="shipping-erp", password=generated)
    wait_for(lambda: len(billing.messages) == 2 and len(shipping.messages) == 1, what="three deliveries")
    assert {m.parsed()["X-ERP-Document"] for m in billing.messages} == {"INV-1", "INV-2"}
    assert billing.messages[0].login == USER and shipping.messages[0].login == SHIPPING
    assert shipping.messages[0].sender == SHIPPING
    with smtplib.SMTP("127.0.0.1", running.server.port, timeout=10) as client:
        client.login("shipping-erp", generated)
        code, reply = client.mail("sales@company.test")  # billing-erp's, not shipping-erp's
        assert code == 550 and b"shipping-erp may not send as sales@company.test" in reply
        assert SHIPPING.encode() in reply and b"[relay.users.shipping-erp]" in reply
        client.rset()
        code, reply = client.mail(USER)  # billing's mailbox: not shipping-erp's either
        assert code == 550
    with pytest.raises(smtplib.SMTPAuthenticationError):  # one login's password never opens another
        submit(running.server.port, erp_message(4), user="billing-erp", password=generated)
    refused = [line for line in running.lines if line.startswith("refused ")]
    assert all(" login=shipping-erp " in line for line in refused)  # which program of the office it was
    assert len(refused) == 2 and all(generated not in line and BILLING_LOGIN_PASSWORD not in line
                                     for line in running.lines)


def test_rotating_a_password_and_removing_a_login(runner: CliRunner, config_path: Path, smtp_server: ServerFactory,
                                                  tls: TLSFiles, office: OfficeFactory) -> None:
    billing, _ = two_mailboxes(config_path, smtp_server, tls)
    users(runner, config_path, "add", "erp", "--profile", "billing", "--password-stdin", stdin=ERP_A + "\n")
    users(runner, config_path, "add", "printer", "--profile", "billing", "--password-stdin", stdin=ERP_B + "\n")
    shown = users(runner, config_path, "password", "erp")
    new = shown[-1].rsplit(" ", 1)[1]
    assert "shown this once" in shown[-1] and new != ERP_A
    users(runner, config_path, "remove", "printer")
    assert list(load_logins(config_path)) == ["erp"]
    assert credentials.read_secret("relay", "login:printer") is None
    running = office()
    assert len(running.office.mailboxes) == 1  # two logins of one profile would share it
    with pytest.raises(smtplib.SMTPAuthenticationError):
        submit(running.server.port, erp_message(1), user="erp", password=ERP_A)
    with pytest.raises(smtplib.SMTPAuthenticationError):
        submit(running.server.port, erp_message(1), user="printer", password=ERP_B)
    submit(running.server.port, erp_message(2), user="erp", password=new)
    wait_for(lambda: len(billing.messages) == 1, what="the delivery")


def test_users_refuse_a_missing_profile_a_duplicate_and_a_bad_name(runner: CliRunner, config_path: Path,
                                                                  smtp_server: ServerFactory, tls: TLSFiles) -> None:
    two_mailboxes(config_path, smtp_server, tls)
    base = ["--config", str(config_path), "relay", "users"]
    missing = runner.invoke(app, [*base, "add", "erp", "--profile", "nope"])
    assert missing.exit_code == 78 and "billing, shipping" in missing.output
    assert runner.invoke(app, [*base, "add", "erp", "--profile", "billing"]).exit_code == 0
    again = runner.invoke(app, [*base, "add", "erp", "--profile", "shipping"])
    assert again.exit_code == 2 and "already has a login" in again.output
    assert runner.invoke(app, [*base, "add", "a b", "--profile", "billing"]).exit_code == 2
    assert runner.invoke(app, [*base, "add", "x", "--profile", "billing", "--from", "not an address"]).exit_code != 0
    assert runner.invoke(app, [*base, "remove", "ghost"]).exit_code == 66
    assert runner.invoke(app, [*base, "password", "ghost"]).exit_code == 66
    empty = runner.invoke(app, [*base, "add", "y", "--profile", "billing", "--password-stdin"], input="\n")
    assert empty.exit_code == 2 and "y" not in load_logins(config_path)


def test_the_relay_process_without_user_serves_every_login(runner: CliRunner, config_path: Path,
                                                           smtp_server: ServerFactory, tls: TLSFiles,
                                                           tmp_path: Path) -> None:
    billing, shipping = two_mailboxes(config_path, smtp_server, tls)
    users(runner, config_path, "add", "billing-erp", "--profile", "billing", "--password-stdin", stdin=ERP_A + "\n")
    users(runner, config_path, "add", "shipping-erp", "--profile", "shipping", "--password-stdin", stdin=ERP_B + "\n")
    process = RelayProcess(["--config", str(config_path), "relay", "--listen", "127.0.0.1:0", "--retry-delay",
                            "0.2", "--spool", str(tmp_path / "spools")], dict(os.environ))
    try:
        wait_for(lambda: len(process.logged("listening")) == 2, what="a listening line a mailbox")
        submit(process.port, erp_message(1), user="billing-erp", password=ERP_A)
        submit(process.port, erp_message(2, sender=SHIPPING), user="shipping-erp", password=ERP_B)
        wait_for(lambda: len(billing.messages) == 1 and len(shipping.messages) == 1, what="both deliveries")
        wait_for(lambda: len(process.logged("delivered")) == 2, what="the delivered lines")
        assert {line.rsplit("profile=", 1)[1] for line in process.logged("delivered")} == {"billing", "shipping"}
        assert sorted(p.name for p in (tmp_path / "spools").iterdir()) == ["billing", "shipping"]
        both = runner.invoke(app, ["--config", str(config_path), "queue", "status", "--all-profiles", "--json",
                                   "--spool", str(tmp_path / "spools")])
        rows = [json.loads(line) for line in both.stdout.splitlines()]
        assert both.exit_code == 0 and [(r["profile"], r["queued"]) for r in rows] == [("billing", 0),
                                                                                        ("shipping", 0)]
        assert process.terminate() == 0
    finally:
        if process.process.poll() is None:
            process.kill()


def test_the_office_relay_refuses_to_start_with_a_login_of_a_missing_profile_or_a_one_login_option(
        runner: CliRunner, config_path: Path, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    two_mailboxes(config_path, smtp_server, tls)
    users(runner, config_path, "add", "erp", "--profile", "shipping", "--password-stdin", stdin=ERP_A + "\n")
    base = ["--config", str(config_path), "relay", "--listen", "127.0.0.1:0"]
    mixed = runner.invoke(app, [*base, "--allow-from", "sales@company.test"])
    assert mixed.exit_code == 2 and "--from" in mixed.output
    text = config_path.read_text().replace('profile = "shipping"', 'profile = "gone"')
    config_path.write_text(text)
    missing = runner.invoke(app, base)
    assert missing.exit_code == 78 and "relay login 'erp'" in missing.output and "'gone'" in missing.output
    broken = text.replace('profile = "gone"', 'profile = "billing"\ncolour = "blue"')
    config_path.write_text(broken)
    unknown = runner.invoke(app, ["--config", str(config_path), "relay", "users", "list"])
    assert unknown.exit_code == 78 and "unknown setting 'colour'" in unknown.output


def test_the_first_login_added_keeps_the_one_login_relays_login_working(
        runner: CliRunner, config_path: Path, smtp_server: ServerFactory, tls: TLSFiles, office: OfficeFactory) -> None:
    """`relay --user erp --password-stdin` first (relay.md's "Start it"), then `relay users add` for a second
    program: `xoromail relay` then serves the settings file's logins, so the ERP's login is kept among them
    (with its password) instead of being refused after the next start."""
    billing, shipping = two_mailboxes(config_path, smtp_server, tls)
    credentials.write_secret("billing", "relay_user", "erp")
    credentials.write_secret("billing", "relay_password", "erp-one-login-pass")
    added = runner.invoke(app, ["--config", str(config_path), "relay", "users", "add", "shipping-erp", "--profile",
                                "shipping", "--password-stdin"], input="shipping-erp-pass-8Kd2\n")
    assert added.exit_code == 0, added.output
    shown = " ".join(added.output.split())
    assert "erp" in load_logins(config_path) and load_logins(config_path)["erp"].profile == "billing"
    assert "kept the one-login relay's login erp (profile billing)" in shown
    running = office()
    submit(running.server.port, erp_message(1), user="erp", password="erp-one-login-pass")
    submit(running.server.port, erp_message(2, sender=SHIPPING), user="shipping-erp", password="shipping-erp-pass-8Kd2")
    wait_for(lambda: len(billing.messages) == 1 and len(shipping.messages) == 1, what="both deliveries")


def test_users_list_names_the_one_login_relays_login_when_the_file_has_none(
        runner: CliRunner, config_path: Path, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    """`relay --user erp --password-stdin` works, yet `relay users list` said "The relay has no logins"."""
    two_mailboxes(config_path, smtp_server, tls)
    credentials.write_secret("billing", "relay_user", "erp")
    credentials.write_secret("billing", "relay_password", "erp-one-login-pass")
    shown = " ".join(users(runner, config_path, "list"))
    assert "no logins" not in shown
    assert "erp (profile billing: `xoromail --profile billing relay`)" in shown and "one-login relay" in shown


def test_a_login_s_password_is_as_long_as_the_one_login_relay_s(runner: CliRunner, config_path: Path,
                                                               smtp_server: ServerFactory, tls: TLSFiles) -> None:
    """Every login faces the same guessers: a short password is refused where it is given, and one stored short
    (by hand, or by an older release) stops the relay at start, naming the login and the fix."""
    two_mailboxes(config_path, smtp_server, tls)
    base = ["--config", str(config_path), "relay", "users"]
    short = runner.invoke(app, [*base, "add", "scanner", "--profile", "billing", "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "at least 16" in short.output and "scanner" not in load_logins(config_path)
    assert credentials.read_secret("relay", "login:scanner") is None
    users(runner, config_path, "add", "scanner", "--profile", "billing")
    rotated = runner.invoke(app, [*base, "password", "scanner", "--password-stdin"], input="aaaaaaaaaaaaaaaaaaaa\n")
    assert rotated.exit_code == 2 and "not all alike" in rotated.output
    credentials.write_secret("relay", "login:scanner", "short")  # as an older release kept it
    started = runner.invoke(app, ["--config", str(config_path), "relay", "--listen", "127.0.0.1:0"])
    assert started.exit_code == 78 and "relay login 'scanner'" in started.output
    assert "relay users password scanner" in started.output


def spooled(root: Path, sender: str, number: int) -> str:
    """A message as the office relay keeps it for a profile (the spool's own writer, no relay needed)."""
    from xoromail_cli.compose.envelope import Envelope
    from xoromail_cli.relay.spool import Spool

    data = f"From: {sender}\r\nTo: customer@client.test\r\nSubject: INV-{number}\r\n\r\ninvoice\r\n".encode()
    return Spool(root).put(Envelope(sender=sender, to=("customer@client.test",), data=data,
                                    message_id=f"<inv.{number}@company.test>"))


def test_every_queue_command_reaches_every_profile_s_spool_with_all_profiles(
        runner: CliRunner, config_path: Path, smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path) -> None:
    """The office relay keeps one spool a profile: a person steers them all without naming each profile; an id
    is found in whichever spool holds it."""
    from xoromail_cli.relay.control import SpoolControl, read_control, write_control
    from xoromail_cli.relay.spool import Spool

    two_mailboxes(config_path, smtp_server, tls)
    base = tmp_path / "spools"
    billing_id = spooled(base / "billing", USER, 1)
    shipping_id = spooled(base / "shipping", SHIPPING, 2)
    for name in ("billing", "shipping"):
        write_control(base / name, SpoolControl(paused_until=time.time() + 600, pause_reason="421 4.3.2 busy"))

    def queue(*args: str) -> Any:
        return runner.invoke(app, ["--config", str(config_path), "queue", *args, "--all-profiles", "--spool",
                                   str(base)])

    rows = [json.loads(line) for line in queue("list", "--json").stdout.splitlines()]
    assert [(row["profile"], row["id"]) for row in rows] == [("billing", billing_id), ("shipping", shipping_id)]
    human = queue("list").output
    assert "profile billing" in human and "profile shipping" in human and human.count("Delivery is paused") == 2
    held = queue("hold", shipping_id)
    assert held.exit_code == 0 and shipping_id in held.output
    assert Spool(base / "shipping").state(shipping_id).held and not Spool(base / "billing").state(billing_id).held
    assert queue("hold", "--all").output.startswith("held 1 message(s)")  # billing's; shipping's already
    retried = queue("retry")
    assert retried.exit_code == 0 and "0 queued message(s) due now" in retried.output  # both are held
    assert not read_control(base / "billing").paused_until and not read_control(base / "shipping").paused_until
    assert queue("release", "--all").output.startswith("released 2 message(s)")
    assert queue("drop", billing_id).exit_code == 0 and Spool(base / "billing").ids() == []
    missing = queue("release", billing_id)
    assert missing.exit_code == 66 and "any profile's spool" in missing.output


def test_the_one_login_relay_s_stored_login_is_kept_or_named_when_logins_take_over(
        runner: CliRunner, config_path: Path, smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path) -> None:
    """An office upgrading: its ERP logs in with the one-login relay's stored login (`relay --user erp`, kept
    as relay_user/relay_password). Once the settings file has logins, `xoromail relay` without --user serves
    those only: the first `users add` keeps that login among them; one it cannot keep (a second `erp`, of
    another profile) is named then and at every start, with the command that keeps its ERP working."""
    two_mailboxes(config_path, smtp_server, tls)
    credentials.write_secret("billing", "relay_user", "erp")
    credentials.write_secret("billing", "relay_password", ERP_A)
    credentials.write_secret("shipping", "relay_user", "erp")
    credentials.write_secret("shipping", "relay_password", ERP_B)
    added = runner.invoke(app, ["--config", str(config_path), "relay", "users", "add", "scanner", "--profile",
                                "shipping"])
    said = " ".join(added.output.split())
    assert added.exit_code == 0 and "kept the one-login relay's login erp (profile billing)" in said
    assert load_logins(config_path)["erp"].profile == "billing"
    assert "login 'erp' (profile shipping)" in said and "start that relay with --user erp" in said
    again = runner.invoke(app, ["--config", str(config_path), "relay", "users", "add", "printer", "--profile",
                                "shipping"])
    assert "'erp'" not in again.output  # said once, when logins took over
    process = RelayProcess(["--config", str(config_path), "relay", "--listen", "127.0.0.1:0", "--spool",
                            str(tmp_path / "spools")], dict(os.environ))
    try:
        wait_for(lambda: len(process.logged("listening")) == 2, what="the office relay")
        submit(process.port, erp_message(1), user="erp", password=ERP_A)  # billing's ERP keeps working
        warnings = [line for line in process.logged("warning") if "'erp'" in line]
        assert len(warnings) == 1 and "profile shipping" in warnings[0]
        assert process.terminate() == 0
    finally:
        if process.process.poll() is None:
            process.kill()


def test_two_logins_of_one_mailbox_share_its_spool_and_its_daily_quota(
        runner: CliRunner, config_path: Path, smtp_server: ServerFactory, tls: TLSFiles, office: OfficeFactory,
        tmp_path: Path) -> None:
    """Pacing and quotas are the mailbox's: the service's "quota exceeded" for one login's message holds the
    other login's message of that mailbox too (one spool, one worker), instead of each login trying on."""
    from tests.support.servers import FailNth

    quota = FailNth(1, "550 5.4.5 Daily user sending quota exceeded.")
    config.save_profile(config_path, profile_for(smtp_server(handler=quota), tls, name="billing"))
    credentials.store_password("billing", PASSWORD)
    users(runner, config_path, "add", "erp", "--profile", "billing", "--password-stdin", stdin=ERP_A + "\n")
    users(runner, config_path, "add", "printer", "--profile", "billing", "--password-stdin", stdin=ERP_B + "\n")
    running = office()
    [mailbox] = running.office.mailboxes
    assert {id(route.spool) for route in running.office.routes.values()} == {id(mailbox.spool)}
    submit(running.server.port, erp_message(1), user="erp", password=ERP_A)
    wait_for(lambda: any("daily sending limit" in line for line in running.lines if line.startswith("deferred ")),
             what="the quota refusal")
    submit(running.server.port, erp_message(2), user="printer", password=ERP_B)
    time.sleep(0.5)  # time enough for a try, were one allowed
    assert quota.calls == 1 and not quota.messages, "the other login's message waits for the mailbox's quota"
    result = runner.invoke(app, ["--config", str(config_path), "queue", "status", "--json", "--all-profiles",
                                 "--spool", str(tmp_path / "spools")])
    [report] = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 75 and report["paused"] and report["queued"] == 2 and "5.4.5" in report["pause_reason"]
