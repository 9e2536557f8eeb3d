"""Warnings before something expires: each with its date and the command that renews it, in validate's notes
(and --json), once a day in send's stderr and the relay's log, and from one function `queue status` can call."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msal
import pytest
import trustme
from typer.testing import CliRunner, Result

from tests.support.common import PASSWORD, USER, TLSFiles
from tests.support.fakes.microsoft_server import MicrosoftServer
from tests.support.keyring_store import KeyringStore
from tests.support.m365_helpers import settings_for
from xoromail_cli import config, credentials, validate
from xoromail_cli.cli import app
from xoromail_cli.errors import DataError
from xoromail_cli.profile import Profile
from xoromail_cli.services import expiry
from xoromail_cli.services.google.settings import GoogleSettings
from xoromail_cli.services.microsoft365.settings import Microsoft365Settings

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
INVOICE = ["--event", "overdue-invoice", "--to", "ap@customer.test", "--var", "customer_name=Northwind",
           "--var", "invoice_number=INV-9", "--var", "amount_due=10", "--var", "due_date=2026-11-15",
           "--var", "payment_link=https://pay.example/INV-9"]


def rsa_pem(tmp_path: Path, days: int, name: str = "app.pem") -> Path:
    leaf = trustme.CA().issue_cert("xoromail-app", key_type=trustme.KeyType.RSA,
                                   not_before=datetime.now(UTC) - timedelta(days=300),
                                   not_after=datetime.now(UTC).replace(microsecond=0) + timedelta(days=days))
    pem = tmp_path / name
    pem.write_bytes(leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes())
    pem.chmod(0o600)
    return pem


def m365(**settings: object) -> Profile:
    values: dict[str, object] = {"tenant": "company.test", "client_id": "5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f"}
    values.update(settings)
    return Profile(name="m365", email=USER, service="microsoft365",
                   settings=Microsoft365Settings(**values))  # type: ignore[arg-type]  # test values by name


def test_a_microsoft_certificate_within_30_days_is_named_with_its_date_and_command(tmp_path: Path) -> None:
    soon, later = rsa_pem(tmp_path, 10, "soon.pem"), rsa_pem(tmp_path, 200, "later.pem")
    notes = expiry.notes_for(m365(mode="app", certificate=str(soon)))
    assert [note.kind for note in notes] == ["microsoft-certificate"]
    text = notes[0].text()
    assert "expires on" in text and ("(in 9 days)" in text or "(in 10 days)" in text)
    assert "xoromail --profile m365 setup --service microsoft365 --certificate NEW.pem" in text
    assert expiry.notes_for(m365(mode="app", certificate=str(later))) == []


def test_a_client_secret_date_warns_30_days_before_and_after() -> None:
    profile = m365(mode="app", client_secret_expires="2026-12-31")
    [note] = expiry.notes_for(profile, now=NOW)
    assert note.kind == "microsoft-client-secret" and "2026-12-31 (in 24 days)" in note.text(NOW)
    assert "--client-secret-stdin --client-secret-expires" in note.command
    assert expiry.notes_for(m365(mode="app", client_secret_expires="2027-03-01"), now=NOW) == []
    assert "expired on 2026-12-31" in note.text(NOW + timedelta(days=30))
    with pytest.raises(DataError, match="YYYY-MM-DD"):
        m365(mode="app", client_secret_expires="31.12.2026")


def test_the_google_testing_limit_is_a_note_but_not_for_a_service_account() -> None:
    user = Profile(name="g", email=USER, service="google",
                   settings=GoogleSettings(client_id="x", sign_in_expires="2026-12-09T08:00:00+00:00"))
    [note] = expiry.notes_for(user, now=NOW)
    assert note.kind == "google-testing" and "2026-12-09" in note.text(NOW) and "Publish app" in note.text(NOW)
    robot = Profile(name="g", email=USER, service="google",
                    settings=GoogleSettings(client_id="1", service_account="s@p.iam.gserviceaccount.com",
                                            sign_in_expires="2026-12-09T08:00:00+00:00"))
    assert expiry.notes_for(robot, now=NOW) == []


def test_the_relays_tls_certificate_within_21_days(tls: TLSFiles, tmp_path: Path) -> None:
    cert = tmp_path / "relay.pem"
    tls.ca.issue_cert("relay.company.test", not_after=datetime.now(UTC) + timedelta(days=20)
                      ).cert_chain_pems[0].write_to_path(str(cert))
    profile = Profile(name="g", email=USER, service="google", settings=GoogleSettings(client_id="x"))
    [note] = expiry.notes_for(profile, relay_certificate=cert)
    assert note.kind == "relay-tls" and "--tls-cert NEW-CERT.pem" in note.command
    later = tmp_path / "later.pem"
    tls.ca.issue_cert("relay.company.test", not_after=datetime.now(UTC) + timedelta(days=40)
                      ).cert_chain_pems[0].write_to_path(str(later))
    assert expiry.notes_for(profile, relay_certificate=later) == []


def test_a_refresh_token_unused_for_60_days_warns_with_its_end(tls: TLSFiles) -> None:
    with MicrosoftServer(tls.server_context) as server:
        store = KeyringStore("aging")
        cache = msal.SerializableTokenCache()
        cache.add({"client_id": settings_for(server).client_id, "scope": ["Mail.Send"],
                   "token_endpoint": f"{server.authority_host}/company.test/oauth2/v2.0/token",
                   "response": {"access_token": "a", "refresh_token": "r", "expires_in": 3600,
                                "token_type": "Bearer"}}, now=(NOW - timedelta(days=65)).timestamp())
        store.set("token_cache", cache.serialize())
        profile = Profile(name="aging", email=USER, service="microsoft365", settings=settings_for(server))
        [note] = expiry.notes_for(profile, now=NOW, secrets=store)
        assert note.kind == "microsoft-refresh-token" and note.expires.date().isoformat() == "2027-01-01"
        assert "xoromail --profile aging validate --no-send" in note.text(NOW)
        assert expiry.notes_for(profile, now=NOW - timedelta(days=10), secrets=store) == []


def test_once_a_day_per_profile(tmp_path: Path) -> None:
    notes = expiry.notes_for(m365(mode="app", client_secret_expires="2026-12-31"), now=NOW)
    assert expiry.once_a_day("m365", notes, now=NOW, stamp_dir=tmp_path) == notes
    assert expiry.once_a_day("m365", notes, now=NOW + timedelta(hours=5), stamp_dir=tmp_path) == []
    assert expiry.once_a_day("m365", notes, now=NOW + timedelta(days=1), stamp_dir=tmp_path) == notes
    assert expiry.once_a_day("other", notes, now=NOW, stamp_dir=tmp_path) == notes


def test_validate_json_carries_the_certificate_note(tls: TLSFiles, tmp_path: Path, runner: CliRunner,
                                                   config_path: Path) -> None:
    leaf_pem = rsa_pem(tmp_path, 10)
    text = leaf_pem.read_bytes()
    public = text[text.index(b"-----BEGIN CERTIFICATE-----"):]
    with MicrosoftServer(tls.server_context, certificate_pem=public) as server:
        settings = settings_for(server, mode="app", certificate=str(leaf_pem))
        profile = Profile(name="default", email=USER, service="microsoft365", settings=settings,
                          ca_file=str(tls.ca_file), timeout=10.0)
        report = validate.run(profile, KeyringStore("cert-profile"), send=False)
        assert report.exit_code == 0, report.to_json()
        assert any("Microsoft app certificate" in note and "--certificate NEW.pem" in note for note in report.notes)
        config.save_profile(config_path, profile)
        result = runner.invoke(app, ["--config", str(config_path), "validate", "--no-send", "--json"])
        notes = json.loads(result.stdout)["notes"]
        assert result.exit_code == 0 and any("expires on" in note for note in notes)


def test_setup_takes_the_client_secret_date(runner: CliRunner) -> None:
    result = runner.invoke(app, ["setup", "--help"])
    assert "--client-secret-expires" in result.stdout


def test_send_says_it_once_a_day_on_stderr(tls: TLSFiles, runner: CliRunner, config_path: Path) -> None:
    from tests.support.fakes.microsoft_server import CLIENT_SECRET
    with MicrosoftServer(tls.server_context) as server:
        settings = settings_for(server, mode="app", client_secret_expires=(datetime.now(UTC) + timedelta(days=12))
                                .date().isoformat())
        config.save_profile(config_path, Profile(name="default", email=USER, service="microsoft365",
                                                 settings=settings, ca_file=str(tls.ca_file), timeout=10.0))
        KeyringStore("default").set("client_secret", CLIENT_SECRET)
        args = ["--config", str(config_path), "send", *INVOICE]
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        assert "note: the Microsoft app's client secret expires on" in first.stderr
        assert "--client-secret-expires YYYY-MM-DD" in first.stderr
        assert f"run `xoromail --config {config_path} setup --service microsoft365" in first.stderr
        second = runner.invoke(app, [a.replace("INV-9", "INV-10") for a in args])
        assert second.exit_code == 0 and "client secret" not in second.stderr


def validated_with_expired_secret(server: MicrosoftServer, tls: TLSFiles, runner: CliRunner,
                                  config_path: Path) -> tuple[Profile, Result]:
    """An app-only profile whose client secret Microsoft calls expired (AADSTS7000222), saved and validated."""
    from tests.support.fakes.microsoft_server import CLIENT_SECRET

    server.secret_expired = True
    profile = Profile(name="default", email=USER, service="microsoft365", display_name="Billing",
                      settings=settings_for(server, mode="app"), ca_file=str(tls.ca_file), timeout=10.0)
    config.save_profile(config_path, profile)
    KeyringStore("default").set("client_secret", CLIENT_SECRET)
    return profile, runner.invoke(app, ["--config", str(config_path), "validate", "--no-send", "--json"])


def test_an_expired_secret_learnt_from_aadsts7000222_stays_a_note_until_a_new_secret(
        tls: TLSFiles, runner: CliRunner, config_path: Path) -> None:
    from tests.support.fakes.microsoft_server import CLIENT_SECRET

    with MicrosoftServer(tls.server_context) as server:
        profile, failed = validated_with_expired_secret(server, tls, runner, config_path)
        assert failed.exit_code == 77 and "AADSTS7000222" in json.loads(failed.stdout)["error"]
        [note] = expiry.notes_for(profile)
        assert note.kind == "microsoft-client-secret" and "expired on" in note.text()
        server.secret_expired = False
        renewed = runner.invoke(app, ["--config", str(config_path), "setup", "--service", "microsoft365",
                                      "--client-secret-stdin", "--client-secret-expires", "2028-01-31"],
                                input=CLIENT_SECRET + "\n")
        assert renewed.exit_code == 0, renewed.output
        assert expiry.notes_for(config.load_profile(config_path, "default")) == []


def test_an_expired_secret_met_by_send_is_learnt_and_said_in_the_same_run(
        tls: TLSFiles, runner: CliRunner, config_path: Path) -> None:
    """AADSTS7000222 in `send`'s sign-in is learnt as validate and the relay learn it: the run that met it says
    what expired and the renewing command on stderr, and the profile's notes keep saying so."""
    from tests.support.fakes.microsoft_server import CLIENT_SECRET

    with MicrosoftServer(tls.server_context) as server:
        server.secret_expired = True
        profile = Profile(name="default", email=USER, service="microsoft365", display_name="Billing",
                          settings=settings_for(server, mode="app"), ca_file=str(tls.ca_file), timeout=10.0)
        config.save_profile(config_path, profile)
        KeyringStore("default").set("client_secret", CLIENT_SECRET)
        failed = runner.invoke(app, ["--config", str(config_path), "send", *INVOICE])
        assert failed.exit_code == 77, failed.output
        assert "note: the Microsoft app's client secret expired on" in failed.stderr
        assert f"`xoromail --config {config_path} setup --service microsoft365" in failed.stderr
        [note] = expiry.notes_for(config.load_profile(config_path, "default"))
        assert note.kind == "microsoft-client-secret" and "expired on" in note.text()


def test_the_relay_logs_its_certificate_expiring_at_start(tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    from tests.support.relay_helpers import relay_process, wait_for
    from tests.support.samples import smtp_profile
    from xoromail_cli.local.sink import free_port

    config.save_profile(config_path, smtp_profile(name="default", email=USER, host="127.0.0.1", port=free_port(),
                                                  security="starttls", display_name="Company Billing",
                                                  ca_file=str(tls.ca_file), timeout=5.0))
    credentials.store_password("default", PASSWORD)
    leaf = tls.ca.issue_cert("127.0.0.1", not_after=datetime.now(UTC) + timedelta(days=10))
    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    relay = relay_process(config_path, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        wait_for(lambda: bool(relay.logged("expiring")), what="the expiring line")
        [line] = relay.logged("expiring")
        assert "what=relay-tls" in line and "--tls-cert NEW-CERT.pem" in line
    finally:
        assert relay.terminate() == 0


def test_a_notes_command_names_the_profile_it_renews(tls: TLSFiles, tmp_path: Path) -> None:
    """A note in the log of a relay for profile `m365` must not tell the reader to change the default profile."""
    notes = expiry.notes_for(m365(mode="app", client_secret_expires="2026-12-20"), now=NOW,
                             relay_certificate=rsa_pem(tmp_path, 5, "relay.pem"))
    assert [note.command.split(" setup ")[0].split(" relay ")[0] for note in notes] == ["xoromail --profile m365"] * 2
    default = Profile(name="default", email=USER, service="microsoft365", settings=Microsoft365Settings(
        tenant="company.test", client_id="5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f", mode="app",
        client_secret_expires="2026-12-20"))
    assert expiry.notes_for(default, now=NOW)[0].command.startswith("xoromail setup --service microsoft365")


def test_the_relay_tls_note_says_a_reload_takes_the_renewed_files(tmp_path: Path) -> None:
    [note] = expiry.notes_for(m365(mode="app"), relay_certificate=rsa_pem(tmp_path, 5, "relay.pem"))
    assert "SIGHUP" in note.text()


def test_a_failing_validate_still_names_what_expired(tls: TLSFiles, runner: CliRunner, config_path: Path) -> None:
    """The failure AADSTS7000222 is learnt and the same run's notes say what expired and the renewing command."""
    with MicrosoftServer(tls.server_context) as server:
        _, failed = validated_with_expired_secret(server, tls, runner, config_path)
        assert failed.exit_code == 77
        [note] = json.loads(failed.stdout)["notes"]
        assert "client secret expired on" in note and "--client-secret-stdin --client-secret-expires" in note
        assert f"`xoromail --config {config_path} setup --service microsoft365" in note
        text = runner.invoke(app, ["--config", str(config_path), "validate", "--no-send"])
        assert text.exit_code == 77 and "note: the Microsoft app's client secret expired on" in text.stdout
        assert f"`xoromail --config {config_path} setup --service microsoft365" in text.stdout


def test_queue_status_warns_of_the_relays_tls_certificate(runner: CliRunner, config_path: Path,
                                                         tmp_path: Path) -> None:
    """The relay's certificate is a start option, so `queue status` takes it too (--tls-cert) to warn 21 days ahead."""
    config.save_profile(config_path, m365(mode="app"))
    relay_pem = rsa_pem(tmp_path, 5, "relay.pem")
    base = ["--config", str(config_path), "--profile", "m365", "queue", "status"]
    result = runner.invoke(app, [*base, "--json", "--tls-cert", str(relay_pem)])
    assert result.exit_code == 0, result.output
    [note] = json.loads(result.stdout)["expiring"]
    assert note["kind"] == "relay-tls"
    assert note["command"].startswith(f"xoromail --config {config_path} --profile m365 relay --tls-cert")
    assert f"`xoromail --config {config_path} --profile m365 relay" in note["note"]
    assert json.loads(runner.invoke(app, [*base, "--json"]).stdout)["expiring"] == []


def test_queue_status_warns_of_the_profiles_own_expiry_too(runner: CliRunner, config_path: Path) -> None:
    """Not only the relay's certificate: what the profile signs in with (here a client secret) is listed too, as
    a note in the text and in `expiring` in --json, with its renewing command."""
    soon = (datetime.now(UTC) + timedelta(days=12)).date().isoformat()
    config.save_profile(config_path, m365(mode="app", client_secret_expires=soon))
    base = ["--config", str(config_path), "--profile", "m365", "queue", "status"]
    result = runner.invoke(app, [*base, "--json"])
    assert result.exit_code == 0, result.output
    [note] = json.loads(result.stdout)["expiring"]
    assert note["kind"] == "microsoft-client-secret" and note["expires"].startswith(soon)
    assert "--client-secret-stdin --client-secret-expires" in note["command"]
    text = runner.invoke(app, base)
    assert text.exit_code == 0 and f"note: the Microsoft app's client secret expires on {soon}" in text.stdout


def test_a_notes_command_names_the_runs_settings_file_unless_it_is_the_default(tmp_path: Path) -> None:
    """Typed as shown, the renewing command acts on the same file and profile as the run that printed it."""
    from xoromail_cli import paths

    other = tmp_path / "erp settings.toml"
    [named] = expiry.notes_for(m365(mode="app", client_secret_expires="2026-12-20"), now=NOW, config_path=other)
    assert named.command.startswith(f"xoromail --config '{other}' --profile m365 setup --service microsoft365")
    assert f"run `xoromail --config '{other}' --profile m365 setup" in named.text(NOW)
    [plain] = expiry.notes_for(m365(mode="app", client_secret_expires="2026-12-20"), now=NOW,
                               config_path=paths.config_file(None))
    assert plain.command.startswith("xoromail --profile m365 setup --service microsoft365")


def test_validate_notes_carry_the_runs_config_and_profile(tmp_path: Path, runner: CliRunner,
                                                         config_path: Path) -> None:
    """validate's notes (text and --json) quote the renewing command with this run's --config and --profile."""
    config.save_profile(config_path, m365(mode="app", client_secret_expires=(datetime.now(UTC) + timedelta(days=12))
                                          .date().isoformat()))
    base = ["--config", str(config_path), "--profile", "m365", "validate", "--no-send"]
    result = runner.invoke(app, [*base, "--json"])
    expected = f"`xoromail --config {config_path} --profile m365 setup --service microsoft365"
    assert any(expected in note for note in json.loads(result.stdout)["notes"]), result.stdout
    assert expected in runner.invoke(app, base).stdout
