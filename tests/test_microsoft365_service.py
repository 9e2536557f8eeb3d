"""The Microsoft 365 service adapter: settings, setup flags and wizard, offline checks, notes, fast import."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.common import TLSFiles
from tests.support.fakes.microsoft_server import CLIENT_ID, TENANT, USER, MicrosoftServer
from tests.support.m365_helpers import approving, settings_for
from tests.test_boundaries import service_libraries
from xoromail_cli.credentials import Secrets
from xoromail_cli.errors import ConfigError, DataError, NoInputError
from xoromail_cli.services.microsoft365.auth import sign_in
from xoromail_cli.services.microsoft365.service import SERVICE, build_settings, refresh_note
from xoromail_cli.services.microsoft365.settings import Microsoft365Settings


@dataclass(frozen=True, kw_only=True)
class ProfileStandIn:
    """The refactored Profile's fields this service reads (`profile.Profile`)."""

    settings: Microsoft365Settings
    name: str = "m365"
    email: str = USER
    ca_file: str | None = None
    timeout: float = 10.0
    keyring_backend: str | None = None


def test_settings_keep_only_what_differs_from_the_defaults_and_read_back() -> None:
    settings = Microsoft365Settings(tenant=TENANT, client_id=CLIENT_ID, cloud="usgov", redirect_port=8400)
    table = settings.to_table()
    assert table == {"tenant": TENANT, "client_id": CLIENT_ID, "cloud": "usgov", "redirect_port": 8400}
    again = Microsoft365Settings.from_table(table)
    assert again == settings
    assert again.authority == f"https://login.microsoftonline.us/{TENANT}"
    assert again.graph_base == "https://graph.microsoft.us/v1.0"


def test_a_graph_url_override_keeps_the_scope_of_the_real_graph() -> None:
    settings = Microsoft365Settings(tenant=TENANT, client_id=CLIENT_ID, graph_url="https://127.0.0.1:9/v1.0/")
    assert settings.graph_base == "https://127.0.0.1:9/v1.0"
    assert settings.graph_scopes == ["https://graph.microsoft.com/Mail.Send"]
    assert Microsoft365Settings(tenant=TENANT, client_id=CLIENT_ID, mode="app").graph_scopes == [
        "https://graph.microsoft.com/.default"]


@pytest.mark.parametrize(("table", "field"), [
    ({"tenant": TENANT, "client_id": "billing@company.test"}, "client_id"),
    ({"tenant": TENANT, "client_id": CLIENT_ID, "authority_host": "http://login.example"}, "authority_host"),
    ({"tenant": TENANT, "client_id": CLIENT_ID, "cloud": "mars"}, "cloud"),
    ({"tenant": TENANT, "client_id": CLIENT_ID, "redirect_port": "80"}, "redirect_port"),
    ({"tenant": TENANT, "client_id": CLIENT_ID, "colour": "blue"}, "colour"),
])
def test_bad_settings_name_their_key(table: dict[str, Any], field: str) -> None:
    with pytest.raises(DataError) as caught:
        Microsoft365Settings.from_table(table)
    assert caught.value.field == field


def test_a_secret_or_a_certificate_makes_the_profile_app_only() -> None:
    base = {"tenant": TENANT, "client_id": CLIENT_ID}
    assert build_settings(base, None).mode == "delegated"
    assert build_settings({**base, "client_secret_stdin": True}, None).mode == "app"
    with_cert = build_settings({**base, "certificate": Path("/etc/xoromail/app.pem")}, None)
    assert with_cert.mode == "app" and with_cert.certificate == "/etc/xoromail/app.pem"
    kept = build_settings({"sign_in": "browser"}, build_settings(base, None))
    assert (kept.tenant, kept.sign_in) == (TENANT, "browser")


def test_non_interactive_setup_names_the_missing_flags() -> None:
    assert SERVICE.missing({}, None, secret_known=False) == ["--tenant", "--client-id"]
    answers = {"tenant": TENANT, "client_id": CLIENT_ID, "client_secret_stdin": True}
    assert SERVICE.missing(answers, None, secret_known=False) == ["--client-secret-stdin or --certificate"]
    assert SERVICE.missing(answers, None, secret_known=True) == []
    assert {option.flag for option in SERVICE.setup_options} >= {
        "--tenant", "--client-id", "--client-secret-stdin", "--certificate", "--sign-in", "--redirect-port",
        "--sign-in-timeout", "--send-via", "--cloud", "--authority-host", "--graph-url"}


def test_the_wizard_asks_for_what_each_mode_needs() -> None:
    def walk(replies: dict[str, Any]) -> list[str]:
        answers: dict[str, Any] = {}
        asked = []
        while (question := SERVICE.next_question(answers, None, USER)) is not None:
            asked.append(question.key)
            answers[question.key] = replies[question.key]
        return asked

    assert walk({"tenant": TENANT, "client_id": CLIENT_ID, "mode": "delegated", "sign_in": "device-code",
                 "send_via": "graph"}) == ["tenant", "client_id", "mode", "sign_in", "send_via"]
    assert walk({"tenant": TENANT, "client_id": CLIENT_ID, "mode": "app", "client_secret": "",
                 "certificate": "/x.pem"}) == ["tenant", "client_id", "mode", "client_secret", "certificate"]
    first = SERVICE.next_question({}, None, USER)
    assert first is not None and first.check is not None and "App registrations" in (first.explain or "")
    with pytest.raises(DataError):
        SERVICE.next_question({"tenant": TENANT}, None, USER).check("billing@company.test")  # type: ignore[union-attr, misc]  # asked above


def test_offline_checks_refuse_app_only_smtp_and_an_unreadable_certificate(tmp_path: Path) -> None:
    smtp_app = ProfileStandIn(settings=Microsoft365Settings(tenant=TENANT, client_id=CLIENT_ID, mode="app",
                                                   send_via="smtp"))
    with pytest.raises(ConfigError) as caught:
        SERVICE.check_offline(smtp_app)  # type: ignore[arg-type]  # the stand-in has the Profile's fields
    assert "New-ServicePrincipal" in (caught.value.hint or "")
    missing = ProfileStandIn(settings=Microsoft365Settings(tenant=TENANT, client_id=CLIENT_ID, mode="app",
                                                  certificate=str(tmp_path / "none.pem")))
    with pytest.raises(NoInputError):
        SERVICE.check_offline(missing)  # type: ignore[arg-type]  # the stand-in has the Profile's fields


def test_the_service_signs_in_opens_and_sends_through_graph(tls: TLSFiles) -> None:
    from xoromail_cli.compose.envelope import Envelope

    with MicrosoftServer(tls.server_context) as server:
        profile = ProfileStandIn(settings=settings_for(server), ca_file=str(tls.ca_file))
        secrets = Secrets(profile)  # type: ignore[arg-type]  # the real keyring store; stand-in profile
        who = sign_in(profile.settings, secrets, mailbox=USER, notify=approving(server), ca_file=profile.ca_file,
                      timeout=10)
        assert who.account == USER
        assert SERVICE.planned_stages(profile, send=True) == ["config", "sign-in", "send"]  # type: ignore[arg-type]  # stand-in
        transport = SERVICE.open_transport(profile, secrets)  # type: ignore[arg-type]  # stand-in
        transport.open()
        delivery = transport.send(Envelope(sender=USER, to=("customer@example.org",), data=b"Subject: t\r\n\r\nx\r\n",
                                           message_id="<t@x>"))
        transport.close()
        assert delivery.ok and server.sent[0].mime == b"Subject: t\r\n\r\nx\r\n"
        notes = SERVICE.notes(profile)  # type: ignore[arg-type]  # stand-in
        assert any("last refreshed on" in note for note in notes)
        assert "Microsoft 365 tenant company.test" in SERVICE.describe(profile)  # type: ignore[arg-type]  # stand-in


def test_the_refresh_note_warns_when_the_90_days_run_out() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert "expires after 90 days" in refresh_note(now - timedelta(days=3), now)
    assert "in about 5 days" in refresh_note(now - timedelta(days=85), now)


def test_reading_and_describing_a_profile_loads_neither_msal_nor_requests() -> None:
    watched = sorted(service_libraries("microsoft365") | {"jwt", "cryptography"})  # msal's own dependencies too
    code = ("import sys; import xoromail_cli.services.microsoft365.service as s; "
            "import xoromail_cli.services.microsoft365.transport, xoromail_cli.services.microsoft365.smtp; "
            "s.SERVICE.settings_from_table({'tenant': 't', 'client_id': 'c'}); "
            f"heavy = [m for m in {watched!r} if m in sys.modules]; assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_send_via_hve_sends_over_smtp_to_high_volume_email_without_hand_editing() -> None:
    """HVE with XOAUTH2: `--send-via hve` picks smtp-hve.office365.com over SMTP; HVE's token rule follows the host."""
    from xoromail_cli.services.smtp.presets import HVE_HOST

    base = {"tenant": TENANT, "client_id": CLIENT_ID}
    hve = build_settings({**base, "send_via": "hve"}, None)
    assert (hve.send_via, hve.smtp_server, hve.smtp_port) == ("smtp", HVE_HOST, 587)
    assert any("internal recipients only" in note for note in SERVICE.setup_notes(hve))
    notes = SERVICE.notes(ProfileStandIn(settings=hve))  # type: ignore[arg-type]  # the fields notes() reads
    assert any("internal recipients only" in note for note in notes)
    back = build_settings({"send_via": "smtp"}, hve)
    assert (back.send_via, back.smtp_server) == ("smtp", "smtp.office365.com")
    assert SERVICE.setup_notes(back) == []
    own = build_settings({"send_via": "smtp"}, Microsoft365Settings(tenant=TENANT, client_id=CLIENT_ID,
                                                                    smtp_host="127.0.0.1"))
    assert own.smtp_server == "127.0.0.1"  # a host set by hand (a proxy, a test server) stays


def test_setup_takes_send_via_hve_and_the_wizard_offers_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from xoromail_cli.cli import app

    result = CliRunner().invoke(app, ["--config", str(tmp_path / "c.toml"), "setup", "--service", "microsoft365",
                                      "--tenant", TENANT, "--client-id", CLIENT_ID, "--email", USER,
                                      "--display-name", "B", "--send-via", "carrier-pigeon", "--no-validate"])
    assert result.exit_code == 65 and "hve" in result.output
    question = SERVICE.next_question({"tenant": TENANT, "client_id": CLIENT_ID, "sign_in": "device-code"}, None, USER)
    while question is not None and question.key != "send_via":
        question = SERVICE.next_question({"tenant": TENANT, "client_id": CLIENT_ID, "sign_in": "device-code",
                                          question.key: question.default}, None, USER)
    assert question is not None and "hve" in (question.choices or ())
